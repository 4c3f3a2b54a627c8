// The dashboard shell: sign-in (the tenant key lives in sessionStorage only), the API client,
// a hash router and the navigation. Views are modules that mount into #view and return an unmount.
import { mountOverview } from "./overview.js";
import { mountDevices, mountDevice } from "./devices.js";
import { mountAlerts } from "./alerts.js";
import { mountRules } from "./rules.js";
import { mountMessageRoutes } from "./message-routes.js";
import { KEY, ApiError, api, h } from "./lib.js";

const root = document.getElementById("app");

let unmount = () => {};

function signOut(message) {
  sessionStorage.removeItem(KEY);
  unmount();
  unmount = () => {};
  showSignIn(message);
}

function showSignIn(message) {
  const input = h("input", {
    id: "key",
    type: "password",
    autocomplete: "off",
    placeholder: "tk_…",
    required: true,
    "aria-label": "API key",
  });
  const error = h("p", { class: "error", id: "signin-error" }, message ?? "");
  const form = h(
    "form",
    { class: "signin", id: "signin" },
    h("h1", {}, "telemetry"),
    h(
      "p",
      { class: "muted" },
      "Sign in with a tenant API key. It is kept in this browser tab only (sessionStorage) and sent as a bearer token.",
    ),
    input,
    h("button", { type: "submit" }, "Sign in"),
    error,
    h("p", { class: "muted small" }, h("a", { href: "/docs" }, "API documentation")),
  );
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    sessionStorage.setItem(KEY, input.value.trim());
    try {
      await api("GET", "/api/v1/dashboard/stats");
      start();
    } catch (err) {
      if (!(err instanceof ApiError && err.status === 401)) error.textContent = `Could not sign in: ${err.message}`;
    }
  });
  root.replaceChildren(form);
  input.focus();
}

const ROUTES = [
  [/^#\/?$|^#\/overview$/, "overview", () => mountOverview],
  [/^#\/devices$/, "devices", () => mountDevices],
  [/^#\/devices\/(.+)$/, "devices", () => mountDevice],
  [/^#\/alerts$/, "alerts", () => mountAlerts],
  [/^#\/rules$/, "rules", () => mountRules],
  [/^#\/routes$/, "routes", () => mountMessageRoutes],
];

function start() {
  const nav = h(
    "nav",
    {},
    ...[
      ["overview", "Overview"],
      ["devices", "Devices"],
      ["alerts", "Alerts"],
      ["rules", "Rules"],
      ["routes", "Routes"],
    ].map(([id, label]) => h("a", { href: `#/${id}`, "data-nav": id }, label)),
    h("a", { href: "/docs", target: "_blank", class: "ext" }, "API docs"),
  );
  const tenant = h("span", { class: "tenant", id: "tenant" });
  const header = h(
    "header",
    {},
    h("strong", { class: "brand" }, "telemetry"),
    nav,
    h("span", { class: "spacer" }),
    tenant,
    h("button", { class: "link", id: "signout", onclick: () => signOut() }, "Sign out"),
  );
  const view = h("main", { id: "view" });
  root.replaceChildren(header, view);
  api("GET", "/api/v1/dashboard/stats").then(
    (s) => (tenant.textContent = `tenant ${s.tenant}`),
    () => {},
  );

  const route = () => {
    unmount();
    const hash = location.hash || "#/overview";
    const match = ROUTES.find(([re]) => re.test(hash));
    const [re, navId, mount] = match ?? ROUTES[0];
    for (const a of nav.querySelectorAll("[data-nav]")) a.classList.toggle("active", a.dataset.nav === navId);
    const arg = hash.match(re)?.[1];
    view.replaceChildren();
    unmount = mount()(view, arg === undefined ? undefined : decodeURIComponent(arg)) ?? (() => {});
  };
  window.onhashchange = route;
  route();
}

window.addEventListener("telemetry:unauthorized", () =>
  signOut("The key was refused (unknown or revoked). Sign in again."),
);
if (sessionStorage.getItem(KEY)) start();
else showSignIn();

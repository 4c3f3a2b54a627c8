// Message routes (docs/routes.md): list with state and lag, create (filter, destination; a
// webhook's signing secret shown once, in this page only, until it is left), pause/resume,
// delete, and a route's failed list with replay of one batch or all. Validation is the server's;
// its errors are shown next to the field their path names. The list refreshes every 5 s.
import { actions, api, clearFieldErrors, every, field, h, showFieldErrors } from "./lib.js";

const list = (text) =>
  text
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);

const describeFilter = (f) =>
  [
    f.devices ? `devices ${f.devices.join(", ")}` : f.device_pattern ? `devices ${f.device_pattern}` : "all devices",
    f.metrics ? `metrics ${f.metrics.join(", ")}` : "",
    f.condition ? `when ${f.condition}` : "",
  ]
    .filter(Boolean)
    .join("; ");

/** The form's values as the API's create body (empty fields omitted, so the server names what is wrong). */
function createBody(v) {
  const filter = {};
  const devices = v("devices").trim();
  if (devices.includes("*") || devices.includes("?")) filter.device_pattern = devices;
  else if (devices) filter.devices = list(devices);
  if (v("metrics").trim()) filter.metrics = list(v("metrics"));
  if (v("condition").trim()) filter.condition = v("condition").trim();
  const type = v("destination.type");
  const target = v("destination.target").trim();
  const destination = { type };
  if (type === "webhook") {
    destination.url = target;
    if (v("destination.secret")) destination.secret = v("destination.secret");
  } else if (target) destination[type === "nats" ? "subject" : "topic"] = target;
  return { name: v("name").trim(), filter, destination, state: v("state") };
}

export function mountMessageRoutes(view) {
  const table = h("div", { class: "card", id: "route-table" });
  const formBox = h("div", { id: "route-form-box" });
  const secretBox = h("div", { id: "route-secret" });
  const failedBox = h("div", { id: "route-failed-box" });
  const message = h("p", { class: "error", id: "route-error" });
  const note = h("p", { class: "muted", id: "route-note" });
  let inspected = null; // the route whose failed list is open
  view.append(
    h(
      "div",
      { class: "toolbar" },
      h("h2", {}, "Message routes"),
      h("span", { class: "spacer" }),
      h("button", { id: "new-route", onclick: openForm }, "New route"),
    ),
    h(
      "p",
      { class: "muted small" },
      "A route forwards the readings that match its filter, received after it was made, to a webhook (signed batches), a NATS subject or an MQTT topic.",
    ),
    message,
    note,
    secretBox,
    formBox,
    table,
    failedBox,
  );

  const act = actions(message, () => refresh(), note);

  async function refresh() {
    const { routes } = await api("GET", "/api/v1/routes");
    table.replaceChildren(routes.length ? routeTable(routes) : h("p", { class: "muted" }, "No routes yet."));
    if (inspected && !routes.some((r) => r.id === inspected.id)) inspected = null;
    if (inspected) await showFailed(routes.find((r) => r.id === inspected.id));
    else failedBox.replaceChildren();
  }

  const button = (cls, label, onclick) => h("button", { class: cls, onclick }, label);

  function routeTable(routes) {
    const head = ["Name", "State", "Filter", "Destination", "Lag", "Pending", "Failed", ""];
    return h(
      "table",
      { class: "message-routes" },
      h(
        "thead",
        {},
        h(
          "tr",
          {},
          head.map((c) => h("th", {}, c)),
        ),
      ),
      h(
        "tbody",
        {},
        routes.map((r) =>
          h(
            "tr",
            { "data-route": r.name },
            h("td", {}, r.name),
            h("td", { class: `state ${r.state}` }, r.state),
            h("td", {}, describeFilter(r.filter)),
            h("td", {}, `${r.destination.type} ${r.destination.url ?? r.destination.subject}`),
            h("td", { class: "lag" }, r.lag === null ? "?" : String(r.lag)),
            h("td", { class: "pending" }, String(r.pending_batches)),
            h("td", { class: "failed" }, String(r.failed_batches)),
            h(
              "td",
              { class: "actions" },
              button(
                "toggle",
                r.state === "active" ? "Pause" : "Resume",
                act(() => api("POST", `/api/v1/routes/${r.id}/${r.state === "active" ? "pause" : "resume"}`)),
              ),
              button(
                "inspect",
                "Failed list",
                act(async () => {
                  inspected = r;
                }),
              ),
              button(
                "delete danger",
                "Delete",
                act(async () => {
                  if (confirm(`Delete route "${r.name}" with its pending and failed batches?`))
                    await api("DELETE", `/api/v1/routes/${r.id}`);
                }),
              ),
            ),
          ),
        ),
      ),
    );
  }

  async function showFailed(r) {
    const { failed } = await api("GET", `/api/v1/routes/${r.id}/failed`);
    const replay = (body) =>
      act(async () => {
        const { replayed } = await api("POST", `/api/v1/routes/${r.id}/replay`, body);
        note.textContent = `${replayed} batch${replayed === 1 ? "" : "es"} sent again (same delivery id)`;
      });
    failedBox.replaceChildren(
      h(
        "div",
        { class: "card", id: "route-failed", "data-route": r.name },
        h(
          "div",
          { class: "toolbar" },
          h("h3", {}, `Failed batches of "${r.name}"`),
          h("span", { class: "spacer" }),
          failed.length ? h("button", { id: "replay-all", onclick: replay({}) }, "Replay all") : "",
          button("link", "Close", () => {
            inspected = null;
            failedBox.replaceChildren();
          }),
        ),
        failed.length
          ? h(
              "table",
              { class: "failed-batches" },
              h(
                "thead",
                {},
                h(
                  "tr",
                  {},
                  ["delivery id", "readings", "attempts", "last error", "failed", "first reading", ""].map((c) =>
                    h("th", {}, c),
                  ),
                ),
              ),
              h(
                "tbody",
                {},
                failed.map((b) =>
                  h(
                    "tr",
                    { "data-batch": b.id },
                    h("td", {}, h("code", {}, b.id)),
                    h("td", {}, String(b.readings)),
                    h("td", {}, String(b.attempts)),
                    h("td", { class: "last-error" }, b.last_error ?? "—"),
                    h("td", {}, b.failed_at ?? "—"),
                    h("td", {}, b.first_reading ? `${b.first_reading.device_id} ${b.first_reading.ts}` : "—"),
                    h("td", { class: "actions" }, button("replay", "Replay", replay({ batch: b.id }))),
                  ),
                ),
              ),
            )
          : h("p", { class: "muted", id: "no-failed" }, "No failed batches."),
      ),
    );
  }

  function openForm() {
    const text = (name, placeholder, attrs = {}) => h("input", { name, placeholder, value: "", ...attrs });
    const select = (name, options) =>
      h(
        "select",
        { name },
        options.map((o) => h("option", { value: o }, o)),
      );
    const type = select("destination.type", ["webhook", "nats", "mqtt"]);
    const target = text("destination.target", "https://example.com/hook");
    const secret = text("destination.secret", "generated when empty", { type: "password", autocomplete: "off" });
    const secretField = field("destination.secret", "webhook secret (≥ 16 characters)", secret);
    const placeholders = { webhook: "https://example.com/hook", nats: "routes.v1.<tenant>.<name> when empty" };
    type.addEventListener("change", () => {
      target.placeholder = placeholders[type.value] ?? "routes/v1/<tenant>/<name> when empty";
      secretField.hidden = type.value !== "webhook";
    });
    const formError = h("p", { class: "error", id: "route-form-error" });
    const form = h(
      "form",
      { class: "card rule-form", id: "route-form" },
      h("h3", {}, "New route"),
      h(
        "div",
        { class: "form-grid" },
        field("name", "name", text("name", "a-z 0-9 _ -")),
        field("state", "state", select("state", ["active", "paused"])),
        field("filter.devices", "devices (comma-separated, or a pattern with * ?; empty = all)", text("devices", "")),
        field("filter.metrics", "metrics (comma-separated; empty = all)", text("metrics", "e.g. speed")),
        field("filter.condition", "condition", text("condition", "e.g. speed > 80")),
        field("destination.type", "destination", type),
        field("destination.target", "URL, subject or topic", target),
        secretField,
      ),
      formError,
      h(
        "div",
        { class: "buttons" },
        h("button", { type: "submit", id: "save-route" }, "Create"),
        h("button", { type: "button", class: "link", onclick: () => formBox.replaceChildren() }, "Cancel"),
      ),
    );
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      clearFieldErrors(form, formError);
      try {
        const created = await api(
          "POST",
          "/api/v1/routes",
          createBody((n) => form.elements.namedItem(n).value),
        );
        formBox.replaceChildren();
        secretBox.replaceChildren(
          created.secret
            ? h(
                "p",
                { class: "card" },
                "Signing secret of ",
                h("strong", {}, created.name),
                " (shown only now; verify X-Telemetry-Signature with it): ",
                h("code", { class: "secret" }, created.secret),
              )
            : "",
        );
        await refresh();
      } catch (err) {
        showFieldErrors(form, formError, err, targetPath);
      }
    });
    formBox.replaceChildren(form);
    form.elements.namedItem("name").focus();
  }

  return every(5000, refresh);
}

/** destination.url/subject/topic -> the target field; filter.device_pattern -> the devices field. */
const targetPath = (path) =>
  /^destination\.(url|subject|topic)$/.test(path)
    ? "destination.target"
    : path.replace(/^filter\.device_pattern/, "filter.devices");

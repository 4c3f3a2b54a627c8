// A device's keys on its page: the list (prefix, name, created, last used, revoked), a new key
// (its secret shown once, in this card only, until the page is left) and revoking one. Loaded
// when the page opens and after each change, not on the page's 5 s refresh.
import { ApiError, api, h } from "./lib.js";

export function mountDeviceKeys(card, id) {
  const path = `/api/v1/devices/${encodeURIComponent(id)}/keys`;
  const name = h("input", { id: "device-key-name", placeholder: "what the key is for", value: "" });
  const secret = h("div", { id: "device-key-secret" });
  const list = h("div", { id: "device-key-list" });
  const problem = h("p", { class: "error", id: "device-key-error" });
  const create = h("button", { type: "button", id: "create-device-key", onclick: () => run(createKey) }, "New key");
  card.replaceChildren(
    h("h3", {}, "Device keys"),
    h("p", { class: "muted small" }, "A device key writes only this device's readings, over HTTP and MQTT."),
    h("div", { class: "toolbar" }, name, create),
    secret,
    problem,
    list,
  );

  async function run(fn) {
    problem.textContent = "";
    try {
      await fn();
    } catch (err) {
      problem.textContent = err instanceof ApiError ? err.message : String(err);
    }
  }

  async function createKey() {
    const body = name.value.trim() ? { name: name.value.trim() } : {};
    const created = await api("POST", path, body);
    name.value = "";
    secret.replaceChildren(
      h(
        "p",
        {},
        "Key for ",
        h("strong", {}, id),
        " (shown only now; MQTT username ",
        h("code", {}, created.prefix),
        "): ",
        h("code", { class: "secret" }, created.key),
      ),
    );
    await load();
  }

  async function revoke(key) {
    await api("DELETE", `${path}/${encodeURIComponent(key.id)}`);
    await load();
  }

  async function load() {
    const { keys } = await api("GET", path);
    list.replaceChildren(
      keys.length
        ? h(
            "table",
            { class: "device-keys" },
            h(
              "thead",
              {},
              h(
                "tr",
                {},
                ["prefix", "name", "created", "last used", "status", ""].map((t) => h("th", {}, t)),
              ),
            ),
            h(
              "tbody",
              {},
              keys.map((k) =>
                h(
                  "tr",
                  { "data-key": k.prefix },
                  h("td", {}, h("code", {}, k.prefix)),
                  h("td", {}, k.name),
                  h("td", {}, k.created_at),
                  h("td", {}, k.last_used_at ?? "never"),
                  h("td", { class: "status" }, k.revoked_at ? `revoked ${k.revoked_at}` : "active"),
                  h(
                    "td",
                    { class: "actions" },
                    k.revoked_at
                      ? ""
                      : h("button", { class: "danger revoke", onclick: () => run(() => revoke(k)) }, "Revoke"),
                  ),
                ),
              ),
            ),
          )
        : h("p", { class: "muted", id: "no-device-keys" }, "no keys: this device writes with a tenant key, if any"),
    );
  }

  run(load);
}

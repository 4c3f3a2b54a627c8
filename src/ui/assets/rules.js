// Rules: list, create, edit, enable/disable, delete. Validation is the server's (the same zod
// schema as the API); its errors are shown next to the field their path names.
import { geofenceEditor } from "./geofence-editor.js";
import { actions, api, clearFieldErrors, every, field, h, showFieldErrors } from "./lib.js";

const CONDITION_FIELDS = {
  above_threshold: [
    ["threshold", "number"],
    ["clear", "number"],
  ],
  below_threshold: [
    ["threshold", "number"],
    ["clear", "number"],
  ],
  deviation_from_mean: [
    ["k", "number"],
    ["window_minutes", "number"],
    ["clear_k", "number"],
  ],
  rate_of_change: [
    ["limit_per_minute", "number"],
    ["direction", ["either", "up", "down"]],
    ["clear_per_minute", "number"],
  ],
  no_data: [["minutes", "number"]],
  geofence: [
    ["on", ["enter", "exit", "both"]],
    ["circle.lat", "number"],
    ["circle.lon", "number"],
    ["circle.radius_m", "number"],
    ["polygon", "json"],
  ],
};

const describe = (c) => {
  switch (c.type) {
    case "above_threshold":
      return `> ${c.threshold}${c.clear !== undefined ? ` (clears < ${c.clear})` : ""}`;
    case "below_threshold":
      return `< ${c.threshold}${c.clear !== undefined ? ` (clears > ${c.clear})` : ""}`;
    case "deviation_from_mean":
      return `|x − mean| > ${c.k}σ over ${c.window_minutes} min`;
    case "rate_of_change":
      return `${c.direction} faster than ${c.limit_per_minute}/min`;
    case "no_data":
      return `silent ${c.minutes} min`;
    case "geofence":
      return `geofence ${c.on} ${c.circle ? `circle r=${c.circle.radius_m} m` : `polygon of ${c.polygon?.length} points`}`;
    default:
      return c.type;
  }
};

/** A number input's value as the API gets it: empty -> omitted, a number, or the raw text (so the server names the field). */
const numberOf = (text) => (text.trim() === "" ? undefined : Number.isFinite(Number(text)) ? Number(text) : text);

export function mountRules(view) {
  const list = h("div", { class: "card", id: "rule-table" });
  const formBox = h("div", { id: "rule-form-box" });
  const message = h("p", { class: "error", id: "rule-error" });
  view.append(
    h(
      "div",
      { class: "toolbar" },
      h("h2", {}, "Rules"),
      h("span", { class: "spacer" }),
      h("button", { id: "new-rule", onclick: () => openForm(null) }, "New rule"),
    ),
    message,
    formBox,
    list,
  );

  const act = actions(message, () => refresh());

  async function refresh() {
    const { rules } = await api("GET", "/api/v1/rules");
    list.replaceChildren(
      rules.length
        ? h(
            "table",
            { class: "rules" },
            h(
              "thead",
              {},
              h(
                "tr",
                {},
                ["Name", "Metric", "Condition", "Severity", "Devices", "Enabled", ""].map((c) => h("th", {}, c)),
              ),
            ),
            h(
              "tbody",
              {},
              rules.map((r) =>
                h(
                  "tr",
                  { "data-rule": r.id, class: r.enabled ? "" : "disabled" },
                  h("td", {}, r.name),
                  h("td", {}, r.metric ?? "—"),
                  h("td", {}, describe(r.condition)),
                  h("td", {}, h("span", { class: `sev ${r.severity}` }, r.severity)),
                  h("td", {}, r.devices ? r.devices.join(", ") : "all"),
                  h("td", {}, r.enabled ? "yes" : "no"),
                  h(
                    "td",
                    { class: "actions" },
                    h("button", { class: "edit", onclick: () => openForm(r) }, "Edit"),
                    h(
                      "button",
                      {
                        class: "toggle",
                        onclick: act(() => api("POST", `/api/v1/rules/${r.id}/${r.enabled ? "disable" : "enable"}`)),
                      },
                      r.enabled ? "Disable" : "Enable",
                    ),
                    h(
                      "button",
                      {
                        class: "delete danger",
                        onclick: act(async () => {
                          if (confirm(`Delete rule "${r.name}"?`)) await api("DELETE", `/api/v1/rules/${r.id}`);
                        }),
                      },
                      "Delete",
                    ),
                  ),
                ),
              ),
            ),
          )
        : h("p", { class: "muted" }, "No rules yet."),
    );
  }

  function openForm(rule) {
    const c = rule?.condition ?? { type: "above_threshold" };
    const text = (name, value, attrs = {}) => h("input", { name, value: value ?? "", ...attrs });
    const selectOf = (name, options, value) =>
      h(
        "select",
        { name },
        options.map((o) => h("option", { value: o, selected: o === value }, o)),
      );
    const condBox = h("div", { class: "condition-fields" });
    const typeSelect = selectOf("condition.type", Object.keys(CONDITION_FIELDS), c.type);
    const renderCondition = (type, values) => {
      condBox.replaceChildren(
        ...CONDITION_FIELDS[type].map(([path, kind]) => {
          const current = path.split(".").reduce((o, k) => o?.[k], values);
          const input = Array.isArray(kind)
            ? selectOf(`condition.${path}`, kind, current)
            : kind === "json"
              ? h(
                  "textarea",
                  { name: `condition.${path}`, rows: 2, placeholder: "[[lat, lon], ...]" },
                  current ? JSON.stringify(current) : "",
                )
              : text(`condition.${path}`, current, { inputmode: "decimal" });
          return field(`condition.${path}`, path, input);
        }),
      );
      if (type === "geofence") geofenceEditor(condBox);
    };
    typeSelect.addEventListener("change", () => renderCondition(typeSelect.value, {}));
    renderCondition(c.type, c);
    const formError = h("p", { class: "error", id: "form-error" });
    const form = h(
      "form",
      { class: "card rule-form", id: "rule-form" },
      h("h3", {}, rule ? `Edit rule "${rule.name}"` : "New rule"),
      h(
        "div",
        { class: "form-grid" },
        field("name", "name", text("name", rule?.name, { required: false })),
        field(
          "severity",
          "severity",
          selectOf("severity", ["info", "warning", "critical"], rule?.severity ?? "warning"),
        ),
        field("metric", "metric", text("metric", rule?.metric, { placeholder: "e.g. temp" })),
        field("devices", "devices (comma-separated; empty = all)", text("devices", rule?.devices?.join(", "))),
        field("for_seconds", "for (seconds)", text("for_seconds", rule?.for_seconds ?? 0, { inputmode: "numeric" })),
        field(
          "cooldown_seconds",
          "cooldown (seconds)",
          text("cooldown_seconds", rule?.cooldown_seconds ?? 900, { inputmode: "numeric" }),
        ),
        field(
          "enabled",
          "enabled",
          h("input", { type: "checkbox", name: "enabled", checked: rule ? rule.enabled : true }),
        ),
        field("condition", "condition", typeSelect),
      ),
      condBox,
      formError,
      h(
        "div",
        { class: "buttons" },
        h("button", { type: "submit", id: "save-rule" }, rule ? "Save" : "Create"),
        h("button", { type: "button", class: "link", onclick: () => formBox.replaceChildren() }, "Cancel"),
      ),
    );

    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      clearFieldErrors(form, formError);
      const v = (name) => form.elements.namedItem(name)?.value ?? "";
      const condition = { type: typeSelect.value };
      for (const [path, kind] of CONDITION_FIELDS[typeSelect.value]) {
        let value = v(`condition.${path}`);
        if (kind === "number") value = numberOf(value);
        else if (kind === "json") {
          if (!value.trim()) value = undefined;
          else
            try {
              value = JSON.parse(value);
            } catch {
              value = value.trim();
            }
        }
        if (value === undefined) continue;
        const [a, b] = path.split(".");
        if (b) (condition[a] ??= {})[b] = value;
        else condition[a] = value;
      }
      const devices = v("devices")
        .split(",")
        .map((s) => s.trim())
        .filter(Boolean);
      const body = {
        name: v("name"),
        severity: v("severity"),
        ...(v("metric").trim() ? { metric: v("metric").trim() } : {}),
        ...(devices.length ? { devices } : {}),
        condition,
        for_seconds: numberOf(v("for_seconds")) ?? 0,
        cooldown_seconds: numberOf(v("cooldown_seconds")) ?? 900,
        enabled: form.elements.namedItem("enabled").checked,
      };
      try {
        await (rule ? api("PUT", `/api/v1/rules/${rule.id}`, body) : api("POST", "/api/v1/rules", body));
        formBox.replaceChildren();
        await refresh();
      } catch (err) {
        showFieldErrors(form, formError, err);
      }
    });
    formBox.replaceChildren(form);
    form.elements.namedItem("name").focus();
  }

  return every(5000, refresh);
}

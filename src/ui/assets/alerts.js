// Alerts: open / acknowledged / resolved, newest first, with acknowledge and resolve buttons.
import { ago, api, every, h } from "./lib.js";
import { formatNumber } from "./charts.js";

const TABS = [
  ["open", "Open"],
  ["acknowledged", "Acknowledged"],
  ["resolved", "Resolved"],
  ["open,acknowledged,resolved", "All"],
];

export function mountAlerts(view) {
  let status = "open";
  const tabs = h("div", { class: "tabs" });
  const list = h("div", { class: "card", id: "alert-table" });
  const message = h("p", { class: "error", id: "alert-error" });
  view.append(h("div", { class: "toolbar" }, h("h2", {}, "Alerts"), tabs), message, list);

  const renderTabs = () =>
    tabs.replaceChildren(
      ...TABS.map(([s, label]) =>
        h(
          "button",
          {
            class: `tab${s === status ? " active" : ""}`,
            "data-status": s,
            onclick: () => {
              status = s;
              renderTabs();
              refresh();
            },
          },
          label,
        ),
      ),
    );

  const act = (id, action) => async () => {
    message.textContent = "";
    try {
      await api("POST", `/api/v1/alerts/${id}/${action}`);
    } catch (err) {
      message.textContent = `Could not ${action}: ${err.message}`;
    }
    await refresh();
  };

  async function refresh() {
    const { alerts } = await api("GET", `/api/v1/alerts?status=${status}&limit=200`);
    list.replaceChildren(
      alerts.length
        ? h(
            "table",
            { class: "alerts" },
            h(
              "thead",
              {},
              h(
                "tr",
                {},
                ["Severity", "Status", "Triggered", "Device", "Rule", "Message", "Value", ""].map((c) =>
                  h("th", {}, c),
                ),
              ),
            ),
            h(
              "tbody",
              {},
              alerts.map((a) =>
                h(
                  "tr",
                  { "data-alert": a.id },
                  h("td", {}, h("span", { class: `sev ${a.severity}` }, a.severity)),
                  h("td", {}, h("span", { class: `status ${a.status}` }, a.status)),
                  h("td", { title: a.triggered_at }, ago(Date.parse(a.triggered_at))),
                  h("td", {}, h("a", { href: `#/devices/${encodeURIComponent(a.device_id)}` }, a.device_id)),
                  h("td", {}, a.rule_name),
                  h("td", {}, a.message),
                  h("td", { class: "num" }, a.value === null ? "" : formatNumber(a.value)),
                  h(
                    "td",
                    { class: "actions" },
                    a.status === "open"
                      ? h("button", { class: "ack", onclick: act(a.id, "acknowledge") }, "Acknowledge")
                      : null,
                    a.status !== "resolved"
                      ? h("button", { class: "resolve", onclick: act(a.id, "resolve") }, "Resolve")
                      : null,
                  ),
                ),
              ),
            ),
          )
        : h("p", { class: "muted", id: "no-alerts" }, `No ${status.includes(",") ? "" : `${status} `}alerts.`),
    );
  }
  renderTabs();
  return every(3000, refresh);
}

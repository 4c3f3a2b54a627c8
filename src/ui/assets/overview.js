// Overview: the tenant's counts and the server's charts (ingest and rejected rate, consumer lag,
// writer flush latency), refreshed every 2 s from /api/v1/dashboard/stats; the tenant's message
// routes with their lag, every 10 s from /api/v1/routes.
import { api, every, h } from "./lib.js";
import { formatNumber, lineChart } from "./charts.js";

const card = (label, id) =>
  h("div", { class: "card kpi" }, h("div", { class: "kpi-value", id }, "–"), h("div", { class: "kpi-label" }, label));

export function mountOverview(view) {
  const charts = {
    rate: h("div", { class: "card chart-card", id: "chart-rate" }),
    lag: h("div", { class: "card chart-card", id: "chart-lag" }),
    flush: h("div", { class: "card chart-card", id: "chart-flush" }),
    written: h("div", { class: "card chart-card", id: "chart-written" }),
  };
  view.append(
    h(
      "div",
      { class: "kpis" },
      card("devices", "kpi-devices"),
      card("open alerts", "kpi-alerts"),
      card("rules", "kpi-rules"),
      card("records/s accepted", "kpi-rate"),
    ),
    h("div", { class: "grid2" }, ...Object.values(charts)),
    h("div", { class: "card", id: "routes" }, h("h3", {}, "Message routes"), h("p", { class: "muted" }, "–")),
    h(
      "p",
      { class: "muted small" },
      "Rates are this server process's (all tenants); lag is the JetStream backlog of the writer and evaluator consumers. The last 10 minutes are kept while someone is looking.",
    ),
  );
  const title = (text) => h("h3", {}, text);
  let tick = 0;
  return every(2000, async () => {
    if (tick++ % 5 === 0) await showRoutes(view.querySelector("#routes"));
    const s = await api("GET", "/api/v1/dashboard/stats");
    const p = s.points;
    const last = p.at(-1);
    view.querySelector("#kpi-devices").textContent = formatNumber(s.devices);
    view.querySelector("#kpi-alerts").textContent = formatNumber(s.open_alerts);
    view.querySelector("#kpi-rules").textContent = formatNumber(s.rules);
    view.querySelector("#kpi-rate").textContent = last ? formatNumber(last.ingest_rate) : "–";
    const domain = p.length ? [p[0].t - s.interval_ms, last.t] : undefined;
    const series = (key) => p.map((x) => [x.t, x[key]]);
    charts.rate.replaceChildren(
      title("Ingest (records/s)"),
      lineChart({
        domain,
        yMin: 0,
        series: [
          { name: "accepted", color: "#2563eb", points: series("ingest_rate") },
          { name: "rejected", color: "#dc2626", points: series("rejected_rate") },
        ],
      }),
    );
    charts.lag.replaceChildren(
      title("Consumer lag (messages)"),
      lineChart({
        domain,
        yMin: 0,
        series: [
          { name: "writer", color: "#7c3aed", points: series("writer_lag") },
          { name: "evaluator", color: "#0891b2", points: series("evaluator_lag") },
        ],
      }),
    );
    charts.flush.replaceChildren(
      title("Writer flush latency (ms)"),
      lineChart({
        domain,
        yMin: 0,
        empty: "no flushes in this window",
        series: [
          { name: "mean", color: "#059669", points: series("flush_mean_ms"), dots: true },
          { name: "p95 (bucket bound)", color: "#d97706", points: series("flush_p95_ms"), dots: true },
        ],
      }),
    );
    charts.written.replaceChildren(
      title("Rows written (rows/s)"),
      lineChart({ domain, yMin: 0, series: [{ name: "inserted", color: "#16a34a", points: series("written_rate") }] }),
    );
  });
}

/** The tenant's routes: state, destination, lag (stream messages not yet taken), pending and failed batches. */
async function showRoutes(card) {
  const { routes } = await api("GET", "/api/v1/routes");
  const cell = (text) => h("td", {}, String(text));
  const body = routes.length
    ? h(
        "table",
        { class: "table" },
        h("tr", {}, ...["route", "state", "destination", "lag", "pending", "failed"].map((t) => h("th", {}, t))),
        ...routes.map((r) =>
          h(
            "tr",
            {},
            cell(r.name),
            cell(r.state),
            cell(`${r.destination.type} ${r.destination.url ?? r.destination.subject}`),
            cell(r.lag === null ? "?" : formatNumber(r.lag)),
            cell(r.pending_batches),
            cell(r.failed_batches),
          ),
        ),
      )
    : h(
        "p",
        { class: "muted" },
        "No routes (create one on the Routes page, POST /api/v1/routes or telemetry routes create).",
      );
  card.replaceChildren(h("h3", {}, "Message routes"), body);
}

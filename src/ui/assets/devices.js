// Devices: every device of the tenant on the fleet map and in a sortable, filterable list (one
// page of rows in the DOM at a time; last values fetched only for that page), and a device page
// with its track. Live readings (live.js) move markers; the list polls.
import { ago, api, h } from "./lib.js";
import { formatNumber, lineChart } from "./charts.js";
import { mountDeviceKeys } from "./device-keys.js";
import { liveOrPoll } from "./live.js";
import { fleetMap } from "./map.js";
import { trackView } from "./track.js";

const PAGE = 100;

export function mountDevices(view) {
  const state = { rows: [], sort: "last_seen", dir: -1, filter: "", page: 0, latest: {}, truncated: false };
  const mapTitle = h("h3", {});
  const mapEl = h("div", { id: "fleet-map" });
  const mapBox = h(
    "div",
    { class: "card", id: "map" },
    mapTitle,
    h(
      "p",
      { class: "muted small legend" },
      h("span", { class: "dot fresh" }, "●"),
      " reported in the last 5 min  ",
      h("span", { class: "dot recent" }, "●"),
      " in the last hour  ",
      h("span", { class: "dot stale" }, "●"),
      " older — numbers are clusters; click a device to open it",
    ),
    mapEl,
  );
  const fleet = fleetMap(mapEl);
  const tableBox = h("div", { class: "card", id: "device-list" });
  const filter = h("input", {
    type: "search",
    placeholder: "filter by device id",
    id: "device-filter",
    oninput: () => {
      state.filter = filter.value.trim();
      state.page = 0;
      render();
    },
  });
  view.append(
    h("div", { class: "toolbar" }, h("h2", {}, "Devices"), h("span", { class: "spacer" }), filter),
    mapBox,
    tableBox,
  );

  const visible = () => {
    const f = state.filter.toLowerCase();
    const rows = f ? state.rows.filter((r) => r[0].toLowerCase().includes(f)) : state.rows.slice();
    const col = { device_id: 0, last_seen: 1, lat: 2, lon: 3 }[state.sort];
    rows.sort((a, b) =>
      a[col] === b[col] ? 0 : a[col] === null ? 1 : b[col] === null ? -1 : a[col] < b[col] ? -state.dir : state.dir,
    );
    return rows;
  };

  const header = (label, key) =>
    h(
      "th",
      {
        class: `sortable${state.sort === key ? " sorted" : ""}`,
        "data-sort": key,
        onclick: () => {
          state.dir = state.sort === key ? -state.dir : key === "device_id" ? 1 : -1;
          state.sort = key;
          render();
        },
      },
      label,
      state.sort === key ? (state.dir > 0 ? " ▲" : " ▼") : "",
    );

  function render() {
    const rows = visible();
    const pages = Math.max(1, Math.ceil(rows.length / PAGE));
    state.page = Math.min(state.page, pages - 1);
    const page = rows.slice(state.page * PAGE, (state.page + 1) * PAGE);
    const withPos = state.rows.filter((r) => r[2] !== null).length;
    mapTitle.textContent = `Positions (${withPos} of ${state.rows.length} devices)`;
    const lastValue = (id) => {
      const l = state.latest[id];
      if (!l) return "";
      return Object.entries(l.metrics)
        .slice(0, 4)
        .map(([k, v]) => `${k} ${formatNumber(v)}`)
        .join(" · ");
    };
    tableBox.replaceChildren(
      h(
        "table",
        { class: "devices" },
        h(
          "thead",
          {},
          h(
            "tr",
            {},
            header("Device", "device_id"),
            header("Last seen", "last_seen"),
            h("th", {}, "Last value"),
            header("Lat", "lat"),
            header("Lon", "lon"),
          ),
        ),
        h(
          "tbody",
          {},
          page.map((r) =>
            h(
              "tr",
              { "data-device": r[0] },
              h("td", {}, h("a", { href: `#/devices/${encodeURIComponent(r[0])}` }, r[0])),
              h("td", { title: new Date(r[1]).toISOString() }, ago(r[1])),
              h("td", { class: "last-value" }, lastValue(r[0])),
              h("td", { class: "num" }, r[2] === null ? "" : r[2].toFixed(5)),
              h("td", { class: "num" }, r[3] === null ? "" : r[3].toFixed(5)),
            ),
          ),
        ),
      ),
      h(
        "div",
        { class: "pager" },
        h(
          "button",
          {
            disabled: state.page === 0,
            onclick: () => {
              state.page--;
              render();
              refreshLatest();
            },
          },
          "‹ prev",
        ),
        h(
          "span",
          {},
          `${rows.length ? state.page * PAGE + 1 : 0}–${Math.min(rows.length, (state.page + 1) * PAGE)} of ${rows.length}${state.truncated ? " (truncated)" : ""}`,
        ),
        h(
          "button",
          {
            disabled: state.page >= pages - 1,
            onclick: () => {
              state.page++;
              render();
              refreshLatest();
            },
          },
          "next ›",
        ),
      ),
    );
  }

  async function refreshLatest() {
    const ids = visible()
      .slice(state.page * PAGE, (state.page + 1) * PAGE)
      .map((r) => r[0]);
    if (!ids.length) return;
    const { latest } = await api("GET", `/api/v1/dashboard/latest?devices=${ids.map(encodeURIComponent).join(",")}`);
    Object.assign(state.latest, latest);
    render();
  }

  let fencesAt = 0;
  let known = new Set();
  async function poll() {
    const d = await api("GET", "/api/v1/dashboard/devices");
    state.rows = d.rows;
    state.truncated = d.truncated;
    known = new Set(d.rows.map((r) => r[0]));
    render();
    await fleet.update(d.rows);
    if (Date.now() - fencesAt > 30_000) {
      fencesAt = Date.now();
      await fleet.fences();
    }
    await refreshLatest();
  }
  // Live: a reading moves its marker; a new device or a geofence alert loads the page's data again.
  let soon = null;
  const pollSoon = () => {
    soon ??= setTimeout(() => {
      soon = null;
      poll().catch(() => {});
    }, 1000);
  };
  const stop = liveOrPoll({
    onReading: (r) => {
      fleet.move(r);
      if (!known.has(r.device_id) && !state.truncated) pollSoon();
    },
    onAlert: (e) => {
      if (e.alert?.details?.event === undefined) return;
      fencesAt = 0;
      pollSoon();
    },
    poll,
  });
  return () => {
    stop();
    clearTimeout(soon);
    fleet.destroy();
  };
}

const RANGES = { "1h": 3_600_000, "6h": 6 * 3_600_000, "24h": 86_400_000, "7d": 7 * 86_400_000 };
const BUCKET_FOR = { "1h": "1m", "6h": "5m", "24h": "15m", "7d": "1h" };
const SEVERITY_COLOR = { critical: "#dc2626", warning: "#d97706", info: "#2563eb" };

export function mountDevice(view, id) {
  const state = { metric: null, range: "1h", k: 2 };
  const info = h("div", { class: "card", id: "device-info" });
  const controls = h("div", { class: "toolbar" });
  const chart = h("div", { class: "card chart-card", id: "device-chart" });
  const trackBox = h("div", { class: "card", id: "device-track" });
  const track = trackView(trackBox, id);
  const alerts = h("div", { class: "card", id: "device-alerts" });
  const keys = h("div", { class: "card", id: "device-keys" });
  view.append(
    h("div", { class: "toolbar" }, h("a", { href: "#/devices" }, "‹ all devices"), h("h2", {}, id)),
    info,
    controls,
    trackBox,
    chart,
    alerts,
    keys,
  );
  mountDeviceKeys(keys, id);
  let metrics = [];

  const select = (options, value, onchange, attrs = {}) =>
    h(
      "select",
      { ...attrs, onchange: (e) => onchange(e.target.value) },
      options.map((o) => h("option", { value: o, selected: o === value }, o)),
    );

  const renderControls = () =>
    controls.replaceChildren(
      h(
        "label",
        {},
        "metric ",
        select(
          metrics,
          state.metric,
          (v) => {
            state.metric = v;
            refresh();
          },
          { id: "metric-select" },
        ),
      ),
      h(
        "label",
        {},
        "range ",
        select(
          Object.keys(RANGES),
          state.range,
          (v) => {
            state.range = v;
            refresh();
          },
          { id: "range-select" },
        ),
      ),
      h(
        "label",
        {},
        "band ±k·σ, k = ",
        select(
          ["1", "2", "3"],
          String(state.k),
          (v) => {
            state.k = Number(v);
            refresh();
          },
          { id: "k-select" },
        ),
      ),
    );

  async function refresh() {
    const device = await api("GET", `/api/v1/devices/${encodeURIComponent(id)}`);
    const { latest } = await api("GET", `/api/v1/dashboard/latest?devices=${encodeURIComponent(id)}`);
    const last = latest[id];
    const names = last ? Object.keys(last.metrics).sort() : [];
    if (names.join() !== metrics.join()) {
      metrics = names;
      if (!metrics.includes(state.metric)) state.metric = metrics[0] ?? null;
      renderControls();
    }
    info.replaceChildren(
      h(
        "dl",
        { class: "facts" },
        h("dt", {}, "last seen"),
        h("dd", {}, `${ago(Date.parse(device.last_seen))} (${device.last_seen})`),
        h("dt", {}, "first seen"),
        h("dd", {}, device.first_seen),
        h("dt", {}, "position"),
        h(
          "dd",
          {},
          device.location ? `${device.location.lat.toFixed(6)}, ${device.location.lon.toFixed(6)}` : "none reported",
        ),
        h("dt", {}, "last values"),
        h(
          "dd",
          { id: "device-last-values" },
          last
            ? Object.entries(last.metrics)
                .map(([k, v]) => `${k} = ${formatNumber(v)}`)
                .join(", ")
            : "none",
        ),
      ),
    );
    const to = Date.now();
    const from = to - RANGES[state.range];
    const deviceAlerts = (await api("GET", `/api/v1/alerts?device=${encodeURIComponent(id)}&since=${from}&limit=200`))
      .alerts;
    await track.load(from, to, deviceAlerts);
    if (state.metric) {
      const m = encodeURIComponent(state.metric);
      const [{ readings }, { buckets }] = await Promise.all([
        api("GET", `/api/v1/devices/${encodeURIComponent(id)}/readings?metric=${m}&from=${from}&order=asc&limit=5000`),
        api(
          "GET",
          `/api/v1/devices/${encodeURIComponent(id)}/metrics/${m}?bucket=${BUCKET_FOR[state.range]}&from=${from}&to=${to}`,
        ),
      ]);
      const half = { "1m": 30_000, "5m": 150_000, "15m": 450_000, "1h": 1_800_000 }[BUCKET_FOR[state.range]];
      chart.replaceChildren(
        h(
          "h3",
          {},
          `${state.metric}: readings, rollup mean ± ${state.k}·stddev (${BUCKET_FOR[state.range]} buckets) and alerts`,
        ),
        lineChart({
          domain: [from, to],
          width: 1200,
          height: 360,
          series: [
            {
              name: state.metric,
              color: "#2563eb",
              points: readings.map((r) => [Date.parse(r.ts), r.metrics[state.metric]]),
              dots: readings.length < 120,
            },
            {
              name: "rollup mean",
              color: "#64748b",
              dashed: true,
              points: buckets.map((b) => [Date.parse(b.start) + half, b.mean]),
            },
          ],
          band: {
            name: `mean ± ${state.k}σ`,
            color: "#94a3b8",
            points: buckets.map((b) => [
              Date.parse(b.start) + half,
              b.mean - state.k * b.stddev,
              b.mean + state.k * b.stddev,
            ]),
          },
          markers: deviceAlerts
            .filter((a) => !a.metric || a.metric === state.metric)
            .map((a) => ({
              t: Date.parse(a.triggered_at),
              color: SEVERITY_COLOR[a.severity] ?? "#334155",
              label: `${a.rule_name}: ${a.message}`,
            })),
          empty: "no readings of this metric in the range",
        }),
      );
      const svgEl = chart.querySelector("svg.chart");
      if (svgEl) track.attachChart(svgEl);
    } else {
      chart.replaceChildren(h("p", { class: "muted" }, "This device has reported no metrics."));
    }
    alerts.replaceChildren(
      h("h3", {}, `Alerts in the range (${deviceAlerts.length})`),
      deviceAlerts.length
        ? h(
            "ul",
            { class: "alert-list" },
            deviceAlerts.map((a) =>
              h(
                "li",
                {},
                h("span", { class: `sev ${a.severity}` }, a.severity),
                ` ${a.triggered_at} — ${a.rule_name}: ${a.message} `,
                h("span", { class: `status ${a.status}` }, a.status),
              ),
            ),
          )
        : h("p", { class: "muted" }, "none"),
    );
  }
  renderControls();
  // A live reading of this device refreshes the page (at most once a second).
  let pending = null;
  const soon = () => {
    pending ??= setTimeout(() => {
      pending = null;
      refresh().catch(() => {});
    }, 1000);
  };
  const stop = liveOrPoll({ device: id, onReading: soon, onAlert: soon, poll: refresh });
  return () => {
    stop();
    clearTimeout(pending);
    track.destroy();
  };
}

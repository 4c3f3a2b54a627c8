// A device's track on the map: the positions of the chosen range (downsampled by the server,
// GET /api/v1/devices/:id/track), tied to the readings chart (hovering one shows the moment on the
// other), played back with a slider, with the device's geofence alerts where they happened.
import { api, h } from "./lib.js";
import { baseMap, geofenceLayer } from "./map.js";

const MAX_POINTS = 2000;

/** Index of the point nearest in time to t (points sorted by time). */
export function nearestByTime(points, t) {
  let lo = 0;
  let hi = points.length - 1;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (points[mid][0] < t) lo = mid + 1;
    else hi = mid;
  }
  return lo > 0 && t - points[lo - 1][0] < points[lo][0] - t ? lo - 1 : lo;
}

/** The chart's time at a mouse event, from the scale lineChart records on its svg. */
const timeAt = (svgEl, ev) => {
  const s = svgEl.timeScale;
  const box = svgEl.getBoundingClientRect();
  const px = ((ev.clientX - box.left) / box.width) * s.W;
  return s.t0 + ((px - s.L) / (s.W - s.L - s.R)) * s.span;
};

export function trackView(box, id) {
  const mapEl = h("div", { id: "track-map" });
  const info = h("span", { id: "track-info", class: "muted small" });
  const slider = h("input", { type: "range", id: "track-slider", min: 0, max: 0, value: 0, "aria-label": "time" });
  const clock = h("span", { id: "track-time", class: "small" });
  const play = h("button", { id: "track-play", type: "button" }, "▶ play");
  box.append(h("h3", {}, "Track ", info), mapEl, h("div", { class: "toolbar track-controls" }, play, slider, clock));
  const state = { points: [], chart: null, timer: null, key: "" };
  const ready = baseMap(mapEl).then((map) => {
    const line = L.polyline([], { color: "#2563eb", weight: 3, className: "track-line" }).addTo(map);
    const cursor = L.circleMarker([0, 0], { radius: 7, color: "#dc2626", fillOpacity: 0.9, className: "track-cursor" });
    const end = L.circleMarker([0, 0], { radius: 5, color: "#0f172a", fillColor: "#fff", fillOpacity: 1 });
    line.on("mousemove", (ev) => show(nearestByPlace(ev.latlng), "map"));
    return { map, line, cursor, end, fences: null };
  });

  const nearestByPlace = (ll) => {
    let best = 0;
    let bestD = Infinity;
    for (let i = 0; i < state.points.length; i++) {
      const p = state.points[i];
      const d = (p[1] - ll.lat) ** 2 + (p[2] - ll.lng) ** 2;
      if (d < bestD) [best, bestD] = [i, d];
    }
    return best;
  };

  /** Shows point i on the map, on the slider and (unless the chart asked) on the chart. */
  async function show(i, from) {
    const s = await ready;
    const p = state.points[i];
    if (!p) return;
    s.cursor.setLatLng([p[1], p[2]]).addTo(s.map);
    slider.value = String(i);
    clock.textContent = new Date(p[0]).toISOString().replace("T", " ").slice(0, 19);
    mapEl.dataset.cursorT = String(p[0]);
    if (from !== "chart" && state.chart) chartCursor(state.chart, p[0]);
  }

  slider.addEventListener("input", () => show(Number(slider.value), "slider"));
  play.addEventListener("click", () => {
    if (state.timer) return stop();
    if (state.points.length < 2) return;
    let i = Number(slider.value) >= state.points.length - 1 ? 0 : Number(slider.value);
    const step = Math.max(1, Math.round(state.points.length / 300)); // about 15 s
    play.textContent = "❚❚ pause";
    state.timer = setInterval(() => {
      i = Math.min(state.points.length - 1, i + step);
      show(i, "play");
      if (i >= state.points.length - 1) stop();
    }, 50);
  });
  const stop = () => {
    clearInterval(state.timer);
    state.timer = null;
    play.textContent = "▶ play";
  };

  /** Loads the range's track (again only when the range or the data changed). */
  async function load(from, to, alerts) {
    const s = await ready;
    const track = await api(
      "GET",
      `/api/v1/devices/${encodeURIComponent(id)}/track?from=${from}&to=${to}&max_points=${MAX_POINTS}`,
    );
    const fenceAlerts = alerts.filter((a) => a.details && typeof a.details.lat === "number");
    const key = `${from}|${track.total}|${track.points.at(-1)?.[0]}|${fenceAlerts.length}`;
    if (key.split("|").slice(1).join() === state.key.split("|").slice(1).join()) return;
    const rangeChanged = key.split("|")[0] !== state.key.split("|")[0];
    state.key = key;
    state.points = track.points;
    info.textContent = track.points.length
      ? `${track.points.length} points${track.downsampled ? ` (downsampled from ${track.total})` : ""}`
      : "no positions in the range";
    mapEl.dataset.points = String(track.points.length);
    s.line.setLatLngs(track.points.map((p) => [p[1], p[2]]));
    slider.max = String(Math.max(0, track.points.length - 1));
    const last = track.points.at(-1);
    if (last) s.end.setLatLng([last[1], last[2]]).addTo(s.map);
    s.fences?.remove();
    s.fences = geofenceLayer([], fenceAlerts).addTo(s.map);
    if (track.points.length && rangeChanged) s.map.fitBounds(s.line.getBounds().pad(0.15), { maxZoom: 16 });
  }

  const destroy = () => {
    stop();
    ready.then((s) => s.map.remove());
  };

  /** Ties a freshly drawn chart to the track. */
  function attachChart(svgEl) {
    state.chart = svgEl;
    svgEl.addEventListener("mousemove", (ev) => {
      if (!state.points.length) return;
      const t = timeAt(svgEl, ev);
      chartCursor(svgEl, t);
      show(nearestByTime(state.points, t), "chart");
    });
  }

  return { load, attachChart, stop, ready, destroy };
}

/** A vertical line on the chart at time t. */
function chartCursor(svgEl, t) {
  const s = svgEl.timeScale;
  const x = s.L + ((t - s.t0) / s.span) * (s.W - s.L - s.R);
  let line = svgEl.querySelector("line.cursor");
  if (!line) {
    line = document.createElementNS("http://www.w3.org/2000/svg", "line");
    line.setAttribute("class", "cursor");
    line.setAttribute("y1", "0");
    line.setAttribute("y2", String(s.H));
    svgEl.append(line);
  }
  line.setAttribute("x1", x.toFixed(1));
  line.setAttribute("x2", x.toFixed(1));
  line.dataset.t = String(Math.round(t));
}

// The map: Leaflet (window.L, loaded by index.html) over the configured tile server
// (GET /ui/map.json, settings TELEMETRY_MAP_*), with a plain background and a note when tiles
// cannot load. The fleet map: every device as a marker coloured by freshness, clustered
// (leaflet.markercluster) so 10,000 devices stay smooth, updated in place; a click opens the device;
// geofence rules drawn, and where geofence alerts happened.
import { api, h } from "./lib.js";

const FRESH_MS = 5 * 60_000;
const RECENT_MS = 60 * 60_000;

let settings;
export const mapSettings = () => (settings ??= fetch("/ui/map.json").then((r) => r.json()));

const escapeHtml = (s) =>
  String(s).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);

/** A Leaflet map in `el` (its `leafletMap` property holds it, for tests and the console). */
export async function baseMap(el, { center = [30, 0], zoom = 2 } = {}) {
  const s = await mapSettings();
  el.classList.add("leaflet-map");
  const map = L.map(el, { worldCopyJump: true, maxZoom: s.max_zoom }).setView(center, zoom);
  map.attributionControl.setPrefix(false);
  // The attribution setting is text: escaped here (Leaflet shows attributions as HTML).
  const text = escapeHtml(s.attribution);
  const attribution = s.attribution_url
    ? `<a href="${escapeHtml(s.attribution_url)}" target="_blank" rel="noopener">${text}</a>`
    : text;
  const tiles = L.tileLayer(s.tile_url, { maxZoom: s.max_zoom, attribution });
  const note = h(
    "div",
    { class: "map-note", role: "status", hidden: true },
    "Map tiles are unreachable (",
    h("code", {}, s.tile_url),
    "): positions are shown on a plain background.",
  );
  el.append(note);
  let loaded = 0;
  tiles.on("tileload", () => {
    loaded++;
    note.hidden = true;
    el.classList.remove("tiles-down");
  });
  tiles.on("tileerror", () => {
    if (loaded > 0) return;
    note.hidden = false;
    el.classList.add("tiles-down");
  });
  tiles.addTo(map);
  el.leafletMap = map;
  return map;
}

export const freshness = (seenMs, now = Date.now()) =>
  now - seenMs < FRESH_MS ? "fresh" : now - seenMs < RECENT_MS ? "recent" : "stale";

const icons = {};
const iconFor = (cls) =>
  (icons[cls] ??= L.divIcon({ className: `device-marker ${cls}`, iconSize: [14, 14], iconAnchor: [7, 7] }));

/** A cluster coloured like most of its devices (fresh, recent or stale), with their count. */
function clusterIcon(c) {
  const counts = { fresh: 0, recent: 0, stale: 0 };
  for (const m of c.getAllChildMarkers()) counts[m.options.freshness]++;
  const cls = Object.entries(counts).sort((a, b) => b[1] - a[1])[0][0];
  const n = c.getChildCount();
  const size = n < 10 ? "small" : n < 100 ? "medium" : "large";
  const title = `${n} devices: ${counts.fresh} fresh, ${counts.recent} in the last hour, ${counts.stale} older`;
  return L.divIcon({
    html: `<div title="${title}"><span>${n}</span></div>`,
    className: `marker-cluster marker-cluster-${size} cluster-${cls}`,
    iconSize: L.point(40, 40),
  });
}

/** Geofence rules' shapes and geofence alerts' places on a map; returns the layer group. */
export function geofenceLayer(rules, alerts = []) {
  const group = L.featureGroup();
  for (const r of rules) {
    const c = r.condition;
    if (c.type !== "geofence") continue;
    const style = { color: r.enabled ? "#7c3aed" : "#94a3b8", weight: 2, fillOpacity: 0.08, className: "geofence" };
    const shape = c.circle
      ? L.circle([c.circle.lat, c.circle.lon], { ...style, radius: c.circle.radius_m })
      : L.polygon(c.polygon, style);
    shape.bindTooltip(`${r.name} (geofence, on ${c.on})`);
    group.addLayer(shape);
  }
  for (const a of alerts) {
    const d = a.details;
    if (!d || typeof d.lat !== "number" || typeof d.lon !== "number") continue;
    const m = L.circleMarker([d.lat, d.lon], {
      radius: 7,
      color: d.event === "enter" ? "#7c3aed" : "#0f172a",
      fillColor: "#fde047",
      fillOpacity: 0.9,
      weight: 2,
      className: `geofence-alert ${d.event ?? ""}`,
    });
    m.bindTooltip(`${a.device_id}: ${a.rule_name} — ${a.message} at ${a.triggered_at}`);
    group.addLayer(m);
  }
  return group;
}

/** The fleet map in `el`; `update(rows)` takes /api/v1/dashboard/devices rows, `move(reading)` one live reading. */
export function fleetMap(el) {
  const markers = new Map(); // device id -> { marker, cls, seen }
  const ready = baseMap(el).then((map) => {
    const cluster = L.markerClusterGroup({
      chunkedLoading: true,
      showCoverageOnHover: false,
      maxClusterRadius: 60,
      iconCreateFunction: clusterIcon,
    });
    map.addLayer(cluster);
    return { map, cluster, fenced: null, fitted: false };
  });

  const marker = (id, lat, lon, cls) => {
    const m = L.marker([lat, lon], { icon: iconFor(cls), title: id, keyboard: false, freshness: cls });
    m.on("add", () => m.getElement()?.setAttribute("data-device", id));
    m.on("click", () => (location.hash = `#/devices/${encodeURIComponent(id)}`));
    return m;
  };

  const recolour = (known, cls) => {
    known.cls = cls;
    known.marker.options.freshness = cls;
    known.marker.setIcon(iconFor(cls));
    return known.marker;
  };

  async function update(rows) {
    const s = await ready;
    const now = Date.now();
    const added = [];
    const recoloured = [];
    const seenIds = new Set();
    for (const [id, seen, lat, lon] of rows) {
      if (lat === null || lon === null) continue;
      seenIds.add(id);
      const cls = freshness(seen, now);
      const known = markers.get(id);
      if (!known) {
        const m = marker(id, lat, lon, cls);
        markers.set(id, { marker: m, cls, seen });
        added.push(m);
        continue;
      }
      const at = known.marker.getLatLng();
      if (at.lat !== lat || at.lng !== lon) known.marker.setLatLng([lat, lon]);
      if (known.cls !== cls) recoloured.push(recolour(known, cls));
      known.seen = seen;
    }
    if (recoloured.length) s.cluster.refreshClusters(recoloured);
    const gone = [...markers.keys()].filter((id) => !seenIds.has(id));
    if (gone.length) {
      s.cluster.removeLayers(gone.map((id) => markers.get(id).marker));
      for (const id of gone) markers.delete(id);
    }
    if (added.length) s.cluster.addLayers(added);
    if (!s.fitted && markers.size) {
      s.fitted = true;
      s.map.fitBounds(L.latLngBounds([...markers.values()].map((m) => m.marker.getLatLng())).pad(0.1), {
        maxZoom: 14,
      });
    }
  }

  /** A live reading: moves (or adds) its device's marker without a reload. */
  async function move(reading) {
    if (!reading.location) return;
    const s = await ready;
    const seen = Date.parse(reading.ts);
    const known = markers.get(reading.device_id);
    if (known && seen < known.seen) return;
    const { lat, lon } = reading.location;
    if (!known) {
      const m = marker(reading.device_id, lat, lon, freshness(seen));
      markers.set(reading.device_id, { marker: m, cls: freshness(seen), seen });
      s.cluster.addLayer(m);
      return;
    }
    known.seen = seen;
    known.marker.setLatLng([lat, lon]);
    const cls = freshness(seen);
    if (known.cls !== cls) s.cluster.refreshClusters([recolour(known, cls)]);
  }

  /** Geofence rules and the last day's geofence alerts. */
  async function fences() {
    const s = await ready;
    const since = Date.now() - 86_400_000;
    const [{ rules }, { alerts }] = await Promise.all([
      api("GET", "/api/v1/rules"),
      api("GET", `/api/v1/alerts?since=${since}&limit=500`),
    ]);
    const ids = new Set(rules.filter((r) => r.condition.type === "geofence").map((r) => r.id));
    s.fenced?.remove();
    s.fenced = geofenceLayer(
      rules,
      alerts.filter((a) => ids.has(a.rule_id)),
    ).addTo(s.map);
  }

  return { update, move, fences, ready, destroy: () => ready.then((s) => s.map.remove()) };
}

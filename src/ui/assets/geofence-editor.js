// The rule form's geofence on a map: draw a circle or a polygon (Geoman's toolbar), drag it or
// its vertices to edit; the form's condition.circle.* / condition.polygon fields follow the shape,
// and the rule is saved through the same form (the server validates it as any rule).
import { api, h } from "./lib.js";
import { baseMap } from "./map.js";

const round = (v, digits = 6) => Math.round(v * 10 ** digits) / 10 ** digits;

export function geofenceEditor(condBox) {
  const el = h("div", { id: "geofence-map" });
  condBox.append(
    h(
      "div",
      { class: "geofence-editor" },
      h(
        "p",
        { class: "muted small" },
        "Draw the geofence on the map (circle or polygon, toolbar at the top left); drag it or its corners to change it. The fields above follow the shape.",
      ),
      el,
    ),
  );
  const input = (name) => condBox.querySelector(`[name="condition.${name}"]`);
  const set = (name, value) => {
    const i = input(name);
    if (i) i.value = value;
  };

  baseMap(el).then(async (map) => {
    map.pm.addControls({
      position: "topleft",
      drawMarker: false,
      drawCircleMarker: false,
      drawPolyline: false,
      drawRectangle: false,
      drawText: false,
      cutPolygon: false,
      rotateMode: false,
    });
    let shape = null;
    const write = () => {
      const circle = shape instanceof L.Circle;
      const c = circle ? shape.getLatLng() : null;
      set("circle.lat", circle ? round(c.lat) : "");
      set("circle.lon", circle ? round(c.lng) : "");
      set("circle.radius_m", circle ? Math.round(shape.getRadius()) : "");
      const ring = shape && !circle ? shape.getLatLngs()[0] : null;
      set("polygon", ring ? JSON.stringify(ring.map((p) => [round(p.lat), round(p.lng)])) : "");
    };
    const adopt = (layer) => {
      shape?.remove();
      shape = layer;
      layer.on("pm:edit", write);
      layer.on("pm:remove", () => {
        shape = null;
        write();
      });
      write();
    };
    map.on("pm:create", (e) => adopt(e.layer));

    // The rule's current shape, else the fleet's area.
    const lat = Number(input("circle.lat")?.value);
    const lon = Number(input("circle.lon")?.value);
    const radius = Number(input("circle.radius_m")?.value);
    let polygon = null;
    try {
      polygon = JSON.parse(input("polygon")?.value || "null");
    } catch {}
    let initial = null;
    if (input("circle.lat")?.value && Number.isFinite(lat + lon + radius) && radius > 0)
      initial = L.circle([lat, lon], { radius });
    else if (Array.isArray(polygon) && polygon.length >= 3) initial = L.polygon(polygon);
    map.invalidateSize();
    if (initial) {
      initial.addTo(map);
      adopt(initial);
      map.fitBounds(initial.getBounds().pad(0.5));
      return;
    }
    const { rows } = await api("GET", "/api/v1/dashboard/devices");
    const placed = rows.filter((r) => r[2] !== null).map((r) => [r[2], r[3]]);
    if (placed.length) map.fitBounds(L.latLngBounds(placed).pad(0.1), { maxZoom: 14 });
  });
}

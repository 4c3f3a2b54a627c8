/**
 * The dashboard's and the API docs page's files, embedded as text (in the executable too).
 * The browser files are plain JavaScript without types, hence the expect-error lines.
 */
import docsHtml from "./assets/docs.html" with { type: "text" };
import indexHtml from "./assets/index.html" with { type: "text" };
import style from "./assets/style.css" with { type: "text" };
// @ts-expect-error a browser script imported as text
import alerts from "./assets/alerts.js" with { type: "text" };
// @ts-expect-error a browser script imported as text
import app from "./assets/app.js" with { type: "text" };
// @ts-expect-error a browser script imported as text
import charts from "./assets/charts.js" with { type: "text" };
// @ts-expect-error a browser script imported as text
import deviceKeys from "./assets/device-keys.js" with { type: "text" };
// @ts-expect-error a browser script imported as text
import devices from "./assets/devices.js" with { type: "text" };
// @ts-expect-error a browser script imported as text
import docsJs from "./assets/docs.js" with { type: "text" };
// @ts-expect-error a browser script imported as text
import lib from "./assets/lib.js" with { type: "text" };
// @ts-expect-error a browser script imported as text
import overview from "./assets/overview.js" with { type: "text" };
// @ts-expect-error a browser script imported as text
import messageRoutes from "./assets/message-routes.js" with { type: "text" };
// @ts-expect-error a browser script imported as text
import rules from "./assets/rules.js" with { type: "text" };
// @ts-expect-error a browser script imported as text
import fleetMap from "./assets/map.js" with { type: "text" };
// @ts-expect-error a browser script imported as text
import track from "./assets/track.js" with { type: "text" };
// @ts-expect-error a browser script imported as text
import geofenceEditor from "./assets/geofence-editor.js" with { type: "text" };
// @ts-expect-error a browser script imported as text
import live from "./assets/live.js" with { type: "text" };
// The map's libraries (Leaflet, its marker clusters, Geoman's drawing tools), loaded as classic scripts (window.L).
// @ts-expect-error a browser script imported as text
import leafletJs from "leaflet/dist/leaflet.js" with { type: "text" };
import leafletCss from "leaflet/dist/leaflet.css" with { type: "text" };
// @ts-expect-error a browser script imported as text
import clusterJs from "leaflet.markercluster/dist/leaflet.markercluster.js" with { type: "text" };
import clusterCss from "leaflet.markercluster/dist/MarkerCluster.css" with { type: "text" };
import clusterDefaultCss from "leaflet.markercluster/dist/MarkerCluster.Default.css" with { type: "text" };
// The package's exports map offers only the unminified build (twice the size): the minified one by path.
// @ts-expect-error a browser script imported as text
import geomanJs from "../../node_modules/@geoman-io/leaflet-geoman-free/dist/leaflet-geoman.min.js" with {
  type: "text",
};
import geomanCss from "@geoman-io/leaflet-geoman-free/dist/leaflet-geoman.css" with { type: "text" };
// @ts-expect-error a browser script imported as text
import liveStream from "./assets/stream.js" with { type: "text" };
// @ts-expect-error a browser script imported as text
import swaggerBundle from "swagger-ui-dist/swagger-ui-bundle.js" with { type: "text" };
import swaggerCss from "swagger-ui-dist/swagger-ui.css" with { type: "text" };

export interface Asset {
  body: string;
  type: string;
}

const js = (body: string): Asset => ({ body, type: "text/javascript; charset=utf-8" });
const css = (body: string): Asset => ({ body, type: "text/css; charset=utf-8" });

// bun-types declare *.html imports as HTML bundles; with type "text" they are strings.
export const pages = { index: indexHtml as unknown as string, docs: docsHtml as unknown as string };

export const uiAssets: Record<string, Asset> = {
  "app.js": js(app),
  "lib.js": js(lib),
  "charts.js": js(charts),
  "overview.js": js(overview),
  "devices.js": js(devices),
  "device-keys.js": js(deviceKeys),
  "alerts.js": js(alerts),
  "rules.js": js(rules),
  "message-routes.js": js(messageRoutes),
  "stream.js": js(liveStream),
  "style.css": css(style),
  "map.js": js(fleetMap),
  "track.js": js(track),
  "geofence-editor.js": js(geofenceEditor),
  "live.js": js(live),
  "leaflet.js": js(leafletJs),
  "leaflet.css": css(leafletCss),
  "leaflet.markercluster.js": js(clusterJs),
  "MarkerCluster.css": css(clusterCss),
  "MarkerCluster.Default.css": css(clusterDefaultCss),
  "leaflet-geoman.js": js(geomanJs),
  "leaflet-geoman.css": css(geomanCss),
};

export const docsAssets: Record<string, Asset> = {
  "swagger-ui-bundle.js": js(swaggerBundle),
  "swagger-ui.css": css(swaggerCss),
  "docs.js": js(docsJs),
};

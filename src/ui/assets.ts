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
import rules from "./assets/rules.js" with { type: "text" };
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
  "stream.js": js(liveStream),
  "style.css": css(style),
};

export const docsAssets: Record<string, Asset> = {
  "swagger-ui-bundle.js": js(swaggerBundle),
  "swagger-ui.css": css(swaggerCss),
  "docs.js": js(docsJs),
};

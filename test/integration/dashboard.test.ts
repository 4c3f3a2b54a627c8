/**
 * The dashboard in a real browser: Debian's headless Chromium driven by playwright-core against a
 * running server (real NATS and PostgreSQL). Sign in, see the live charts, see a device appear
 * after ingest (in the list and on the map), its page with readings, rollup band and alert marker, create a rule (with a
 * field error first), see an alert appear after a threshold reading and acknowledge it.
 * Screenshots: test-artifacts/dashboard-*.png (one per test).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import type { Browser, Page } from "playwright-core";
import { apiClient } from "../helpers/api.ts";
import { ARTIFACTS, launchBrowser, openPage, screenshots, UI_TIMEOUT } from "../helpers/browser.ts";
import { freshDatabase, startNats } from "../helpers/services.ts";
import { TEST_KEY, startTestServer, type TestServer } from "../helpers/server.ts";

// The callbacks given to waitForFunction/evaluate run in the page.
declare const document: any, sessionStorage: any, localStorage: any;

let nats: Awaited<ReturnType<typeof startNats>>;
let server: TestServer;
let browser: Browser;
let page: Page;
const pageErrors: string[] = [];

const screenshot = screenshots("dashboard");
const shot = (name: string) => screenshot(page, name);
const api = () => apiClient(server);

/** A fleet around Berlin with positions, reported a few minutes ago (some long ago). */
function fleet(n: number) {
  const now = Date.now();
  return Array.from({ length: n }, (_, i) => ({
    device_id: `bus-${String(i).padStart(3, "0")}`,
    ts: new Date(now - (i % 7 === 0 ? 3_600_000 : 60_000)).toISOString(),
    location: { lat: 52.52 + Math.sin(i * 1.7) * 0.12 + (i % 5) * 0.01, lon: 13.405 + Math.cos(i * 2.3) * 0.2 },
    metrics: { speed: Math.round(20 + 30 * Math.abs(Math.sin(i))), battery: 60 + (i % 40) },
  }));
}

beforeAll(async () => {
  browser = await launchBrowser();
  nats = await startNats();
  server = await startTestServer({ NATS_URL: nats.url, DATABASE_URL: await freshDatabase("dashboard") });
  page = await openPage(browser, pageErrors, { width: 1280, height: 860 });
  await api().ingest(fleet(300));
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await server?.[Symbol.asyncDispose]();
  await nats?.[Symbol.asyncDispose]();
}, 60_000);

describe("dashboard", () => {
  test("a wrong key is refused; the right key signs in and shows the live overview", async () => {
    const route = { name: "dash-route", destination: { type: "nats" }, state: "paused" };
    expect((await api().post("/api/v1/routes", route)).status).toBe(201);
    await page.goto(`${server.url}/`);
    await page.fill("#key", "not-a-key-0123456789");
    await page.click("#signin button[type=submit]");
    await page.waitForSelector("#signin-error:has-text('refused')");
    await page.fill("#key", TEST_KEY);
    await page.click("#signin button[type=submit]");
    await page.waitForSelector("#tenant:has-text('tenant acme')");
    // The key lives in sessionStorage only.
    expect(
      await page.evaluate(() => [sessionStorage.getItem("telemetry.key"), localStorage.length, document.cookie]),
    ).toEqual([TEST_KEY, 0, ""]);

    // Live: keep ingesting until the chart shows a rate and the device count arrives.
    const feeder = setInterval(
      () =>
        void api()
          .ingest(fleet(300).map((r) => ({ ...r, ts: new Date().toISOString() })))
          .catch(() => {}),
      700,
    );
    try {
      await page.waitForFunction(() => document.querySelector("#kpi-devices")?.textContent === "300");
      await page.waitForFunction(() => {
        const d = document.querySelector("#chart-rate path[data-series=accepted]")?.getAttribute("d") ?? "";
        return (d.match(/L/g) ?? []).length >= 3 && Number(document.querySelector("#kpi-rate")?.textContent) > 0;
      });
      await page.waitForFunction(
        () => (document.querySelector("#chart-flush path[data-series=mean]")?.getAttribute("d") ?? "").length > 0,
      );
      // The message routes section: the route, paused, with its lag.
      await page.waitForFunction(() =>
        [...document.querySelectorAll("#routes td")]
          .map((td) => td.textContent)
          .join(" ")
          .startsWith("dash-route paused nats routes.v1.acme.dash-route"),
      );
    } finally {
      clearInterval(feeder);
    }
    await shot("overview");
  }, 120_000);

  test("a device appears in the list and on the plot after ingest, with its last value", async () => {
    await page.click("a[data-nav=devices]");
    await page.waitForSelector("table.devices tbody tr");
    expect(await page.locator("tr[data-device=truck-42]").count()).toBe(0);
    await api().ingest([
      {
        device_id: "truck-42",
        ts: new Date().toISOString(),
        location: { lat: 52.45, lon: 13.3 },
        metrics: { temp: 21.5 },
      },
    ]);
    await page.fill("#device-filter", "");
    // Newest first: it tops the list once the writer has stored it and the page polled.
    const row = page.locator("tr[data-device=truck-42]");
    await row.waitFor();
    await page.waitForFunction(() =>
      document.querySelector("tr[data-device=truck-42] .last-value")?.textContent?.includes("temp 21.5"),
    );
    expect(await page.locator("#map h3").textContent()).toContain("of 301 devices");
    // On the fleet map (test/integration/map.test.ts has the rest): zoomed in, its own fresh marker.
    await page.evaluate(() => document.querySelector("#fleet-map").leafletMap.setView([52.45, 13.3], 17));
    await page.waitForSelector("#fleet-map .device-marker.fresh[data-device=truck-42]");
    // sorting by device id puts bus-000 first
    await page.click("th[data-sort=device_id]");
    await page.waitForFunction(
      () => document.querySelector("table.devices tbody tr")?.getAttribute("data-device") === "bus-000",
    );
    await page.click("th[data-sort=last_seen]");
    await page.waitForFunction(
      () => document.querySelector("table.devices tbody tr")?.getAttribute("data-device") === "truck-42",
    );
    await shot("devices");
  }, 120_000);

  test("rules: a missing threshold is shown by its field; then the rule is created", async () => {
    await page.click("a[data-nav=rules]");
    await page.click("#new-rule");
    await page.fill("#rule-form [name=name]", "too hot");
    await page.fill("#rule-form [name=metric]", "temp");
    await page.selectOption("#rule-form [name=severity]", "critical");
    await page.click("#save-rule");
    await page.waitForSelector("[data-error-for='condition.threshold']:has-text('threshold')");
    expect(await page.locator(".field.invalid").count()).toBe(1);
    await shot("rule-validation");
    await page.fill("#rule-form [name='condition.threshold']", "90");
    await page.fill("#rule-form [name='condition.clear']", "85");
    await page.click("#save-rule");
    await page.waitForSelector("table.rules tr:has-text('too hot')");
    expect(await page.locator("#rule-form").count()).toBe(0);
    const [rule] = (await api().get("/api/v1/rules")).body.rules;
    expect(rule).toMatchObject({
      name: "too hot",
      metric: "temp",
      severity: "critical",
      condition: { type: "above_threshold", threshold: 90, clear: 85 },
    });
  }, 120_000);

  test("an alert appears after a threshold reading and is acknowledged", async () => {
    await page.click("a[data-nav=alerts]");
    await page.waitForSelector("#no-alerts");
    // An hour of readings of truck-42, one a minute, then a spike over the threshold.
    const now = Date.now();
    const hour = Array.from({ length: 58 }, (_, i) => ({
      device_id: "truck-42",
      ts: new Date(now - (60 - i) * 60_000).toISOString(),
      metrics: { temp: Math.round((40 + 8 * Math.sin(i / 6)) * 10) / 10 },
    }));
    await api().ingest(hour);
    await api().ingest([{ device_id: "truck-42", ts: new Date().toISOString(), metrics: { temp: 96.5 } }]); // newer than its reading in the devices test
    const row = page.locator("table.alerts tbody tr", { hasText: "truck-42" });
    await row.waitFor();
    expect(await row.textContent()).toContain("too hot");
    expect(await row.locator(".sev").textContent()).toBe("critical");
    await shot("alerts-open");
    await row.locator("button.ack").click();
    await page.waitForSelector("#no-alerts"); // it left the open list
    const [alert] = await api().alerts();
    expect(alert.status).toBe("acknowledged");
    await page.click("button[data-status=acknowledged]");
    await page.waitForSelector("table.alerts tbody tr:has-text('truck-42') .status.acknowledged");
    await shot("alerts-acknowledged");
  }, 120_000);

  test("the device page shows readings, the rollup band and the alert on one time axis", async () => {
    await page.goto(`${server.url}/ui/#/devices/truck-42`);
    await page.waitForSelector("#metric-select");
    await page.waitForFunction(() => {
      const d = document.querySelector("#device-chart path[data-series=temp]")?.getAttribute("d") ?? "";
      return (
        (d.match(/L/g) ?? []).length >= 50 &&
        document.querySelector("#device-chart polygon.band") &&
        document.querySelector("#device-chart g.marker")
      );
    });
    expect(await page.locator("#device-last-values").textContent()).toContain("temp = 96.5");
    expect(await page.locator("#device-alerts li").count()).toBe(1);
    await shot("device");
  }, 120_000);

  test("the device page creates a device key (its secret shown once), lists it and revokes it", async () => {
    await page.waitForSelector("#no-device-keys");
    await page.fill("#device-key-name", "cab unit");
    await page.click("#create-device-key");
    const secret = (await page.locator("#device-key-secret code.secret").textContent())!;
    expect(secret).toMatch(/^tk_/);
    const row = page.locator("#device-key-list tr", { hasText: "cab unit" });
    await row.waitFor();
    expect(await row.locator(".status").textContent()).toBe("active");
    // The key shown writes this device's readings, and only this device's.
    const write = (device_id: string) =>
      fetch(`${server.url}/api/v1/telemetry`, {
        method: "POST",
        headers: { authorization: `Bearer ${secret}`, "content-type": "application/json" },
        body: JSON.stringify({ device_id, ts: new Date().toISOString(), metrics: { temp: 20 } }),
      }).then((r) => r.status);
    expect(await write("truck-42")).toBe(202);
    expect(await write("truck-43")).toBe(403);
    await shot("device-keys");
    await row.locator("button.revoke").click();
    await page.waitForSelector("#device-key-list tr:has-text('cab unit') .status:has-text('revoked')");
    expect(await write("truck-42")).toBe(401);
  }, 120_000);

  test("signing out forgets the key", async () => {
    await page.click("#signout");
    await page.waitForSelector("#signin");
    expect(await page.evaluate(() => sessionStorage.getItem("telemetry.key"))).toBeNull();
    expect(pageErrors).toEqual([]);
  }, 60_000);
});

test("the API docs page renders the OpenAPI description in the browser", async () => {
  const docs = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  try {
    await docs.goto(`${server.url}/docs`);
    await docs.waitForSelector(".opblock-tag", { timeout: UI_TIMEOUT });
    const tags = await docs.locator(".opblock-tag").allTextContents();
    for (const tag of ["ingest", "devices", "rules", "alerts", "channels", "dashboard", "admin", "service"])
      expect(tags.join(" ")).toContain(tag);
    await docs.screenshot({ path: join(ARTIFACTS, "docs.png") });
  } finally {
    await docs.close();
  }
}, 60_000);

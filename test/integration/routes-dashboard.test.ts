/**
 * The dashboard's Routes page in Debian's headless Chromium (playwright-core) against a running
 * server (real NATS and PostgreSQL): create a NATS route from the form (a field error first) and
 * a subscriber gets a reading ingested afterwards; pause and resume from the page, the API
 * agreeing; a webhook route (a private target refused by its field first, then its secret shown once) whose receiver refuses: the batch shows in the
 * failed list, and Replay delivers it, signed with that secret, once the receiver accepts; delete.
 * Screenshots: test-artifacts/routes-*.png.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import type { Browser, Page } from "playwright-core";
import { connectBroker } from "../../src/nats/connection.ts";
import { verifySignature } from "../../src/notify/signing.ts";
import { apiClient } from "../helpers/api.ts";
import { launchBrowser, openPage, screenshots } from "../helpers/browser.ts";
import { TEST_KEY, startTestServer, type TestServer } from "../helpers/server.ts";
import { check, freshDatabase, startNats } from "../helpers/services.ts";

let nats: Awaited<ReturnType<typeof startNats>>;
let server: TestServer;
let browser: Browser;
let page: Page;
const pageErrors: string[] = [];
const api = () => apiClient(server);
const screenshot = screenshots("routes");
const shot = (name: string) => screenshot(page, name);
const routeByName = async (name: string) =>
  (await api().get("/api/v1/routes")).body.routes.find((r: { name: string }) => r.name === name);

let seq = 0;
/** A reading with a time of its own (the same device and time again would be the same reading). */
const reading = (device_id: string, speed: number) => ({
  device_id,
  ts: new Date(Date.now() - 60_000 + ++seq).toISOString(),
  metrics: { speed, temp: 20 },
});

beforeAll(async () => {
  browser = await launchBrowser();
  nats = await startNats();
  server = await startTestServer({
    NATS_URL: nats.url,
    DATABASE_URL: await freshDatabase("routes_ui"),
    TELEMETRY_WEBHOOK_ALLOW: "127.0.0.1",
    TELEMETRY_ROUTE_SCHEDULE: "0,100ms",
  });
  page = await openPage(browser, pageErrors);
  page.on("dialog", (d) => void d.accept());
  await page.goto(`${server.url}/`);
  await page.fill("#key", TEST_KEY);
  await page.click("#signin button[type=submit]");
  await page.waitForSelector("#tenant:has-text('tenant acme')");
  await page.click("a[data-nav=routes]");
  await page.waitForSelector("#route-table:has-text('No routes yet')");
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await server?.[Symbol.asyncDispose]();
  await nats?.[Symbol.asyncDispose]();
}, 60_000);

test("a NATS route made on the page forwards a reading ingested afterwards; pause and resume from the page", async () => {
  const sub = await connectBroker(nats.url, { name: "routes-ui-sub" });
  try {
    const got: Array<{ device_id: string; metrics: Record<string, number> }> = [];
    sub.nc.subscribe("routes.v1.acme.fast", { callback: (_e, m) => void got.push(m.json()) });
    await sub.nc.flush();
    await page.click("#new-route");
    await page.fill("#route-form [name=name]", "fast");
    await page.fill("#route-form [name=devices]", "veh-*");
    await page.fill("#route-form [name=metrics]", "speed");
    await page.fill("#route-form [name=condition]", "speed >> 80");
    await page.selectOption("#route-form [name='destination.type']", "nats");
    await page.click("#save-route");
    await page.waitForSelector("[data-error-for='filter.condition']:has-text('metric')");
    expect(await page.locator("#route-form .field.invalid").count()).toBe(1);
    await shot("form-error");
    expect((await api().get("/api/v1/routes")).body.routes).toEqual([]);
    await page.fill("#route-form [name=condition]", "speed > 80");
    await page.click("#save-route");
    const row = page.locator("tr[data-route=fast]");
    await row.waitFor();
    expect(await page.locator("#route-form").count()).toBe(0);
    expect(await page.locator("#route-secret code.secret").count()).toBe(0); // NATS: no secret
    expect(await row.textContent()).toContain("nats routes.v1.acme.fast");
    expect(await routeByName("fast")).toMatchObject({
      state: "active",
      filter: { device_pattern: "veh-*", metrics: ["speed"], condition: "speed > 80" },
      destination: { type: "nats", subject: "routes.v1.acme.fast" },
    });
    await server.routes!.syncNow();
    // The matching reading last: once it arrived, the others have been judged.
    await api().ingest([reading("car-1", 100), reading("veh-1", 10), reading("veh-1", 95)]);
    await check(() => got.length >= 1, { what: "the republished reading" });
    expect(got.map((r) => [r.device_id, r.metrics])).toEqual([["veh-1", { speed: 95 }]]);

    await row.locator("button.toggle:has-text('Pause')").click();
    await page.waitForSelector("tr[data-route=fast] td.state:has-text('paused')");
    expect((await routeByName("fast")).state).toBe("paused");
    await shot("paused");
    await server.routes!.syncNow();
    await api().ingest([reading("veh-2", 120)]);
    await row.locator("button.toggle:has-text('Resume')").click();
    await page.waitForSelector("tr[data-route=fast] td.state:has-text('active')");
    expect((await routeByName("fast")).state).toBe("active");
    await check(() => got.length >= 2, { what: "the reading held while paused" });
    expect(got.map((r) => r.device_id)).toEqual(["veh-1", "veh-2"]);
  } finally {
    await sub.close();
  }
}, 120_000);

test("a refused webhook batch shows in the failed list; Replay delivers it once the receiver accepts; Delete", async () => {
  let accept = false;
  const bodies: Array<{ body: string; headers: Headers }> = [];
  const receiver = Bun.serve({
    port: 0,
    hostname: "127.0.0.1",
    async fetch(req) {
      const body = await req.text();
      if (!accept) return new Response("no", { status: 503 });
      bodies.push({ body, headers: req.headers });
      return new Response(null, { status: 204 });
    },
  });
  try {
    await page.click("#new-route");
    await page.fill("#route-form [name=name]", "hook");
    await page.fill("#route-form [name=devices]", "truck-1, truck-2");
    // A private target the policy refuses: the server's error by the URL field, nothing made.
    await page.fill("#route-form [name='destination.target']", "http://10.0.0.1/in");
    await page.click("#save-route");
    await page.waitForSelector("[data-error-for='destination.target']:has-text('10.0.0.1 is private')");
    expect(await routeByName("hook")).toBeUndefined();
    await page.fill("#route-form [name='destination.target']", `http://127.0.0.1:${receiver.port}/in`);
    await page.click("#save-route");
    await page.waitForSelector("tr[data-route=hook]");
    const secret = (await page.locator("#route-secret code.secret").textContent())!;
    expect(secret).toHaveLength(43);
    const listed = await routeByName("hook");
    expect(listed.destination).toEqual({
      type: "webhook",
      url: `http://127.0.0.1:${receiver.port}/in`,
      has_secret: true,
    });
    expect(JSON.stringify(listed)).not.toContain(secret);
    await server.routes!.syncNow();
    const sent = (await api().ingest([reading("truck-2", 33)])).results[0].event_id;

    await page.locator("tr[data-route=hook] button.inspect").click();
    const batch = page.locator("#route-failed tr[data-batch]");
    await batch.waitFor(); // the list refreshes every 5 s while open
    expect(await batch.locator(".last-error").textContent()).toBe("http_503");
    expect(await batch.textContent()).toContain("truck-2");
    await shot("failed");
    expect(bodies).toEqual([]);
    const deliveryId = await batch.getAttribute("data-batch");
    accept = true;
    await batch.locator("button.replay").click();
    await page.waitForSelector("#route-note:has-text('1 batch sent again')");
    await check(() => bodies.length >= 1, { what: "the replayed batch" });
    const [delivered] = bodies;
    expect(verifySignature(secret, delivered!.body, delivered!.headers, Date.now() / 1000)).toBe(true);
    const payload = JSON.parse(delivered!.body);
    expect(payload.readings.map((r: { device_id: string }) => r.device_id)).toEqual(["truck-2"]);
    expect(payload.readings[0].event_id).toBe(sent);
    expect(delivered!.headers.get("x-telemetry-delivery")).toBe(deliveryId);
    await page.waitForSelector("#route-failed #no-failed");

    await page.locator("tr[data-route=hook] button.delete").click();
    await page.waitForFunction(() => !(globalThis as any).document.querySelector("tr[data-route=hook]"));
    expect(await routeByName("hook")).toBeUndefined();
    expect(await page.locator("#route-failed").count()).toBe(0);
    expect(pageErrors).toEqual([]);
  } finally {
    receiver.stop(true);
  }
}, 120_000);

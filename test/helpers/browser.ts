/**
 * The set-up the browser tests share (dashboard, routes-dashboard, map): Debian's headless
 * Chromium driven by playwright-core, pages that collect the page's errors, and screenshots in
 * test-artifacts/.
 */
import { existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { chromium, type Browser, type Page } from "playwright-core";

export const CHROMIUM = "/usr/bin/chromium";
export const ARTIFACTS = join(import.meta.dir, "../../test-artifacts");
export const UI_TIMEOUT = 45_000;

/** Launches Chromium (and makes test-artifacts/); throws naming the set-up step when it is missing. */
export async function launchBrowser(): Promise<Browser> {
  if (!existsSync(CHROMIUM))
    throw new Error(`${CHROMIUM} is missing: run scripts/setup.sh (installs Debian's chromium)`);
  mkdirSync(ARTIFACTS, { recursive: true });
  return chromium.launch({
    executablePath: CHROMIUM,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-background-networking",
      "--disable-component-update",
      "--no-first-run",
    ],
  });
}

/** A page with UI_TIMEOUT as its default timeout whose uncaught errors are pushed to `errors`. */
export async function openPage(
  browser: Browser,
  errors: string[],
  viewport = { width: 1280, height: 900 },
): Promise<Page> {
  const page = await browser.newPage({ viewport });
  page.setDefaultTimeout(UI_TIMEOUT);
  page.on("pageerror", (err) => errors.push(err.message));
  return page;
}

/** Screenshots named test-artifacts/<prefix>-<name>.png. */
export const screenshots =
  (prefix: string) =>
  (page: Page, name: string): Promise<Buffer> =>
    page.screenshot({ path: join(ARTIFACTS, `${prefix}-${name}.png`) });

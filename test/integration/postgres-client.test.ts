/**
 * postgres.js 3.4.9 has two ways to end the process when a connection dies under it, both fixed
 * by patches/postgres+3.4.9.patch: an uncatchable TypeError when a connection closes with a small
 * write pending (porsager/postgres#1066, #1208), and an unhandled rejection when it closes while
 * fetching array types during connection setup. Here backends are terminated under a stream of
 * small queries; the process must survive and every failure must be a retryable error.
 */
import { expect, test } from "bun:test";
import { createSql } from "../../src/db/client.ts";
import { isRetryable } from "../../src/db/errors.ts";
import { freshDatabase } from "../helpers/services.ts";

test("terminated backends give retryable errors, never an uncaught exception", async () => {
  const url = await freshDatabase("client");
  const sql = createSql(url, { max: 4, name: "victim" });
  const admin = createSql(url, { max: 1, name: "admin" });
  const uncaught: unknown[] = [];
  const onUncaught = (err: unknown) => uncaught.push(err);
  process.on("uncaughtException", onUncaught);
  process.on("unhandledRejection", onUncaught);
  let ok = 0;
  const failures: unknown[] = [];
  try {
    const deadline = Date.now() + 3_000;
    const workers = Array.from({ length: 4 }, async () => {
      while (Date.now() < deadline) {
        await sql
          .begin((tx) => [tx`SELECT 1`, tx`SELECT pg_sleep(0.001)`])
          .then(
            () => ok++,
            (err) => failures.push(err),
          );
      }
    });
    const killer = (async () => {
      while (Date.now() < deadline) {
        await admin`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'telemetry-victim'`;
        await Bun.sleep(20);
      }
    })();
    await Promise.all([...workers, killer]);
  } finally {
    process.off("uncaughtException", onUncaught);
    process.off("unhandledRejection", onUncaught);
    await sql.end({ timeout: 1 });
    await admin.end();
  }
  expect(uncaught).toEqual([]);
  expect(ok).toBeGreaterThan(0);
  expect(failures.length).toBeGreaterThan(0);
  expect(failures.every(isRetryable)).toBe(true);
}, 30_000);

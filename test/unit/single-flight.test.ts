import { expect, test } from "bun:test";
import { SingleFlight } from "../../src/core/single-flight.ts";

test("one call per key in flight, forgotten once it settles (resolved or rejected)", async () => {
  const flights = new SingleFlight<string, number>();
  let calls = 0;
  let release!: (n: number) => void;
  const slow = () => {
    calls++;
    return new Promise<number>((r) => (release = r));
  };
  const a = flights.run("k", slow);
  const b = flights.run("k", slow);
  expect(a).toBe(b);
  expect(flights.has("k")).toBe(true);
  expect(calls).toBe(1);
  release(7);
  expect(await b).toBe(7);
  expect(flights.has("k")).toBe(false);
  await expect(flights.run("k", () => Promise.reject(new Error("down")))).rejects.toThrow("down");
  expect(flights.has("k")).toBe(false);
  expect(await flights.run("k", async () => 8)).toBe(8);
});

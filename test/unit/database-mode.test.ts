import { describe, expect, test } from "bun:test";
import { chooseDatabase, type DatabaseFacts } from "../../src/core/database-mode.ts";
import { dependencyOrder } from "../../src/db/copy.ts";
import { lastReadyStatus } from "../../src/embedded/pglite-wire.ts";

describe("chooseDatabase (TELEMETRY_DATABASE)", () => {
  const facts = (f: Partial<Omit<DatabaseFacts, "postgresFound">> & { postgres?: boolean }): DatabaseFacts => ({
    choice: f.choice ?? "auto",
    hasUrl: f.hasUrl ?? false,
    embeddedExists: f.embeddedExists ?? false,
    postgresExists: f.postgresExists ?? false,
    postgresFound: () => f.postgres ?? true,
  });

  test("auto: supervised PostgreSQL when its binaries are found, else embedded", () => {
    expect(chooseDatabase(facts({ postgres: true }))).toEqual({ kind: "postgres" });
    expect(chooseDatabase(facts({ postgres: false }))).toEqual({ kind: "embedded" });
  });

  test("auto: an existing embedded database stays in use after PostgreSQL gets installed", () => {
    expect(chooseDatabase(facts({ postgres: true, embeddedExists: true }))).toEqual({ kind: "embedded" });
  });

  test("auto: an existing supervised PostgreSQL data dir stays in use when its binaries are gone (then: install postgresql)", () => {
    expect(chooseDatabase(facts({ postgres: false, postgresExists: true }))).toEqual({ kind: "postgres" });
    expect(chooseDatabase(facts({ postgresExists: true, embeddedExists: true }))).toEqual({
      error: expect.stringContaining("TELEMETRY_DATABASE=embedded or postgres"),
    });
    expect(chooseDatabase(facts({ choice: "embedded", postgresExists: true, embeddedExists: true }))).toEqual({
      kind: "embedded",
    });
  });

  test("DATABASE_URL wins over auto and postgres, and contradicts embedded", () => {
    expect(chooseDatabase(facts({ hasUrl: true, embeddedExists: true }))).toEqual({ kind: "url" });
    expect(chooseDatabase(facts({ hasUrl: true, choice: "postgres" }))).toEqual({ kind: "url" });
    expect(chooseDatabase(facts({ hasUrl: true, choice: "embedded" }))).toEqual({
      error: expect.stringContaining("both set"),
    });
  });

  test("postgres and embedded are what they say, whatever is installed", () => {
    expect(chooseDatabase(facts({ choice: "postgres", postgres: false }))).toEqual({ kind: "postgres" });
    expect(chooseDatabase(facts({ choice: "embedded", postgres: true }))).toEqual({ kind: "embedded" });
  });
});

describe("dependencyOrder (migrate-to)", () => {
  test("referenced tables come first", () => {
    const order = dependencyOrder([
      { name: "delivery_attempts", references: ["outbox"] },
      { name: "outbox", references: ["alerts", "channels"] },
      { name: "alerts", references: [] },
      { name: "channels", references: [] },
      { name: "api_keys", references: ["tenants"] },
      { name: "tenants", references: [] },
    ]).map((t) => t.name);
    const before = (a: string, b: string) => order.indexOf(a) < order.indexOf(b);
    expect(order).toHaveLength(6);
    expect(
      before("outbox", "delivery_attempts") &&
        before("alerts", "outbox") &&
        before("channels", "outbox") &&
        before("tenants", "api_keys"),
    ).toBe(true);
  });

  test("a cycle is an error naming it", () => {
    expect(() =>
      dependencyOrder([
        { name: "a", references: ["b"] },
        { name: "b", references: ["a"] },
      ]),
    ).toThrow("a -> b -> a");
  });
});

describe("lastReadyStatus (pglite-wire)", () => {
  const msg = (type: string, body: number[]) => [type.charCodeAt(0), 0, 0, 0, body.length + 4, ...body];
  test("the status of the last ReadyForQuery, null when the response does not end with one", () => {
    const complete = msg("C", [0x53, 0x45, 0x4c, 0]);
    expect(lastReadyStatus(new Uint8Array([...complete, ...msg("Z", [0x49])]))).toBe("I");
    expect(lastReadyStatus(new Uint8Array([...msg("Z", [0x49]), ...complete, ...msg("Z", [0x54])]))).toBe("T");
    expect(lastReadyStatus(new Uint8Array([...msg("Z", [0x49]), ...complete]))).toBeNull();
    expect(lastReadyStatus(new Uint8Array([]))).toBeNull();
  });
});

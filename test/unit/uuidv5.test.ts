import { expect, test } from "bun:test";
import fc from "fast-check";
import { v5 } from "uuid";
import { EVENT_NAMESPACE, uuidv5 } from "../../src/core/event-id.ts";

test("the hand-written UUIDv5 equals the uuid library's for any name (unicode included) and namespace", () => {
  fc.assert(
    fc.property(fc.string({ unit: "binary", maxLength: 300 }), fc.uuid(), (name, ns) => {
      expect(uuidv5(name)).toBe(v5(name, EVENT_NAMESPACE));
      expect(uuidv5(name, ns)).toBe(v5(name, ns));
    }),
    { numRuns: 2_000 },
  );
  expect(uuidv5("telemetry.event.v1", v5.URL)).toBe(EVENT_NAMESPACE);
});

import { expect, test } from "bun:test";
import fc from "fast-check";
import { v5 } from "uuid";
import { deliveryId } from "../../src/db/outbox.ts";
import { EVENT_NAMESPACE } from "../../src/core/event-id.ts";
import { alertId } from "../../src/evaluator/plan.ts";

// Alert and delivery ids are stored (alerts.id, outbox.id) and receivers deduplicate on them: they
// must never change. The values below were computed with the uuid library's v5.
test("alert and delivery ids are the same UUIDv5 values as always", () => {
  expect(alertId("6f1c1b8e-2f44-4c51-9a51-0c7f0e2b9a10", "truck-1", 1764583200000)).toBe(
    "d89345a4-2745-5853-af60-c11667939939",
  );
  expect(alertId("r", "gerät-ü", 0)).toBe("66e0149b-ca1e-510d-a503-8341143865cb");
  expect(deliveryId("0b6e4f6e-5a6b-5c9d-8e2f-3a4b5c6d7e8f", "alert.opened", null)).toBe(
    "f3182e48-bc3e-5085-9ae0-484aa460a6d7",
  );
  expect(
    deliveryId("0b6e4f6e-5a6b-5c9d-8e2f-3a4b5c6d7e8f", "alert.resolved", "a3f1c2d4-1111-4222-8333-944455556666"),
  ).toBe("e7fb0edb-b43b-5d62-8199-97dfd6d909b1");
});

test("alert and delivery ids equal the uuid library's v5 of their names for any input", () => {
  fc.assert(
    fc.property(
      fc.uuid(),
      fc.string({ unit: "binary", maxLength: 128 }),
      fc.integer({ min: 0, max: 4_102_444_800_000 }),
      fc.option(fc.uuid()),
      (id, device, at, channel) => {
        expect(alertId(id, device, at)).toBe(v5(`alert|${id}|${device}|${at}`, EVENT_NAMESPACE));
        expect(deliveryId(id, "alert.acknowledged", channel)).toBe(
          v5(`delivery|${id}|alert.acknowledged|${channel ?? "nats"}`, EVENT_NAMESPACE),
        );
      },
    ),
    { numRuns: 500 },
  );
});

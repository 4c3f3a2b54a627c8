/** The HTTP mapping of the shared admission's refusals (ingest/admit.ts, decision 0420): the statuses and headers HTTP always gave. */
import { expect, test } from "bun:test";
import { httpError } from "../../src/ingest/admit.ts";
import type { Refusal } from "../../src/pipeline/admission.ts";

test("each refusal becomes the HttpError it always was: status, code, message, Retry-After where waiting helps", () => {
  const cases: Array<[Refusal, number, string | undefined]> = [
    [{ code: "unknown_device", message: "no record of this request is from a registered device" }, 403, undefined],
    [{ code: "device_limit", message: "tenant device limit (5) reached" }, 403, undefined],
    [{ code: "rate_limited", message: "over", retryAfterMs: 1_200 }, 429, "2"],
    [{ code: "rate_limited", message: "over", retryAfterMs: 10 }, 429, "1"],
    [
      { code: "devices_unavailable", message: "the device registry is unreachable; retry later", retryAfterMs: 5_000 },
      503,
      "5",
    ],
    [
      {
        code: "broker_unavailable",
        message: "the message broker is unavailable",
        retryAfterMs: 1_000,
        detail: "timeout",
        records: 3,
      },
      503,
      "1",
    ],
  ];
  for (const [refusal, status, retryAfter] of cases) {
    const e = httpError(refusal);
    expect([e.status as number, e.code, e.message, e.headers?.["Retry-After"]]).toEqual([
      status,
      refusal.code,
      refusal.message,
      retryAfter,
    ]);
  }
});

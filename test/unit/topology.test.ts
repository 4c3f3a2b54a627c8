import { expect, test } from "bun:test";
import { loadConfig } from "../../src/config/load.ts";
import { committedSubject } from "../../src/core/committed.ts";
import { mqttPublishSubject } from "../../src/core/mqtt.ts";
import { RULES_CHANGED_SUBJECT, telemetrySubject } from "../../src/core/subject.ts";
import {
  alertStream,
  alertSubject,
  committedStream,
  DLQ_PREFIX,
  dlqStream,
  mqttStream,
  pipelineStreams,
} from "../../src/nats/topology.ts";

/** NATS subject matching: `*` one token, `>` the rest (at least one token). */
function matches(filter: string, subject: string): boolean {
  const f = filter.split(".");
  const s = subject.split(".");
  for (let i = 0; i < f.length; i++) {
    if (f[i] === ">") return s.length > i;
    if (i >= s.length || (f[i] !== "*" && f[i] !== s[i])) return false;
  }
  return f.length === s.length;
}

const config = loadConfig({}, { TELEMETRY_MQTT_PORT: "1883", TELEMETRY_STREAM: "TM" });
const streams = [...pipelineStreams(config), alertStream()];
const holders = (subject: string) =>
  streams.filter((s) => s.subjects.some((f) => matches(f, subject))).map((s) => s.name);

test("every subject the server publishes is held by exactly one stream, the one its readers read", () => {
  expect(holders(telemetrySubject("acme", "truck-1"))).toEqual(["TM"]);
  expect(holders(committedSubject("acme"))).toEqual([committedStream("TM")]);
  expect(holders(`${DLQ_PREFIX}.acme`)).toEqual([dlqStream("TM")]);
  expect(holders(mqttPublishSubject("acme").replace("*", "truck-1"))).toEqual([mqttStream("TM")]);
  expect(holders(alertSubject("acme"))).toEqual(["ALERTS"]);
  expect(holders(RULES_CHANGED_SUBJECT)).toEqual([]); // core NATS only: a change notice, not kept
});

test("the streams and their settings follow the configuration; the MQTT stream only with an MQTT port", () => {
  const [telemetry, committed, dlq, mqtt] = pipelineStreams(config);
  expect(telemetry).toMatchObject({
    maxAgeMs: config.streamMaxAge,
    duplicateWindowMs: config.streamDuplicateWindow,
    replicas: config.streamReplicas,
  });
  expect(committed).toMatchObject({ maxAgeMs: 24 * 3_600_000, replicas: config.streamReplicas });
  expect(dlq).toMatchObject({ maxAgeMs: config.dlqMaxAge });
  expect(mqtt).toMatchObject({ maxAgeMs: config.streamMaxAge, maxBytes: config.mqttStreamMaxBytes, discard: "new" });
  expect(pipelineStreams(loadConfig({}, {})).map((s) => s.name)).toEqual([
    "TELEMETRY",
    "TELEMETRY_COMMITTED",
    "TELEMETRY_DLQ",
  ]);
  expect(alertStream(3)).toMatchObject({
    name: "ALERTS",
    replicas: 3,
    maxAgeMs: 7 * 86_400_000,
    duplicateWindowMs: 2 * 3_600_000,
  });
});

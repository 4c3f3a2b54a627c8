/**
 * Line-protocol points -> records: the device tag, metric names, location fields, attributes,
 * one record per line with its identity (measurement + field keys), per-line errors; and the
 * records pass the project's own normalizeRecord, with the same event ids when a batch is sent
 * again and distinct ones for two measurements of one device at one millisecond.
 */
import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { parseLineProtocol } from "../../src/core/line-protocol.ts";
import { DEFAULT_LINE_MAPPING, type LineMapping, lineIdentity, mapPoints } from "../../src/core/line-protocol-map.ts";
import { normalizeRecord } from "../../src/core/record.ts";

const NOW = Date.UTC(2026, 10, 22, 10, 0, 0);
const T = `${NOW}000000`; // epoch ns of NOW

function map(text: string, mapping: LineMapping = DEFAULT_LINE_MAPPING) {
  const parsed = parseLineProtocol(text, { precision: "ns", receivedAtMs: NOW });
  expect(parsed.errors).toEqual([]);
  return mapPoints(parsed.points, mapping);
}

describe("mapping", () => {
  test("device from the 'device' tag, else 'host'; other tags are attributes; metrics {measurement}_{field}", () => {
    const r = map(
      [
        `cpu,host=gw1,region=eu usage_user=12.5,cores=8i,free=3u,throttled=true ${T}`,
        `env,device=sensor-7,host=gw1 temp=21.5,door=F,state="open" ${T}`,
      ].join("\n"),
    );
    expect(r.errors).toEqual([]);
    expect(r.records).toEqual([
      {
        line: 1,
        identity: "lp|cpu|cores,free,throttled,usage_user",
        record: {
          device_id: "gw1",
          ts: NOW,
          metrics: { cpu_usage_user: 12.5, cpu_cores: 8, cpu_free: 3, cpu_throttled: 1 },
          attributes: { region: "eu" },
        },
      },
      {
        line: 2,
        identity: "lp|env|door,state,temp",
        record: {
          device_id: "sensor-7",
          ts: NOW,
          metrics: { env_temp: 21.5, env_door: 0 },
          attributes: { host: "gw1", env_state: "open" },
        },
      },
    ]);
  });

  test("a configured device tag list and bare measurements", () => {
    const mapping = { ...DEFAULT_LINE_MAPPING, deviceTags: ["serial"], bareMeasurements: ["sensor"] };
    const r = map(`sensor,serial=X1,host=h temp=3 ${T}\nsensor,host=h temp=4 ${T}`, mapping);
    expect(r.records).toEqual([
      {
        line: 1,
        identity: "lp|sensor|temp",
        record: { device_id: "X1", ts: NOW, metrics: { temp: 3 }, attributes: { host: "h" } },
      },
    ]);
    expect(r.errors).toEqual([{ line: 2, message: "point 'sensor' has no device tag (one of 'serial')" }]);
  });

  test("a point without a device tag is an error of its line; the others still map", () => {
    const r = map(`cpu,region=eu usage=1 ${T}\ncpu,host=a usage=2 ${T}`);
    expect(r.errors).toEqual([{ line: 1, message: "point 'cpu' has no device tag (one of 'device', 'host')" }]);
    expect(r.records.map((x) => x.record.device_id)).toEqual(["a"]);
  });

  test("lat/latitude and lon/lng/longitude fields are the location, not metrics", () => {
    for (const [la, lo] of [
      ["lat", "lon"],
      ["latitude", "longitude"],
      ["lat", "lng"],
    ]) {
      const r = map(`gps,device=t1 ${la}=52.52,${lo}=13i,speed=3 ${T}`);
      expect(r.records[0]!.record).toEqual({
        device_id: "t1",
        ts: NOW,
        location: { lat: 52.52, lon: 13 },
        metrics: { gps_speed: 3 },
      });
    }
    const custom = map(`gps,device=t1 y=1,x=2 ${T}`, { ...DEFAULT_LINE_MAPPING, latFields: ["y"], lonFields: ["x"] });
    expect(custom.records[0]!.record.location).toEqual({ lat: 1, lon: 2 });
  });

  test("a latitude without a longitude, or a location that is not a number, is an error", () => {
    const r = map(`g,device=a lat=1 1\ng,device=a lon=1 2\ng,device=a lat="x",lon=1 3\ng,device=a lat=1,lon=t 4`);
    expect(r.records).toEqual([]);
    expect(r.errors).toEqual([
      { line: 1, message: "field 'lat' is a latitude without a longitude field" },
      { line: 2, message: "field 'lon' is a longitude without a latitude field" },
      { line: 3, message: "field 'lat' must be a number to be a latitude" },
      { line: 4, message: "field 'lon' must be a number to be a longitude" },
    ]);
  });

  test("one line is one record: Telegraf's cpu and mem lines of one host at one millisecond are two", () => {
    const r = map(
      [
        `cpu,host=a,cpu=cpu-total usage=5 ${NOW}000001`,
        `mem,host=a used=70 ${NOW}000999`,
        `gps,host=a lat=1,lon=2 ${T}`,
      ].join("\n"),
    );
    expect(r.errors).toEqual([]);
    expect(r.records).toEqual([
      {
        line: 1,
        identity: "lp|cpu|usage",
        record: { device_id: "a", ts: NOW, metrics: { cpu_usage: 5 }, attributes: { cpu: "cpu-total" } },
      },
      { line: 2, identity: "lp|mem|used", record: { device_id: "a", ts: NOW, metrics: { mem_used: 70 } } },
      { line: 3, identity: "lp|gps|lat,lon", record: { device_id: "a", ts: NOW, location: { lat: 1, lon: 2 } } },
    ]);
  });

  test("the identity is the measurement and the sorted field keys; tags and values are not part of it", () => {
    const identities = map(
      [
        `cpu,host=a,cpu=cpu0 usage=5,idle=1 ${T}`,
        `cpu,host=a,cpu=cpu0 idle=1,usage=5 ${T}`,
        `cpu,host=a usage=5 ${T}`,
        `cpu\\,x|y,host=a a\\,b=1,c%d=2,e|f=3 ${T}`,
      ].join("\n"),
    ).records.map((x) => x.identity);
    expect(identities).toEqual([
      "lp|cpu|idle,usage",
      "lp|cpu|idle,usage",
      "lp|cpu|usage",
      "lp|cpu%2Cx%7Cy|a%2Cb,c%25d,e%7Cf",
    ]);
    // a key holding a comma is not two keys
    const [one, two] = map(`m,host=a a\\,b=1 ${T}\nm,host=a a=1,b=1 ${T}`).records.map((x) => x.identity);
    expect(one).not.toBe(two);
  });

  test("the same reading again in a request: identical is kept (a duplicate), other values are an error of its line", () => {
    const r = map(
      [
        `cpu,host=a,cpu=cpu0 usage=5 ${T}`,
        `cpu,host=a,cpu=cpu1 usage=6 ${T}`,
        `cpu,host=a,cpu=cpu0 usage=5 ${T}`,
        `cpu,host=a,cpu=cpu2 usage=5 ${T}`,
        `cpu,host=a usage=7 ${NOW + 1}000000`,
        `gps,host=a lat=1,lon=2 ${T}`,
        `gps,host=a lat=1,lon=3 ${T}`,
      ].join("\n"),
    );
    expect(r.records.map((x) => x.line)).toEqual([1, 3, 5, 6, 7]);
    expect(r.errors).toEqual([
      {
        line: 2,
        message:
          "point 'cpu' is the reading of line 1 (same device, time, measurement and field keys) with other values: tags other than the device tag are attributes, not part of a reading's identity, unless they are series tags (line_protocol.series_tags)",
      },
      {
        line: 4,
        message:
          "point 'cpu' is the reading of line 1 (same device, time, measurement and field keys) with other values: tags other than the device tag are attributes, not part of a reading's identity, unless they are series tags (line_protocol.series_tags)",
      },
    ]);
  });

  test("series tags: their values join the metric names and the identity; per-CPU lines are distinct readings", () => {
    const mapping = { ...DEFAULT_LINE_MAPPING, seriesTags: ["cpu", "path"] };
    const text = [
      `cpu,host=a,cpu=cpu0 usage_user=5,usage_system=1 ${T}`,
      `cpu,host=a,cpu=cpu1 usage_user=6,usage_system=2 ${T}`,
      `cpu,host=a,cpu=cpu-total usage_user=5.5,usage_system=1.5 ${T}`,
      `disk,host=a,path=/var,fstype=ext4 used_percent=40 ${T}`,
      `mem,host=a used_percent=30 ${T}`,
      `cpu,host=a,cpu=cpu0 usage_user=5,usage_system=1 ${T}`,
      `cpu,host=a,cpu=a=b usage_user=7,usage_system=3 ${T}`,
    ].join("\n");
    const r = map(text, mapping);
    expect(r.errors).toEqual([]);
    expect(r.records.map((x) => [x.identity, x.record.metrics, x.record.attributes])).toEqual([
      [
        "lp|cpu|usage_system,usage_user|cpu=cpu0",
        { "cpu_usage_user.cpu0": 5, "cpu_usage_system.cpu0": 1 },
        { cpu: "cpu0" },
      ],
      [
        "lp|cpu|usage_system,usage_user|cpu=cpu1",
        { "cpu_usage_user.cpu1": 6, "cpu_usage_system.cpu1": 2 },
        { cpu: "cpu1" },
      ],
      [
        "lp|cpu|usage_system,usage_user|cpu=cpu-total",
        { "cpu_usage_user.cpu-total": 5.5, "cpu_usage_system.cpu-total": 1.5 },
        { cpu: "cpu-total" },
      ],
      ["lp|disk|used_percent|path=/var", { "disk_used_percent./var": 40 }, { path: "/var", fstype: "ext4" }],
      ["lp|mem|used_percent", { mem_used_percent: 30 }, undefined],
      [
        "lp|cpu|usage_system,usage_user|cpu=cpu0",
        { "cpu_usage_user.cpu0": 5, "cpu_usage_system.cpu0": 1 },
        { cpu: "cpu0" },
      ],
      [
        "lp|cpu|usage_system,usage_user|cpu=a%3Db",
        { "cpu_usage_user.a=b": 7, "cpu_usage_system.a=b": 3 },
        { cpu: "a=b" },
      ],
    ]);
    // Their event ids: distinct per CPU, the repeat a duplicate; normalizeRecord refuses a name with '='.
    const readings = r.records.map((x) =>
      normalizeRecord(x.record, { tenant: "acme", nowMs: NOW, maxFutureMs: 0, identity: x.identity }),
    );
    const ids = readings.map((n) => (n.ok ? n.reading.eventId : "refused"));
    expect(new Set(ids.slice(0, 5)).size).toBe(5);
    expect(ids[5]).toBe(ids[0]);
    expect(ids[6]).toBe("refused");
  });

  test("series tags set, lines without them: identities (and so event ids) unchanged", () => {
    const text = `cpu,host=a usage_user=5 ${T}\nmem,host=a,cpu=cpu0 used=1 ${T}`;
    const plain = map(text);
    const series = map(text, { ...DEFAULT_LINE_MAPPING, seriesTags: ["core"] });
    expect(series.records).toEqual(plain.records);
  });

  test("many locations of one device at one millisecond: each its own reading; a repeat with other values still an error", () => {
    // past a few readings of one device, time and identity, they are looked up by location (mapPoints' buckets)
    const lines = Array.from({ length: 30 }, (_, k) => `gps,host=a lat=${k},lon=2,v=1 ${T}`);
    lines.push(
      `gps,host=a lat=3,lon=2,v=1 ${T}`,
      `gps,host=a lat=20,lon=2,v=9 ${T}`,
      `gps,host=a lat=2,lon=2,v=9 ${T}`,
    );
    const r = map(lines.join("\n"));
    expect(r.records.map((x) => x.line)).toEqual([...Array.from({ length: 31 }, (_, k) => k + 1)]);
    expect(r.errors.map((e) => [e.line, /reading of line (\d+)/.exec(e.message)?.[1]])).toEqual([
      [32, "21"],
      [33, "3"],
    ]);
  });

  test("a string field and a tag that would be the same attribute are an error", () => {
    const r = map(`m,host=a,m_s=x s="y" ${T}`);
    expect(r.errors).toEqual([{ line: 1, message: "string field 's' and tag 'm_s' are both attribute 'm_s'" }]);
  });
});

describe("mapped records through the project's normalizeRecord", () => {
  const opts = { tenant: "acme", nowMs: NOW, maxFutureMs: 3_600_000 };
  const body = [
    `cpu,host=gw-1,region=eu usage=12.5,cores=8i,ok=t ${T}`,
    `mem,host=gw-1 used=70 ${T}`,
    `gps,device=tracker:7 lat=52.52000665,lon=-0.1,note="moving" ${NOW - 1000}000000`,
    `disk,host=gw-1 free=1u`,
  ].join("\r\n");

  function readings() {
    const parsed = parseLineProtocol(body, { precision: "ns", receivedAtMs: NOW });
    const mapped = mapPoints(parsed.points);
    expect([...parsed.errors, ...mapped.errors]).toEqual([]);
    return mapped.records.map(({ record, identity }) => {
      const n = normalizeRecord(record, { ...opts, identity });
      if (!n.ok) throw new Error(JSON.stringify(n.errors));
      return n.reading;
    });
  }

  function jsonReadings() {
    const parsed = parseLineProtocol(body, { precision: "ns", receivedAtMs: NOW });
    const mapped = mapPoints(parsed.points);
    return mapped.records.map(({ record }) => {
      const n = normalizeRecord(record, opts);
      if (!n.ok) throw new Error(JSON.stringify(n.errors));
      return n.reading;
    });
  }

  test("every mapped record is accepted and normalized", () => {
    const rs = readings();
    expect(rs.map((r) => [r.deviceId, r.ts, r.lat, r.lon, r.metrics, r.attributes])).toEqual([
      ["gw-1", NOW, null, null, { cpu_usage: 12.5, cpu_cores: 8, cpu_ok: 1 }, { region: "eu" }],
      ["gw-1", NOW, null, null, { mem_used: 70 }, null],
      ["tracker:7", NOW - 1000, 52.5200067, -0.1, null, { gps_note: "moving" }],
      ["gw-1", NOW, null, null, { disk_free: 1 }, null],
    ]);
    expect(new Set(rs.map((r) => r.eventId)).size).toBe(4);
  });

  test("the identity suffix changes line-protocol ids only: without it the ids are JSON's", () => {
    const lp = readings();
    const json = jsonReadings();
    // JSON's rule would give cpu, mem and disk of gw-1 at NOW one id: the old merge problem.
    expect(new Set(json.map((r) => r.eventId)).size).toBe(2);
    expect(lp.map((r) => r.eventId)).not.toEqual(json.map((r) => r.eventId));
  });

  test("the same batch sent again gives the same event ids (no new rows on a retry)", () => {
    expect(readings().map((r) => r.eventId)).toEqual(readings().map((r) => r.eventId));
  });

  test("what normalizeRecord refuses is refused with its own specific error", () => {
    const parsed = parseLineProtocol(
      [
        `cpu\\ load,host=a v=1 ${T}`,
        `m,host=bad.id v=1 ${T}`,
        `m,host=c s="only a string" ${T}`,
        `bare,host=d __proto__=1 ${T}`,
        `m,host=e lat=91,lon=0 ${T}`,
        `m,host=f v=1 ${NOW + 7_200_000}000000`,
        "m,host=g v=1 1",
      ].join("\n"),
      { precision: "ns", receivedAtMs: NOW },
    );
    const mapped = mapPoints(parsed.points, { ...DEFAULT_LINE_MAPPING, bareMeasurements: ["bare"] });
    expect(mapped.errors).toEqual([]);
    const outcomes = mapped.records.map(({ record }) => {
      const n = normalizeRecord(record, opts);
      return n.ok ? "ok" : n.errors.map((e) => `${e.path}: ${e.message}`).join("; ");
    });
    expect(outcomes).toEqual([
      "metrics.cpu load_v: metric names are 1-64 of letters, digits, '_', '.', ':', '/', '-'",
      "device_id: device_id must not contain '.'; allowed are letters, digits, '_', '-' and ':'",
      ": a record needs a location or at least one metric",
      "metrics.__proto__: '__proto__' is a reserved name: metric names must not be __proto__, constructor or prototype",
      "location.lat: lat must be between -90 and 90",
      "ts: timestamp is more than 1h in the future (server time 2026-11-22T10:00:00.000Z)",
      "ts: timestamp is before 2000-01-01T00:00:00Z",
    ]);
  });
});

describe("mapping properties", () => {
  const opts = { tenant: "acme", nowMs: NOW, maxFutureMs: 3_600_000 };
  const line = fc.record({
    measurement: fc.constantFrom("cpu", "mem", "gps"),
    tags: fc.subarray(["device=d1", "host=h1", "host=h2", "cpu=cpu0", "cpu=cpu1"]),
    fields: fc.subarray(["v=1", "v=2", "w=3i", "ok=t", 's="x"', "lat=1", "lon=2", "lat=3"], { minLength: 1 }),
    ms: fc.constantFrom(NOW, NOW + 1),
  });
  const toText = (l: typeof line extends fc.Arbitrary<infer T> ? T : never) => {
    const seen = new Set<string>();
    const tags = l.tags.filter((t) => !seen.has(t.split("=")[0]!) && seen.add(t.split("=")[0]!));
    const fieldKeys = new Set<string>();
    const fields = l.fields.filter((f) => !fieldKeys.has(f.split("=")[0]!) && fieldKeys.add(f.split("=")[0]!));
    return `${[l.measurement, ...tags].join(",")} ${fields.join(",")} ${l.ms}000000`;
  };

  test("every line is one record or one error; ids are equal exactly when device, time, location, measurement and field keys are", () => {
    fc.assert(
      fc.property(fc.array(line, { maxLength: 12 }), (ls) => {
        const parsed = parseLineProtocol(ls.map(toText).join("\n"), { precision: "ns", receivedAtMs: NOW });
        expect(parsed.errors).toEqual([]);
        const r = mapPoints(parsed.points);
        const used = [...r.records.map((x) => x.line), ...r.errors.map((e) => e.line)].sort((a, b) => a - b);
        expect(used).toEqual(ls.map((_, i) => i + 1));
        const byId = new Map<string, string>();
        for (const { record, identity, line } of r.records) {
          expect(identity).toBe(lineIdentity(parsed.points[line - 1]!));
          const n = normalizeRecord(record, { ...opts, identity });
          if (!n.ok) {
            expect(n.errors).toEqual([{ path: "", message: "a record needs a location or at least one metric" }]);
            continue;
          }
          const p = parsed.points[line - 1]!;
          const key = JSON.stringify([
            record.device_id,
            record.ts,
            record.location ?? null,
            p.measurement,
            p.fields.map(([k]) => k).sort(),
          ]);
          const had = byId.get(n.reading.eventId);
          if (had !== undefined) expect(had).toBe(key);
          byId.set(n.reading.eventId, key);
        }
        expect(new Set(byId.values()).size).toBe(byId.size);
      }),
      { numRuns: 500 },
    );
  });
});

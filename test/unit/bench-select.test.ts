/** The bench's phase selection (bench/select.ts): BENCH_PHASES / --phases. */
import { describe, expect, test } from "bun:test";
import type { PeerName } from "../../bench/peers-phase.ts";
import { phasesFromArgs, type Selection, selectPhases } from "../../bench/select.ts";

const peers = (...names: PeerName[]) => new Set<PeerName>(names);

const everything: Selection = {
  raw: true,
  naive: true,
  server: true,
  routes: true,
  peers: peers("ndjson", "lp", "influxdb", "victoriametrics"),
};

describe("bench phases", () => {
  test("absent, empty or all: every phase", () => {
    expect(selectPhases(undefined)).toEqual(everything);
    expect(selectPhases("")).toEqual(everything);
    expect(selectPhases("all")).toEqual(everything);
  });

  test("peers alone, or single systems of it", () => {
    expect(selectPhases("peers")).toEqual({ ...everything, raw: false, naive: false, server: false, routes: false });
    expect(selectPhases(" Influxdb, ndjson ")).toEqual({
      raw: false,
      naive: false,
      server: false,
      routes: false,
      peers: peers("ndjson", "influxdb"),
    });
    expect(selectPhases("raw,server")).toEqual({
      raw: true,
      naive: false,
      server: true,
      routes: false,
      peers: peers(),
    });
  });

  test("an unknown name is an error that lists the known ones", () => {
    expect(() => selectPhases("peers,influx")).toThrow(
      /unknown bench phase influx: use raw, naive, server, routes, peers/,
    );
  });

  test("--phases=… and --phases … win over the environment", () => {
    expect(phasesFromArgs(["--phases=naive"], "peers").naive).toBe(true);
    expect(phasesFromArgs(["--phases=naive"], "peers").peers.size).toBe(0);
    expect(phasesFromArgs(["--phases", "lp"], "raw")).toEqual({
      raw: false,
      naive: false,
      server: false,
      routes: false,
      peers: peers("lp"),
    });
    expect(phasesFromArgs([], "raw").raw).toBe(true);
    expect(phasesFromArgs([], "raw").server).toBe(false);
    expect(phasesFromArgs(["--phases=routes"], undefined)).toMatchObject({ routes: true, server: false, raw: false });
  });
});

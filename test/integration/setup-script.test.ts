/**
 * scripts/setup.sh on a machine where another apt process holds its lock (apt-daily on a fresh
 * machine). The real apt cannot run in a test (root, network), so a stand-in `apt-get` on PATH
 * answers `update` the way apt 2.6 does while the lists lock is held, then succeeds; the real
 * script runs against it with nats-server missing from PATH.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import {
  chmodSync,
  copyFileSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const root = join(import.meta.dir, "../..");
let dir: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "telemetry-setup-"));
  // The repository as the script sees it: npm dependencies present as locked (an empty lock file).
  mkdirSync(join(dir, "repo/scripts"), { recursive: true });
  copyFileSync(join(root, "scripts/setup.sh"), join(dir, "repo/scripts/setup.sh"));
  copyFileSync(join(root, "scripts/npm-deps-ok.cjs"), join(dir, "repo/scripts/npm-deps-ok.cjs")); // an empty lock: nothing to install
  mkdirSync(join(dir, "repo/node_modules/.bin"), { recursive: true });
  writeFileSync(join(dir, "repo/node_modules/.bin/bun"), "#!/bin/sh\n", { mode: 0o755 });
  writeFileSync(join(dir, "repo/package-lock.json"), "{}");
  // PATH: the few tools the script uses, no nats-server (so it installs it), a stand-in apt-get and sudo.
  mkdirSync(join(dir, "bin"));
  for (const tool of ["dirname", "id", "grep", "sleep", "cat", "node"])
    symlinkSync(Bun.which(tool)!, join(dir, "bin", tool));
  writeFileSync(join(dir, "bin/sudo"), '#!/bin/bash\nexec "$@"\n', { mode: 0o755 });
}, 30_000);

afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A stand-in apt-get: logs its arguments; `update` fails `failures` times with `error`, then works. */
function fakeApt(failures: number, error: string) {
  const log = join(dir, "apt.log");
  const count = join(dir, "apt.count");
  writeFileSync(log, "");
  writeFileSync(count, "0");
  const script = `#!/bin/bash
echo "$*" >> ${log}
if [[ " $* " == *" update "* ]]; then
  n=$(cat ${count}); echo $((n + 1)) > ${count}
  if [ "$n" -lt ${failures} ]; then echo "${error}" >&2; exit 100; fi
fi
exit 0
`;
  writeFileSync(join(dir, "bin/apt-get"), script);
  chmodSync(join(dir, "bin/apt-get"), 0o755);
  const r = Bun.spawnSync({
    cmd: ["/bin/bash", join(dir, "repo/scripts/setup.sh")],
    env: { PATH: join(dir, "bin") },
    stdout: "pipe",
    stderr: "pipe",
  });
  return { code: r.exitCode, err: r.stderr.toString(), calls: readFileSync(log, "utf8").trim().split("\n") };
}

test("a held lists lock: update is retried until it is free, install waits with DPkg::Lock::Timeout", () => {
  const t0 = Date.now();
  const r = fakeApt(1, "E: Could not get lock /var/lib/apt/lists/lock. It is held by process 4242 (apt-get)");
  expect(r.err).toContain("another apt process holds its lock; waiting");
  expect(r.code).toBe(0);
  expect(Date.now() - t0).toBeGreaterThanOrEqual(4_500);
  expect(r.calls).toEqual([
    "-o DPkg::Lock::Timeout=300 update -qq",
    "-o DPkg::Lock::Timeout=300 update -qq",
    "-o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends nats-server",
  ]);
}, 30_000);

test("any other update failure stops the script at once with apt's message, installing nothing", () => {
  const r = fakeApt(5, "E: The repository 'http://deb.example invalid Release' does not have a Release file.");
  expect(r.code).toBe(1);
  expect(r.err).toContain("does not have a Release file");
  expect(r.err).not.toContain("waiting");
  expect(r.calls).toEqual(["-o DPkg::Lock::Timeout=300 update -qq"]);
}, 30_000);

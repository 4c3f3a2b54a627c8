#!/usr/bin/env bash
# Installs what a fresh Debian machine lacks to run or test telemetry: the Debian packages
# nats-server and postgresql (only when missing), with --test also mosquitto-clients (MQTT tests),
# chromium (the dashboard's browser tests) and the protocol clients (python3-influxdb,
# python3-paho-mqtt, influxdb-client), with --bench the peers (influxdb, victoria-metrics), and
# the npm dependencies (Bun among them).
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v nats-server >/dev/null 2>&1 || missing+=(nats-server)
if [ "${1:-}" = "--test" ]; then
  command -v mosquitto_pub >/dev/null 2>&1 || missing+=(mosquitto-clients) # MQTT tests
  [ -x /usr/bin/chromium ] || missing+=(chromium) # the dashboard's browser tests (playwright-core drives Debian's chromium)
  # Real clients of the protocols, written by others (Debian's python3, not a pyenv one, sees them):
  /usr/bin/python3 -c "import influxdb" >/dev/null 2>&1 || missing+=(python3-influxdb) # line protocol, /write
  /usr/bin/python3 -c "import paho.mqtt" >/dev/null 2>&1 || missing+=(python3-paho-mqtt) # MQTT device library
  command -v influx >/dev/null 2>&1 || missing+=(influxdb-client) # the influx 1.x CLI, INSERT through /write
fi
if [ "${1:-}" = "--bench" ]; then
  # The peers the benchmark compares with, from Debian's packages (started by the bench itself).
  command -v influxd >/dev/null 2>&1 || missing+=(influxdb)
  command -v victoria-metrics >/dev/null 2>&1 || missing+=(victoria-metrics)
fi
if ! command -v postgres >/dev/null 2>&1 && ! compgen -G "/usr/lib/postgresql/*/bin/postgres" >/dev/null; then
  missing+=(postgresql)
fi
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing Debian packages: ${missing[*]}" >&2
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  # A fresh machine's apt-daily/unattended-upgrades often holds apt's locks for minutes: wait for
  # them. DPkg::Lock::Timeout waits for the dpkg lock (install); `apt-get update` fails at once on
  # the lists lock whatever the option says (apt 2.6), so that one is retried here.
  lock_wait=300
  deadline=$((SECONDS + lock_wait))
  until out=$($sudo apt-get -o DPkg::Lock::Timeout=$lock_wait update -qq 2>&1); do
    if ! grep -q "Could not get lock" <<<"$out" || [ "$SECONDS" -ge "$deadline" ]; then
      echo "$out" >&2
      exit 1
    fi
    echo "setup: another apt process holds its lock; waiting (up to ${lock_wait}s)" >&2
    sleep 5
  done
  [ -z "$out" ] || echo "$out" >&2
  $sudo apt-get -o DPkg::Lock::Timeout=$lock_wait install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# By content, not mtime: a checkout newer than node_modules is no reason to reinstall.
if [ ! -x node_modules/.bin/bun ] || ! node scripts/npm-deps-ok.cjs; then
  echo "setup: installing npm dependencies" >&2
  npm ci --no-audit --no-fund --loglevel=error
fi

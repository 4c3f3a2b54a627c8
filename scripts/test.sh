#!/usr/bin/env bash
# The test command (`npm test`, run by .ci/run): the stages setup, lint (Biome: format and lint
# check), tsc, unit+integration, fault and cluster, in that order. A failed stage does not stop the
# later ones (a full run is ~7-10 min, far inside CI's 90, and every stage's result is worth more than stopping early), except setup: without
# its packages nothing else can run, so a failed setup skips the rest. Ends with a summary of what
# ran, passed, failed and was skipped, then `N passed, N failed` summed over the bun test stages.
# Exits non-zero if any stage failed. Arguments pick stages (e.g. `scripts/test.sh setup cluster`);
# the others are reported as not selected.
set -uo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/node_modules/.bin:$PATH"

STAGES=(setup lint tsc unit+integration fault cluster)
command_of() {
  case "$1" in
    setup) echo "bash scripts/setup.sh --test" ;;
    lint) echo "biome ci --colors=off ." ;;
    tsc) echo "tsc --noEmit -p ." ;;
    unit+integration) echo "bun test --timeout 120000 test/unit test/integration" ;;
    fault) echo "bun test --timeout 600000 test/fault" ;;
    cluster) echo "bun test --timeout 600000 test/cluster" ;;
  esac
}

selected=("$@")
[ ${#selected[@]} -gt 0 ] || selected=("${STAGES[@]}")
for name in "${selected[@]}"; do
  [ -n "$(command_of "$name")" ] || { echo "test.sh: unknown stage '$name' (stages: ${STAGES[*]})" >&2; exit 2; }
done
is_selected() {
  local s
  for s in "${selected[@]}"; do [ "$s" = "$1" ] && return 0; done
  return 1
}

log=$(mktemp -t telemetry-test-XXXXXX)
trap 'rm -f "$log"' EXIT
declare -A result detail
passed=0 failed=0 any_failed=0 setup_failed=0

for name in "${STAGES[@]}"; do
  if ! is_selected "$name"; then
    result[$name]="skipped (not selected)"
    continue
  fi
  if [ $setup_failed -eq 1 ]; then
    result[$name]="skipped (setup failed)"
    continue
  fi
  cmd=$(command_of "$name")
  echo "=== stage $name: $cmd"
  started=$SECONDS
  $cmd 2>&1 | tee "$log"
  rc=${PIPESTATUS[0]}
  took="$((SECONDS - started))s"
  if [[ $cmd == bun\ test* ]]; then
    # bun test ends with lines like " 188 pass" and " 1 fail".
    p=$(grep -E '^ *[0-9]+ pass$' "$log" | tail -1 | tr -dc '0-9')
    f=$(grep -E '^ *[0-9]+ fail$' "$log" | tail -1 | tr -dc '0-9')
    passed=$((passed + ${p:-0}))
    failed=$((failed + ${f:-0}))
    detail[$name]=", ${p:-?} pass, ${f:-?} fail"
  fi
  if [ "$rc" -eq 0 ]; then
    result[$name]="passed ($took${detail[$name]:-})"
  else
    result[$name]="FAILED (exit $rc, $took${detail[$name]:-})"
    any_failed=1
    [ "$name" = setup ] && setup_failed=1
  fi
done

echo
echo "=== test stages"
for name in "${STAGES[@]}"; do printf '  %-17s %s\n' "$name" "${result[$name]}"; done
echo "$passed passed, $failed failed"
exit $any_failed

#!/usr/bin/env bash
# Runs the mixed-strategy contention test (8 processes, half 'os' half
# 'lockfile', 500 locked increments each, O_EXCL "occupied" marker) N times in
# a row, the second half of the rounds with two CPU hogs (`yes > /dev/null`).
# Every round must pass: 0 overlaps, 0 lost increments.
#   bash scripts/mixed-rounds.sh [rounds=50]
set -uo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-50}
passed=0
for i in $(seq 1 "$rounds"); do
  hogs=()
  if [ "$i" -gt $((rounds / 2)) ]; then
    yes > /dev/null & hogs+=($!)
    yes > /dev/null & hogs+=($!)
  fi
  if npx vitest run __test__/contention.test.mjs -t mixed > /tmp/flm-mixed-round.log 2>&1; then
    passed=$((passed + 1)); verdict=ok
  else
    verdict=FAILED; cat /tmp/flm-mixed-round.log
  fi
  if [ "${#hogs[@]}" -gt 0 ]; then kill "${hogs[@]}"; wait "${hogs[@]}" 2>/dev/null; fi
  echo "round $i (${#hogs[@]} CPU hogs): $verdict"
  [ "$verdict" = ok ] || break
done
echo "$passed of $rounds rounds passed"
[ "$passed" -eq "$rounds" ]

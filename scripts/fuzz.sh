#!/usr/bin/env bash
# Fuzzes the parsers that read bytes from the network (and the config): each target runs
# for MINUTES (default 10) from the committed seed corpus, JOBS at a time (default 2), and
# the script prints a table of executions and crashes. Not part of CI.
#
#   scripts/fuzz.sh                 # every target, 10 minutes each
#   MINUTES=1 scripts/fuzz.sh scram # one target, one minute
#
# A crash leaves its input under fuzz/artifacts/TARGET/; turn it into a regression test
# (tests/ or the module's unit tests) before fixing it.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
MINUTES=${MINUTES:-10}
JOBS=${JOBS:-2}
TARGETS=("$@")
[ ${#TARGETS[@]} -gt 0 ] || TARGETS=(pg_relay my_relay pg_startup my_handshake scram config guardrail)

rustup toolchain list | grep -q nightly || rustup toolchain install nightly --profile minimal
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked

echo "building ${TARGETS[*]}" >&2
for t in "${TARGETS[@]}"; do cargo +nightly fuzz build -O "$t"; done

mkdir -p logs
run_one() {
  local t=$1 work=corpus/$1
  mkdir -p "$work"
  cargo +nightly fuzz run -O "$t" "$work" -- -max_total_time=$((MINUTES * 60)) \
    -print_final_stats=1 -rss_limit_mb=2048 -timeout=10 >"logs/$t.log" 2>&1
  echo $? >"logs/$t.rc"
}
running=0
for t in "${TARGETS[@]}"; do
  run_one "$t" &
  running=$((running + 1))
  if [ "$running" -ge "$JOBS" ]; then wait -n; running=$((running - 1)); fi
done
wait

printf '%-14s %8s %14s %10s %s\n' target minutes executions exec/s result
for t in "${TARGETS[@]}"; do
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "logs/$t.log" | grep -o '[0-9]*$' | tail -1)
  rate=$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "logs/$t.log" | grep -o '[0-9]*$' | tail -1)
  rc=$(cat "logs/$t.rc")
  result=ok
  [ "$rc" = 0 ] || result="CRASH (rc $rc; see fuzz/logs/$t.log and fuzz/artifacts/$t/)"
  printf '%-14s %8s %14s %10s %s\n' "$t" "$MINUTES" "${execs:-?}" "${rate:-?}" "$result"
done

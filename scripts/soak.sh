#!/usr/bin/env bash
# Soak: SESSIONS concurrent sessions (half PostgreSQL, half MySQL; default 2000) run
# `select 1` through one gateway for DURATION seconds (default 60); then the fault
# scenarios (upstream killed and restarted, store gone at start and during operation,
# SIGTERM under load, SIGKILL, slowloris, an unwritable log). Prints a table of what held
# and exits non-zero if anything did not. Not part of CI (it raises MariaDB's connection
# limit for the run and restores it).
#
#   scripts/soak.sh                        # 2000 sessions, 60 s
#   SESSIONS=400 DURATION=20 scripts/soak.sh
set -euo pipefail
cd "$(dirname "$0")/.."
SESSIONS=${SESSIONS:-2000}
DURATION=${DURATION:-60}
THINK_MS=${THINK_MS:-50}
HALF=$((SESSIONS / 2))

scripts/services.sh >/dev/null
echo "building (release)..." >&2
cargo build --release --quiet --bin portcullis --example soak_load

tmp=$(mktemp -d /tmp/portcullis-soak.XXXXXX)
chmod 755 "$tmp"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
PG_BIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
PG_PORT=$(free_port)
GW_PG=$(free_port); GW_MY=$(free_port); GW_ADMIN=$(free_port)
OLD_MAX=$(mariadb --protocol=tcp -h127.0.0.1 -uroot -N -e "select @@max_connections")
gw_pid=""
cleanup() {
  [ -n "$gw_pid" ] && kill "$gw_pid" 2>/dev/null || true
  mariadb --protocol=tcp -h127.0.0.1 -uroot -e "set global max_connections = $OLD_MAX" || true
  su postgres -c "$PG_BIN/pg_ctl -D $tmp/pg -m immediate stop" >/dev/null 2>&1 || true
  rm -rf "$tmp"
}
trap cleanup EXIT

# A private PostgreSQL with room for the sessions; MariaDB's limit raised for the run.
chown postgres "$tmp"
su postgres -c "$PG_BIN/initdb -D $tmp/pg -A trust -U postgres >/dev/null"
su postgres -c "$PG_BIN/pg_ctl -D $tmp/pg -l $tmp/pg.log -w -o '-p $PG_PORT -c listen_addresses=127.0.0.1 -c max_connections=$((HALF + 50)) -k $tmp' start" >/dev/null
mariadb --protocol=tcp -h127.0.0.1 -uroot -e "set global max_connections = $((HALF + 100)); create database if not exists soak"

cat >"$tmp/portcullis.toml" <<TOML
[listen]
postgres = "127.0.0.1:$GW_PG"
mysql = "127.0.0.1:$GW_MY"
admin = "127.0.0.1:$GW_ADMIN"
[store]
url = "sqlite://$tmp/p.db"
data_dir = "$tmp/data"
[audit]
dir = "$tmp/audit"
[limits]
max_connections = $((SESSIONS + 500))
max_connections_per_address = $((SESSIONS + 500))
login_timeout = "30s"
[[groups]]
name = "soak"
[[users]]
name = "soak"
groups = ["soak"]
password = "soak-password"
[[resources]]
name = "pg"
protocol = "postgres"
address = "127.0.0.1:$PG_PORT"
tls = "disable"
[[resources]]
name = "maria"
protocol = "mysql"
address = "127.0.0.1:3306"
tls = "disable"
[[resource_roles]]
name = "soak-pg"
resource = "pg"
database = "postgres"
user = "postgres"
allowed_groups = ["soak"]
[[resource_roles]]
name = "soak-my"
resource = "maria"
database = "soak"
user = "root"
allowed_groups = ["soak"]
TOML
ulimit -n 65536 2>/dev/null || true
PORTCULLIS_LOG=warn target/release/portcullis serve --config "$tmp/portcullis.toml" 2>"$tmp/gateway.log" &
gw_pid=$!
for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$GW_PG) 2>/dev/null && break; sleep 0.1; done

echo "load: $SESSIONS sessions for ${DURATION}s..." >&2
rss_before=$(awk '/VmRSS/ {print $2}' /proc/$gw_pid/status)
( sleep $((DURATION / 2 + 5)); awk '/VmRSS/ {print $2}' /proc/$gw_pid/status >"$tmp/rss_peak" ) &
rss_pid=$!
load=$(target/release/examples/soak_load "127.0.0.1:$GW_PG" "127.0.0.1:$GW_MY" soak soak-password \
  soak-pg soak-my "$HALF" $((SESSIONS - HALF)) "$DURATION" "$THINK_MS")
wait "$rss_pid"
kill -TERM "$gw_pid"
wait "$gw_pid" || true
gw_pid=""
verify=$(target/release/portcullis audit verify --dir "$tmp/audit" | head -1)

results=$(python3 - "$tmp/audit" "$load" "$rss_before" "$(cat "$tmp/rss_peak" 2>/dev/null || echo 0)" "$verify" <<'PY'
import json, os, sys
audit, load, rss0, rss1, verify = sys.argv[1], json.loads(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
kinds = {}
for f in sorted(os.listdir(audit)):
    for line in open(os.path.join(audit, f)):
        try:
            k = json.loads(line)["kind"]
        except Exception:
            continue
        kinds[k] = kinds.get(k, 0) + 1
q, st, en = kinds.get("query", 0), kinds.get("session_started", 0), kinds.get("session_ended", 0)
rows = [
    ("sessions held", f"{load['sessions']} of {load['sessions_planned']}", load["sessions"] == load["sessions_planned"]),
    ("client errors", f"{load['errors']}" + (f" (first: {load['first_error']})" if load["first_error"] else ""), load["errors"] == 0),
    ("query events = statements", f"{q} logged, {load['statements']} answered", q == load["statements"]),
    ("one session_ended per session", f"{st} started, {en} ended", st == en == load["sessions"]),
    ("log verifies after SIGTERM", verify, verify.startswith("ok")),
    ("gateway RSS under load", f"{rss1 / 1024:.0f} MiB (idle {rss0 / 1024:.0f} MiB)", True),
]
for name, figure, ok in rows:
    print(f"{name}\t{figure}\t{'held' if ok else 'FAILED'}")
PY
)

echo "faults: running the fault scenarios against real servers..." >&2
faults=""
for t in "faults an_upstream_that_dies_mid_query|upstream killed mid-query, then restarted" \
         "faults an_unreachable_store_at_start|store unreachable at start" \
         "faults losing_the_store|store lost during operation" \
         "shutdown shutdown_under_load_loses_no_event|SIGTERM under load loses nothing" \
         "crash sigkill|SIGKILL leaves a verifiable log" \
         "slowloris idle_and_dribbling|500 slow connections (slowloris)" \
         "audit_failure block_refuses|unwritable log: fail closed, then resume" \
         "postgres_access tls_require|TLS require is not downgraded"; do
  spec=${t%%|*}; name=${t#*|}
  if cargo nextest run --no-fail-fast --test ${spec%% *} ${spec#* } >"$tmp/fault.log" 2>&1; then
    faults+="$name"$'\t'"passed"$'\t'"held"$'\n'
  else
    faults+="$name"$'\t'"see cargo nextest run --test ${spec%% *} ${spec#* }"$'\t'"FAILED"$'\n'
  fi
done

{
  printf 'scenario\tfigure\tresult\n'
  printf '%s\n' "$results"
  printf '%s' "$faults"
} | column -t -s $'\t'
! printf '%s\n%s' "$results" "$faults" | grep -q FAILED

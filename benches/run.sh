#!/usr/bin/env bash
# One command for the side-by-side benchmarks: builds release binaries, makes sure the
# local servers and PgBouncer are there, then runs benches/run.py (see its header).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/services.sh
scripts/test-tools.sh
for tool in pgbouncer sysbench strace; do
  command -v "$tool" >/dev/null || { apt-get update -qq && apt-get install -y -qq "$tool" >/dev/null; }
done
cargo build --release --bin portcullis --example bare_relay --example login_rate
exec python3 benches/run.py "$@"

#!/usr/bin/env bash
# One command for the side-by-side benchmarks: builds release binaries, makes sure the
# local servers and PgBouncer are there, then runs benches/run.py (see its header).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/services.sh
command -v pgbouncer >/dev/null || { apt-get update -qq && apt-get install -y -qq pgbouncer >/dev/null; }
cargo build --release --bin portcullis --example bare_relay
exec python3 benches/run.py "$@"

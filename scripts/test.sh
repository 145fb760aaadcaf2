#!/usr/bin/env bash
# The test command: start (installing if needed) the local servers, then run every test.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/services.sh
scripts/test-tools.sh
if cargo nextest --version >/dev/null 2>&1; then
  exec cargo nextest run --no-fail-fast "$@"
else
  exec cargo test --no-fail-fast "$@"
fi

#!/usr/bin/env bash
# Retakes the console screenshots in docs/console/ from the browser tests (real headless
# Chromium against a real gateway), so the README's pictures stay current.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/services.sh
scripts/test-tools.sh
PORTCULLIS_SCREENSHOTS="$PWD/docs/console" cargo nextest run --no-fail-fast console::
ls docs/console

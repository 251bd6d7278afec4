#!/usr/bin/env bash
# The dashboard's browser test (dashboard.test.mjs), run by ctest.
# usage: run.sh RATCHET_BIN FIXTURE_BIN SCREENSHOT_DIR
# Needs Node.js 20+ and Debian's chromium (scripts/install-deps.sh installs
# them); playwright-core comes from the npm registry at the version
# package-lock.json pins (scripts/test.sh installs it; this does when missing).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
if [ ! -d "$here/node_modules/playwright-core" ]; then
  (cd "$here" && npm ci --no-audit --no-fund --loglevel=error)
fi
exec node "$here/dashboard.test.mjs" "$@"

#!/usr/bin/env bash
# A real browser for tests/test_leaderboard_browser.py: Debian's chromium (+ driver) and the
# playwright Python package, which drives /usr/bin/chromium. Never `playwright install`: it
# downloads a browser build of its own. Idempotent; PYTHON defaults to the active `python`.
set -euo pipefail
PYTHON="${PYTHON:-$(command -v python || command -v python3)}"

if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then
  export DEBIAN_FRONTEND=noninteractive
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq chromium chromium-driver >/dev/null
fi
if ! "$PYTHON" -c "import playwright.sync_api" 2>/dev/null; then
  "$PYTHON" -m pip install -q playwright
fi
/usr/bin/chromium --version 2>/dev/null

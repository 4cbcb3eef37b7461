#!/usr/bin/env bash
# What the browser tests (tests/browser) need, called by .ci/run after `pip install -e '.[dev]'`
# (which brings the Python playwright package):
#   - Debian's Chromium at /usr/bin/chromium (Playwright drives it; no browser is downloaded,
#     so never `playwright install`);
#   - axe-core from npm (`npm ci`, pinned by package-lock.json), injected into every page;
#   - a check that the committed NHS.UK frontend files match the pinned nhsuk-frontend.
set -euo pipefail
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive

apt_install() {
  apt-get update -qq
  apt-get install -y -qq "$@" >/dev/null
}

if [ ! -x /usr/bin/chromium ]; then
  echo "installing Debian chromium"
  apt_install chromium
fi
if ! command -v npm >/dev/null 2>&1; then
  echo "installing Node.js and npm"
  apt_install nodejs npm
fi

npm ci --no-audit --no-fund --loglevel=error
python scripts/vendor_nhsuk.py --check
python -c "import playwright.sync_api" # installed by pip install -e '.[dev]'
/usr/bin/chromium --version 2>/dev/null || true

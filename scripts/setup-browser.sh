#!/usr/bin/env bash
# The browser the console's tests drive: Debian's chromium (headless), driven by Python's
# playwright package pointed at /usr/bin/chromium. Playwright's own browser download is never
# used (`playwright install` is not run): CI machines have no internet beyond the package
# registries. Safe to run again: every step skips what is already in place.
set -euo pipefail

if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "setup-browser: installing Debian's chromium"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null
  else
    echo "setup-browser: chromium is missing and cannot be installed here (needs Debian and root)" >&2
    exit 1
  fi
fi

if ! python3 -c "import playwright" >/dev/null 2>&1; then
  echo "setup-browser: installing the playwright Python package (no browser download)"
  PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 python3 -m pip install --quiet --disable-pip-version-check "playwright>=1.40"
fi
echo "setup-browser: $(chromium --version 2>/dev/null || echo chromium) ready"

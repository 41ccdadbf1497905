#!/usr/bin/env bash
# Make sure Debian's headless-capable Chromium and its WebDriver are installed:
# /usr/bin/chromium and /usr/bin/chromedriver. Installs Debian's `chromium` and
# `chromium-driver` packages when run as root; never downloads a browser of its own.
# Exit codes: 0 installed (or already there), 3 missing and not root (cannot install),
# anything else: the installation failed.
set -euo pipefail

installed() { [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; }

if installed; then exit 0; fi

if [ "$(id -u)" -ne 0 ]; then
  echo "chromium/chromium-driver are not installed and this is not root: install Debian's" \
       "'chromium' and 'chromium-driver' packages." >&2
  exit 3
fi

echo "installing chromium and chromium-driver (Debian packages)…" >&2
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
  chromium chromium-driver fonts-dejavu-core >/dev/null
installed || { echo "chromium or chromedriver still missing after apt-get install" >&2; exit 1; }

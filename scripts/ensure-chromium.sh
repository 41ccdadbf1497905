#!/usr/bin/env bash
# Make sure Debian's headless-capable Chromium and its WebDriver are installed:
# /usr/bin/chromium and /usr/bin/chromedriver. Installs Debian's `chromium` and
# `chromium-driver` packages when run as root; never downloads a browser of its own.
# Exit codes: 0 installed (or already there), 3 missing and not root (cannot install),
# anything else: the installation failed.
set -euo pipefail

installed() { [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; }

if installed; then exit 0; fi

"$(dirname "$0")/apt-install.sh" "chromium and chromium-driver" \
  chromium chromium-driver fonts-dejavu-core
installed || { echo "chromium or chromedriver still missing after apt-get install" >&2; exit 1; }

#!/usr/bin/env bash
# Make sure Prometheus's `promtool` is installed (it checks and unit-tests the alerting
# rules of deploy/observability/): installs Debian's `prometheus` package when run as
# root; never downloads a binary of its own. Only /usr/bin/promtool is used; the package's
# server is kept from starting (it would take port 9090).
# Exit codes: 0 installed (or already there), 3 missing and not root (cannot install),
# anything else: the installation failed.
set -euo pipefail

installed() { command -v promtool >/dev/null 2>&1; }

if installed; then exit 0; fi

policy=/usr/sbin/policy-rc.d
if [ "$(id -u)" -eq 0 ] && [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' > "$policy"  # "no service starts" while installing
  chmod +x "$policy"
  trap 'rm -f "$policy"' EXIT
fi
"$(dirname "$0")/apt-install.sh" promtool prometheus
installed || { echo "promtool still missing after apt-get install" >&2; exit 1; }

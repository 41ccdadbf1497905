#!/usr/bin/env bash
# Make sure Prometheus's `promtool` is installed (it checks and unit-tests the alerting
# rules in deploy/observability/). Installs Debian's `prometheus` package when run as
# root; never downloads a binary of its own. The package's Prometheus server is not
# started (policy-rc.d) nor used: only /usr/bin/promtool is.
# Exit codes: 0 installed (or already there), 3 missing and not root (cannot install),
# anything else: the installation failed.
set -euo pipefail

installed() { command -v promtool >/dev/null 2>&1; }

if installed; then exit 0; fi

if [ "$(id -u)" -ne 0 ]; then
  echo "promtool is not installed and this is not root: install Debian's 'prometheus'" \
       "package (it provides /usr/bin/promtool)." >&2
  exit 3
fi

echo "installing promtool (Debian package prometheus)…" >&2
apt-get update -qq
# The package would start its server (port 9090, used by the services' HEALTH_PORT):
# forbid service starts for the duration of the installation.
policy=/usr/sbin/policy-rc.d
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' > "$policy"
  chmod +x "$policy"
  trap 'rm -f "$policy"' EXIT
fi
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null
installed || { echo "promtool still missing after apt-get install" >&2; exit 1; }

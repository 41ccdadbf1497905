#!/usr/bin/env bash
# Install Debian packages for the scripts/ensure-*.sh: as root only, `apt-get update` first,
# no recommended packages. Usage: apt-install.sh "what they provide" PACKAGE...
# Exit codes: 0 installed, 3 not root (cannot install; says what to install), anything
# else: apt-get failed.
set -euo pipefail

what=$1
shift
if [ "$(id -u)" -ne 0 ]; then
  echo "$what: not installed, and this is not root: install Debian's package(s) $*." >&2
  exit 3
fi
echo "installing $what (Debian package(s) $*)…" >&2
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null

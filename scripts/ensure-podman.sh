#!/usr/bin/env bash
# Make sure podman (with runc), debootstrap and iptables (for podman's bridge network) are
# installed: the missing ones of Debian's packages are installed when run as root. Nothing
# in /etc/containers is changed: the tests keep podman's configuration in their own folder
# (tests/containers/podman.py, docs/operations.md).
# Exit codes: 0 installed (or already there), 3 missing and not root (cannot install),
# anything else: the installation failed.
set -euo pipefail

COMMANDS=(podman runc debootstrap iptables)  # each comes in the Debian package of its name

missing() { for name in "${COMMANDS[@]}"; do command -v "$name" >/dev/null 2>&1 || echo "$name"; done; }

mapfile -t packages < <(missing)
[ "${#packages[@]}" -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
  echo "not installed, and this is not root: Debian's ${packages[*]}" >&2
  exit 3
fi

echo "installing ${packages[*]} (Debian packages)…" >&2
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
  "${packages[@]}" conmon netavark aardvark-dns >/dev/null
mapfile -t still < <(missing)
if [ "${#still[@]}" -ne 0 ]; then
  echo "still missing after apt-get install: ${still[*]}" >&2
  exit 1
fi

#!/usr/bin/env bash
# Make sure podman (with runc), debootstrap and iptables (for podman's bridge network) are
# installed: Debian's packages, installed when run as root. Nothing in /etc/containers is changed: the project's
# container configuration lives in .cache/containers (tools/containers.py).
# Exit codes: 0 installed (or already there), 3 missing and not root (cannot install),
# anything else: the installation failed.
set -euo pipefail

installed() {
  command -v podman >/dev/null 2>&1 && command -v runc >/dev/null 2>&1 \
    && command -v debootstrap >/dev/null 2>&1 && command -v iptables >/dev/null 2>&1
}

if installed; then exit 0; fi

if [ "$(id -u)" -ne 0 ]; then
  echo "podman, runc, debootstrap or iptables is not installed and this is not root:" \
       "install Debian's 'podman', 'runc', 'debootstrap' and 'iptables' packages." >&2
  exit 3
fi

echo "installing podman, runc, debootstrap and iptables (Debian packages)…" >&2
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
  podman runc debootstrap iptables conmon netavark aardvark-dns >/dev/null
installed || { echo "podman, runc, debootstrap or iptables still missing after apt-get install" >&2
               exit 1; }

#!/usr/bin/env bash
# The throughput benchmarks use wrk (Debian's package) when it is there; install it when we
# are root, otherwise say that the Python load generator (bench/loadgen.py) stands in.
set -euo pipefail
command -v wrk >/dev/null 2>&1 && exit 0
if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing wrk (Debian package)…"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null && exit 0
fi
echo "wrk is not installed: the closed-loop runs use bench/loadgen.py instead" >&2

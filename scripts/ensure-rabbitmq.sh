#!/usr/bin/env bash
# Make sure a RabbitMQ broker answers on 127.0.0.1:5672: use a running one, else start
# the local rabbitmq-server, else install Debian's package first (needs root).
set -euo pipefail

port_open() { (exec 3<>/dev/tcp/127.0.0.1/5672) 2>/dev/null; }

if port_open; then exit 0; fi

if ! command -v rabbitmq-server >/dev/null 2>&1; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "RabbitMQ is not running and not installed; install Debian's rabbitmq-server." >&2
    exit 1
  fi
  echo "installing rabbitmq-server (Debian package)…"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq rabbitmq-server >/dev/null
fi

echo "starting rabbitmq-server…"
rabbitmq-server -detached
for _ in $(seq 1 120); do
  if port_open; then exit 0; fi
  sleep 0.5
done
echo "RabbitMQ did not come up on 127.0.0.1:5672 within 60 s" >&2
exit 1

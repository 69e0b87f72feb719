#!/usr/bin/env bash
# Makes sure a RabbitMQ broker answers for the integration tests.
#
# If nothing answers on RELAY_AMQP_URL's host and port (default
# 127.0.0.1:5672), it starts the local rabbitmq-server if one is installed,
# installs it from Debian's packages if it can (root on Debian), and
# otherwise fails with a message that says how to get one.
set -euo pipefail

url="${RELAY_AMQP_URL:-amqp://guest:guest@127.0.0.1:5672/}"
hostport="${url#*://}"; hostport="${hostport#*@}"; hostport="${hostport%%/*}"
host="${hostport%:*}"; port="${hostport##*:}"
[ "$host" = "$hostport" ] && port=5672
[ -n "$host" ] || host=127.0.0.1

answers() { (exec 3<>"/dev/tcp/$host/$port") 2>/dev/null; }

wait_for_broker() {
  for _ in $(seq 1 120); do
    answers && return 0
    sleep 0.5
  done
  return 1
}

if answers; then
  echo "broker: RabbitMQ answers on $host:$port"
  exit 0
fi

case "$host" in
  127.*|localhost) ;;
  *) echo "broker: nothing answers on $host:$port (RELAY_AMQP_URL); start that broker, or unset RELAY_AMQP_URL to use a local one" >&2; exit 1 ;;
esac

if ! command -v rabbitmq-server >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "broker: installing rabbitmq-server from Debian's packages"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq rabbitmq-server >/dev/null
  else
    echo "broker: no RabbitMQ on $host:$port and rabbitmq-server is not installed." >&2
    echo "        Install it (Debian: sudo apt-get install rabbitmq-server) and run 'rabbitmq-server -detached'," >&2
    echo "        or point RELAY_AMQP_URL at a broker you have." >&2
    exit 1
  fi
fi

echo "broker: starting rabbitmq-server"
if [ "$(id -u)" = 0 ] || [ "$(id -un)" = rabbitmq ]; then
  rabbitmq-server -detached || true
else
  echo "broker: run 'sudo rabbitmq-server -detached' (starting it needs root or the rabbitmq user)" >&2
  exit 1
fi
if wait_for_broker; then
  echo "broker: RabbitMQ answers on $host:$port"
else
  echo "broker: rabbitmq-server did not answer on $host:$port within 60s; see /var/log/rabbitmq" >&2
  exit 1
fi

#!/usr/bin/env bash
# Starts throwaway PostgreSQL and Redis servers on loopback for the test suite, from Debian's packages,
# and exports TEST_DATABASE_URL / TEST_REDIS_URL. Sourced by .ci/run (as root, as CI runs).
set -euo pipefail

PG_PORT=55432
REDIS_PORT=56379

if ! command -v redis-server >/dev/null || ! ls -d /usr/lib/postgresql/*/bin >/dev/null 2>&1; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql redis-server >/dev/null
fi

if ! redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1; then
  redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no --daemonize yes \
    --pidfile /tmp/relay-ci-redis.pid --logfile /tmp/relay-ci-redis.log
fi

PGBIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
PGDATA=/tmp/relay-ci-pgdata
if ! su postgres -s /bin/sh -c "$PGBIN/pg_isready -h 127.0.0.1 -p $PG_PORT" >/dev/null 2>&1; then
  if [ ! -f "$PGDATA/PG_VERSION" ]; then
    install -d -o postgres -g postgres -m 700 "$PGDATA"
    su postgres -s /bin/sh -c "$PGBIN/initdb -D $PGDATA -U postgres --auth=trust -E UTF8" >/dev/null
  fi
  su postgres -s /bin/sh -c "$PGBIN/pg_ctl -D $PGDATA -l $PGDATA/server.log -o '-c listen_addresses=127.0.0.1 -p $PG_PORT -k /tmp' -w start" >/dev/null
fi

for _ in $(seq 1 50); do
  redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break
  sleep 0.1
done
redis-cli -p "$REDIS_PORT" ping >/dev/null
su postgres -s /bin/sh -c "$PGBIN/pg_isready -h 127.0.0.1 -p $PG_PORT" >/dev/null

export TEST_DATABASE_URL="postgres://postgres@127.0.0.1:$PG_PORT/postgres"
export TEST_REDIS_URL="redis://127.0.0.1:$REDIS_PORT"
echo "PostgreSQL on 127.0.0.1:$PG_PORT and Redis on 127.0.0.1:$REDIS_PORT are up."

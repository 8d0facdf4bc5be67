#!/usr/bin/env bash
# Starts throwaway PostgreSQL and Redis servers on loopback for the test suite, from Debian's packages, and an
# S3-compatible server (s3rver, a devDependency: run `npm ci` first), and exports TEST_DATABASE_URL,
# TEST_REDIS_URL and TEST_S3_*. Sourced by .ci/run (as root, as CI runs). Also installs nginx (for `nginx -t`).
set -euo pipefail

PG_PORT=55432
REDIS_PORT=56379
S3_PORT=54569
S3_BUCKET=relay-test
RELAY_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

# nginx is not a service here: test/deploy.test.ts runs `nginx -t` on the compose file's load balancer config.
if ! command -v redis-server >/dev/null || ! ls -d /usr/lib/postgresql/*/bin >/dev/null 2>&1 || ! command -v nginx >/dev/null; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql redis-server nginx-light >/dev/null
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

s3_up() { (exec 3<>"/dev/tcp/127.0.0.1/$S3_PORT") 2>/dev/null; }
if ! s3_up; then
  S3RVER="$RELAY_ROOT/node_modules/s3rver/bin/s3rver.js"
  if [ ! -f "$S3RVER" ]; then
    echo "s3rver is not installed: run \`npm ci\` in $RELAY_ROOT first." >&2
    return 1 2>/dev/null || exit 1
  fi
  mkdir -p /tmp/relay-ci-s3
  # s3rver's fixed credentials are S3RVER / S3RVER (it checks the access key id, not SigV4 signatures).
  nohup node "$S3RVER" --directory /tmp/relay-ci-s3 --address 127.0.0.1 --port "$S3_PORT" --silent \
    --configure-bucket "$S3_BUCKET" >/tmp/relay-ci-s3.log 2>&1 &
  disown
fi

for _ in $(seq 1 50); do
  redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break
  sleep 0.1
done
redis-cli -p "$REDIS_PORT" ping >/dev/null
su postgres -s /bin/sh -c "$PGBIN/pg_isready -h 127.0.0.1 -p $PG_PORT" >/dev/null
for _ in $(seq 1 100); do
  s3_up && break
  sleep 0.1
done
s3_up || { echo "s3rver did not start on 127.0.0.1:$S3_PORT; see /tmp/relay-ci-s3.log" >&2; false; }

export TEST_DATABASE_URL="postgres://postgres@127.0.0.1:$PG_PORT/postgres"
export TEST_REDIS_URL="redis://127.0.0.1:$REDIS_PORT"
export TEST_S3_ENDPOINT="http://127.0.0.1:$S3_PORT"
export TEST_S3_BUCKET="$S3_BUCKET"
export TEST_S3_ACCESS_KEY_ID=S3RVER
export TEST_S3_SECRET_ACCESS_KEY=S3RVER
echo "PostgreSQL on 127.0.0.1:$PG_PORT, Redis on 127.0.0.1:$REDIS_PORT and s3rver on 127.0.0.1:$S3_PORT are up."

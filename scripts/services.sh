#!/usr/bin/env bash
# Start the local services the test suite talks to, idempotently: PostgreSQL on 127.0.0.1:5432
# (the routing log's second backend) and Redis on 127.0.0.1:6379 (shared per-model state, keeping
# nothing on disk). Nothing happens for a service that already answers.
# Exit status 1 names each service that could not be brought up (the tests that need it fail,
# they are never skipped); bootstrap.sh only warns, so a machine without them still runs modelyard.
set -uo pipefail

missing=()

wait_for() {  # wait_for NAME CHECK...: up to 10 s for CHECK to succeed
  local name=$1; shift
  for _ in $(seq 50); do "$@" >/dev/null 2>&1 && return 0; sleep 0.2; done
  missing+=("$name")
  return 1
}

# PostgreSQL: the Debian cluster this machine kind ships (trust auth on loopback)
pg_up() { pg_isready -q -h 127.0.0.1 -p 5432; }
if command -v pg_isready >/dev/null 2>&1; then
  if ! pg_up; then
    if command -v pg_ctlcluster >/dev/null 2>&1 && [ -d /etc/postgresql ]; then
      version=$(ls /etc/postgresql | sort -V | tail -1)
      pg_ctlcluster --skip-systemctl-redirect "$version" main start >/dev/null 2>&1 || true
    fi
    wait_for "PostgreSQL (127.0.0.1:5432)" pg_up
  fi
else
  missing+=("PostgreSQL (pg_isready not installed)")
fi

# Redis: the command this machine kind starts it with (loopback, nothing kept on disk)
redis_up() { redis-cli -h 127.0.0.1 -p 6379 ping | grep -q PONG; }
if command -v redis-server >/dev/null 2>&1 && command -v redis-cli >/dev/null 2>&1; then
  if ! redis_up; then
    dir=/var/lib/redis; log=/var/log/redis/ci.log
    mkdir -p "$dir" "$(dirname "$log")" 2>/dev/null || true
    if [ ! -w "$dir" ] || ! touch "$log" 2>/dev/null; then  # not root: a private place
      dir="${TMPDIR:-/tmp}/modelyard-redis"; mkdir -p "$dir"; log="$dir/redis.log"
    fi
    redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
      --dir "$dir" --logfile "$log" >/dev/null 2>&1 || true
    wait_for "Redis (127.0.0.1:6379)" redis_up
  fi
else
  missing+=("Redis (redis-server not installed)")
fi

if [ ${#missing[@]} -gt 0 ]; then
  printf 'services: not running: %s\n' "${missing[@]}" >&2
  exit 1
fi

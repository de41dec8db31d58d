#!/usr/bin/env bash
# A throwaway PostgreSQL for the store tests: a new cluster in a temporary folder
# (initdb/pg_ctl from /usr/lib/postgresql/*/bin, Debian's `postgresql` package), on a
# free loopback port, trust authentication for the `callwatch` superuser, no fsync.
# When run as root the server runs as the `postgres` user (else `nobody`): initdb
# refuses root.
#
#   scripts/pg_test.sh CMD [ARGS...]
#       starts the cluster, runs CMD with CALLWATCH_TEST_PG_URL exported, stops and
#       removes the cluster, exits with CMD's status. E.g.
#       scripts/pg_test.sh cargo test --locked --test store_suite
#   scripts/pg_test.sh --start [PID]
#       starts the cluster and prints its URL on stdout; it is stopped and removed once
#       process PID (default: the caller) has exited. The store tests use this when
#       CALLWATCH_TEST_PG_URL is not set.
#
# PG_TEST_DURABLE=1 keeps PostgreSQL's durable defaults (fsync, synchronous_commit,
# full_page_writes on): for benchmarks (scripts/bench_store.sh), not for tests.
#
# Exit status 3: no PostgreSQL server binaries (apt-get install postgresql).
set -euo pipefail

bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
if [ -z "$bindir" ] || [ ! -x "$bindir/initdb" ]; then
  echo "pg_test: no PostgreSQL server binaries under /usr/lib/postgresql/*/bin (apt-get install postgresql)" >&2
  exit 3
fi

run_as=()
owner=""
if [ "$(id -u)" -eq 0 ]; then
  owner=postgres
  id -u postgres >/dev/null 2>&1 || owner=nobody
  run_as=(runuser -u "$owner" --)
fi

dir=$(mktemp -d /tmp/callwatch-pg.XXXXXX)
chmod 700 "$dir"
[ -n "$owner" ] && chown "$owner" "$dir"

free_port() {
  if command -v python3 >/dev/null 2>&1; then
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
  else
    echo $((20000 + RANDOM % 30000))
  fi
}

pg_stop() {
  "${run_as[@]}" "$bindir/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$dir"
}

if ! "${run_as[@]}" "$bindir/initdb" -D "$dir/data" -U callwatch --auth=trust -E UTF8 \
  --no-locale >"$dir/initdb.log" 2>&1; then
  cat "$dir/initdb.log" >&2
  rm -rf "$dir"
  exit 1
fi

speed="-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
[ -n "${PG_TEST_DURABLE:-}" ] && speed="-c shared_buffers=256MB"

started=""
for _ in 1 2 3 4 5; do
  port=$(free_port)
  if "${run_as[@]}" "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 30 \
    -o "-c listen_addresses=127.0.0.1 -p $port -k $dir $speed -c max_connections=300" \
    start >/dev/null 2>&1; then
    started=1
    break
  fi
done
if [ -z "$started" ]; then
  cat "$dir/server.log" >&2 || true
  rm -rf "$dir"
  echo "pg_test: the server did not start" >&2
  exit 1
fi
url="postgres://callwatch@127.0.0.1:$port/postgres"

if [ "${1:-}" = "--start" ]; then
  watch_pid="${2:-$PPID}"
  # Stops the cluster once the watched process is gone (closes stdout first, so a
  # caller reading our output sees its end).
  (
    while kill -0 "$watch_pid" 2>/dev/null; do sleep 1; done
    pg_stop
  ) </dev/null >/dev/null 2>&1 &
  disown
  echo "$url"
  exit 0
fi

if [ "$#" -eq 0 ]; then
  echo "usage: $0 CMD [ARGS...] | --start [PID]" >&2
  pg_stop
  exit 2
fi
trap pg_stop EXIT
export CALLWATCH_TEST_PG_URL="$url"
echo "pg_test: PostgreSQL on $url" >&2
set +e
"$@"
status=$?
set -e
exit "$status"

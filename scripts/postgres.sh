# Sourced by scripts/test and scripts/bench: when GATEHOUSE_TEST_POSTGRES is
# unset, starts a throwaway PostgreSQL cluster in a temp dir, as user
# postgres, on a free loopback port, installing Debian's postgresql if
# missing, and exports GATEHOUSE_TEST_POSTGRES; an EXIT trap stops and
# removes the cluster however the sourcing script ends.
if [ -z "${GATEHOUSE_TEST_POSTGRES:-}" ]; then
  echo "== postgres"
  pg_bin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1; }
  if [ ! -x "$(pg_bin)/initdb" ]; then
    if [ "$(id -u)" -ne 0 ]; then
      echo "scripts/${0##*/}: PostgreSQL is not installed: run 'apt-get install postgresql' as root, or set GATEHOUSE_TEST_POSTGRES" >&2
      exit 1
    fi
    echo "scripts/${0##*/}: installing PostgreSQL"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
  fi
  pgbin=$(pg_bin)
  # initdb refuses to run as root.
  as_postgres() {
    if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
  }
  pgdir=$(mktemp -d "${TMPDIR:-/tmp}/gatehouse-pg.XXXXXX")
  stop_postgres() {
    as_postgres "$pgbin/pg_ctl" -D "$pgdir/data" -m immediate stop >/dev/null 2>&1 || true
    rm -rf "$pgdir"
  }
  trap stop_postgres EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  [ "$(id -u)" -ne 0 ] || chown postgres: "$pgdir"
  as_postgres "$pgbin/initdb" -D "$pgdir/data" -A trust -U postgres -E UTF8 --locale=C --no-sync >"$pgdir/initdb.log" 2>&1 ||
    { cat "$pgdir/initdb.log" >&2; exit 1; }
  # Durability is of no use to a throwaway cluster.
  pgopts="-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
  started=
  for _ in 1 2 3 4 5; do
    port=$((20000 + RANDOM % 40000))
    if (echo >"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then continue; fi
    if as_postgres "$pgbin/pg_ctl" -D "$pgdir/data" -w -t 60 -l "$pgdir/log" \
      -o "-c listen_addresses=127.0.0.1 -p $port -k $pgdir $pgopts" start >/dev/null; then
      started=1
      break
    fi
  done
  if [ -z "$started" ]; then
    echo "scripts/${0##*/}: PostgreSQL did not start:" >&2
    cat "$pgdir/log" >&2
    exit 1
  fi
  export GATEHOUSE_TEST_POSTGRES="postgres://postgres@127.0.0.1:$port/postgres?sslmode=disable"
  echo "PostgreSQL $("$pgbin/postgres" --version | awk '{print $3}') on 127.0.0.1:$port"
fi

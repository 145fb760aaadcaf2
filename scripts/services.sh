#!/usr/bin/env bash
# Makes sure the local PostgreSQL (127.0.0.1:5432, user postgres, trust, database `test`)
# and MariaDB (127.0.0.1:3306, root with an empty password, database `test`) that the demo
# and the tests use are running, installing them from Debian's packages when absent.
# Only what the demo needs: the tests' own tools are scripts/test-tools.sh.
set -euo pipefail

say() { printf 'services: %s\n' "$*" >&2; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

apt_updated=0
need_pkg() {
  if [ "$apt_updated" = 0 ]; then
    say "installing $* from Debian packages"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
    apt_updated=1
  fi
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

pg_up() { pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; }
my_up() { mariadb-admin --protocol=tcp -h 127.0.0.1 -P 3306 -uroot ping >/dev/null 2>&1; }

# --- PostgreSQL -------------------------------------------------------------
command -v pg_isready >/dev/null && command -v pgbench >/dev/null || need_pkg postgresql postgresql-contrib postgresql-client
if ! pg_up; then
  version=$(ls /etc/postgresql 2>/dev/null | sort -V | tail -n1)
  if [ -z "$version" ]; then
    need_pkg postgresql
    version=$(ls /etc/postgresql | sort -V | tail -n1)
  fi
  hba=/etc/postgresql/$version/main/pg_hba.conf
  if ! grep -q '^# portcullis-test' "$hba"; then
    say "configuring PostgreSQL $version for local trust auth (test machine only)"
    as_root sh -c "printf '# portcullis-test\nhost all all 127.0.0.1/32 trust\nhost all all ::1/128 trust\nlocal all all trust\n' | cat - '$hba' > '$hba.new' && mv '$hba.new' '$hba'"
  fi
  say "starting PostgreSQL $version"
  as_root pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
  for _ in $(seq 1 30); do pg_up && break; sleep 1; done
fi
pg_up || { say "PostgreSQL did not come up on 127.0.0.1:5432"; exit 1; }
psql -h 127.0.0.1 -U postgres -tAc "SELECT 1 FROM pg_database WHERE datname = 'test'" postgres | grep -q 1 \
  || psql -h 127.0.0.1 -U postgres -c "CREATE DATABASE test" postgres >/dev/null

# --- MariaDB ----------------------------------------------------------------
command -v mariadb >/dev/null && [ -x /usr/sbin/mariadbd ] || need_pkg mariadb-server mariadb-client
if ! my_up; then
  say "starting MariaDB"
  as_root mkdir -p /run/mysqld && as_root chown mysql:mysql /run/mysqld 2>/dev/null || true
  as_root start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd -- --user=mysql
  for _ in $(seq 1 30); do
    my_up && break
    # A fresh Debian install authenticates root by unix socket: allow TCP with no password.
    as_root mariadb -uroot -e "ALTER USER root@localhost IDENTIFIED VIA mysql_native_password USING PASSWORD(''); FLUSH PRIVILEGES" 2>/dev/null || true
    sleep 1
  done
fi
my_up || { say "MariaDB did not come up on 127.0.0.1:3306"; exit 1; }
mariadb --protocol=tcp -h 127.0.0.1 -uroot -e "CREATE DATABASE IF NOT EXISTS test"
say "PostgreSQL and MariaDB are up"

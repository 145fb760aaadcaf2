#!/usr/bin/env bash
# The tools the tests drive, installed when absent: client programs from Debian's packages
# (psql, pgbench, mariadb come with the servers: scripts/services.sh), sysbench, tmux,
# headless Chromium and its WebDriver, a JDK with pgjdbc and Connector/J; Python drivers
# into a virtualenv under target/venv (never the system Python) and Node.js drivers under
# target/node-clients. Neither is in git. Also NATS with JetStream on 127.0.0.1:4222 (the
# log-shipping tests make their own streams). The demo does not need any of this.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

say() { printf 'test-tools: %s\n' "$*" >&2; }
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

command -v sysbench >/dev/null || need_pkg sysbench
# tmux drives the interactive mariadb client (Ctrl-C); headless Chromium and its
# WebDriver drive the web console's browser tests.
command -v tmux >/dev/null || need_pkg tmux
command -v chromium >/dev/null && command -v chromedriver >/dev/null || need_pkg chromium chromium-driver
# JDBC (the drivers BI tools use): a JDK for the source launcher, pgjdbc and MariaDB
# Connector/J from Debian's packages.
command -v javac >/dev/null || need_pkg default-jdk-headless
[ -f /usr/share/java/postgresql.jar ] && [ -f /usr/share/java/mariadb-java-client.jar ] \
  || need_pkg libpostgresql-jdbc-java libmariadb-java

# Python drivers, in a virtualenv the tests run (target/venv/bin/python3).
venv="$root/target/venv"
if [ ! -x "$venv/bin/python3" ]; then
  python3 -m venv "$venv" 2>/dev/null || { need_pkg python3-venv; rm -rf "$venv"; python3 -m venv "$venv"; }
fi
"$venv/bin/python3" -c "import psycopg, pymysql, mysql.connector" 2>/dev/null || {
  say "installing psycopg, PyMySQL and mysql-connector-python (PyPI) into target/venv"
  "$venv/bin/python3" -m pip install -q --disable-pip-version-check "psycopg[binary]" pymysql mysql-connector-python
}

# Node.js drivers (npm), kept under target/.
command -v npm >/dev/null || need_pkg nodejs npm
node_dir="$root/target/node-clients"
[ -d "$node_dir/node_modules/pg" ] && [ -d "$node_dir/node_modules/mysql2" ] || {
  say "installing node-postgres and mysql2 (npm)"
  mkdir -p "$node_dir"
  npm install --silent --no-audit --no-fund --prefix "$node_dir" pg@8 mysql2@3 >/dev/null
}
# --- NATS with JetStream (the log-shipping tests; each makes its own stream) ---
nats_up() { (exec 3<>/dev/tcp/127.0.0.1/4222) 2>/dev/null; }
if ! nats_up; then
  command -v nats-server >/dev/null || need_pkg nats-server
  say "starting nats-server with JetStream"
  as_root mkdir -p /var/lib/portcullis-nats
  as_root start-stop-daemon --start --oknodo --background --exec "$(command -v nats-server)" \
    -- -js -a 127.0.0.1 -p 4222 -sd /var/lib/portcullis-nats
  for _ in $(seq 1 30); do nats_up && break; sleep 1; done
fi
nats_up || { say "NATS did not come up on 127.0.0.1:4222"; exit 1; }
say "the tests' tools are ready"

#!/usr/bin/env python3
"""Side-by-side PostgreSQL benchmarks: direct vs Portcullis vs PgBouncer (session mode,
SCRAM) vs a bare copy_bidirectional relay, interleaved in one run (A B C D per round,
several rounds, medians). Writes a dated markdown table under benches/results/.

Run through benches/run.sh, which builds the release binaries first.
Environment: ROUNDS (3), SECONDS (5), SCALE (10), WORKLOADS (subset of the pgbench rows),
MYSQL=0 (skip MariaDB), IDLE_SESSIONS (1000; 0 skips), LARGE=0 (skip the 1M-row results),
LOGINS=0 (skip login rates), STRACE=0 (skip syscall counts), EXEC=0 (skip one-off latency),
CPU_TX (100000: transactions per CPU-per-statement measure), PORTCULLIS_BEFORE, VARIANTS,
TARGETS (see below).
"""
import datetime
import json
import math
import os
import platform
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ROUNDS = int(os.environ.get("ROUNDS", "3"))
SECONDS = int(os.environ.get("SECONDS", "5"))
SCALE = int(os.environ.get("SCALE", "10"))
PASSWORD = "bench-password"
PG = ["127.0.0.1", 5432]  # replaced by the private cluster's port
IDLE_SESSIONS = int(os.environ.get("IDLE_SESSIONS", "1000"))
ADMIN = {}  # gateway name -> (admin port, data dir)
# A representative rule set that lets pgbench through: `portcullis-guarded` runs with it.
GUARDRAILS = """
[[guardrails]]
name = "no-ddl"
resource_roles = ["bench"]
action = "block"
classes = ["ddl", "dcl"]
[[guardrails]]
name = "no-bare-writes"
resource_roles = ["bench"]
action = "block"
update_without_where = true
delete_without_where = true
[[guardrails]]
name = "no-secrets"
resource_roles = ["bench"]
action = "block"
tables = ["*.secrets", "billing.*"]
[[guardrails]]
name = "watch-writes"
resource_roles = ["bench"]
action = "warn"
classes = ["write"]
"""
BEFORE = os.environ.get("PORTCULLIS_BEFORE")  # another build's binary, measured as `portcullis-before`
# More gateways, each the main one with its own environment: "name:KEY=VALUE,KEY=VALUE;name2:…".
VARIANTS = {v.split(":", 1)[0]: dict(kv.split("=", 1) for kv in v.split(":", 1)[1].split(",") if kv)
            for v in os.environ.get("VARIANTS", "").split(";") if v}
# Only these targets in the pgbench and CPU rows (names as in the tables), when set.
TARGETS = [t for t in os.environ.get("TARGETS", "").split(",") if t]
# Transactions per CPU-per-statement measure: /proc counts in clock ticks (10 ms), so a fast
# host needs many for a fine figure (100k at 17 µs a statement: ±0.3 %).
CPU_TX = int(os.environ.get("CPU_TX", "100000"))


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_port(port, timeout=30):
    end = time.time() + timeout
    while time.time() < end:
        try:
            socket.create_connection(("127.0.0.1", port), 0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    sys.exit(f"nothing listening on {port}")


def run(cmd, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, **kw)


# The idle sessions' statement, as pg_stat_activity shows it.
SLEEPING = "query = 'select pg_sleep(60)' and state = 'active'"


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def pg_bin(name):
    versions = sorted(os.listdir("/usr/lib/postgresql"))
    return f"/usr/lib/postgresql/{versions[-1]}/bin/{name}"


def as_postgres(cmd):
    if os.geteuid() == 0:
        return run(["su", "postgres", "-s", "/bin/sh", "-c", cmd])
    return run(["sh", "-c", cmd])


CERT = {}


def make_cert(tmp):
    """A throwaway self-signed certificate for the TLS rows (PostgreSQL, PgBouncer and
    Portcullis all present it)."""
    d = os.path.join(tmp, "tls")
    os.makedirs(d)
    cert, key = os.path.join(d, "cert.pem"), os.path.join(d, "key.pem")
    r = run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost",
             "-days", "2", "-keyout", key, "-out", cert])
    if r.returncode != 0:
        sys.exit(r.stderr)
    os.chmod(d, 0o755)
    for f in (cert, key):
        shutil.chown(f, "postgres")
        os.chmod(f, 0o600 if f == key else 0o644)
    CERT.update(cert=cert, key=key)


def start_cluster(tmp):
    """A private PostgreSQL with room for every benchmark's connections, TLS on (clients
    choose with sslmode)."""
    d = os.path.join(tmp, "pg")
    os.makedirs(d)
    os.chmod(tmp, 0o755)
    shutil.chown(d, "postgres")
    port = free_port()
    r = as_postgres(f"{pg_bin('initdb')} -D {d}/data -A trust -U postgres >/dev/null")
    if r.returncode != 0:
        sys.exit(r.stderr)
    r = as_postgres(f"{pg_bin('pg_ctl')} -D {d}/data -w -l {d}/log -o '-p {port} -c listen_addresses=127.0.0.1 "
                    f"-c max_connections=2000 -c shared_buffers=256MB -k {d} "
                    f"-c ssl=on -c ssl_cert_file={CERT['cert']} -c ssl_key_file={CERT['key']}' start")
    if r.returncode != 0:
        sys.exit(r.stderr)
    PG[1] = port
    return lambda: as_postgres(f"{pg_bin('pg_ctl')} -D {d}/data -m fast stop")


def setup_database():
    run(["psql", "-h", PG[0], "-p", str(PG[1]), "-U", "postgres", "-d", "postgres", "-c", "DROP DATABASE IF EXISTS bench"])
    run(["psql", "-h", PG[0], "-p", str(PG[1]), "-U", "postgres", "-d", "postgres", "-c", "CREATE DATABASE bench"])
    r = run(["pgbench", "-h", PG[0], "-p", str(PG[1]), "-U", "postgres", "-i", "-q", "-s", str(SCALE), "bench"])
    if r.returncode != 0:
        sys.exit(r.stderr)


MY_PORT = [0]
MY_PORTS = {}  # gateway name -> its MySQL port


def start_portcullis(tmp, statements=True, name=None, limits="", binary=None, audit="", extra="", env=None):
    """`statements = False` is the same gateway with per-statement `query` events off;
    `limits` adds lines to its `[limits]`, `audit` to its `[audit]`, `extra` sections at the
    end; `binary` another build (before/after a change); `env` more environment."""
    port, admin = free_port(), free_port()
    my_port = free_port()
    if statements and not name:
        MY_PORT[0] = my_port
    MY_PORTS[name or "portcullis"] = my_port
    tmp = os.path.join(tmp, name or ("portcullis" if statements else "portcullis-nolog"))
    os.makedirs(tmp)
    ADMIN[os.path.basename(tmp)] = (admin, os.path.join(tmp, "data"))
    cfg = os.path.join(tmp, "portcullis.toml")
    with open(cfg, "w") as f:
        f.write(f"""
[listen]
postgres = "127.0.0.1:{port}"
mysql = "127.0.0.1:{my_port}"
admin = "127.0.0.1:{admin}"
[store]
url = "sqlite://{tmp}/p.db"
data_dir = "{tmp}/data"
[audit]
dir = "{tmp}/audit"
fsync = "interval"
statements = {"true" if statements else "false"}
{audit}
[limits]
max_connections = 5000
{"" if binary else "max_connections_per_address = 5000"}
{limits}
[tls]
cert = "{CERT['cert']}"
key = "{CERT['key']}"
[[groups]]
name = "bench"
[[users]]
name = "bench"
groups = ["bench"]
password = "{PASSWORD}"
[[resources]]
name = "pg"
protocol = "postgres"
address = "{PG[0]}:{PG[1]}"
tls = "disable"
[[resource_roles]]
name = "bench"
resource = "pg"
database = "bench"
user = "postgres"
allowed_groups = ["bench"]
access_modes = {{ native = true, web = true }}
[[resources]]
name = "maria"
protocol = "mysql"
address = "127.0.0.1:3306"
tls = "disable"
[[resource_roles]]
name = "sbtest"
resource = "maria"
database = "sbtest"
user = "root"
allowed_groups = ["bench"]
{extra}
""")
    env = dict(os.environ, PORTCULLIS_LOG="warn", **(env or {}))
    wrap = os.environ.get("PORTCULLIS_WRAP", "").split()  # e.g. valgrind --tool=callgrind
    binary = binary or os.path.join(ROOT, "target/release/portcullis")
    p = subprocess.Popen([*wrap, binary, "serve", "--config", cfg],
                         stdout=subprocess.DEVNULL, stderr=open(os.path.join(tmp, "portcullis.log"), "w"), env=env)
    wait_port(port)
    return p, port, "bench"


def scram_verifier(password):
    import base64, hashlib, hmac
    salt = os.urandom(16)
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, 4096)
    client_key = hmac.new(salted, b"Client Key", "sha256").digest()
    stored = hashlib.sha256(client_key).digest()
    server = hmac.new(salted, b"Server Key", "sha256").digest()
    b = lambda x: base64.b64encode(x).decode()
    return f"SCRAM-SHA-256$4096:{b(salt)}${b(stored)}:{b(server)}"


def start_pgbouncer(tmp):
    port = free_port()
    d = os.path.join(tmp, "pgbouncer")
    os.makedirs(d)
    with open(os.path.join(d, "userlist.txt"), "w") as f:
        f.write(f'"bench" "{scram_verifier(PASSWORD)}"\n')
    with open(os.path.join(d, "pgbouncer.ini"), "w") as f:
        f.write(f"""[databases]
bench = host={PG[0]} port={PG[1]} dbname=bench user=postgres
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {port}
unix_socket_dir =
auth_type = scram-sha-256
auth_file = {d}/userlist.txt
pool_mode = session
max_client_conn = 5000
default_pool_size = 2000
server_idle_timeout = 2
client_tls_sslmode = allow
client_tls_cert_file = {CERT['cert']}
client_tls_key_file = {CERT['key']}
logfile = {d}/pgbouncer.log
pidfile = {d}/pgbouncer.pid
""")
    shutil.chown(d, "postgres")
    for f in os.listdir(d):
        shutil.chown(os.path.join(d, f), "postgres")
    os.chmod(tmp, 0o755)
    cmd = ["pgbouncer", os.path.join(d, "pgbouncer.ini")]
    if os.geteuid() == 0:
        cmd = ["su", "postgres", "-s", "/bin/sh", "-c", " ".join(cmd)]
    subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_port(port)
    pid = int(open(os.path.join(d, "pgbouncer.pid")).read().strip() or 0) if os.path.exists(os.path.join(d, "pgbouncer.pid")) else None
    for _ in range(50):
        if pid:
            break
        time.sleep(0.1)
        if os.path.exists(os.path.join(d, "pgbouncer.pid")):
            pid = int(open(os.path.join(d, "pgbouncer.pid")).read().strip())
    return pid, port, "bench"


def start_relay():
    port = free_port()
    p = subprocess.Popen([os.path.join(ROOT, "target/release/examples/bare_relay"), f"127.0.0.1:{port}", f"{PG[0]}:{PG[1]}"])
    wait_port(port)
    return p, port, "bench"


def pgbench(port, user, db, args, tls=False):
    env = dict(os.environ, PGPASSWORD=PASSWORD, PGSSLMODE="require" if tls else "disable")
    r = run(["pgbench", "-h", "127.0.0.1", "-p", str(port), "-U", user, "-n", *args, db], env=env)
    out = r.stdout + r.stderr
    tps = re.search(r"tps = ([0-9.]+) \(without", out)
    lat = re.search(r"latency average = ([0-9.]+) ms", out)
    failed = re.search(r"number of failed transactions: (\d+)", out)
    if not tps:
        print(out, file=sys.stderr)
        return None
    return {"tps": float(tps.group(1)), "lat_ms": float(lat.group(1)) if lat else None,
            "failed": int(failed.group(1)) if failed else 0}


def sysbench(port, user, password, db, test, threads=8):
    base = ["sysbench", "--db-driver=mysql", "--mysql-host=127.0.0.1", f"--mysql-port={port}",
            f"--mysql-user={user}", f"--mysql-password={password}", f"--mysql-db={db}",
            "--tables=4", "--table-size=100000"]
    r = run([*base, f"--threads={threads}", f"--time={SECONDS}", test, "run"])
    m = re.search(r"queries:\s+\d+\s+\(([0-9.]+) per sec", r.stdout)
    return float(m.group(1)) if m else None


def mysql_rounds():
    """sysbench oltp_point_select / oltp_read_only: direct MariaDB vs Portcullis vs relay."""
    run(["mariadb", "--protocol=tcp", "-h127.0.0.1", "-uroot", "-e", "DROP DATABASE IF EXISTS sbtest; CREATE DATABASE sbtest"])
    r = run(["sysbench", "--db-driver=mysql", "--mysql-host=127.0.0.1", "--mysql-port=3306", "--mysql-user=root",
             "--mysql-db=sbtest", "--tables=4", "--table-size=100000", "oltp_read_only", "prepare"])
    if r.returncode != 0:
        print(r.stdout + r.stderr, file=sys.stderr)
        return {}
    relay_port = free_port()
    relay = subprocess.Popen([os.path.join(ROOT, "target/release/examples/bare_relay"), f"127.0.0.1:{relay_port}", "127.0.0.1:3306"])
    wait_port(relay_port)
    targets = {"direct": (3306, "root", "", "sbtest"), "portcullis": (MY_PORT[0], "bench", PASSWORD, "sbtest"),
               "portcullis-1t": (MY_PORTS["portcullis-1t"], "bench", PASSWORD, "sbtest"),
               "relay": (relay_port, "root", "", "sbtest")}
    extra = ["1M rows (s)", "logins/s"]
    out = {t: {w: [] for w in ["oltp_point_select", "oltp_read_only", *extra]} for t in targets}
    for rnd in range(ROUNDS):
        for w in ["oltp_point_select", "oltp_read_only"]:
            for t, (port, user, pw, db) in targets.items():
                q = sysbench(port, user, pw, db, w)
                print(f"round {rnd + 1} mysql {w:18} {t:11} {q}", file=sys.stderr)
                if q:
                    out[t][w].append(q)
        for t, (port, user, pw, db) in targets.items():
            if os.environ.get("LARGE", "1") != "0":
                secs = my_large_result(port, user, pw, db)
                print(f"round {rnd + 1} mysql 1M rows {t:11} {secs}", file=sys.stderr)
                if secs:
                    out[t]["1M rows (s)"].append(secs)
            if os.environ.get("LOGINS", "1") != "0" and t != "relay":
                rate = login_rate("mysql", port, user, pw, db)
                print(f"round {rnd + 1} mysql logins {t:11} {rate}", file=sys.stderr)
                if rate:
                    out[t]["logins/s"].append(rate)
    relay.terminate()
    return out


def proc_times(pid):
    """(utime, stime) of a process in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / tick, int(fields[12]) / tick


LARGE_SQL = "select g, repeat('x', 92) as pad from generate_series(1, 1000000) g;\n"


def large_result(tmp, port, user, db, tls):
    """Seconds for one 1M-row (~114 MB on the wire) result, read by pgbench (no formatting)."""
    script = os.path.join(tmp, "large.sql")
    with open(script, "w") as f:
        f.write(LARGE_SQL)
    r = pgbench(port, user, db, ["-f", script, "-c", "1", "-t", "2"], tls=tls)
    return r["lat_ms"] / 1000 if r and r["lat_ms"] else None


def my_large_result(port, user, password, db):
    """Seconds for a 1M-row result read by the mariadb client (--quick: streamed)."""
    start = time.time()
    r = subprocess.run(["mariadb", "--protocol=tcp", "-h127.0.0.1", f"-P{port}", f"-u{user}",
                        f"-p{password}" if password else "--skip-password", "--quick", "--skip-ssl", db,
                        "-e", "select seq, repeat('x', 92) from seq_1_to_1000000"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if r.returncode != 0:
        print(r.stderr, file=sys.stderr)
        return None
    return time.time() - start


def login_rate(protocol, port, user, password, db):
    """Logins per second (log in, `select 1`, goodbye), 4 at a time, by examples/login_rate."""
    r = run([os.path.join(ROOT, "target/release/examples/login_rate"), protocol, f"127.0.0.1:{port}",
             user, password, db, "4", str(SECONDS)])
    try:
        out = json.loads(r.stdout)
    except ValueError:
        print(r.stdout + r.stderr, file=sys.stderr)
        return None
    if out.get("errors"):
        print(f"login_rate {protocol} :{port}: {out['errors']} errors, first: {out.get('first_error')}", file=sys.stderr)
    return out["per_second"]


def syscalls(pid, port, user, db, n=8000):
    """System calls per statement by name (strace -c -f over `-S -c 8`, n transactions):
    a count, not a time, so it holds on a noisy machine."""
    out = os.path.join(tempfile.gettempdir(), f"pc-strace-{pid}.txt")
    st = subprocess.Popen(["strace", "-c", "-f", "-o", out, "-p", str(pid)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1)
    pgbench(port, user, db, ["-S", "-c", "8", "-j", "2", "-t", str(n // 8)])
    time.sleep(0.5)
    st.send_signal(2)
    st.wait()
    counts = {}
    for line in open(out):
        f = line.split()
        if len(f) >= 5 and f[0][0].isdigit() and f[-1] != "total":
            counts[f[-1]] = int(f[3]) / n
    return counts


def exec_latency(name, n=1000):
    """p50 / p95 of `select 1` as a one-off through the API (one kept-alive HTTP
    connection, a bench user's token) and, beside it, `psql -c 'select 1'` direct."""
    import http.client
    admin, data = ADMIN[name]
    with open(os.path.join(data, "bootstrap-token")) as f:
        boot = f.read().strip()
    c = http.client.HTTPConnection("127.0.0.1", admin)

    def post(path, body, token):
        c.request("POST", path, json.dumps(body), {"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
        r = c.getresponse()
        return r.status, json.loads(r.read() or b"null")

    status, made = post("/api/tokens", {"user": "bench"}, boot)
    token = made["token"]
    times = []
    for _ in range(n):
        t = time.perf_counter()
        status, done = post("/api/resource-roles/bench/exec", {"statement": "select 1"}, token)
        times.append(time.perf_counter() - t)
        assert status == 200 and done["failed"] is None, done
    direct = []
    env = dict(os.environ, PGSSLMODE="disable")
    for _ in range(200):
        t = time.perf_counter()
        run(["psql", "-h", PG[0], "-p", str(PG[1]), "-U", "postgres", "-d", "bench", "-Atc", "select 1"], env=env)
        direct.append(time.perf_counter() - t)
    q = lambda xs, p: sorted(xs)[int(len(xs) * p)] * 1000
    return {"exec_p50": q(times, 0.5), "exec_p95": q(times, 0.95), "psql_p50": q(direct, 0.5), "psql_p95": q(direct, 0.95)}


def main():
    tmp = tempfile.mkdtemp(prefix="pc-bench-")
    make_cert(tmp)
    stop_cluster = start_cluster(tmp)
    setup_database()
    # Kept upstream connections, as PgBouncer's session pooling keeps server connections.
    keep = "idle_upstreams = 16"
    pc, pc_port, _ = start_portcullis(tmp, limits=keep)
    nolog, nolog_port, _ = start_portcullis(tmp, statements=False, limits=keep)
    acked, acked_port, _ = start_portcullis(tmp, name="portcullis-acked", limits=keep,
                                            audit='durability = "acknowledged"')
    anew, anew_port, _ = start_portcullis(tmp, name="portcullis-anew")
    guarded, guarded_port, _ = start_portcullis(tmp, name="portcullis-guarded", limits=keep,
                                                extra=GUARDRAILS)
    # One session thread (`limits.threads = 1`), as PgBouncer runs.
    one, one_port, _ = start_portcullis(tmp, name="portcullis-1t", limits=keep + "\nthreads = 1")
    before = start_portcullis(tmp, name="portcullis-before", limits=keep, binary=BEFORE) if BEFORE else None
    variants = {name: start_portcullis(tmp, name=name, limits=keep, env=env) for name, env in VARIANTS.items()}
    bouncer_pid, pb_port, _ = start_pgbouncer(tmp)
    relay, relay_port, _ = start_relay()
    targets = {
        "direct": (PG[1], "postgres", "bench", None),
        "portcullis": (pc_port, "bench", "bench", pc.pid),
        "pgbouncer": (pb_port, "bench", "bench", bouncer_pid),
        "relay": (relay_port, "postgres", "bench", relay.pid),
        "portcullis-nolog": (nolog_port, "bench", "bench", nolog.pid),
        "portcullis-acked": (acked_port, "bench", "bench", acked.pid),
        "portcullis-guarded": (guarded_port, "bench", "bench", guarded.pid),
        "portcullis-1t": (one_port, "bench", "bench", one.pid),
        **{name: (port, "bench", "bench", p.pid) for name, (p, port, _) in variants.items()},
    }
    workloads = {
        "-S -c 8 simple": ["-S", "-c", "8", "-j", "2", "-M", "simple"],
        "-S -c 8 prepared": ["-S", "-c", "8", "-j", "2", "-M", "prepared"],
        "tpcb-like -c 8": ["-c", "8", "-j", "2"],
        "-S -c 64": ["-S", "-c", "64", "-j", "2"],
        "-S -c 1 (latency)": ["-S", "-c", "1"],
    }
    only = os.environ.get("WORKLOADS")  # e.g. "c 8 simple,latency" to run a subset
    if only:
        workloads = {w: a for w, a in workloads.items() if any(o in w for o in only.split(","))}
    results = {w: {t: [] for t in targets} for w in workloads}
    large = {(t, tls): [] for t in ["direct", "portcullis", "pgbouncer", "relay"] for tls in (False, True)}
    logins = {t: [] for t in ["direct", "portcullis", "portcullis-1t", "portcullis-anew", "pgbouncer"]}
    login_cpu = {}  # target -> [(user µs, sys µs) per login]
    login_targets = dict(targets, **{"portcullis-anew": (anew_port, "bench", "bench", anew.pid)})
    cpu_targets = dict(targets)
    if before:
        cpu_targets["portcullis-before"] = (before[1], "bench", "bench", before[0].pid)
    cpu = {t: [] for t in cpu_targets if t != "direct"}
    for rnd in range(ROUNDS):
        for w, args in workloads.items():
            for t, (port, user, db, _) in targets.items():
                if TARGETS and t not in TARGETS and t != "direct":
                    continue
                r = pgbench(port, user, db, [*args, "-T", str(SECONDS)])
                if r:
                    results[w][t].append(r)
                print(f"round {rnd + 1} {w:20} {t:11} {r}", file=sys.stderr)
        # CPU per statement: utime / stime of the proxy process over a fixed transaction count.
        n = CPU_TX
        for t, (port, user, db, pid) in cpu_targets.items():
            if not pid or (TARGETS and t not in TARGETS):
                continue
            (u0, s0) = proc_times(pid)
            pgbench(port, user, db, ["-S", "-c", "8", "-j", "2", "-t", str(n // 8)])
            (u1, s1) = proc_times(pid)
            cpu[t].append(((u1 - u0) / n * 1e6, (s1 - s0) / n * 1e6))
            print(f"round {rnd + 1} cpu {t:17} user {cpu[t][-1][0]:.1f} sys {cpu[t][-1][1]:.1f} µs", file=sys.stderr)
        if os.environ.get("LARGE", "1") != "0":
            for tls in (False, True):
                for t in ["direct", "portcullis", "pgbouncer", "relay"]:
                    port, user, db, _ = targets[t]
                    secs = large_result(tmp, port, user, db, tls)
                    if secs:
                        large[(t, tls)].append(secs)
                    print(f"round {rnd + 1} 1M rows tls={tls} {t:11} {secs} s", file=sys.stderr)
        if os.environ.get("LOGINS", "1") != "0":
            for t in logins:
                port, user, db, pid = login_targets[t]
                times0 = proc_times(pid) if pid else None
                rate = login_rate("postgres", port, user, PASSWORD if t != "direct" else "-", db)
                if rate:
                    logins[t].append(rate)
                    if times0:
                        (u0, s0), (u1, s1), n = times0, proc_times(pid), rate * SECONDS
                        login_cpu.setdefault(t, []).append(((u1 - u0) / n * 1e6, (s1 - s0) / n * 1e6))
                print(f"round {rnd + 1} logins {t:11} {rate}", file=sys.stderr)
    sys_counts = {}
    if os.environ.get("STRACE", "1") != "0" and shutil.which("strace"):
        for t in ["portcullis", "portcullis-1t", "pgbouncer", "relay"]:
            port, user, db, pid = targets[t]
            sys_counts[t] = syscalls(pid, port, user, db)
    # Idle sessions: RSS growth per authenticated idle connection.
    rss = {}
    for t in ["portcullis", "pgbouncer"] if IDLE_SESSIONS else []:
        port, user, db, pid = targets[t]
        base = rss_kib(pid)
        since = run(["psql", "-h", PG[0], "-p", str(PG[1]), "-U", "postgres", "-d", "bench", "-Atc",
                     "select now()"]).stdout.strip()
        conns = []
        env = dict(os.environ, PGPASSWORD=PASSWORD, PGSSLMODE="disable")
        for _ in range(IDLE_SESSIONS):
            conns.append(subprocess.Popen(["psql", "-h", "127.0.0.1", "-p", str(port), "-U", user, "-d", db, "-c", "select pg_sleep(60)"],
                                          env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        # Read RSS once every session is in its statement (counted on the server), so a
        # slow host's sessions still logging in are not counted as costing nothing.
        # PgBouncer queues clients beyond its pool (they never reach the server): its
        # sessions are counted as all there after 12 s, as before.
        live, end = IDLE_SESSIONS, time.time() + (60 if t == "portcullis" else 12)
        while t == "portcullis" and time.time() < end:
            time.sleep(1)
            r = run(["psql", "-h", PG[0], "-p", str(PG[1]), "-U", "postgres", "-d", "bench", "-Atc",
                     f"select count(*) from pg_stat_activity where {SLEEPING} and query_start >= '{since}'"])
            live = int(r.stdout.strip() or 0) if r.returncode == 0 else 0
            if live >= IDLE_SESSIONS:
                break
        time.sleep(1 if t == "portcullis" else 12)
        print(f"idle sessions {t}: {live} of {IDLE_SESSIONS} counted", file=sys.stderr)
        rss[t] = (rss_kib(pid) - base) / max(live, 1)
        for c in conns:
            c.kill()
            c.wait()
        # The server does not notice a client gone during pg_sleep: end those backends.
        run(["psql", "-h", PG[0], "-p", str(PG[1]), "-U", "postgres", "-d", "bench", "-Atc",
             f"select count(pg_terminate_backend(pid)) from pg_stat_activity where {SLEEPING}"])
        time.sleep(3)
    my = mysql_rounds() if os.environ.get("MYSQL", "1") != "0" else None
    oneoff = None
    if os.environ.get("EXEC", "1") != "0":
        oneoff = {"kept upstreams": exec_latency("portcullis"), "a new upstream login each": exec_latency("portcullis-anew")}
    for p in (pc, nolog, acked, anew, guarded, one, relay, *([before[0]] if before else []),
              *(p for p, _, _ in variants.values())):
        p.terminate()
    if bouncer_pid:
        try:
            os.kill(bouncer_pid, 15)
        except OSError:
            pass
    stop_cluster()
    write_report(results, cpu, rss, my, large, logins, login_cpu, sys_counts, oneoff)


def med(rs, key="tps"):
    vals = [r[key] for r in rs if r.get(key) is not None]
    return statistics.median(vals) if vals else float("nan")


def write_report(results, cpu, rss, my, large, logins, login_cpu, sys_counts, oneoff=None):
    now = datetime.datetime.now(datetime.timezone.utc)
    lines = [f"# PostgreSQL benchmark {now:%Y-%m-%d %H:%M} UTC", "",
             f"Machine: {platform.node()}, {os.cpu_count()} cores, {platform.platform()}; "
             f"{ROUNDS} rounds x {SECONDS}s, interleaved, medians; pgbench scale {SCALE}."]
    if results:
        lines += ["", "| workload | direct TPS | Portcullis TPS | PgBouncer TPS | relay TPS | P/direct | P/PgBouncer | P/relay | failed (P) |",
                  "|---|---|---|---|---|---|---|---|---|"]
    for w, by in results.items():
        d, p, b, r = (med(by[t]) for t in ["direct", "portcullis", "pgbouncer", "relay"])
        failed = sum(x["failed"] for x in by["portcullis"])
        lines.append(f"| {w} | {d:.0f} | {p:.0f} | {b:.0f} | {r:.0f} | {p/d:.3f} | {p/b:.3f} | {p/r:.3f} | {failed} |")
    if results:
        names = [t for t in next(iter(results.values())) if any(by[t] for by in results.values())]
        lines += ["", "Every target measured (TPS, and its ratio to PgBouncer):", "",
                  "| workload | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
        for w, by in results.items():
            b = med(by["pgbouncer"])
            lines.append(f"| {w} | " + " | ".join(f"{med(by[t]):.0f} ({med(by[t]) / b:.2f})" for t in names) + " |")
    if results:
        lines += ["", "Monitoring cost: the same gateway with per-statement `query` events off (`audit.statements = false`):", "",
                  "| workload | logging on TPS | logging off TPS | on/off |", "|---|---|---|---|"]
    for w, by in results.items():
        on, off = med(by["portcullis"]), med(by["portcullis-nolog"])
        lines.append(f"| {w} | {on:.0f} | {off:.0f} | {on/off:.3f} |")
    if results:
        lines += ["", "Durability: the same gateway with `audit.durability = \"acknowledged\"` (a statement's completion held until its event is written):", "",
                  "| workload | written TPS | acknowledged TPS | acknowledged/written |", "|---|---|---|---|"]
    for w, by in results.items():
        on, ack = med(by["portcullis"]), med(by["portcullis-acked"])
        lines.append(f"| {w} | {on:.0f} | {ack:.0f} | {ack/on:.3f} |")
    if results:
        lines += ["", "Guardrails: the same gateway with four rules on the resource role (`GUARDRAILS` in benches/run.py; every simple-protocol statement parsed, a prepared one once per Parse):", "",
                  "| workload | no rules TPS | with rules TPS | with/without |", "|---|---|---|---|"]
    for w, by in results.items():
        on, g = med(by["portcullis"]), med(by["portcullis-guarded"])
        lines.append(f"| {w} | {on:.0f} | {g:.0f} | {g/on:.3f} |")
    lat = results.get("-S -c 1 (latency)")
    if lat:
        d, p = med(lat["direct"], "lat_ms"), med(lat["portcullis"], "lat_ms")
        a = med(lat["portcullis-acked"], "lat_ms")
        lines += ["", f"Single-client added latency (p50 of averages): {(p - d) * 1000:.1f} µs over direct ({d*1000:.0f} µs direct, {p*1000:.0f} µs Portcullis); "
                  f"with acknowledged durability {(a - d) * 1000:.1f} µs."]
    lines += [""]
    lines += [f"Gateway CPU per statement (utime / stime ÷ transactions, `-S -c 8`, {CPU_TX} transactions, median of rounds):", "",
              "| target | user µs | sys µs | total µs | × PgBouncer |", "|---|---|---|---|---|"]
    total = {t: statistics.median(x[0] + x[1] for x in samples) for t, samples in cpu.items() if samples}
    for t, samples in cpu.items():
        if not samples:
            continue
        u, s_ = statistics.median(x[0] for x in samples), statistics.median(x[1] for x in samples)
        ratio = f"{total[t] / total['pgbouncer']:.2f}" if total.get("pgbouncer") else "—"
        lines.append(f"| {t} | {u:.1f} | {s_:.1f} | {total[t]:.1f} | {ratio} |")
    if "portcullis" in total and "portcullis-guarded" in total:
        lines += ["", f"With guardrails / without, CPU per statement: {total['portcullis-guarded'] / total['portcullis']:.2f}"]
    if "portcullis" in total and "pgbouncer" in total:
        lines += ["", f"Portcullis / PgBouncer CPU: {total['portcullis'] / total['pgbouncer']:.2f}"]
    if "portcullis-before" in total:
        lines += ["", f"After / before the change (`portcullis-before` is {BEFORE}): "
                  f"{total['portcullis'] / total['portcullis-before']:.2f}"]
    if sys_counts:
        names = sorted({n for c in sys_counts.values() for n, v in c.items() if v >= 0.01})
        lines += ["", "System calls per statement (strace -c -f, `-S -c 8`, 8000 transactions; counts, not times):", "",
                  "| syscall | " + " | ".join(sys_counts) + " |", "|---|" + "---|" * len(sys_counts)]
        for n in names:
            lines.append(f"| {n} | " + " | ".join(f"{c.get(n, 0):.2f}" for c in sys_counts.values()) + " |")
        lines.append("| **all** | " + " | ".join(f"{sum(c.values()):.2f}" for c in sys_counts.values()) + " |")
    if any(large.values()):
        mb = 1e6 * 114 / 1e6  # 1M rows of ~114 bytes on the wire
        lines += ["", "Large result: 1M rows (~114 MB on the wire) read by pgbench, seconds (median) and MB/s:", "",
                  "| | direct | Portcullis | PgBouncer | relay | P/direct | P/PgBouncer |", "|---|---|---|---|---|---|---|"]
        for tls in (False, True):
            secs = {t: statistics.median(large[(t, tls)]) if large[(t, tls)] else float("nan") for t in ["direct", "portcullis", "pgbouncer", "relay"]}
            cells = " | ".join(f"{secs[t]:.2f} s ({mb / secs[t]:.0f} MB/s)" for t in secs)
            lines.append(f"| {'TLS' if tls else 'plain'} | {cells} | {secs['direct'] / secs['portcullis']:.3f} | {secs['pgbouncer'] / secs['portcullis']:.3f} |")
        lines.append("")
        lines.append("With TLS the relay passes the client's TLS through to PostgreSQL (one TLS session end to end); "
                     "Portcullis and PgBouncer end TLS and talk plain to the server on loopback.")
    if any(logins.values()):
        lines += ["", "Logins per second (log in, `select 1`, goodbye; 4 at a time; tokio-postgres client):", ""]
        for t, rates in logins.items():
            how = {"direct": "trust, a new backend per login",
                   "portcullis": "SCRAM-SHA-256 to the gateway, kept upstream connections (`limits.idle_upstreams = 16`)",
                   "portcullis-anew": "SCRAM-SHA-256 to the gateway, a new upstream login per session (the default)",
                   "portcullis-1t": "as portcullis, on one session thread (`limits.threads = 1`)",
                   "pgbouncer": "SCRAM-SHA-256, pooled server connection"}[t]
            lines.append(f"- {t}: {statistics.median(rates):.0f}/s ({how})" if rates else f"- {t}: n/a")
        if logins["portcullis"] and logins["pgbouncer"]:
            lines.append(f"- Portcullis / PgBouncer: {statistics.median(logins['portcullis']) / statistics.median(logins['pgbouncer']):.2f}")
        if login_cpu:
            lines += ["", "Gateway CPU per login (utime / stime ÷ logins, median of rounds):", "",
                      "| target | user µs | sys µs |", "|---|---|---|"]
            for t, samples in login_cpu.items():
                lines.append(f"| {t} | {statistics.median(x[0] for x in samples):.0f} | {statistics.median(x[1] for x in samples):.0f} |")
    if rss:
        lines += ["", f"RSS per idle authenticated session ({IDLE_SESSIONS} sessions, each running pg_sleep):", ""]
    for t, kib in rss.items():
        lines.append(f"- {t}: {kib:.1f} KiB")
    if my:
        lines += ["", "MySQL (MariaDB), sysbench 8 threads, queries per second:", "",
                  "| workload | direct QPS | Portcullis QPS | one thread QPS | relay QPS | P/direct | P/relay | one thread/relay |",
                  "|---|---|---|---|---|---|---|---|"]
        for w in ["oltp_point_select", "oltp_read_only"]:
            d, p, o, r = (statistics.median(my[t][w]) if my[t][w] else float("nan")
                          for t in ["direct", "portcullis", "portcullis-1t", "relay"])
            lines.append(f"| {w} | {d:.0f} | {p:.0f} | {o:.0f} | {r:.0f} | {p/d:.3f} | {p/r:.3f} | {o/r:.3f} |")
        m = {t: {w: statistics.median(v) if v else float("nan") for w, v in by.items()} for t, by in my.items()}
        w = "1M rows (s)"
        if not math.isnan(m["portcullis"][w]):
            lines += ["", f"MySQL large result, 1M rows (`mariadb --quick`, output discarded): direct {m['direct'][w]:.2f} s, "
                      f"Portcullis {m['portcullis'][w]:.2f} s, relay {m['relay'][w]:.2f} s; P/direct {m['direct'][w] / m['portcullis'][w]:.3f}."]
        if not math.isnan(m["portcullis"]["logins/s"]):
            lines += ["", f"MySQL logins per second (caching_sha2_password scramble, 4 at a time): direct MariaDB {m['direct']['logins/s']:.0f}/s "
                      f"(switched to mysql_native_password), Portcullis {m['portcullis']['logins/s']:.0f}/s (caching_sha2 fast path; "
                      f"mysql_native_password upstream, kept upstream connections as for PostgreSQL)."]
    if oneoff:
        lines += ["", "One-off `select 1` through the API (1000 calls on one kept-alive HTTP connection, each a session with its events), "
                  "beside `psql -c 'select 1'` direct (200 runs, process start included):", ""]
        for how, o in oneoff.items():
            lines.append(f"- {how}: exec p50 {o['exec_p50']:.2f} ms, p95 {o['exec_p95']:.2f} ms; psql -c direct p50 {o['psql_p50']:.2f} ms, p95 {o['psql_p95']:.2f} ms")
    text = "\n".join(lines) + "\n"
    os.makedirs(os.path.join(ROOT, "benches/results"), exist_ok=True)
    path = os.path.join(ROOT, f"benches/results/{now:%Y-%m-%d-%H%M}-postgres.md")
    with open(path, "w") as f:
        f.write(text)
    print(text)
    print(f"written to {path}", file=sys.stderr)


if __name__ == "__main__":
    main()

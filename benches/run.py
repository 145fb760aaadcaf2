#!/usr/bin/env python3
"""Side-by-side PostgreSQL benchmarks: direct vs Portcullis vs PgBouncer (session mode,
SCRAM) vs a bare copy_bidirectional relay, interleaved in one run (A B C D per round,
several rounds, medians). Writes a dated markdown table under benches/results/.

Run through benches/run.sh, which builds the release binaries first.
Environment: ROUNDS (3), SECONDS (5), SCALE (10).
"""
import datetime
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


def cpu_seconds(pid):
    """utime+stime of a process (and its threads) in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


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


def start_cluster(tmp):
    """A private PostgreSQL with room for every benchmark's connections."""
    d = os.path.join(tmp, "pg")
    os.makedirs(d)
    os.chmod(tmp, 0o755)
    shutil.chown(d, "postgres")
    port = free_port()
    r = as_postgres(f"{pg_bin('initdb')} -D {d}/data -A trust -U postgres >/dev/null")
    if r.returncode != 0:
        sys.exit(r.stderr)
    r = as_postgres(f"{pg_bin('pg_ctl')} -D {d}/data -w -l {d}/log -o '-p {port} -c listen_addresses=127.0.0.1 "
                    f"-c max_connections=2000 -c shared_buffers=256MB -k {d}' start")
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


def start_portcullis(tmp, statements=True):
    """`statements = False` is the same gateway with per-statement `query` events off."""
    port, admin = free_port(), free_port()
    my_port = free_port()
    if statements:
        MY_PORT[0] = my_port
    tmp = os.path.join(tmp, "portcullis" if statements else "portcullis-nolog")
    os.makedirs(tmp)
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
[limits]
max_connections = 5000
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
""")
    env = dict(os.environ, PORTCULLIS_LOG="warn")
    p = subprocess.Popen([os.path.join(ROOT, "target/release/portcullis"), "serve", "--config", cfg],
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


def pgbench(port, user, db, args):
    env = dict(os.environ, PGPASSWORD=PASSWORD)
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
               "relay": (relay_port, "root", "", "sbtest")}
    out = {t: {w: [] for w in ["oltp_point_select", "oltp_read_only"]} for t in targets}
    for rnd in range(ROUNDS):
        for w in ["oltp_point_select", "oltp_read_only"]:
            for t, (port, user, pw, db) in targets.items():
                q = sysbench(port, user, pw, db, w)
                print(f"round {rnd + 1} mysql {w:18} {t:11} {q}", file=sys.stderr)
                if q:
                    out[t][w].append(q)
    relay.terminate()
    return out


def main():
    tmp = tempfile.mkdtemp(prefix="pc-bench-")
    stop_cluster = start_cluster(tmp)
    setup_database()
    pc, pc_port, _ = start_portcullis(tmp)
    nolog, nolog_port, _ = start_portcullis(tmp, statements=False)
    bouncer_pid, pb_port, _ = start_pgbouncer(tmp)
    relay, relay_port, _ = start_relay()
    targets = {
        "direct": (PG[1], "postgres", "bench", None),
        "portcullis": (pc_port, "bench", "bench", pc.pid),
        "pgbouncer": (pb_port, "bench", "bench", bouncer_pid),
        "relay": (relay_port, "postgres", "bench", relay.pid),
        "portcullis-nolog": (nolog_port, "bench", "bench", nolog.pid),
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
    for rnd in range(ROUNDS):
        for w, args in workloads.items():
            for t, (port, user, db, _) in targets.items():
                r = pgbench(port, user, db, [*args, "-T", str(SECONDS)])
                if r:
                    results[w][t].append(r)
                print(f"round {rnd + 1} {w:20} {t:11} {r}", file=sys.stderr)
    # CPU per statement: utime+stime of the proxy process over a fixed transaction count.
    cpu = {}
    n = 20000
    for t, (port, user, db, pid) in targets.items():
        if not pid:
            continue
        before = cpu_seconds(pid)
        pgbench(port, user, db, ["-S", "-c", "8", "-j", "2", "-t", str(n // 8)])
        cpu[t] = (cpu_seconds(pid) - before) / n * 1e6
    # Idle sessions: RSS growth per authenticated idle connection.
    rss = {}
    for t in ["portcullis", "pgbouncer"] if IDLE_SESSIONS else []:
        port, user, db, pid = targets[t]
        base = rss_kib(pid)
        conns = []
        env = dict(os.environ, PGPASSWORD=PASSWORD)
        for _ in range(IDLE_SESSIONS):
            conns.append(subprocess.Popen(["psql", "-h", "127.0.0.1", "-p", str(port), "-U", user, "-d", db, "-c", "select pg_sleep(20)"],
                                          env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        time.sleep(12)
        rss[t] = (rss_kib(pid) - base) / IDLE_SESSIONS
        for c in conns:
            c.kill()
            c.wait()
        time.sleep(3)
    my = mysql_rounds() if os.environ.get("MYSQL", "1") != "0" else None
    pc.terminate()
    nolog.terminate()
    relay.terminate()
    if bouncer_pid:
        try:
            os.kill(bouncer_pid, 15)
        except OSError:
            pass
    stop_cluster()
    write_report(results, cpu, rss, my)


def med(rs, key="tps"):
    vals = [r[key] for r in rs if r.get(key) is not None]
    return statistics.median(vals) if vals else float("nan")


def write_report(results, cpu, rss, my):
    now = datetime.datetime.now(datetime.timezone.utc)
    lines = [f"# PostgreSQL benchmark {now:%Y-%m-%d %H:%M} UTC", "",
             f"Machine: {platform.node()}, {os.cpu_count()} cores, {platform.platform()}; "
             f"{ROUNDS} rounds x {SECONDS}s, interleaved, medians; pgbench scale {SCALE}.", "",
             "| workload | direct TPS | Portcullis TPS | PgBouncer TPS | relay TPS | P/direct | P/PgBouncer | P/relay | failed (P) |",
             "|---|---|---|---|---|---|---|---|---|"]
    for w, by in results.items():
        d, p, b, r = (med(by[t]) for t in ["direct", "portcullis", "pgbouncer", "relay"])
        failed = sum(x["failed"] for x in by["portcullis"])
        lines.append(f"| {w} | {d:.0f} | {p:.0f} | {b:.0f} | {r:.0f} | {p/d:.3f} | {p/b:.3f} | {p/r:.3f} | {failed} |")
    lines += ["", "Monitoring cost: the same gateway with per-statement `query` events off (`audit.statements = false`):", "",
              "| workload | logging on TPS | logging off TPS | on/off |", "|---|---|---|---|"]
    for w, by in results.items():
        on, off = med(by["portcullis"]), med(by["portcullis-nolog"])
        lines.append(f"| {w} | {on:.0f} | {off:.0f} | {on/off:.3f} |")
    lat = results.get("-S -c 1 (latency)")
    if lat:
        d, p = med(lat["direct"], "lat_ms"), med(lat["portcullis"], "lat_ms")
        lines += ["", f"Single-client added latency (p50 of averages): {(p - d) * 1000:.1f} µs over direct ({d*1000:.0f} µs direct, {p*1000:.0f} µs Portcullis)."]
    lines += [""]
    lines += ["Gateway CPU per statement (utime+stime ÷ transactions, `-S -c 8`, 20k transactions):", ""]
    for t, us in cpu.items():
        lines.append(f"- {t}: {us:.1f} µs")
    if "portcullis" in cpu and "pgbouncer" in cpu:
        lines.append(f"- Portcullis / PgBouncer: {cpu['portcullis'] / cpu['pgbouncer']:.2f}")
    lines += ["", f"RSS per idle authenticated session ({IDLE_SESSIONS} sessions, each running pg_sleep):", ""]
    for t, kib in rss.items():
        lines.append(f"- {t}: {kib:.1f} KiB")
    if my:
        lines += ["", "MySQL (MariaDB), sysbench 8 threads, queries per second:", "",
                  "| workload | direct QPS | Portcullis QPS | relay QPS | P/direct | P/relay |", "|---|---|---|---|---|---|"]
        for w in ["oltp_point_select", "oltp_read_only"]:
            d, p, r = (statistics.median(my[t][w]) if my[t][w] else float("nan") for t in ["direct", "portcullis", "relay"])
            lines.append(f"| {w} | {d:.0f} | {p:.0f} | {r:.0f} | {p/d:.3f} | {p/r:.3f} |")
    text = "\n".join(lines) + "\n"
    os.makedirs(os.path.join(ROOT, "benches/results"), exist_ok=True)
    path = os.path.join(ROOT, f"benches/results/{now:%Y-%m-%d-%H%M}-postgres.md")
    with open(path, "w") as f:
        f.write(text)
    print(text)
    print(f"written to {path}", file=sys.stderr)


if __name__ == "__main__":
    main()

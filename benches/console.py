#!/usr/bin/env python3
"""How fast the console's sessions pages render over a large session index.

Starts the release gateway on a private SQLite store, fills the session index with
SESSIONS generated sessions (default 100 000: 200 users, 20 resource roles, the three
modes, spread over 90 days, 20 of them live) and the monitoring log with STATEMENTS
generated statements of those sessions (default 1 000 000), signs in to the console as
the bootstrap admin and times each page REPEAT times (default 20): medians and p95 in
milliseconds, written to benches/results/console-<date>.md.

Run: cargo build --release --bin portcullis && python3 benches/console.py
"""
import datetime
import json
import http.client
import os
import random
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SESSIONS = int(os.environ.get("SESSIONS", "100000"))
REPEAT = int(os.environ.get("REPEAT", "20"))
STATEMENTS = int(os.environ.get("STATEMENTS", "1000000"))
BINARY = os.environ.get("PORTCULLIS", os.path.join(ROOT, "target/release/portcullis"))


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_file(path, timeout=30):
    end = time.time() + timeout
    while time.time() < end:
        if os.path.exists(path):
            return
        time.sleep(0.1)
    sys.exit(f"the gateway did not write {path}")


def start(tmp, admin):
    cfg = os.path.join(tmp, "portcullis.toml")
    with open(cfg, "w") as f:
        f.write(f"""
[listen]
postgres = "127.0.0.1:{free_port()}"
mysql = "127.0.0.1:{free_port()}"
admin = "127.0.0.1:{admin}"
[store]
url = "sqlite://{tmp}/p.db"
data_dir = "{tmp}/data"
[audit]
dir = "{tmp}/audit"
""")
    log = open(os.path.join(tmp, "portcullis.log"), "a")
    p = subprocess.Popen([BINARY, "serve", "--config", cfg], stdout=subprocess.DEVNULL,
                         stderr=log, env=dict(os.environ, PORTCULLIS_LOG="warn"))
    end = time.time() + 30
    while time.time() < end:
        try:
            socket.create_connection(("127.0.0.1", admin), 0.5).close()
            return p
        except OSError:
            time.sleep(0.1)
    sys.exit("the gateway's admin listener did not come up; see " + log.name)


def fill(db):
    """SESSIONS rows in the index, as sessions of the last 90 days would leave them."""
    rnd = random.Random(7)
    now = int(time.time())
    modes = ["native", "native", "native", "web", "runbooks"]
    rows = []
    for i in range(SESSIONS):
        started = now - rnd.randrange(90 * 86400)
        live = i < 20
        role = f"role{rnd.randrange(20)}"
        rows.append((f"gen-{i:07}", f"user{rnd.randrange(200)}", role, "pg", "postgres",
                     rnd.choice(modes), f"10.0.{i % 250}.{i % 199}:5{i % 9999:04}", "psql",
                     started, None if live else started + rnd.randrange(3600),
                     rnd.randrange(500), rnd.randrange(10**6), rnd.randrange(10**7),
                     None if live else "client", None, "generator"))
    con = sqlite3.connect(db)
    con.executemany(
        "INSERT INTO sessions (id, user_name, resource_role, resource, protocol, mode, "
        "client_addr, application_name, started_at, ended_at, statements, bytes_in, "
        "bytes_out, ended_by, error, instance) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", rows)
    con.commit()
    con.execute("ANALYZE")
    con.close()


def fill_log(audit_dir):
    """STATEMENTS query events in one log file older than the gateway's own, compact JSON
    as the writer writes it: one in ten thousand names `rare_marker`, every one `orders`."""
    rnd = random.Random(11)
    path = os.path.join(audit_dir, "portcullis-0000-generated.jsonl")
    with open(path, "w") as f:
        for i in range(STATEMENTS):
            session = f"gen-{rnd.randrange(SESSIONS):07}"
            table = "rare_marker" if i % 10000 == 0 else f"items_{i % 97}"
            statement = (f"SELECT o.id, o.total, c.email FROM orders o JOIN {table} c "
                         f"ON c.id = o.customer_id WHERE o.id = {i}")
            f.write(json.dumps({"seq": i + 1, "ts": "2026-12-01T00:00:00.000000Z",
                                "kind": "query", "session_id": session, "user": "user1",
                                "resource_role": "role1", "op": "query", "status": "ok",
                                "statement": statement, "duration_us": 120, "rows": 1,
                                "prev_hash": "0" * 64, "hash": "0" * 64}, separators=(",", ":")) + "\n")
    return os.path.getsize(path)


def sign_in(admin, token):
    c = http.client.HTTPConnection("127.0.0.1", admin)
    body = urllib.parse.urlencode({"name": "admin", "secret": token})
    c.request("POST", "/ui/login", body, {"Content-Type": "application/x-www-form-urlencoded"})
    r = c.getresponse()
    r.read()
    cookie = r.getheader("Set-Cookie") or ""
    if r.status != 303 or not cookie:
        sys.exit(f"console sign-in failed: {r.status}")
    return cookie.split(";")[0]


def timed(admin, cookie, path):
    c = http.client.HTTPConnection("127.0.0.1", admin)
    times, size = [], 0
    for _ in range(REPEAT):
        t = time.perf_counter()
        c.request("GET", path, headers={"Cookie": cookie})
        r = c.getresponse()
        body = r.read()
        times.append((time.perf_counter() - t) * 1000)
        if r.status != 200:
            sys.exit(f"{path}: {r.status} {body[:200]!r}")
        size = len(body)
    times.sort()
    return statistics.median(times), times[int(len(times) * 0.95) - 1], size


PAGES = [
    ("sessions, first page (live first, then newest 50)", "/ui/sessions"),
    ("sessions, page 1000 (offset 49 950)", "/ui/sessions?page=1000"),
    ("sessions of one user", "/ui/sessions?user=user42"),
    ("sessions of one resource role, ended, last 7 days",
     "/ui/sessions?resource_role=role3&status=ended&since=604800"),
    ("sessions in web mode", "/ui/sessions?mode=web"),
    ("one session's page", "/ui/sessions/gen-0050000"),
    ("access review (all roles)", "/ui/review"),
    ("API: GET /api/sessions?limit=50", None),
    ("search: a text in 100 statements of the log", "/ui/sessions?q=rare_marker"),
    ("search: a text in every statement of the log", "/ui/sessions?q=orders"),
]


def main():
    if not os.path.exists(BINARY):
        sys.exit(f"{BINARY} is missing: cargo build --release --bin portcullis")
    tmp = tempfile.mkdtemp(prefix="portcullis-console-")
    admin = free_port()
    p = start(tmp, admin)
    wait_file(os.path.join(tmp, "data", "bootstrap-token"))
    token = open(os.path.join(tmp, "data", "bootstrap-token")).read().strip()
    p.terminate()
    p.wait()
    t = time.time()
    fill(os.path.join(tmp, "p.db"))
    print(f"filled the index with {SESSIONS} sessions in {time.time() - t:.1f}s", flush=True)
    p = start(tmp, admin)
    try:
        t = time.time()
        size = fill_log(os.path.join(tmp, "audit"))
        print(f"wrote {STATEMENTS} statements ({size >> 20} MiB) to the log in "
              f"{time.time() - t:.1f}s", flush=True)
        cookie = sign_in(admin, token)
        lines = [f"# Console pages over {SESSIONS} sessions ({datetime.date.today()})", "",
                 f"{REPEAT} requests each, one connection, release build, SQLite store; "
                 f"the monitoring log holds {STATEMENTS} statements ({size >> 20} MiB).", "",
                 "| page | median ms | p95 ms | bytes |", "| --- | ---: | ---: | ---: |"]
        for label, path in PAGES:
            if path is None:
                c = http.client.HTTPConnection("127.0.0.1", admin)
                times = []
                for _ in range(REPEAT):
                    s = time.perf_counter()
                    c.request("GET", "/api/sessions?limit=50",
                              headers={"Authorization": f"Bearer {token}"})
                    r = c.getresponse()
                    size = len(r.read())
                    times.append((time.perf_counter() - s) * 1000)
                times.sort()
                med, p95 = statistics.median(times), times[int(len(times) * 0.95) - 1]
            else:
                med, p95, size = timed(admin, cookie, path)
            lines.append(f"| {label} | {med:.1f} | {p95:.1f} | {size} |")
            print(lines[-1], flush=True)
        out = os.path.join(ROOT, "benches", "results", f"console-{datetime.date.today()}.md")
        with open(out, "w") as f:
            f.write("\n".join(lines) + "\n")
        print("written to", out)
    finally:
        p.terminate()
        p.wait()


if __name__ == "__main__":
    main()

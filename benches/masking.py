#!/usr/bin/env python3
"""Masking's cost, side by side in one run (interleaved rounds, medians), on the private
PostgreSQL cluster benches/run.py makes:

- a 1M-row result read by pgbench (no formatting) through the same masked gateway, with its
  masked column (`email`, every row rewritten) and with an unmasked column of the same
  size (`note`), and through a gateway without rules and directly;
- pgbench -S -c 8 (simple and prepared) through a gateway whose role has masking rules on
  another table, and one without rules: TPS and the gateway's CPU per statement.

Run through benches/run.sh's build first (`cargo build --release --bin portcullis`).
Environment: ROUNDS (3), SECONDS (5), SCALE (10). Writes benches/results/<date>-<time>-masking.md.
"""
import datetime
import os
import statistics
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run as h  # noqa: E402

MASKING = """
[[masking]]
name = "emails"
resource_roles = ["bench"]
columns = ["public.masked_big.email"]
method = "email"
[[masking]]
name = "cards"
resource_roles = ["bench"]
column_names = ["card_number"]
method = "partial"
"""

ROWS = 1_000_000


def make_table():
    sql = (
        "create table masked_big (id int, email text, note text);"
        f"insert into masked_big select g, 'someone.number.' || g || '@example.com',"
        f" 'someone.number.' || g || '@example.com' from generate_series(1, {ROWS}) g;"
    )
    r = h.run(["psql", "-h", h.PG[0], "-p", str(h.PG[1]), "-U", "postgres", "-d", "bench", "-c", sql])
    if r.returncode != 0:
        sys.exit(r.stderr)
    h.run(["psql", "-h", h.PG[0], "-p", str(h.PG[1]), "-U", "postgres", "-d", "bench", "-c", "vacuum analyze masked_big"])


def large(tmp, port, user, column):
    script = os.path.join(tmp, f"large-{column}.sql")
    with open(script, "w") as f:
        f.write(f"select id, {column} from masked_big;\n")
    r = h.pgbench(port, user, "bench", ["-f", script, "-c", "1", "-t", "2"])
    return r["lat_ms"] / 1000 if r and r["lat_ms"] else None


def cpu_per_statement(port, pid, mode, n=20000):
    u0, s0 = h.proc_times(pid)
    h.pgbench(port, "bench", "bench", ["-S", "-c", "8", "-j", "2", "-M", mode, "-t", str(n // 8)])
    u1, s1 = h.proc_times(pid)
    return ((u1 - u0) + (s1 - s0)) / n * 1e6


def main():
    tmp = tempfile.mkdtemp(prefix="pc-mask-")
    h.make_cert(tmp)
    stop = h.start_cluster(tmp)
    h.setup_database()
    make_table()
    keep = "idle_upstreams = 16"
    plain, plain_port, _ = h.start_portcullis(tmp, name="portcullis", limits=keep)
    masked, masked_port, _ = h.start_portcullis(tmp, name="portcullis-masked", limits=keep, extra=MASKING)
    # The masked gateway masks what it should.
    r = h.run(["psql", "-h", "127.0.0.1", "-p", str(masked_port), "-U", "bench", "-d", "bench", "-At",
               "-c", "select email from masked_big where id = 7"],
              env=dict(os.environ, PGPASSWORD=h.PASSWORD, PGSSLMODE="disable"))
    assert r.stdout.strip() == "s***@example.com", r.stdout + r.stderr
    large_t = {"direct": [], "plain email": [], "masked note": [], "masked email": []}
    tps = {(g, m): [] for g in ("plain", "masked") for m in ("simple", "prepared")}
    cpu = {(g, m): [] for g in ("plain", "masked") for m in ("simple", "prepared")}
    gateways = {"plain": (plain_port, plain.pid), "masked": (masked_port, masked.pid)}
    for rnd in range(h.ROUNDS):
        for name, (port, user, column) in {
            "direct": (h.PG[1], "postgres", "email"),
            "plain email": (plain_port, "bench", "email"),
            "masked note": (masked_port, "bench", "note"),
            "masked email": (masked_port, "bench", "email"),
        }.items():
            secs = large(tmp, port, user, column)
            if secs:
                large_t[name].append(secs)
            print(f"round {rnd + 1} 1M rows {name:13} {secs} s", file=sys.stderr)
        for mode in ("simple", "prepared"):
            for g, (port, pid) in gateways.items():
                r = h.pgbench(port, "bench", "bench", ["-S", "-c", "8", "-j", "2", "-M", mode, "-T", str(h.SECONDS)])
                if r:
                    tps[(g, mode)].append(r["tps"])
                c = cpu_per_statement(port, pid, mode)
                cpu[(g, mode)].append(c)
                print(f"round {rnd + 1} -S -c 8 {mode:8} {g:6} tps {r and r['tps']} cpu {c:.1f} µs", file=sys.stderr)
    for p in (plain, masked):
        p.terminate()
    stop()
    med = lambda xs: statistics.median(xs) if xs else float("nan")
    lines = [f"# Masking, {datetime.date.today()} ({h.ROUNDS} rounds, medians)", "",
             f"Host: {os.cpu_count()} cores. Rules: `MASKING` in benches/masking.py.", "",
             "1M-row result (id + a 36-byte email; pgbench reads it, 2 transactions per round):", "",
             "| through | seconds | vs the same gateway, unmasked column |", "|---|---|---|"]
    base = med(large_t["masked note"])
    for name, xs in large_t.items():
        lines.append(f"| {name} | {med(xs):.3f} | {med(xs) / base:.2f} |")
    lines += ["", "pgbench -S -c 8, rules on another table (`masked`) vs none (`plain`):", "",
              "| mode | TPS masked / plain | CPU µs/statement masked | plain | ratio |", "|---|---|---|---|---|"]
    for mode in ("simple", "prepared"):
        t = med(tps[("masked", mode)]) / med(tps[("plain", mode)])
        cm, cp = med(cpu[("masked", mode)]), med(cpu[("plain", mode)])
        lines.append(f"| {mode} | {t:.3f} | {cm:.1f} | {cp:.1f} | {cm / cp:.2f} |")
    stamp = datetime.datetime.now().strftime("%Y-%m-%d-%H%M")
    out = os.path.join(h.ROOT, "benches", "results", f"{stamp}-masking.md")
    with open(out, "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Shipping the monitoring log to NATS JetStream, side by side in one run (interleaved
rounds, medians), on the private PostgreSQL cluster benches/run.py makes and the local
NATS (127.0.0.1:4222, JetStream on):

- pgbench -S -c 8 (simple) through a gateway shipping to NATS and one that does not: TPS
  ratio, and the shipper's lag (events and seconds, sampled from /metrics every 0.2 s)
  while it runs;
- the shipper's throughput: a gateway whose NATS is away while pgbench writes a backlog,
  then the time to ship it once NATS is reachable (events per second).

Run after `cargo build --release --bin portcullis --example bare_relay`.
Environment: ROUNDS (3), SECONDS (5), SCALE (10), NATS (nats://127.0.0.1:4222).
Writes benches/results/<date>-<time>-nats.md.
"""
import datetime
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run as h  # noqa: E402

NATS = os.environ.get("NATS", "nats://127.0.0.1:4222")


def shipping(url, stream, prefix):
    return f'[audit.nats]\nurl = "{url}"\nstream = "{stream}"\nsubject_prefix = "{prefix}"\n'


def metric(admin, name):
    text = urllib.request.urlopen(f"http://127.0.0.1:{admin}/metrics", timeout=5).read().decode()
    m = re.search(rf"^{name} (\d+)", text, re.M)
    return int(m.group(1)) if m else None


def sample(admin, stop, out):
    while not stop.is_set():
        try:
            out.append((metric(admin, "audit_nats_lag_events"), metric(admin, "audit_nats_lag_seconds")))
        except OSError:
            pass
        time.sleep(0.2)


def pgbench(port, seconds):
    r = h.pgbench(port, "bench", "bench", ["-S", "-c", "8", "-j", "2", "-M", "simple", "-T", str(seconds)])
    return r["tps"] if r else None


def delete_stream(name):
    host, port = NATS.removeprefix("nats://").split(":")
    s = socket.create_connection((host, int(port)))
    s.recv(4096)
    s.sendall(f"CONNECT {{}}\r\nPUB $JS.API.STREAM.DELETE.{name} 0\r\n\r\nPING\r\n".encode())
    s.recv(4096)
    s.close()


def last_seq(audit_dir):
    files = sorted(f for f in os.listdir(audit_dir) if f.endswith(".jsonl"))
    with open(os.path.join(audit_dir, files[-1]), "rb") as f:
        lines = [l for l in f.read().split(b"\n") if l.startswith(b'{"seq":')]
    return int(re.match(rb'\{"seq":(\d+)', lines[-1]).group(1))


def backlog(tmp):
    """Events per second the shipper ships a backlog at: a private nats-server is started
    only after pgbench has filled the log."""
    port = h.free_port()
    url = f"nats://127.0.0.1:{port}"
    stream, prefix = f"PCB_{uuid.uuid4().hex}", f"pcb.{uuid.uuid4().hex}"
    p, gw_port, _ = h.start_portcullis(tmp, name="portcullis-backlog", limits="idle_upstreams = 16",
                                       extra=shipping(url, stream, prefix))
    admin = h.ADMIN["portcullis-backlog"][0]
    pgbench(gw_port, h.SECONDS)
    time.sleep(0.5)
    written = last_seq(os.path.join(tmp, "portcullis-backlog", "audit"))
    data = os.path.join(tmp, "nats-backlog")
    server = subprocess.Popen(["nats-server", "-js", "-a", "127.0.0.1", "-p", str(port), "-sd", data],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    h.wait_port(port)
    start = time.time()
    # The log's last seq: the shipper finds it as it reads; wait until the lag is gone.
    while True:
        acked = metric(admin, "audit_nats_acked_seq") or 0
        if acked >= written:
            break
        if time.time() - start > 300:
            break
        time.sleep(0.05)
    took = time.time() - start
    p.terminate()
    server.terminate()
    return written, took


def main():
    tmp = tempfile.mkdtemp(prefix="pc-nats-")
    h.make_cert(tmp)
    stop = h.start_cluster(tmp)
    h.setup_database()
    keep = "idle_upstreams = 16"
    stream, prefix = f"PCN_{uuid.uuid4().hex}", f"pcn.{uuid.uuid4().hex}"
    plain, plain_port, _ = h.start_portcullis(tmp, name="portcullis", limits=keep)
    shipped, ship_port, _ = h.start_portcullis(tmp, name="portcullis-nats", limits=keep,
                                               extra=shipping(NATS, stream, prefix))
    admin = h.ADMIN["portcullis-nats"][0]
    tps = {"plain": [], "nats": []}
    cpu = {"plain": [], "nats": [], "nats-server": []}
    nats_pid = int(subprocess.run(["pgrep", "-o", "nats-server"], capture_output=True, text=True).stdout.split()[0])
    lags = []
    for rnd in range(h.ROUNDS):
        # CPU per statement: the gateway's, and the NATS server's while it takes the lines.
        n = 20000
        for name, port, pid in (("plain", plain_port, plain.pid), ("nats", ship_port, shipped.pid)):
            g0, s0 = sum(h.proc_times(pid)), sum(h.proc_times(nats_pid))
            h.pgbench(port, "bench", "bench", ["-S", "-c", "8", "-j", "2", "-t", str(n // 8)])
            time.sleep(0.5)
            cpu[name].append((sum(h.proc_times(pid)) - g0) / n * 1e6)
            if name == "nats":
                cpu["nats-server"].append((sum(h.proc_times(nats_pid)) - s0) / n * 1e6)
        tps["plain"].append(pgbench(plain_port, h.SECONDS))
        samples, halt = [], threading.Event()
        t = threading.Thread(target=sample, args=(admin, halt, samples))
        t.start()
        tps["nats"].append(pgbench(ship_port, h.SECONDS))
        halt.set()
        t.join()
        lags.extend(samples)
        print(f"round {rnd + 1} plain {tps['plain'][-1]} nats {tps['nats'][-1]} "
              f"max lag {max((s[0] or 0 for s in samples), default=0)} events", file=sys.stderr)
    acked, took = backlog(tmp)
    for p in (plain, shipped):
        p.terminate()
    stop()
    delete_stream(stream)
    med = lambda xs: statistics.median([x for x in xs if x is not None])
    ev = sorted(s[0] or 0 for s in lags)
    secs = sorted(s[1] or 0 for s in lags)
    pct = lambda xs, q: xs[min(len(xs) - 1, int(len(xs) * q))] if xs else 0
    lines = [f"# Shipping to NATS JetStream, {datetime.date.today()} ({h.ROUNDS} rounds, medians)", "",
             f"Host: {os.cpu_count()} cores; NATS {NATS} (local nats-server, JetStream file storage).", "",
             "| measure | value |", "|---|---|",
             f"| `-S -c 8` simple TPS, shipping / not | {med(tps['nats']) / med(tps['plain']):.3f} ({med(tps['nats']):.0f} / {med(tps['plain']):.0f}) |",
             f"| lag while pgbench runs, events p50 / p99 / max | {pct(ev, 0.5)} / {pct(ev, 0.99)} / {ev[-1] if ev else 0} |",
             f"| lag while pgbench runs, seconds p50 / p99 / max | {pct(secs, 0.5)} / {pct(secs, 0.99)} / {secs[-1] if secs else 0} |",
             f"| backlog of {acked} events shipped in | {took:.2f} s ({acked / took:.0f} events/s) |",
             f"| gateway CPU per statement, shipping / not | {med(cpu['nats']):.1f} / {med(cpu['plain']):.1f} µs ({med(cpu['nats']) / med(cpu['plain']):.2f}) |",
             f"| nats-server CPU per statement while shipping | {med(cpu['nats-server']):.1f} µs |"]
    stamp = datetime.datetime.now().strftime("%Y-%m-%d-%H%M")
    out = os.path.join(h.ROOT, "benches", "results", f"{stamp}-nats.md")
    with open(out, "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()

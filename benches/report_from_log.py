#!/usr/bin/env python3
"""Rebuilds a benches/run.py report from the per-round lines it prints to stderr, when the
run's own report step failed: `python3 benches/report_from_log.py RUN.log [BEFORE]`.
System call counts, idle RSS, login CPU and one-off latency are not in those lines, so
not in the rebuilt report. ROUNDS as the run had them (default 3)."""
import ast, re, sys, os, importlib.util
spec = importlib.util.spec_from_file_location("run", os.path.join(os.path.dirname(os.path.abspath(__file__)), "run.py"))
run = importlib.util.module_from_spec(spec); spec.loader.exec_module(run)
results, cpu, large, logins, my = {}, {}, {}, {}, {}
for line in open(sys.argv[1]):
    line = line.rstrip("\n")
    if not line.startswith("round "):
        continue
    rest = line.split(" ", 2)[2]
    if m := re.match(r"cpu (\S+)\s+user ([0-9.]+) sys ([0-9.]+) µs", rest):
        cpu.setdefault(m[1], []).append((float(m[2]), float(m[3])))
    elif m := re.match(r"1M rows tls=(\w+) (\S+)\s+(\S+) s$", rest):
        if m[3] != "None":
            large.setdefault((m[2], m[1] == "True"), []).append(float(m[3]))
    elif m := re.match(r"logins (\S+)\s+(\S+)$", rest):
        if m[2] != "None":
            logins.setdefault(m[1], []).append(float(m[2]))
    elif m := re.match(r"mysql 1M rows (\S+)\s+(\S+)$", rest):
        if m[2] != "None":
            my.setdefault(m[1], {}).setdefault("1M rows (s)", []).append(float(m[2]))
    elif m := re.match(r"mysql logins (\S+)\s+(\S+)$", rest):
        if m[2] != "None":
            my.setdefault(m[1], {}).setdefault("logins/s", []).append(float(m[2]))
    elif m := re.match(r"mysql (oltp_\w+)\s+(\S+)\s+(\S+)$", rest):
        if m[3] != "None":
            my.setdefault(m[2], {}).setdefault(m[1], []).append(float(m[3]))
    elif m := re.match(r"(.+?)\s+(\S+)\s+(\{.*\}|None)$", rest):
        w, t, r = m[1].strip(), m[2], m[3]
        results.setdefault(w, {})
        results[w].setdefault(t, [])
        if r != "None":
            results[w][t].append(ast.literal_eval(r))
for t in ["direct", "portcullis", "portcullis-1t", "relay"]:
    my.setdefault(t, {})
    for w in ["oltp_point_select", "oltp_read_only", "1M rows (s)", "logins/s"]:
        my[t].setdefault(w, [])
for t in ["direct", "portcullis", "portcullis-1t", "portcullis-anew", "pgbouncer"]:
    logins.setdefault(t, [])
for t in ["direct", "portcullis", "pgbouncer", "relay"]:
    for tls in (False, True):
        large.setdefault((t, tls), [])
run.ROUNDS = int(os.environ.get("ROUNDS", "3"))
run.BEFORE = sys.argv[2] if len(sys.argv) > 2 else None
run.write_report(results, cpu, {}, my, large, logins, {}, {}, None)

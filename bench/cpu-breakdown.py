"""CPU seconds per 1,000 jobs, by process (the server, PostgreSQL, the
bench's own workers and clients), for the enqueue and drain phases of a
throughput run: where the two cores go.

    python3 bench/cpu-breakdown.py target/release/chronos-bench --mode throughput --store postgres

It reads each process's user + system time from /proc when the bench prints
a phase's line. The end-to-end phase is left out: the bench may restart its
server for it, which resets the server's counters.
"""
import os, subprocess, sys, time

TICK = os.sysconf("SC_CLK_TCK")

def procs():
    out = {}
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/stat") as f:
                st = f.read()
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        rest = st[st.rindex(")") + 2:].split()
        ppid = int(rest[1]); ut = int(rest[11]); stt = int(rest[12])
        out[int(pid)] = (ppid, cmd, (ut + stt) / TICK)
    return out

def bench_backend(cmd):
    """The bench's own database's backends, and PostgreSQL's shared
    processes (WAL writer, checkpointer, …); not the backends of other
    databases (a test suite running beside the bench)."""
    if "chronos_bench_" in cmd:
        return True
    return "(" not in cmd and "chronos_" not in cmd and "[local]" not in cmd

def groups(bench_pid, snap):
    g = {"server": 0.0, "postgres": 0.0, "bench (workers, clients)": 0.0}
    for pid, (ppid, cmd, cpu) in snap.items():
        if pid == bench_pid:
            g["bench (workers, clients)"] += cpu
        elif ppid == bench_pid and " serve" in cmd:
            g["server"] += cpu
        elif (cmd.startswith("postgres") or "/postgres " in cmd) and bench_backend(cmd):
            g["postgres"] += cpu
    return g

args = sys.argv[1:]
perf = None
if args and args[0] == "--perf":
    args = args[1:]
    perf_data = "/tmp/chronos-drain.perf.data"
p = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
marks = []
for line in p.stdout:
    sys.stdout.write(line)
    s = line.strip()
    if s.startswith(("4 workers", "enqueue", "drain backlog", "end to end")):
        marks.append((s.split()[0], groups(p.pid, procs())))
        if "perf_data" in globals() and s.startswith("enqueue") and perf is None:
            perf = subprocess.Popen(["perf", "record", "-a", "-F", "499", "-o", perf_data],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        elif perf is not None and s.startswith("drain backlog"):
            perf.send_signal(2)
            perf.wait()
p.wait()
names = ["enqueue", "drain"]
jobs = 50000
print(f"\nCPU seconds per 1,000 jobs ({os.cpu_count()} cores)")
for i, name in enumerate(names):
    a, b = marks[i][1], marks[i + 1][1]
    row = {k: (b[k] - a[k]) / jobs * 1000 for k in a}
    print(f"  {name:8}", "  ".join(f"{k} {v:.3f}" for k, v in row.items()))

if "perf_data" in globals():
    print("\nhottest functions during the drain (share of all samples; threads named by perf)")
    out = subprocess.run(["perf", "report", "-i", perf_data, "--stdio",
                          "--sort", "comm,dso,sym", "--percent-limit", "0.5"],
                         capture_output=True, text=True).stdout
    print("\n".join(l for l in out.splitlines() if l.strip() and not l.startswith("#")))

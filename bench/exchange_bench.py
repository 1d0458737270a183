#!/usr/bin/env python3
"""The exchange as a measured cost (bench/exchange_bench.sh runs this; stdlib only).

For each model and P it runs `threadsplit --exchange-only --procs P --threads 1`: the
workers compute nothing and send a gradient of the model's size, so what a step costs is the
exchange alone (gradients up, checks, sum, optimizer, parameters down). Per run it keeps the
report's timed window (after --warmup-steps): the median step (wall), the coordinator
process's CPU per step (user + system, all its threads), and around the run /proc/stat, so
that CPU used by other processes (another build on a shared box) and hypervisor steal are
recorded beside each point.

Writes NAME.csv (one row per model x P, medians over the repeats), NAME.md (the table, the
coordinator's bytes per step, the fitted cost model and what it implies for 16 and 64 cores)
and keeps every run's report under --runs-dir.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

MODELS = ["seed_cnn", "tf_tutorial_cnn", "airbench94"]
PROCS = [1, 2, 3, 4, 6, 8, 12, 16]

# Compute time per step of a normal training run on this 2-core box, 2 cores in use (best
# split, global batch as the model's default), from docs/results.md's sweeps: seed_cnn 2x1
# 8293 img/s at batch 128, tf_tutorial_cnn 1x2 876 img/s at 128, airbench94 (f32) 2x1 546
# img/s at 1024. Overridden by --compute-ms model=ms.
COMPUTE_MS_2CORE = {"seed_cnn": 128 / 8293 * 1e3, "tf_tutorial_cnn": 128 / 876 * 1e3,
                    "airbench94": 1024 / 546 * 1e3}


def proc_stat():
    """(busy, steal) CPU seconds of the whole machine so far (/proc/stat's cpu line)."""
    tick = os.sysconf("SC_CLK_TCK")
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    user, nice, system, idle, iowait, irq, softirq, steal = (v + [0] * 8)[:8]
    return (user + nice + system + irq + softirq + steal) / tick, steal / tick


def optimizer_slots(config):
    """Per-parameter state buffers of the run's optimizer (common/optimizer.h slot_names)."""
    if config["optimizer"] == "adam":
        n = 2
    else:
        n = 1 if config["momentum"] > 0 else 0
    return n + (1 if config.get("lookahead_every", 0) > 0 else 0)


def bytes_per_step(P, num_params, slots):
    """The coordinator's bytes per step, by hop (docs/coordinator.md, 'One gradient, hop by hop').
    G = one gradient or Params payload (4 x num_params bytes)."""
    G = 4 * num_params
    copies = {
        "recv_kernel_to_user": P * G,   # loopback TCP read into gRPC's slices (system time)
        "protobuf_parse": P * G,        # each StepResult.gradient into its std::string
        "guard_keep": G + slots * G,    # DivergenceGuard::keep: params + optimizer state
        "pack_params": G,               # pack_floats into the one Params message
        "protobuf_serialize": P * G,    # each link serializes Params into gRPC's slice
        "send_user_to_kernel": P * G,   # loopback TCP write (system time)
    }
    reads = {
        "finite_check": P * G,          # check_worker_message scans every gradient
        "sum": P * G,                   # GradientReducer adds each, in rank order
    }
    return G, copies, reads


def run_one(args, model, P, repeat):
    tag = f"{model}_p{P}_r{repeat}"
    report = os.path.join(args.runs_dir, tag + ".json")
    cmd = [args.bin, "--data", args.data, "--exchange-only", "--model", model, "--procs", str(P),
           "--threads", "1", "--steps", str(args.steps), "--warmup-steps", str(args.warmup),
           "--progress", "off", "--report", report]
    busy0, steal0 = proc_stat()
    t0 = time.monotonic()
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wall = time.monotonic() - t0
    busy1, steal1 = proc_stat()
    if p.returncode != 0:
        sys.exit(f"exchange_bench: {' '.join(cmd)} exited {p.returncode}:\n{p.stderr}")
    r = json.load(open(report))
    t = r["timed"]
    own = r["coordinator"]["cpu_user_s"] + r["coordinator"]["cpu_system_s"]
    workers_cpu = sum(w.get("cpu_user_s", 0) + w.get("cpu_system_s", 0) for w in r["workers"])
    cores = os.cpu_count()
    # CPU the machine spent on anything but this run (its coordinator and workers), over the
    # run's wall time: another build, the box's own daemons. An upper bound (the run's own
    # short-lived children before their Goodbye count as foreign).
    foreign = max(0.0, (busy1 - busy0) - own - workers_cpu) / (wall * cores)
    steal = max(0.0, steal1 - steal0) / (wall * cores)
    steps = t["steps"]
    fwd_bwd = sum(w["phase_totals"]["forward_s"] + w["phase_totals"]["backward_s"] for w in r["workers"])
    return {
        "model": model, "procs": P, "repeat": repeat,
        "num_params": r["config"]["num_params"], "slots": optimizer_slots(r["config"]),
        "oversubscribed": r["split"]["oversubscribed"],
        "step_ms_median": 1e3 * t["step_s_median"],
        "step_ms_mean": 1e3 * t["seconds"] / steps,
        "coord_cpu_ms": 1e3 * t["coordinator_cpu_s"] / steps,
        "coord_user_ms": 1e3 * t["coordinator_cpu_user_s"] / steps,
        "coord_sys_ms": 1e3 * t["coordinator_cpu_system_s"] / steps,
        "update_ms": 1e3 * t["update_s"] / steps,
        "gradient_wait_ms": 1e3 * t["gradient_wait_s"] / steps,
        # Whole processes (join and setup included) over the run's steps: an upper bound.
        "workers_cpu_ms": 1e3 * workers_cpu / r["totals"]["steps"],
        "foreign_share": foreign, "steal_share": steal,
        "worker_fwd_bwd_s": fwd_bwd,
        "coordinator_fifo": "SCHED_FIFO" in r["coordinator"]["scheduling"],
    }


def read_runs(path):
    """The rows --runs-csv wrote, numbers as numbers."""
    runs = []
    with open(path) as f:
        cols = f.readline().strip().split(",")
        for line in f:
            r = {}
            for c, v in zip(cols, line.rstrip("\n").split(",")):
                if v in ("true", "false"):
                    r[c] = v == "true"
                else:
                    try:
                        r[c] = int(v)
                    except ValueError:
                        try:
                            r[c] = float(v)
                        except ValueError:
                            r[c] = v
            runs.append(r)
    return runs


def lstsq2(xs, ys):
    """y ~ a + b x by least squares; (a, b, r2)."""
    n = len(xs)
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    sxy = sum((x - mx) * (y - my) for x, y in zip(xs, ys))
    b = sxy / sxx if sxx > 0 else 0.0
    a = my - b * mx
    ss_res = sum((y - a - b * x) ** 2 for x, y in zip(xs, ys))
    ss_tot = sum((y - my) ** 2 for y in ys)
    return a, b, (1 - ss_res / ss_tot) if ss_tot > 0 else 1.0


def summarize(runs):
    rows = []
    keys = sorted({(r["model"], r["procs"]) for r in runs},
                  key=lambda k: (MODELS.index(k[0]) if k[0] in MODELS else 99, k[1]))
    for model, P in keys:
        rs = [r for r in runs if r["model"] == model and r["procs"] == P]
        med = lambda k: statistics.median(r[k] for r in rs)
        G, copies, reads = bytes_per_step(P, rs[0]["num_params"], rs[0]["slots"])
        rows.append({
            "model": model, "procs": P, "repeats": len(rs), "num_params": rs[0]["num_params"],
            "message_bytes": G,
            "step_ms": med("step_ms_median"),
            "step_ms_min": min(r["step_ms_median"] for r in rs),
            "step_ms_max": max(r["step_ms_median"] for r in rs),
            "coord_cpu_ms": med("coord_cpu_ms"),
            "coord_cpu_ms_min": min(r["coord_cpu_ms"] for r in rs),
            "coord_cpu_ms_max": max(r["coord_cpu_ms"] for r in rs),
            "coord_user_ms": med("coord_user_ms"), "coord_sys_ms": med("coord_sys_ms"),
            "update_ms": med("update_ms"),
            "workers_cpu_ms": med("workers_cpu_ms"),
            "wire_in_bytes": P * G, "wire_out_bytes": P * G,
            "copied_bytes": sum(copies.values()), "read_pass_bytes": sum(reads.values()),
            "oversubscribed": rs[0]["oversubscribed"],
            "foreign_max": max(r["foreign_share"] for r in rs),
            "steal_max": max(r["steal_share"] for r in rs),
            "worker_fwd_bwd_s": max(r["worker_fwd_bwd_s"] for r in rs),
        })
    return rows


CSV_COLS = ["model", "procs", "repeats", "num_params", "message_bytes", "step_ms", "step_ms_min",
            "step_ms_max", "coord_cpu_ms", "coord_cpu_ms_min", "coord_cpu_ms_max", "coord_user_ms",
            "coord_sys_ms", "update_ms", "workers_cpu_ms", "wire_in_bytes", "wire_out_bytes",
            "copied_bytes", "read_pass_bytes", "oversubscribed", "foreign_max", "steal_max"]


def fmt(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return f"{v:.4f}"
    return str(v)


def write_csv(path, rows):
    with open(path, "w") as f:
        f.write(",".join(CSV_COLS) + "\n")
        for r in rows:
            f.write(",".join(fmt(r[c]) for c in CSV_COLS) + "\n")


def fits(rows):
    """Per-step ms ~ a + b x (P x MB) for wall and coordinator CPU: joint and per model."""
    out = {}
    for what in ("step_ms", "coord_cpu_ms"):
        pts = [(r["procs"] * r["message_bytes"] / 1e6, r[what], r["model"]) for r in rows]
        out[(what, "joint")] = lstsq2([p[0] for p in pts], [p[1] for p in pts])
        for m in {p[2] for p in pts}:
            sel = [p for p in pts if p[2] == m]
            if len(sel) >= 2:
                out[(what, m)] = lstsq2([p[0] for p in sel], [p[1] for p in sel])
    return out


def write_markdown(path, rows, runs, f, args, command, compute_ms):
    models = [m for m in MODELS if any(r["model"] == m for r in rows)] + \
             sorted({r["model"] for r in rows} - set(MODELS))
    procs = sorted({r["procs"] for r in rows})
    by = {(r["model"], r["procs"]): r for r in rows}
    L = []
    L.append("# The exchange as a measured cost, on this 2-core box")
    L.append("")
    L.append(f"Measured {time.strftime('%Y-%m-%d')} on {os.uname().nodename} ({os.cpu_count()} cores), "
             f"{args.steps} steps per run, the first {args.warmup} left out (the report's timed "
             f"window), {args.repeats} repeats per point, medians over the repeats "
             f"([CSV]({os.path.basename(path)[:-3]}.csv)). Command:")
    L.append("")
    L.append("```")
    L.append(command)
    L.append("```")
    L.append("")
    L.append("Each run is `threadsplit --exchange-only --model M --procs P --threads 1`: the workers build "
             "no model and load no data; each step they send a gradient of the model's size (every "
             "float a known tiny value) and install the parameters that come back. Everything else "
             "is the training code path: the deal, the wire checks, the sum in rank order, the "
             "optimizer and divergence guard, the broadcast, the report's timing.")
    L.append("")
    L.append("## ms per step (wall, median step of the timed window) | coordinator CPU ms per step")
    L.append("")
    hdr = "| P | " + " | ".join(f"{m} wall | {m} coord CPU" for m in models) + " |"
    L.append(hdr)
    L.append("|---:|" + "---:|---:|" * len(models))
    for P in procs:
        cells = []
        for m in models:
            r = by.get((m, P))
            cells += [f"{r['step_ms']:.2f}" if r else "", f"{r['coord_cpu_ms']:.2f}" if r else ""]
        L.append(f"| {P} | " + " | ".join(cells) + " |")
    L.append("")
    L.append("Message sizes: " + ", ".join(
        f"{m} {by[(m, procs[0])]['num_params']:,} floats = {by[(m, procs[0])]['message_bytes'] / 1e6:.3f} MB"
        for m in models) + " (one gradient = one Params message).")
    L.append("")
    L.append("Spread over the repeats (min..max of the per-run medians), the coordinator's CPU split "
             "and contention:")
    L.append("")
    L.append("| model | P | wall ms min..max | coord CPU ms min..max | of it user / sys | update ms | workers CPU ms (upper bound) | foreign CPU max | steal max |")
    L.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for m in models:
        for P in procs:
            r = by.get((m, P))
            if not r:
                continue
            L.append(f"| {m} | {P} | {r['step_ms_min']:.2f}..{r['step_ms_max']:.2f} | "
                     f"{r['coord_cpu_ms_min']:.2f}..{r['coord_cpu_ms_max']:.2f} | "
                     f"{r['coord_user_ms']:.2f} / {r['coord_sys_ms']:.2f} | {r['update_ms']:.2f} | "
                     f"{r['workers_cpu_ms']:.1f} | {100 * r['foreign_max']:.0f}% | {100 * r['steal_max']:.1f}% |")
    L.append("")
    L.append("The coordinator's total CPU is exact (the kernel's scheduler clock); its user/system "
             "split is sampled at the tick (4 ms) and scaled, so for the small model it is noise. "
             "The coordinator's training thread ran SCHED_FIFO (`--coordinator-priority auto`, as "
             "in training): under oversubscription it is not preempted by the workers.")
    L.append("")
    L.append("Foreign CPU: the machine's busy time (/proc/stat) during the run less this run's own "
             "(the coordinator's and the workers' rusage), as a share of the box; an upper bound, "
             "since the run's own processes before they report count as foreign. Workers CPU: "
             "their whole processes (join included) over the steps, summed over the P workers.")
    L.append("")
    L.append("## Bytes per step at the coordinator")
    L.append("")
    L.append("G = one message's payload (4 x num_params bytes; framing adds tens of bytes). Per step "
             "the coordinator receives P x G and sends P x G on the wire. The copies it makes, hop by "
             "hop (docs/coordinator.md, 'One gradient, hop by hop'):")
    L.append("")
    L.append("| copy | bytes | where |")
    L.append("|---|---:|---|")
    L.append("| socket read, kernel to gRPC's slices | P x G | loopback TCP (system time) |")
    L.append("| protobuf parse into StepResult.gradient | P x G | the completion-queue read (trainer_service.cpp) |")
    L.append("| divergence guard's copy of params + optimizer state | G + S x G | `DivergenceGuard::keep` (S = 2 slots here: Adam m, v; airbench94 momentum + lookahead) |")
    L.append("| `pack_floats` params into the one Params message | G | `TrainingRun::run_step` |")
    L.append("| protobuf serialize of Params, per link | P x G | gRPC `Write` (trainer_service.cpp) |")
    L.append("| socket write, user to kernel | P x G | loopback TCP (system time) |")
    L.append("| **copies in all** | **4 P G + (2 + S) G** | |")
    L.append("")
    L.append("Read passes on top (no copy): the finiteness check of each gradient (P x G, "
             "`check_worker_message`), the sum (P x G read, G written, `GradientReducer`), the "
             "optimizer and the guard's state check (a few G). So the coordinator touches about "
             "6 P G + 6 G bytes per step, 4 P G of it copies; every term but the constant grows with P.")
    L.append("")
    L.append("| model | P | wire in | wire out | copied | read passes |")
    L.append("|---|---:|---:|---:|---:|---:|")
    for m in models:
        for P in (procs[0], procs[len(procs) // 2], procs[-1]):
            r = by.get((m, P))
            if r:
                L.append(f"| {m} | {P} | {r['wire_in_bytes'] / 1e6:.2f} MB | {r['wire_out_bytes'] / 1e6:.2f} MB | "
                         f"{r['copied_bytes'] / 1e6:.2f} MB | {r['read_pass_bytes'] / 1e6:.2f} MB |")
    L.append("")
    L.append("(every P is in the CSV.)")
    L.append("")
    L.append("## Cost model")
    L.append("")
    L.append("Least squares over the (model, P) medians, x = P x G in MB (what the coordinator "
             "receives per step, the same as it sends):")
    L.append("")
    L.append("| fit | points | a (ms) | b (ms per MB of P x G) | R^2 |")
    L.append("|---|---|---:|---:|---:|")
    for what, label in (("step_ms", "wall per step"), ("coord_cpu_ms", "coordinator CPU per step")):
        for scope in ["joint"] + models:
            if (what, scope) in f:
                a, b, r2 = f[(what, scope)]
                L.append(f"| {label} | {scope} | {a:.3f} | {b:.3f} | {r2:.3f} |")
    L.append("")
    L.append("### What it implies for 16 and 64 cores")
    L.append("")
    L.append("The joint fit's intercept is not a per-step constant: it stands for the terms that grow "
             "with G but not with P (the optimizer, the guard's copy, packing Params), which the "
             "small model lacks, so the projections use each model's own fit. "
             "One worker per core (P = cores, T = 1), the exchange from the model's fit extrapolated "
             "in P x G; the compute per step from its 2-core time as if it scaled perfectly (2-core "
             "ms x 2 / cores, the least it could be). The coordinator's CPU per step is a floor on "
             "its step time however many cores the box has, since one training thread does the sum "
             "and the update and gRPC's threads do the copies; the wall fit was measured with P > 2 "
             "workers time-sharing 2 cores, so it also holds the workers' own CPU and is pessimistic "
             "for a box with a core per worker:")
    L.append("")
    L.append("| model | cores = P | exchange wall fit (ms) | coordinator CPU fit (ms) | compute, ideal scaling (ms) | exchange / (exchange + compute), by CPU fit |")
    L.append("|---|---:|---:|---:|---:|---:|")
    for m in models:
        G = by[(m, procs[0])]["message_bytes"] / 1e6
        c2 = compute_ms.get(m)
        aw, bw, _ = f.get(("step_ms", m), f[("step_ms", "joint")])
        ac, bc, _ = f.get(("coord_cpu_ms", m), f[("coord_cpu_ms", "joint")])
        for P in (16, 64):
            xw = aw + bw * P * G
            xc = ac + bc * P * G
            if c2:
                cp = c2 * 2 / P
                L.append(f"| {m} | {P} | {xw:.1f} | {xc:.1f} | {cp:.1f} | {100 * xc / (xc + cp):.0f}% |")
            else:
                L.append(f"| {m} | {P} | {xw:.1f} | {xc:.1f} | | |")
    L.append("")
    L.append("Compute on 2 cores: " + ", ".join(f"{m} {compute_ms[m]:.1f} ms/step" for m in models
                                                if m in compute_ms) +
             " (docs/results.md's sweeps: seed_cnn 2x1 8293 img/s and tf_tutorial_cnn 1x2 876 img/s "
             "at batch 128, airbench94 f32 2x1 546 img/s at 1024).")
    L.append("")
    open(path, "w").write("\n".join(L) + "\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bin", help="the threadsplit coordinator")
    ap.add_argument("--data", help="CIFAR-10 binary directory")
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--procs", default=" ".join(map(str, PROCS)), help="P values, space or comma separated")
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", required=True, help="output path without extension (writes .csv and .md)")
    ap.add_argument("--runs-dir", help="where every run's report is kept")
    ap.add_argument("--runs-csv", help="also write every run's row here")
    ap.add_argument("--command", default="", help="the command line to quote in the markdown")
    ap.add_argument("--from-runs", help="re-render from a runs CSV written by --runs-csv (no runs)")
    ap.add_argument("--compute-ms", action="append", default=[], help="model=ms: compute ms/step on 2 cores")
    args = ap.parse_args()
    if args.warmup >= args.steps:
        sys.exit("exchange_bench: --warmup must leave steps to time")
    models = [m for m in args.models.replace(",", " ").split() if m]
    procs = [int(p) for p in args.procs.replace(",", " ").split() if p]
    compute_ms = dict(COMPUTE_MS_2CORE)
    for kv in args.compute_ms:
        k, v = kv.split("=")
        compute_ms[k] = float(v)
    start = time.monotonic()
    if args.from_runs:
        runs = read_runs(args.from_runs)
        rows = summarize(runs)
        write_csv(args.out + ".csv", rows)
        write_markdown(args.out + ".md", rows, runs, fits(rows), args, args.command, compute_ms)
        print(f"wrote {args.out}.csv and {args.out}.md from {args.from_runs}")
        return
    if not (args.bin and args.data and args.runs_dir):
        sys.exit("exchange_bench: --bin, --data and --runs-dir are needed to run (or --from-runs)")
    os.makedirs(args.runs_dir, exist_ok=True)
    runs = []
    # Repeats outermost: a burst of foreign load spreads over points instead of hitting one.
    for rep in range(args.repeats):
        for m in models:
            for P in procs:
                r = run_one(args, m, P, rep)
                runs.append(r)
                print(f"[{time.monotonic() - start:6.0f} s] {m} P={P} repeat {rep}: "
                      f"{r['step_ms_median']:.2f} ms/step, coordinator CPU {r['coord_cpu_ms']:.2f} ms/step, "
                      f"foreign {100 * r['foreign_share']:.0f}%", flush=True)
                if r["worker_fwd_bwd_s"] != 0:
                    sys.exit("exchange_bench: a worker reported forward/backward time in an --exchange-only run")
    if args.runs_csv:
        cols = list(runs[0].keys())
        with open(args.runs_csv, "w") as f:
            f.write(",".join(cols) + "\n")
            for r in runs:
                f.write(",".join(fmt(r[c]) for c in cols) + "\n")
    rows = summarize(runs)
    write_csv(args.out + ".csv", rows)
    write_markdown(args.out + ".md", rows, runs, fits(rows), args, args.command or " ".join(sys.argv),
                   compute_ms)
    print(f"wrote {args.out}.csv and {args.out}.md ({time.monotonic() - start:.0f} s)")


if __name__ == "__main__":
    main()

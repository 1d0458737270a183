#!/usr/bin/env python3
"""The scaling study's report (scripts/scaling_study.sh): joins its sweeps, one per model and
core subset, into one table, and says per model and subset which split wins, by how much,
whether that is real or within noise, and how the best split's throughput scales.

    scripts/scaling_report.py OUT

Reads OUT/sweeps/*/sweep.json and sweep.csv (threadsplit sweep's), OUT/study.txt and
OUT/load.tsv. Writes OUT/scaling.csv (every point of every sweep, the sweep's columns after
subset_cores and core_list), OUT/scaling-verdicts.csv and OUT/verdicts.md (one line per
model, batch mode and subset), OUT/scaling.json (all of it) and OUT/scaling.png (matplotlib).

Which split wins and whether it is real are the sweep's own paired verdicts (per round the
ratio of the top two, a 95% interval; coordinator/sweep/paired_stats.h), copied, not redone.
The speedup compares two sweeps that ran one after the other, so it cannot be paired: it is
the ratio of the best splits' medians, with the range of the ratios of their repeats
(slowest at N over fastest at the baseline .. fastest over slowest) beside it, and two figures
for a shared machine: the ratio of the sweeps' fastest repeats (other programs only ever slow a
trial) and, where both sweeps have repeats with under 5% foreign CPU, of their quiet medians.
"""
import csv
import io
import json
import os
import sys

VERDICT_WORDS = {
    "real": "real (the paired interval lies above 1)",
    "tie": "a measured tie (the paired interval lies within the tolerance)",
    "undecided": "within noise (the paired interval includes 1)",
    "too_few": "too few rounds to tell",
}


def fail(msg):
    sys.exit(f"scaling_report: {msg}")


def read_study(out):
    study = {}
    path = os.path.join(out, "study.txt")
    if os.path.exists(path):
        with open(path) as f:
            for line in f:
                key, sep, value = line.rstrip("\n").partition(": ")
                if sep:
                    study[key] = value
    return study


def read_load(out):
    path = os.path.join(out, "load.tsv")
    if not os.path.exists(path):
        return []
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    for r in rows:
        for k in ("cores", "unix_time", "load1", "load5", "load15"):
            r[k] = typed(r[k])  # cores is "all" on the study's own lines
    return rows


def read_sweeps(out):
    """Every sweep dir with a sweep.json, as dicts, in the study's order (model, subset)."""
    root = os.path.join(out, "sweeps")
    if not os.path.isdir(root):
        fail(f"{root} does not exist: run scripts/scaling_study.sh first")
    sweeps, missing = [], []
    for name in sorted(os.listdir(root)):
        d = os.path.join(root, name)
        jpath, cpath = os.path.join(d, "sweep.json"), os.path.join(d, "sweep.csv")
        if not os.path.isdir(d):
            continue
        if not os.path.exists(jpath) or not os.path.exists(cpath):
            missing.append(name)
            continue
        try:
            with open(jpath) as f:
                j = json.load(f)
        except json.JSONDecodeError as e:
            fail(f"{jpath} is not JSON ({e}); rerun that sweep or delete its directory")
        with open(cpath, newline="") as f:
            text = f.read()
        header, *rows = list(csv.reader(io.StringIO(text)))
        if len(rows) != len(j["points"]):
            fail(f"{cpath} has {len(rows)} rows but {jpath} {len(j['points'])} points")
        models = {p["model"] for p in j["points"]}
        cores = {p["cores"] for p in j["points"]}
        if len(models) != 1 or len(cores) != 1:
            fail(f"{jpath} holds models {sorted(models)} on {sorted(cores)} cores: one of each expected")
        sweeps.append({"dir": d, "name": name, "json": j, "header": header, "rows": rows,
                       "model": models.pop(), "cores": cores.pop(),
                       "core_list": j["sweep"]["cores"]})
    order = read_study(out).get("models", "").split()
    rank = {m: i for i, m in enumerate(order)}
    sweeps.sort(key=lambda s: (rank.get(s["model"], len(rank)), s["model"], s["cores"]))
    return sweeps, missing


def trial_ips(point):
    return [t["images_per_s"] for t in point["trials"] if t.get("ok")]


def group_verdicts(sweeps):
    """One entry per model, batch mode and subset, with the speedup against the smallest subset."""
    out = []
    for s in sweeps:
        j = s["json"]
        for g in j["summary"]:
            pts = j["points"]
            best = pts[g["best"]] if g["best"] >= 0 else None
            second = pts[g["runner_up"]] if g["runner_up"] >= 0 else None
            quiet = pts[g["quiet_best"]] if g["quiet_best"] >= 0 else best
            if quiet and quiet["quiet_repeats"] == 0:
                quiet = None
            v = {"model": g["model"], "batch_mode": g["batch_mode"], "subset_cores": s["cores"],
                 "core_list": s["core_list"], "sweep_dir": os.path.relpath(s["dir"], os.path.dirname(os.path.dirname(s["dir"]))),
                 "rounds": j["sweep"]["rounds"], "partial": j["sweep"].get("partial", False),
                 "splits": sum(1 for p in pts if p["batch_mode"] == g["batch_mode"]),
                 "global_batch": best["global_batch"] if best else None,
                 "best": best["label"] if best else None,
                 "best_images_per_s": best["images_per_s"]["median"] if best else None,
                 "best_min": best["images_per_s"]["min"] if best else None,
                 "best_max": best["images_per_s"]["max"] if best else None,
                 "best_trials": trial_ips(best) if best else [],
                 "runner_up": second["label"] if second else None,
                 "runner_up_images_per_s": second["images_per_s"]["median"] if second else None,
                 "margin": g["margin"] if second else None,
                 "paired_rounds": g["paired"]["rounds"],
                 "paired_ratio": g["paired"]["geo_mean"] if g["paired"]["rounds"] >= 1 else None,
                 # An interval needs two rounds; with fewer the sweep's lo and hi are 0.
                 "paired_lo": g["paired"]["lo"] if g["paired"]["rounds"] >= 2 else None,
                 "paired_hi": g["paired"]["hi"] if g["paired"]["rounds"] >= 2 else None,
                 "contended_rounds": g["paired"]["contended_rounds_left_out"],
                 "verdict": g["verdict"] if second else "only_split", "too_noisy": g["too_noisy"],
                 # The sweep's ranking by its uncontended repeats (under 5% foreign CPU), when
                 # some were contended: the split that wins among quiet repeats, and its median.
                 "quiet_best": quiet["label"] if quiet else None,
                 "quiet_images_per_s": quiet["images_per_s_quiet_median"] if quiet else None,
                 "quiet_repeats": quiet["quiet_repeats"] if quiet else 0,
                 "foreign_cpu_max": max([p["foreign_cpu_max"] for p in pts if p["batch_mode"] == g["batch_mode"]] or [0]),
                 "sweep_text": g["text"]}
            out.append(v)
    # Speedup against the smallest subset of the same model and batch mode.
    for v in out:
        base = min((x for x in out if x["model"] == v["model"] and x["batch_mode"] == v["batch_mode"]
                    and x["best_images_per_s"]), key=lambda x: x["subset_cores"], default=None)
        v["baseline_cores"] = base["subset_cores"] if base else None
        if not base or not v["best_images_per_s"] or not base["best_trials"] or not v["best_trials"]:
            v.update(speedup=None, speedup_lo=None, speedup_hi=None, efficiency=None, fastest_speedup=None,
                     quiet_speedup=None)
            continue
        v["quiet_speedup"] = None
        v["speedup"] = v["best_images_per_s"] / base["best_images_per_s"]
        v["speedup_lo"] = min(v["best_trials"]) / max(base["best_trials"])
        v["speedup_hi"] = max(v["best_trials"]) / min(base["best_trials"])
        v["efficiency"] = v["speedup"] / (v["subset_cores"] / base["subset_cores"])
        # Other programs only ever slow a trial, so each sweep's fastest repeat is its least
        # disturbed one: on a shared machine their ratio is the steadier figure.
        v["fastest_speedup"] = max(v["best_trials"]) / max(base["best_trials"])
        if v["quiet_images_per_s"] and base["quiet_images_per_s"]:
            v["quiet_speedup"] = v["quiet_images_per_s"] / base["quiet_images_per_s"]
    return out


def verdict_line(v, tolerance):
    head = (f"{v['model']}, {v['batch_mode']} batch {v['global_batch']}, {v['subset_cores']} "
            f"core{'s' if v['subset_cores'] > 1 else ''} ({v['core_list']})")
    if not v["best"]:
        return head + ": no split ran successfully."
    t = head + f": {v['best']} at {v['best_images_per_s']:.0f} img/s"
    if v["verdict"] == "only_split":
        t += f", the only split of {v['subset_cores']} core{'s' if v['subset_cores'] > 1 else ''}"
    else:
        m = v["margin"]
        t += (f" wins over {v['splits'] - 1} other split{'s' if v['splits'] > 2 else ''}, "
              f"{100 * abs(m):.1f}% {'ahead of' if m >= 0 else 'behind'} the runner-up {v['runner_up']} "
              f"({v['runner_up_images_per_s']:.0f}) by median{'' if m >= 0 else ' but ahead round by round'}")
        if v["paired_rounds"] >= 2:
            t += (f"; paired over {v['paired_rounds']} rounds {v['best']}/{v['runner_up']} = "
                  f"{v['paired_ratio']:.3f} (95% {v['paired_lo']:.3f}..{v['paired_hi']:.3f}): ")
        else:
            t += ": "
        word = VERDICT_WORDS.get(v["verdict"], v["verdict"])
        if v["verdict"] == "tie":
            word = f"a measured tie (the paired interval lies within +-{100 * tolerance:.0f}%)"
        t += word
        if v["too_noisy"]:
            t += ", the machine too noisy to decide"
        if v["contended_rounds"]:
            t += f" ({v['contended_rounds']} contended round{'s' if v['contended_rounds'] > 1 else ''} left out)"
    if v["speedup"] is not None and v["subset_cores"] != v["baseline_cores"]:
        lo, hi = v["speedup_lo"], v["speedup_hi"]
        where = ("faster in every pair of repeats" if lo > 1 else
                 "slower in every pair of repeats" if hi < 1 else "the repeats' ranges overlap")
        t += (f". Scaling: {v['speedup']:.2f}x the best of {v['baseline_cores']} core"
              f"{'s' if v['baseline_cores'] > 1 else ''} (repeats' ratios {lo:.2f}..{hi:.2f}, unpaired: "
              f"{where}), efficiency {100 * v['efficiency']:.0f}%; fastest repeat over fastest repeat "
              f"{v['fastest_speedup']:.2f}x")
        if v["quiet_speedup"] is not None and v["foreign_cpu_max"] > 0.05:
            t += (f"; counting only quiet repeats (under 5% foreign CPU) {v['quiet_speedup']:.2f}x "
                  f"({v['quiet_best']} at {v['quiet_images_per_s']:.0f} img/s over {v['quiet_repeats']} repeats)")
    if v["foreign_cpu_max"] > 0.05:
        t += f". Other programs took up to {100 * v['foreign_cpu_max']:.0f}% of the CPU in some trials"
    if v["partial"]:
        t += ". PARTIAL sweep (stopped)"
    return t + "."


def write_csv(path, header, rows):
    with open(path, "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(header)
        w.writerows(rows)


def typed(value):
    for cast in (int, float):
        try:
            return cast(value)
        except ValueError:
            pass
    return value


VERDICT_COLUMNS = ["model", "batch_mode", "subset_cores", "core_list", "global_batch", "rounds", "splits",
                   "best", "best_images_per_s", "best_min", "best_max", "runner_up",
                   "runner_up_images_per_s", "margin", "paired_rounds", "paired_ratio", "paired_lo",
                   "paired_hi", "contended_rounds", "verdict", "too_noisy", "baseline_cores", "speedup",
                   "speedup_lo", "speedup_hi", "efficiency", "fastest_speedup", "quiet_best", "quiet_images_per_s",
                   "quiet_repeats", "quiet_speedup", "foreign_cpu_max", "partial"]


def fmt_cell(x):
    if x is None:
        return ""
    if isinstance(x, bool):
        return "true" if x else "false"
    if isinstance(x, float):
        return f"{x:.4f}"
    return str(x)


def plot(path, verdicts, points):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = []
    for v in verdicts:
        if (v["model"], v["batch_mode"]) not in groups:
            groups.append((v["model"], v["batch_mode"]))
    fig, axes = plt.subplots(2, len(groups), figsize=(3.6 * len(groups) + 0.6, 6.4), squeeze=False)
    for col, (model, mode) in enumerate(groups):
        vs = sorted((v for v in verdicts if v["model"] == model and v["batch_mode"] == mode and v["best"]),
                    key=lambda v: v["subset_cores"])
        ax, ax_eff = axes[0][col], axes[1][col]
        xs = [v["subset_cores"] for v in vs]
        # Every split of every subset, grey; the best of each subset, with its repeats' range.
        others = [p for p in points if p["model"] == model and p["batch_mode"] == mode]
        ax.scatter([p["cores"] for p in others], [p["images_per_s_median"] for p in others], s=12,
                   color="#b0b0b0", zorder=2, label="every split (median)")
        med = [v["best_images_per_s"] for v in vs]
        ax.errorbar(xs, med, yerr=[[m - v["best_min"] for m, v in zip(med, vs)],
                                   [v["best_max"] - m for m, v in zip(med, vs)]],
                    fmt="o-", color="#4e79a7", capsize=3, zorder=3, label="best split (min..max)")
        for v in vs:
            ax.annotate(v["best"], (v["subset_cores"], v["best_images_per_s"]), textcoords="offset points",
                        xytext=(4, -10), fontsize=7)
        if vs:
            b = vs[0]
            ideal = [b["best_images_per_s"] * x / b["subset_cores"] for x in xs]
            ax.plot(xs, ideal, "--", color="#e15759", lw=1, label=f"linear from {b['subset_cores']} core")
        ax.set_title(f"{model}, {mode} batch {vs[0]['global_batch'] if vs else ''}", fontsize=9)
        ax.set_ylabel("images/s", fontsize=8)
        ax.set_ylim(bottom=0)
        eff = [100 * v["efficiency"] if v["efficiency"] is not None else float("nan") for v in vs]
        ax_eff.plot(xs, eff, "o-", color="#4e79a7")
        ax_eff.axhline(100, ls="--", color="#e15759", lw=1)
        ax_eff.set_ylabel("efficiency of the best split (%)", fontsize=8)
        ax_eff.set_ylim(0, max([110] + [e + 10 for e in eff if e == e]))
        ax_eff.set_xlabel("cores", fontsize=8)
        for a in (ax, ax_eff):
            if len(xs) > 1:
                a.set_xscale("log", base=2)
            a.set_xticks(xs)
            a.set_xticklabels([str(x) for x in xs])
            a.tick_params(labelsize=7)
        if col == 0:
            ax.legend(fontsize=7, loc="upper left")
    fig.suptitle("threadsplit scaling study: the best P x I x T split per core subset", fontsize=10)
    fig.tight_layout(rect=(0, 0, 1, 0.96))
    fig.savefig(path, dpi=90)
    plt.close(fig)


def main():
    if len(sys.argv) != 2 or sys.argv[1] in ("-h", "--help"):
        print(__doc__)
        sys.exit(0 if len(sys.argv) == 2 else 2)
    out = sys.argv[1]
    sweeps, missing = read_sweeps(out)
    if not sweeps:
        fail(f"no finished sweep under {out}/sweeps" + (f" ({', '.join(missing)} have no sweep.json)" if missing else ""))
    header = sweeps[0]["header"]
    for s in sweeps:
        if s["header"] != header:
            fail(f"{s['dir']}/sweep.csv has other columns than {sweeps[0]['dir']}/sweep.csv: sweeps of two builds?")
    table_header = ["subset_cores", "core_list"] + header
    table = [[str(s["cores"]), s["core_list"]] + r for s in sweeps for r in s["rows"]]
    write_csv(os.path.join(out, "scaling.csv"), table_header, table)
    points = [{k: typed(x) for k, x in zip(table_header, row)} for row in table]
    for p, row in zip(points, table):
        p["core_list"] = row[1]  # "0-1" must stay text

    verdicts = group_verdicts(sweeps)
    tolerance = sweeps[0]["json"]["sweep"]["tolerance"]
    for v in verdicts:
        v["text"] = verdict_line(v, tolerance)
    write_csv(os.path.join(out, "scaling-verdicts.csv"), VERDICT_COLUMNS,
              [[fmt_cell(v[k]) for k in VERDICT_COLUMNS] for v in verdicts])

    study = read_study(out)
    load = read_load(out)
    first = sweeps[0]["json"]
    doc = {
        "study": study,
        "machine": first["machine"],
        "versions": first["versions"],
        "synthetic_data": any(s["json"]["sweep"]["synthetic_data"] for s in sweeps),
        "speedup_rule": "best split's median at N cores / best split's median at the smallest subset; "
                        "range: slowest repeat at N / fastest at the baseline .. fastest / slowest "
                        "(unpaired: the sweeps ran one after the other); efficiency = speedup / (N / baseline); "
                        "fastest_speedup: the two sweeps' fastest repeats of their best splits (other "
                        "programs only slow a trial); quiet_speedup: the sweeps' medians of repeats "
                        "under 5% foreign CPU, where both have some",
        "split_verdict_rule": first["sweep"]["verdict_rule"],
        "tolerance": tolerance,
        "missing_sweeps": missing,
        "load": load,
        "sweeps": [{"name": s["name"], "model": s["model"], "subset_cores": s["cores"],
                    "core_list": s["core_list"], "rounds": s["json"]["sweep"]["rounds"],
                    "stopped": s["json"]["sweep"]["stopped"], "partial": s["json"]["sweep"].get("partial", False),
                    "wall_seconds": s["json"]["sweep"]["wall_seconds"],
                    "data": s["json"]["sweep"]["data"]} for s in sweeps],
        "verdicts": [{k: v[k] for k in VERDICT_COLUMNS + ["text", "sweep_text", "sweep_dir"]} for v in verdicts],
        "points": points,
    }
    with open(os.path.join(out, "scaling.json"), "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")

    lines = ["# Scaling study verdicts", ""]
    if doc["synthetic_data"]:
        lines += ["SYNTHETIC data: speeds are real, accuracy means nothing.", ""]
    model = None
    for v in verdicts:
        if v["model"] != model:
            if model is not None:
                lines.append("")
            model = v["model"]
            lines += [f"## {model}", ""]
        lines.append("- " + v["text"])
    if missing:
        lines += ["", "Not finished (no sweep.json): " + ", ".join(missing) + "."]
    if load:
        lines += ["", "Load average (1 min) around the sweeps: " +
                  f"{min(r['load1'] for r in load):.2f}..{max(r['load1'] for r in load):.2f} "
                  "(OUT/load.tsv; the sweep's foreign_cpu_max says how much CPU others took per trial)."]
    with open(os.path.join(out, "verdicts.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))

    try:
        plot(os.path.join(out, "scaling.png"), verdicts, points)
        print(f"\nwrote {out}/scaling.csv, scaling-verdicts.csv, scaling.json, verdicts.md, scaling.png")
    except ImportError:
        print(f"\nwrote {out}/scaling.csv, scaling-verdicts.csv, scaling.json, verdicts.md "
              "(no matplotlib, so no scaling.png: apt-get install python3-matplotlib)", file=sys.stderr)


if __name__ == "__main__":
    main()

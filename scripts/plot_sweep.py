#!/usr/bin/env python3
"""Draws a sweep's results: one panel per model and batch mode, a bar per point whose height is
the median images/s, stacked by where the time went (each phase's share of the wall time x the
throughput). Error bars are each point's paired 95% interval against its panel's best split
(the interval of the per-round ratio, drawn relative to the point's own median); the best
split is the reference, marked "best", without a bar.

    scripts/plot_sweep.py sweep-results/sweep.json [sweep-results/sweep.png]

Before drawing it checks that sweep.csv beside the JSON holds the same figures, so the CSV,
the JSON and the picture cannot silently disagree.
"""
import csv
import json
import os
import sys

# Stacked in this order; "exchange" includes the coordinator's reduce+update (the workers wait
# through it), and "sync wait" is waiting for the slowest worker's gradient.
PHASES = [("data_wait", "data wait", "#9e9e9e"), ("forward", "forward", "#4e79a7"),
          ("backward", "backward", "#f28e2b"), ("exchange", "exchange (incl. update)", "#e15759"),
          ("sync_wait", "sync wait", "#b07aa1")]
# A sweep from before the paired verdict has no per-point ratio: drawn without error bars.
NO_PAIRING = {"rounds": 0, "geo_mean": 0, "lo": 0, "hi": 0}
# Checked against the CSV but not stacked: already part of "exchange".
CHECKED_ONLY = [("update", "reduce+update", None)]


def check_csv_agrees(points, csv_path):
    with open(csv_path, newline="") as f:
        rows = list(csv.DictReader(f))
    if len(rows) != len(points):
        sys.exit(f"plot_sweep: {csv_path} has {len(rows)} points, the JSON {len(points)}")
    for row, p in zip(rows, points):
        pairs = [(row["model"], p["model"]), (row["batch_mode"], p["batch_mode"]),
                 (int(row["procs"]), p["procs"]), (int(row["threads"]), p["threads"]),
                 (float(row["images_per_s_median"]), p["images_per_s"]["median"]),
                 (float(row["images_per_s_min"]), p["images_per_s"]["min"]),
                 (float(row["images_per_s_max"]), p["images_per_s"]["max"])]
        if "inter_op" in p:  # sweeps since the inter-op axis (issue 12)
            pairs.append((int(row["inter_op"]), p["inter_op"]))
        if "ratio_vs_best" in p:  # sweeps since the paired verdict (729acac)
            pairs += [(float(row["ratio_vs_best"]), p["ratio_vs_best"]["geo_mean"]),
                      (float(row["ratio_vs_best_lo"]), p["ratio_vs_best"]["lo"]),
                      (float(row["ratio_vs_best_hi"]), p["ratio_vs_best"]["hi"])]
        pairs += [(float(row[k + "_share"]), p["shares"][k]) for k, _, _ in PHASES + CHECKED_ONLY]
        for a, b in pairs:
            if (isinstance(a, float) and abs(a - b) > 1e-9) or (not isinstance(a, float) and a != b):
                sys.exit(f"plot_sweep: CSV and JSON disagree on point {p['label']}: {a} vs {b}")


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    src = sys.argv[1]
    out = sys.argv[2] if len(sys.argv) > 2 else os.path.splitext(src)[0] + ".png"
    with open(src) as f:
        sweep = json.load(f)
    points = sweep["points"]
    csv_path = os.path.join(os.path.dirname(src) or ".", "sweep.csv")
    if os.path.exists(csv_path):
        check_csv_agrees(points, csv_path)

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = []
    for p in points:
        key = (p["model"], p["batch_mode"])
        if key not in groups:
            groups.append(key)
    fig, axes = plt.subplots(1, len(groups), figsize=(3.2 * len(groups) + 1, 4.2), squeeze=False)
    for ax, (model, mode) in zip(axes[0], groups):
        pts = [p for p in points if p["model"] == model and p["batch_mode"] == mode]
        xs = range(len(pts))
        bottom = [0.0] * len(pts)
        for key, name, colour in PHASES:
            h = [p["shares"][key] * p["images_per_s"]["median"] for p in pts]
            ax.bar(xs, h, bottom=bottom, color=colour, width=0.6, label=name)
            bottom = [b + x for b, x in zip(bottom, h)]
        med = [p["images_per_s"]["median"] for p in pts]
        rest = [m - b for m, b in zip(med, bottom)]
        ax.bar(xs, [max(0.0, r) for r in rest], bottom=bottom, color="#e8e8e8", width=0.6,
               label="not in a phase")
        best = max(range(len(pts)), key=lambda i: med[i])
        lo_err, hi_err = [], []
        for i, (m, p) in enumerate(zip(med, pts)):
            v = p.get("ratio_vs_best", NO_PAIRING)
            if i == best or v["rounds"] < 2 or v["geo_mean"] <= 0:
                lo_err.append(0.0)
                hi_err.append(0.0)
            else:
                lo_err.append(m * (1 - v["lo"] / v["geo_mean"]))
                hi_err.append(m * (v["hi"] / v["geo_mean"] - 1))
        ax.errorbar(xs, med, yerr=[lo_err, hi_err], fmt="none", ecolor="black", capsize=4, lw=1)
        for i, (x, m) in enumerate(zip(xs, med)):
            v = pts[i].get("ratio_vs_best", NO_PAIRING)
            text = f"{m:.0f}\nbest" if i == best else (f"{m:.0f}\nx{v['geo_mean']:.3f}" if v["rounds"] else f"{m:.0f}")
            ax.annotate(text, (x, m + hi_err[i]), textcoords="offset points", xytext=(0, 4),
                        ha="center", fontsize=7)
        ax.set_xticks(list(xs))
        ax.set_xticklabels([p["label"] + ("\n" + f"B={p['global_batch']}" if mode == "per_worker" else "")
                            for p in pts], fontsize=8)
        ax.set_title(f"{model}\n{'global batch ' + str(pts[0]['global_batch']) if mode == 'global' else 'per-worker batch ' + str(pts[0]['batch_per_worker'])}",
                     fontsize=9)
        ax.set_xlabel("processes x inter-op teams x threads", fontsize=8)
        ax.set_ylim(0, max(max(p["images_per_s"]["max"] for p in pts), max(m + h for m, h in zip(med, hi_err))) * 1.25 or 1)
    axes[0][0].set_ylabel("images/s (median; bars: paired 95% interval vs the best)", fontsize=8)
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=6, fontsize=8, frameon=False)
    m = sweep["machine"]
    fig.suptitle(f"threadsplit sweep: {m['cpu_model']}, cores {sweep['sweep']['cores']}, "
                 f"{sweep['sweep'].get('rounds', sweep['sweep']['repeats'])} rounds" +
                 (" (SYNTHETIC data)" if sweep["sweep"].get("synthetic_data") else ""), fontsize=9)
    fig.tight_layout(rect=(0, 0.07, 1, 0.95))
    fig.savefig(out, dpi=90)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()

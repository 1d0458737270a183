#!/usr/bin/env python3
"""Does a sweep's verdict replicate? Compares two sweep.json files group by group (model and
batch mode) and says, for each verdict the first called real, whether the second holds it: the
same best split and again real (its paired 95% interval above 1). A tie (the two within the
tolerance) holds when the second sweep's interval for the same two lies within it too.

    scripts/compare_sweeps.py FIRST/sweep.json SECOND/sweep.json [--json OUT.json]

Exit status 0 when every real verdict of the first holds in the second, 1 when one does not,
2 on unreadable input.
"""
import json
import sys


def load(path):
    try:
        with open(path) as f:
            s = json.load(f)
    except (OSError, ValueError) as e:
        sys.exit(f"compare_sweeps: cannot read {path}: {e}")
    if "summary" not in s or "points" not in s:
        sys.exit(f"compare_sweeps: {path} is not a threadsplit sweep.json (no summary or points)")
    labels = {p["index"]: p["label"] for p in s["points"]}
    groups = {}
    for g in s["summary"]:
        if "verdict" not in g:
            sys.exit(f"compare_sweeps: {path} has no paired verdicts (a sweep from before them); rerun it")
        groups[(g["model"], g["batch_mode"])] = {
            "best": labels.get(g["best"]), "runner_up": labels.get(g["runner_up"]),
            "verdict": g["verdict"], "lo": g["paired"]["lo"], "hi": g["paired"]["hi"],
            "ratio": g["paired"]["geo_mean"], "rounds": g["paired"]["rounds"]}
    return s, groups


def describe(g):
    if g["runner_up"] is None:
        return f"{g['best']} alone"
    return (f"{g['best']} over {g['runner_up']} x{g['ratio']:.3f} "
            f"({g['lo']:.3f}..{g['hi']:.3f}, {g['rounds']} rounds): {g['verdict']}")


def main():
    args = sys.argv[1:]
    out = None
    if "--json" in args:
        i = args.index("--json")
        out = args[i + 1] if i + 1 < len(args) else sys.exit("compare_sweeps: --json needs a file")
        del args[i:i + 2]
    if len(args) != 2:
        sys.exit(__doc__)
    sweep1, first = load(args[0])
    _, second = load(args[1])
    tol = sweep1["sweep"].get("tolerance", 0.02)
    rows, failed = [], 0
    for key, a in first.items():
        b = second.get(key)
        row = {"model": key[0], "batch_mode": key[1], "first": a, "second": b}
        if b is None:
            row["holds"] = None
            row["why"] = "not in the second sweep"
        elif a["verdict"] == "real":
            row["holds"] = b["verdict"] == "real" and b["best"] == a["best"]
            row["why"] = ("held" if row["holds"] else
                          "the second sweep " + ("picked " + b["best"] if b["best"] != a["best"] else
                                                 "did not call it real"))
        elif a["verdict"] == "tie":
            # A tie says the two are within the tolerance; the second sweep agrees when its
            # interval lies within it too, whatever it calls the split (a real margin of 1% is
            # still a tie at 2%).
            row["holds"] = (b["rounds"] >= 2 and b["lo"] >= 1 / (1 + tol) and b["hi"] <= 1 + tol and
                            {b["best"], b["runner_up"]} == {a["best"], a["runner_up"]})
            row["why"] = "held" if row["holds"] else "the second sweep's interval leaves +-%.1f%%" % (100 * tol)
        else:
            row["holds"] = None
            row["why"] = "nothing claimed (" + a["verdict"] + ")"
        failed += row["holds"] is False and a["verdict"] == "real"
        rows.append(row)
    for r in rows:
        state = {True: "HOLDS", False: "FAILS", None: "-"}[r["holds"]]
        print(f"{r['model']:16s} {r['batch_mode']:10s} first: {describe(r['first'])}")
        print(f"{'':27s} second: {describe(r['second']) if r['second'] else 'absent'}  -> {state} ({r['why']})")
    real = [r for r in rows if r["first"]["verdict"] == "real"]
    print(f"compare_sweeps: {len(real) - failed} of {len(real)} real verdicts of the first sweep held in the second")
    if out:
        with open(out, "w") as f:
            json.dump({"first": args[0], "second": args[1], "groups": rows,
                       "real_verdicts": len(real), "real_verdicts_held": len(real) - failed}, f, indent=1)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()

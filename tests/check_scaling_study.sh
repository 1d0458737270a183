#!/usr/bin/env bash
# ctest scaling_study_quick: scripts/scaling_study.sh end to end in --quick mode on 1 and 2
# cores of this machine (1 where it has one), every model, then checks what it wrote: a CSV row
# per split of every model and subset, JSON that parses and agrees, a verdict per model and
# subset, the speedup against 1 core, and PNGs where matplotlib is installed. Also that bad
# flags are refused with exit 2 and a message naming them. Exit 77 (Skipped) without python3.
#   tests/check_scaling_study.sh THREADSPLIT_BIN CIFAR10_DIR TMP_DIR
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
[[ $# -eq 3 ]] || { echo "usage: $0 THREADSPLIT_BIN CIFAR10_DIR TMP_DIR" >&2; exit 2; }
bin="$1" cifar="$2" tmp="$3"
command -v python3 >/dev/null || { echo "check_scaling_study.sh: SKIPPED: python3 is not installed (the study's report needs it)"; exit 77; }
study="$ROOT/scripts/scaling_study.sh"
mkdir -p "$tmp"

# Bad input is refused before anything runs, naming what was wrong.
refused() {  # refused EXPECTED_TEXT ARGS...
  local want="$1" rc=0 err; shift
  err="$("$study" --bin "$bin" --out "$tmp/refused" "$@" 2>&1 >/dev/null)" || rc=$?
  if [[ $rc -ne 2 || "$err" != *"$want"* ]]; then
    echo "FAIL: scaling_study.sh $* exited $rc (want 2) saying: $err (want: $want)" >&2
    exit 1
  fi
}
refused "unknown flag '--bogus'" --bogus
refused "--subsets: 4097 cores, but the box has" --subsets 4097
refused "--repeats: '0'" --repeats 0
refused "--steps: 'seed_cnn=x' is not MODEL=N" --models seed_cnn --steps seed_cnn=x
refused "--cores: '3-1'" --cores 3-1
refused "--out needs a value" --out
[[ ! -e "$tmp/refused" ]] || { echo "FAIL: a refused run created $tmp/refused" >&2; exit 1; }

# Real CIFAR-10 when the machine has it, else generated data (the same speed).
if [[ -f "$cifar/data_batch_1.bin" && -f "$cifar/test_batch.bin" ]]; then
  data="$cifar"
else
  data="$tmp/synthetic"
  [[ -f "$data/test_batch.bin" ]] || "$bin" make-synthetic-data "$data" >/dev/null
fi
ncores="$(python3 -c 'import os; print(len(os.sched_getaffinity(0)))')"
subsets=1,2
((ncores >= 2)) || subsets=1
out="$tmp/quick"
rm -rf "$out"
"$study" --quick --bin "$bin" --data "$data" --out "$out" --subsets "$subsets"

# The study draws with whichever python has matplotlib (as scripts/sweep.sh does): PNGs are
# required when one has it.
pngs=0
for py in python3 /usr/bin/python3; do
  if command -v "$py" >/dev/null && "$py" -c "import matplotlib" 2>/dev/null; then pngs=1; fi
done

python3 - "$out" "$subsets" "$pngs" <<'PY'
import csv, json, os, sys
out, subsets, pngs = sys.argv[1], [int(n) for n in sys.argv[2].split(",")], sys.argv[3] == "1"
models = ["seed_cnn", "tf_tutorial_cnn", "airbench94"]
errors = []
def check(ok, what):
    if not ok:
        errors.append(what)

# Every split P x I x T = n (I = 1..n dividing n) of every model and subset, once, 2 rounds each.
def splits(n):
    return {(p, i, n // (p * i)) for p in range(1, n + 1) for i in range(1, n + 1) if n % (p * i) == 0}
with open(os.path.join(out, "scaling.csv"), newline="") as f:
    rows = list(csv.DictReader(f))
check(rows and list(rows[0])[:5] == ["subset_cores", "core_list", "model", "batch_mode", "subscription"],
      f"scaling.csv's header: {list(rows[0]) if rows else 'no rows'}")
for m in models:
    for n in subsets:
        got = [(int(r["procs"]), int(r["inter_op"]), int(r["threads"])) for r in rows
               if r["model"] == m and int(r["subset_cores"]) == n]
        check(sorted(got) == sorted(splits(n)), f"scaling.csv: {m} on {n} cores has splits {got}, want {sorted(splits(n))}")
for r in rows:
    where = f"scaling.csv row {r['model']} {r['procs']}x{r['inter_op']}x{r['threads']} on {r['subset_cores']}"
    check(int(r["cores"]) == int(r["subset_cores"]), where + ": cores differ from the subset")
    check(int(r["repeats_ok"]) == 2, where + f": {r['repeats_ok']} repeats ok, want 2")
    check(float(r["images_per_s_median"]) > 0, where + ": no throughput")
check(len(rows) == len(models) * sum(len(splits(n)) for n in subsets), f"scaling.csv has {len(rows)} rows")

with open(os.path.join(out, "scaling.json")) as f:
    j = json.load(f)
check(len(j["points"]) == len(rows), "scaling.json's points and scaling.csv's rows differ in number")
for p, r in zip(j["points"], rows):
    check(abs(p["images_per_s_median"] - float(r["images_per_s_median"])) < 1e-9, "JSON and CSV disagree")
check(j["study"].get("quick") == "1", "scaling.json does not say it was --quick")
check(len(j["load"]) == 2 + 2 * len(models) * len(subsets), f"load.tsv has {len(j['load'])} lines")
verdicts = {(v["model"], v["subset_cores"]): v for v in j["verdicts"]}
check(len(j["verdicts"]) == len(models) * len(subsets), f"{len(j['verdicts'])} verdicts")
with open(os.path.join(out, "verdicts.md")) as f:
    md = f.read()
for m in models:
    for n in subsets:
        v = verdicts.get((m, n))
        if not v:
            errors.append(f"no verdict for {m} on {n} cores")
            continue
        check(v["text"].startswith(f"{m}, global batch") and "img/s" in v["text"], f"verdict text: {v['text']}")
        check(v["text"] in md, f"verdicts.md lacks: {v['text']}")
        check(v["verdict"] in (["only_split"] if n == 1 else ["real", "tie", "undecided", "too_few"]),
              f"{m} on {n} cores: verdict {v['verdict']}")
        check(v["best"] is not None and v["best_images_per_s"] > 0, f"{m} on {n} cores: no best split")
        check(v["baseline_cores"] == 1 and v["speedup"] and v["speedup"] > 0, f"{m} on {n}: speedup {v['speedup']}")
        if n > 1:
            check(f"Scaling: {v['speedup']:.2f}x the best of 1 core" in v["text"], f"no speedup in: {v['text']}")
            check(abs(v["efficiency"] - v["speedup"] / n) < 1e-9, f"{m} on {n}: efficiency")
            check(v["speedup_lo"] <= v["speedup"] <= v["speedup_hi"], f"{m} on {n}: speedup range")
with open(os.path.join(out, "scaling-verdicts.csv"), newline="") as f:
    vrows = list(csv.DictReader(f))
check(len(vrows) == len(j["verdicts"]), "scaling-verdicts.csv and the JSON's verdicts differ in number")

if pngs:
    for p in ["scaling.png"] + [f"sweeps/{m}-{n}cores/sweep.png" for m in models for n in subsets]:
        path = os.path.join(out, p)
        check(os.path.exists(path) and open(path, "rb").read(8) == b"\x89PNG\r\n\x1a\n", f"{p} is not a PNG")
if errors:
    sys.exit("FAIL:\n  " + "\n  ".join(errors))
print(f"scaling study --quick: {len(rows)} points, {len(j['verdicts'])} verdicts, all well-formed")
PY

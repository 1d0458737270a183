#!/usr/bin/env bash
# The scaling study: for every model and every core subset of this box (1, 2, 4, 8 ... cores,
# powers of two up to the box's count, and the full count), `threadsplit sweep` over every
# P x I x T of the subset's cores, R interleaved rounds each with the sweep's paired verdict.
# Then scripts/scaling_report.py joins the sweeps into one table and says, per model and
# subset, which split wins, by how much, whether that is real or within noise, and how the
# best split's throughput scales against the smallest subset (speedup and efficiency).
#   scripts/scaling_study.sh                       # every model, every subset, into ./scaling-results
#   scripts/scaling_study.sh --quick --out /tmp/s  # a minute-long smoke run (2 steps, 2 rounds)
#   scripts/scaling_study.sh --models seed_cnn --subsets 1,4,16 --repeats 7
#   scripts/scaling_study.sh --report-only --out DIR   # redraw the report from DIR's sweeps
# Flags (each also read from the environment variable named; a flag wins):
#   --out DIR          results directory (SCALING_OUT; default scaling-results)
#   --data DIR         CIFAR-10 binary version (SCALING_DATA; default: what scripts/find_cifar10.sh
#                      finds, the real data set if present, else generated data)
#   --models A,B       networks (SCALING_MODELS; default seed_cnn,tf_tutorial_cnn,airbench94)
#   --subsets N,N      core counts (SCALING_SUBSETS; default: powers of two up to the box, and the box)
#   --cores LIST       the box's cores, subsets take the first N of them (SCALING_CORES; default:
#                      every core this process may use; e.g. 0-15 for one socket)
#   --steps M=N,...    timed steps per trial, one number for all or per model (SCALING_STEPS)
#   --warmup M=N,...   untimed steps first (SCALING_WARMUP)
#   --batch M=B,...    global batch per model (SCALING_BATCH; airbench94 1024, its recipe's batch,
#                      dealt in groups of 64: P up to 16)
#   --repeats R        interleaved rounds per sweep (SCALING_REPEATS; default 5)
#   --batch-modes M,M  global and/or per_worker (SCALING_BATCH_MODES; default global: the same
#                      recipe at every core count). per_worker keeps --batch-per-worker fixed.
#   --batch-per-worker M=B,...  per_worker mode's batch (default: the global batch / largest subset)
#   --inter-op I,I     inter-op teams to try (default: every divisor of the largest subset)
#   --placement-args "ARGS"  words added to every sweep, e.g. "--placement compact --smt use"
#                      (SCALING_PLACEMENT; default none: the sweep's --placement numa --smt avoid)
#   --quick            2 timed steps, 1 warm-up, 2 rounds, small batches: checks the plumbing only
#   --resume           keep a sweep whose sweep.json is complete (not partial) instead of rerunning it
#   --report-only      run nothing; rebuild the report from OUT's sweeps
#   --bin PATH         threadsplit to use (THREADSPLIT_BIN; default: build with scripts/setup.sh)
#   -- ARGS            the rest goes to every `threadsplit sweep` (e.g. -- --until-clear --max-rounds 9)
# Writes OUT/sweeps/MODEL-Ncores/ (each sweep's CSV, JSON, PNG, log and trial reports),
# OUT/scaling.csv (every point of every sweep), OUT/scaling-verdicts.csv, OUT/scaling.json,
# OUT/scaling.png, OUT/verdicts.md, and OUT/load.tsv (load average before and after each sweep).
# Exit: 0 when every sweep finished, 1 when one failed, 2 for a bad flag, 128+signo when stopped.
set -euo pipefail
if [[ "${1:-}" == -h || "${1:-}" == --help ]]; then
  sed -n '2,/^[^#]/{/^#/s/^# \{0,1\}//p}' "$0"
  exit 0
fi
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
invocation="$0 $*"  # for study.txt, before the flags are shifted away
die() { echo "scaling_study.sh: $*" >&2; exit 2; }

out="${SCALING_OUT:-scaling-results}"
data="${SCALING_DATA:-}"
models="${SCALING_MODELS:-seed_cnn,tf_tutorial_cnn,airbench94}"
subsets="${SCALING_SUBSETS:-}"
box_cores="${SCALING_CORES:-}"
steps="${SCALING_STEPS:-}"
warmup="${SCALING_WARMUP:-}"
batch="${SCALING_BATCH:-}"
batch_per_worker="${SCALING_BATCH_PER_WORKER:-}"
repeats="${SCALING_REPEATS:-}"
batch_modes="${SCALING_BATCH_MODES:-global}"
inter_op="${SCALING_INTER_OP:-}"
bin="${THREADSPLIT_BIN:-}"
# PLACEMENT: every sweep places its trials on the topology hwloc reads (docs/placement.md:
# --placement numa --smt avoid unless told); words here go to every sweep as they are, e.g.
# SCALING_PLACEMENT="--placement compact" to compare. The core lists below stay "the first N
# cores of --cores" either way (on an SMT box with Linux numbering: physical cores first).
PLACEMENT_ARGS="${SCALING_PLACEMENT:-}"
quick=0 resume=0 report_only=0
sweep_extra=()
while (($#)); do
  case "$1" in
    --out|--data|--models|--subsets|--cores|--steps|--warmup|--batch|--repeats|--batch-modes|\
    --batch-per-worker|--inter-op|--placement-args|--bin)
      [[ $# -ge 2 && -n "$2" ]] || die "$1 needs a value (see --help)" ;;&
    --out) out="$2"; shift 2 ;;
    --data) data="$2"; shift 2 ;;
    --models) models="$2"; shift 2 ;;
    --subsets) subsets="$2"; shift 2 ;;
    --cores) box_cores="$2"; shift 2 ;;
    --steps) steps="$2"; shift 2 ;;
    --warmup) warmup="$2"; shift 2 ;;
    --batch) batch="$2"; shift 2 ;;
    --batch-per-worker) batch_per_worker="$2"; shift 2 ;;
    --repeats) repeats="$2"; shift 2 ;;
    --batch-modes) batch_modes="$2"; shift 2 ;;
    --inter-op) inter_op="$2"; shift 2 ;;
    --placement-args) PLACEMENT_ARGS="$2"; shift 2 ;;
    --bin) bin="$2"; shift 2 ;;
    --quick) quick=1; shift ;;
    --resume) resume=1; shift ;;
    --report-only) report_only=1; shift ;;
    --) shift; sweep_extra=("$@"); break ;;
    *) die "unknown flag '$1' (see --help; flags for the sweep itself go after --)" ;;
  esac
done

command -v python3 >/dev/null || die "python3 is needed for the report (apt-get install python3)"
# The plots need matplotlib: Debian's python3-matplotlib. Debian's interpreter is asked too,
# since a python3 earlier on PATH (pyenv, venv) may not see it.
plot_python() {
  local py
  for py in python3 /usr/bin/python3; do
    if command -v "$py" >/dev/null && "$py" -c "import matplotlib" 2>/dev/null; then echo "$py"; return; fi
  done
}
py="$(plot_python)"
[[ -n "$py" ]] || echo "scaling_study.sh: no matplotlib (apt-get install python3-matplotlib): CSV and JSON only, no PNG" >&2
report() {
  "${py:-python3}" "$ROOT/scripts/scaling_report.py" "$out"
}
if ((report_only)); then
  [[ -d "$out/sweeps" ]] || die "--report-only: $out/sweeps does not exist (run the study first)"
  report
  exit $?
fi

# --- the plan --------------------------------------------------------------------------------
# Per-model values "M=N,M=N" or one number for every model; prints model's value or the default.
value_for() {  # value_for SPEC MODEL DEFAULT FLAG
  local spec="$1" model="$2" def="$3" flag="$4" item
  if [[ -z "$spec" ]]; then echo "$def"; return; fi
  if [[ "$spec" =~ ^[0-9]+$ ]]; then echo "$spec"; return; fi
  local IFS=,
  for item in $spec; do
    [[ "$item" =~ ^[A-Za-z0-9_@]+=[0-9]+$ ]] ||
      die "$flag: '$item' is not MODEL=N (give N, or MODEL=N,MODEL=N)"
    if [[ "${item%%=*}" == "$model" ]]; then echo "${item#*=}"; return; fi
  done
  echo "$def"
}
is_count() { [[ "$1" =~ ^[1-9][0-9]*$ ]]; }

# Defaults sized for this project's 2-core box: trials of a few seconds at 2 cores, the sweep's
# own step counts for the two small nets; airbench94 runs ~400-550 images/s there, so its 6
# steps of 1024 (and 1 warm-up) take ~13 s at 2 cores and ~26 s at 1. 5 rounds.
if ((quick)); then
  def_steps=(seed_cnn=2 tf_tutorial_cnn=2 airbench94=2) def_warmup=1 def_repeats=2
  def_batch=(seed_cnn=32 tf_tutorial_cnn=32 airbench94=128)
else
  def_steps=(seed_cnn=200 tf_tutorial_cnn=40 airbench94=6) def_warmup=(seed_cnn=5 tf_tutorial_cnn=3 airbench94=1)
  def_repeats=5
  def_batch=(seed_cnn=128 tf_tutorial_cnn=128 airbench94=1024)
fi
default_of() {  # default_of MODEL NAME=VALUE... ; the model's value, else 20 (an unknown model)
  local model="$1" kv; shift
  for kv in "$@"; do
    if [[ "$kv" != *=* ]]; then echo "$kv"; return; fi
    [[ "${kv%%=*}" == "$model" ]] && { echo "${kv#*=}"; return; }
  done
  echo 20
}
repeats="${repeats:-$def_repeats}"
is_count "$repeats" || die "--repeats: '$repeats' is not a whole number of rounds >= 1"

# The box: the cores this process may use, unless --cores names them.
if [[ -z "$box_cores" ]]; then
  box_cores="$(python3 -c 'import os; print(",".join(map(str, sorted(os.sched_getaffinity(0)))))')"
fi
core_list="$(python3 - "$box_cores" <<'PY'
import sys
cores = []
for piece in sys.argv[1].split(","):
    lo, _, hi = piece.strip().partition("-")
    if not lo.isdigit() or (hi and not hi.isdigit()) or (hi and int(hi) < int(lo)):
        sys.exit(f"--cores: '{piece}' is not a core or a range lo-hi (as in 0-3,8)")
    for c in range(int(lo), int(hi or lo) + 1):
        if c in cores:
            sys.exit(f"--cores: core {c} is named twice")
        cores.append(c)
print(" ".join(map(str, cores)))
PY
)" || die "--cores '$box_cores' is not a core list"
read -r -a cores <<<"$core_list"
ncores=${#cores[@]}
((ncores >= 1)) || die "--cores '$box_cores' names no core"

if [[ -z "$subsets" ]]; then
  subsets=""
  for ((n = 1; n < ncores; n *= 2)); do subsets+="$n,"; done
  subsets+="$ncores"
fi
subset_list=()
IFS=, read -r -a raw_subsets <<<"$subsets"
for n in "${raw_subsets[@]}"; do
  is_count "$n" || die "--subsets: '$n' is not a core count >= 1"
  ((n <= ncores)) || die "--subsets: $n cores, but the box has $ncores (${box_cores}); give --cores or smaller subsets"
  [[ " ${subset_list[*]-} " == *" $n "* ]] || subset_list+=("$n")
done
((${#subset_list[@]})) || die "--subsets names no subset"
mapfile -t subset_list < <(printf '%s\n' "${subset_list[@]}" | sort -n)
largest="${subset_list[-1]}"

if [[ -z "$inter_op" ]]; then
  inter_op=""
  for ((i = 1; i <= largest; ++i)); do ((largest % i == 0)) && inter_op+="${inter_op:+,}$i"; done
fi
IFS=, read -r -a model_list <<<"$models"
((${#model_list[@]})) || die "--models names no model"
# Each model's steps, warm-up and batch, checked before anything runs.
declare -A m_steps m_warmup m_batch m_bpw
for m in "${model_list[@]}"; do
  [[ "$m" =~ ^[A-Za-z0-9_]+(@[a-z0-9]+)?$ ]] || die "--models: '$m' is not a model name (seed_cnn, tf_tutorial_cnn, airbench94, MODEL@bf16)"
  base="${m%@*}"
  s="$(value_for "$steps" "$base" "$(default_of "$base" "${def_steps[@]}")" --steps)"
  w="$(value_for "$warmup" "$base" "$(default_of "$base" "${def_warmup[@]}")" --warmup)"
  b="$(value_for "$batch" "$base" "$(default_of "$base" "${def_batch[@]}")" --batch)"
  is_count "$s" || die "--steps for $m: '$s' is not a step count >= 1"
  [[ "$w" =~ ^[0-9]+$ ]] || die "--warmup for $m: '$w' is not a step count"
  is_count "$b" || die "--batch for $m: '$b' is not a batch >= 1"
  bpw="$(value_for "$batch_per_worker" "$base" "$(( b / largest > 0 ? b / largest : 1 ))" --batch-per-worker)"
  is_count "$bpw" || die "--batch-per-worker for $m: '$bpw' is not a batch >= 1"
  m_steps[$m]="$s" m_warmup[$m]="$w" m_batch[$m]="$b" m_bpw[$m]="$bpw"
done

# --- the build and the data -------------------------------------------------------------------
if [[ -z "$bin" ]]; then
  export BUILD_DIR="${BUILD_DIR:-$ROOT/build}"
  "$ROOT/scripts/setup.sh"
  bin="$BUILD_DIR/coordinator/threadsplit"
fi
[[ -x "$bin" ]] || die "threadsplit '$bin' is not an executable (build it, or give --bin)"
data="$("$ROOT/scripts/find_cifar10.sh" "$bin" "$data")"
[[ -f "$data/data_batch_1.bin" ]] || die "--data '$data' holds no CIFAR-10 binary version (data_batch_1.bin)"

mkdir -p "$out/sweeps" || die "cannot create $out/sweeps"
load_log="$out/load.tsv"
[[ -f "$load_log" ]] || printf 'when\tmodel\tcores\tunix_time\tload1\tload5\tload15\tuptime\n' >"$load_log"
note_load() {  # note_load WHEN MODEL N
  local l1 l5 l15 rest
  read -r l1 l5 l15 rest </proc/loadavg
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$(date +%s)" "$l1" "$l5" "$l15" "$(uptime)" >>"$load_log"
}
note_load study-start all all
cat >"$out/study.txt" <<EOF
command: $invocation
started: $(date -u +%FT%TZ)
box cores: ${cores[*]} ($ncores)
subsets: ${subset_list[*]}
models: ${model_list[*]}
batch modes: $batch_modes
inter-op: $inter_op
repeats: $repeats
quick: $quick
placement: ${PLACEMENT_ARGS:-none}
sweep extra: ${sweep_extra[*]-}
data: $data
threadsplit: $bin
EOF

# A stop signal goes to the sweep in flight (which keeps its finished runs as a partial sweep);
# then the report is drawn from what finished and the study exits 128 + signo.
stop_sig=0
child=0
on_stop() {
  stop_sig=$1
  ((child)) && kill -"$1" "$child" 2>/dev/null || true
}
trap 'on_stop 2' INT
trap 'on_stop 15' TERM
trap 'on_stop 1' HUP

failed=0
total=$((${#model_list[@]} * ${#subset_list[@]}))
k=0
# Model outer, subsets inner: a model's 1-core and N-core sweeps run close together in time,
# so a slow drift of the machine moves its speedup least.
for m in "${model_list[@]}"; do
  s="${m_steps[$m]}" w="${m_warmup[$m]}" b="${m_batch[$m]}" bpw="${m_bpw[$m]}"
  for n in "${subset_list[@]}"; do
    k=$((k + 1))
    ((stop_sig)) && break 2
    list="$(IFS=,; echo "${cores[*]:0:n}")"
    dir="$out/sweeps/$m-${n}cores"
    if ((resume)) && [[ -f "$dir/sweep.json" ]] &&
       python3 -c 'import json,sys; sys.exit(json.load(open(sys.argv[1]))["sweep"]["partial"])' "$dir/sweep.json" 2>/dev/null; then
      echo "scaling_study: [$k/$total] $m on $n cores: kept from before (--resume)" >&2
      continue
    fi
    rm -rf "$dir"
    mkdir -p "$dir"
    args=(sweep --data "$data" --out "$dir" --cores "$list" --models "$m" --batch-modes "$batch_modes"
          --batch "$b" --batch-per-worker "$bpw" --steps "$s" --warmup-steps "$w" --repeats "$repeats"
          --inter-op "$inter_op")
    # Word-split on purpose: SCALING_PLACEMENT holds flags.
    # shellcheck disable=SC2206
    args+=($PLACEMENT_ARGS)
    # --quick checks the plumbing, not speed: a contended trial is not run again.
    ((quick)) && args+=(--busy-retries 0)
    args+=(${sweep_extra[@]+"${sweep_extra[@]}"})
    echo "scaling_study: [$k/$total] $m on $n cores ($list): $bin ${args[*]}" >&2
    printf '%q ' "$bin" "${args[@]}" >"$dir/command.txt"
    echo >>"$dir/command.txt"
    note_load before "$m" "$n"
    set +e
    "$bin" "${args[@]}" >"$dir/sweep.log" 2>&1 &
    child=$!
    wait "$child"
    rc=$?
    # A signal interrupts `wait` before the sweep has written its partial files: wait again.
    while kill -0 "$child" 2>/dev/null; do wait "$child"; rc=$?; done
    child=0
    set -e
    note_load after "$m" "$n"
    if ((rc != 0)); then
      echo "scaling_study: $m on $n cores: the sweep exited $rc (its log: $dir/sweep.log)" >&2
      tail -5 "$dir/sweep.log" >&2 || true
      ((rc > 128)) && ((stop_sig == 0)) && stop_sig=$((rc - 128))
      ((rc > 128)) || failed=1
    fi
    if [[ -n "$py" && -f "$dir/sweep.json" ]]; then
      "$py" "$ROOT/scripts/plot_sweep.py" "$dir/sweep.json" "$dir/sweep.png" >/dev/null ||
        echo "scaling_study: could not draw $dir/sweep.png" >&2
    fi
  done
done
note_load study-end all all
if ((stop_sig)); then
  echo "finished: $(date -u +%FT%TZ) (stopped by signal $stop_sig)" >>"$out/study.txt"
else
  echo "finished: $(date -u +%FT%TZ)" >>"$out/study.txt"
fi

report || failed=1
if ((stop_sig)); then exit $((128 + stop_sig)); fi
exit "$failed"

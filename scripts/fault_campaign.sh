#!/usr/bin/env bash
# Fault-injection campaign, run by hand: RUNS runs of each failure kind against the real
# programs, counting how many ended as designed and the longest time to notice a failure.
#   scripts/fault_campaign.sh [RUNS] [KIND...]      (default 20 runs of every kind)
# Kinds: kill9-abort kill9-continue sigstop-continue sigstop-abort coordinator-kill
#        interrupt-resume corrupt-checkpoint wrong-token malformed
#        rerun-same-dir resume-changed-flags
#        stale-deal huge-gradient nan-loss
#        respawn
#        sigterm-stop sigint-stop sigterm-resume
#        oversized-hello data-mismatch
# BUILD_DIR (default build/) must hold a built tree; DATA a CIFAR-10 directory (default:
# ../shared/data/cifar-10-batches-bin, else synthetic data generated into the work dir).
# Writes one line per run to $WORK/results.tsv and the summary to stdout.
set -uo pipefail
if [[ "${1:-}" == -h || "${1:-}" == --help ]]; then
  sed -n '2,/^[^#]/{/^#/s/^# \{0,1\}//p}' "$0"
  exit 0
fi
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD_DIR="$(cd "${BUILD_DIR:-$ROOT/build}" && pwd)"
RUNS="${1:-20}"
[[ $RUNS =~ ^[0-9]+$ ]] || { echo "fault_campaign.sh: RUNS must be a whole number, got '$RUNS' (see --help)" >&2; exit 2; }
shift || true
KINDS=("$@")
[ ${#KINDS[@]} -gt 0 ] || KINDS=(kill9-abort kill9-continue sigstop-continue sigstop-abort
                                coordinator-kill interrupt-resume corrupt-checkpoint wrong-token malformed
                                rerun-same-dir resume-changed-flags
                                stale-deal huge-gradient nan-loss
                                respawn
                                sigterm-stop sigint-stop sigterm-resume
                                oversized-hello data-mismatch)
COORD="$BUILD_DIR/coordinator/threadsplit"
WORKER="$BUILD_DIR/worker/threadsplit_worker"
ROGUE="$BUILD_DIR/tests/rogue_worker"
COMPARE="$BUILD_DIR/tests/ckpt_compare"
for b in "$COORD" "$WORKER" "$ROGUE" "$COMPARE"; do
  [ -x "$b" ] || { echo "fault_campaign: $b is missing: build first" >&2; exit 2; }
done
WORK="${WORK:-$(mktemp -d /tmp/threadsplit-campaign.XXXXXX)}"
mkdir -p "$WORK"
DATA="${DATA:-$ROOT/../shared/data/cifar-10-batches-bin}"
if [ ! -f "$DATA/test_batch.bin" ]; then
  DATA="$WORK/synthetic"
  "$COORD" make-synthetic-data "$DATA" >/dev/null
fi
RESULTS="$WORK/results.tsv"
: >"$RESULTS"
BASE=("$COORD" --data "$DATA" --worker-bin "$WORKER" --listen 127.0.0.1 --port 0 --eval-every 0 --progress off)

now() { date +%s.%N; }
rand_between() { awk -v a="$1" -v b="$2" -v s="$RANDOM$RANDOM" 'BEGIN{srand(s); printf "%.2f", a + rand() * (b - a)}'; }
# Waits up to $2 s for a line matching regex $3 in file $1; prints the time it appeared.
wait_for() {
  local until=$(awk -v n="$(now)" -v t="$2" 'BEGIN{printf "%.3f", n + t}')
  while awk -v n="$(now)" -v u="$until" 'BEGIN{exit !(n < u)}'; do
    if grep -qE "$3" "$1" 2>/dev/null; then now; return 0; fi
    sleep 0.02
  done
  return 1
}
worker_pids() { grep -oP 'threadsplit: worker \d+ pid \K\d+' "$1"; }
gone() { local st; st=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 0; [ "$st" = Z ]; }
all_gone() { local p; for p in "$@"; do gone "$p" || return 1; done; }
wait_all_gone() {  # timeout pids...
  local t=$1; shift
  local until=$(awk -v n="$(now)" -v t="$t" 'BEGIN{printf "%.3f", n + t}')
  while ! all_gone "$@"; do
    awk -v n="$(now)" -v u="$until" 'BEGIN{exit !(n < u)}' || return 1
    sleep 0.02
  done
}
# The step the progress line (--progress on) shows in file $1, and a wait until it reaches
# step $2 (or the run in $CPID ends, or $3 s pass): faults drawn by step land inside the run
# however fast the machine is (a timed pause let a quiet machine's 1.4 s run finish first).
progress_step() { tr '\r' '\n' <"$1" | grep -oP '\] \K[0-9]+(?=/[0-9]+  loss)' | tail -1; }
wait_for_step() {
  local until=$(awk -v n="$(now)" -v t="$3" 'BEGIN{printf "%.3f", n + t}') done_steps
  while awk -v n="$(now)" -v u="$until" 'BEGIN{exit !(n < u)}'; do
    done_steps=$(progress_step "$1"); [ "${done_steps:-0}" -ge "$2" ] && return 0
    kill -0 $CPID 2>/dev/null || return 1
    sleep 0.02
  done
  return 1
}
record() {  # kind run ok detect_s note
  printf '%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" "$5" >>"$RESULTS"
  printf '%-20s %3s  %-8s detect %-6s %s\n' "$1" "$2" "$([ "$3" = 1 ] && echo ok || echo FAILED)" "$4" "$5"
}
start_coord() {  # name args... ; sets CPID, OUT, ERR
  OUT="$WORK/$1.out"; ERR="$WORK/$1.err"; local name=$1; shift
  "$@" >"$OUT" 2>"$ERR" &
  CPID=$!
}
external_port() {  # port file
  local i
  for i in $(seq 1 500); do [ -s "$1" ] && { cat "$1"; return 0; }; sleep 0.02; done
  return 1
}

run_worker_fault() {  # kind n signal policy
  local kind=$1 n=$2 sig=$3 policy=$4 dir="$WORK/$1-$2"
  rm -rf "$dir"; mkdir -p "$dir"
  local steps=100000; [ "$policy" = continue ] && steps=150
  start_coord "$kind-$n" "${BASE[@]}" --procs 2 --threads 1 --steps $steps --on-worker-failure "$policy" \
    --failure-grace 2 --checkpoint-dir "$dir" --progress on
  if ! wait_for "$OUT" 60 'worker 1 pid' >/dev/null; then
    kill -9 $CPID 2>/dev/null; wait $CPID 2>/dev/null; record "$kind" "$n" 0 - "workers never joined"; return
  fi
  local pids=($(worker_pids "$OUT"))
  local victim=$((RANDOM % 2))
  # abort: a time in the first 2 s of an endless run; continue: a step of the 150 drawn first.
  if [ "$policy" = continue ]; then wait_for_step "$OUT" $((1 + RANDOM % 120)) 60; else sleep "$(rand_between 0.1 2.0)"; fi
  local t0; t0=$(now)
  kill -"$sig" "${pids[$victim]}"
  local seen pattern='run aborted|WORKER LOST'
  seen=$(wait_for "$ERR" 30 "$pattern") || seen=""
  wait $CPID; local rc=$?
  local detect="-"; [ -n "$seen" ] && detect=$(awk -v a="$t0" -v b="$seen" 'BEGIN{printf "%.2f", b - a}')
  local ok=1 note="worker $victim"
  [ -n "$seen" ] || { ok=0; note+=", never noticed"; }
  if [ "$policy" = abort ]; then
    [ $rc -eq 1 ] || { ok=0; note+=", rc $rc"; }
    grep -q "run aborted: worker $victim (pid ${pids[$victim]}, cores [0-9]" "$ERR" || { ok=0; note+=", message"; }
    grep -q "during step [0-9]" "$ERR" || { ok=0; note+=", no step named"; }
    ls "$dir"/step-*.ckpt >/dev/null 2>&1 || { ok=0; note+=", no checkpoint"; }
  else
    [ $rc -eq 0 ] || { ok=0; note+=", rc $rc"; }
    grep -q "re-dealt steps" "$ERR" || { ok=0; note+=", not re-dealt"; }
    grep -q "trained 150 steps" "$OUT" || { ok=0; note+=", not all steps"; }
  fi
  [ "$sig" = STOP ] && kill -CONT "${pids[$victim]}" 2>/dev/null
  wait_all_gone 10 "${pids[@]}" || { ok=0; note+=", ORPHAN"; kill -9 "${pids[@]}" 2>/dev/null; }
  record "$kind" "$n" $ok "$detect" "$note"
}

run_coordinator_kill() {
  local n=$1
  start_coord "coordinator-kill-$n" "${BASE[@]}" --procs 2 --threads 1 --steps 100000
  wait_for "$OUT" 60 'worker 1 pid' >/dev/null || { kill -9 $CPID; wait $CPID 2>/dev/null; record coordinator-kill "$n" 0 - "no join"; return; }
  local pids=($(worker_pids "$OUT"))
  sleep "$(rand_between 0.1 2.0)"
  local t0; t0=$(now)
  kill -9 $CPID; wait $CPID 2>/dev/null
  local ok=1 note="" detect="-"
  if wait_all_gone 10 "${pids[@]}"; then
    detect=$(awk -v a="$t0" -v b="$(now)" 'BEGIN{printf "%.2f", b - a}')
  else
    ok=0; note="ORPHAN ${pids[*]}"; kill -9 "${pids[@]}" 2>/dev/null
  fi
  record coordinator-kill "$n" $ok "$detect" "$note"
}

REF_STEPS=120
reference() {
  [ -f "$WORK/reference.ckpt" ] && return
  "${BASE[@]}" --procs 2 --threads 1 --seed 9 --steps $REF_STEPS --save "$WORK/reference.ckpt" >"$WORK/reference.out" 2>&1 ||
    { echo "fault_campaign: the reference run failed" >&2; exit 1; }
}

run_interrupt_resume() {
  local n=$1 dir="$WORK/resume-$1"
  rm -rf "$dir"
  local flags=(--procs 2 --threads 1 --seed 9 --steps $REF_STEPS --checkpoint-dir "$dir" --checkpoint-every 3 --checkpoint-keep 2)
  start_coord "resume-$n-a" "${BASE[@]}" "${flags[@]}"
  wait_for "$OUT" 60 'checkpoint .*step' >/dev/null
  local pids=($(worker_pids "$OUT"))
  sleep "$(rand_between 0.0 2.5)"
  kill -9 $CPID 2>/dev/null; wait $CPID 2>/dev/null
  local at; at=$(ls "$dir" | tail -1)
  start_coord "resume-$n-b" "${BASE[@]}" "${flags[@]}" --resume
  wait $CPID; local rc=$?
  local ok=1 note="killed after ${at:-nothing}"
  [ $rc -eq 0 ] || { ok=0; note+=", resume rc $rc"; }
  local last; last=$(ls "$dir"/step-*.ckpt | tail -1)
  if "$COMPARE" seed_cnn "$WORK/reference.ckpt" "$last" >"$WORK/resume-$n.cmp" 2>&1; then
    note+=", bit-equal"
  else
    ok=0; note+=", $(cat "$WORK/resume-$n.cmp")"
  fi
  wait_all_gone 10 "${pids[@]}" || { ok=0; note+=", ORPHAN"; }
  record interrupt-resume "$n" $ok - "$note"
}

run_corrupt_checkpoint() {
  local n=$1 dir="$WORK/corrupt-$1"
  rm -rf "$dir"
  local flags=(--procs 1 --threads 1 --seed 3 --checkpoint-dir "$dir" --checkpoint-every 5)
  "${BASE[@]}" "${flags[@]}" --steps 15 >"$WORK/corrupt-$n-a.out" 2>&1
  local newest="$dir/step-000000000015.ckpt" size off
  size=$(stat -c %s "$newest")
  off=$(( (RANDOM * 32768 + RANDOM) % size ))
  # Flip every bit of one byte at a random offset, or cut the file short.
  if [ $((RANDOM % 4)) -eq 0 ]; then
    truncate -s $off "$newest"
  else
    printf "$(printf '\\%03o' $(( 255 - $(od -An -tu1 -j $off -N1 "$newest") )))" |
      dd of="$newest" bs=1 seek=$off conv=notrunc status=none
  fi
  start_coord "corrupt-$n-b" "${BASE[@]}" "${flags[@]}" --steps 20 --resume
  wait $CPID; local rc=$?
  local ok=1 note="byte $off of $size"
  [ $rc -eq 0 ] || { ok=0; note+=", rc $rc"; }
  grep -q "skipping a damaged checkpoint: .*step-000000000015.ckpt" "$ERR" || { ok=0; note+=", not named"; }
  grep -q "resuming from .*step-000000000010.ckpt" "$ERR" || { ok=0; note+=", wrong start"; }
  record corrupt-checkpoint "$n" $ok - "$note"
}

checksums() { (cd "$1" && md5sum step-*.ckpt 2>/dev/null); }

# A fresh run pointed at another run's directory: refused, not a byte changed; --resume then
# continues the first run (or says nothing is left) and ends at the later of the two steps.
run_rerun_same_dir() {
  local n=$1 dir="$WORK/rerun-$1"
  rm -rf "$dir"
  local a=$((20 + RANDOM % 41)) b=$((10 + RANDOM % 61))
  local flags=(--procs 1 --threads 1 --seed 4 --checkpoint-dir "$dir" --checkpoint-every 10)
  "${BASE[@]}" "${flags[@]}" --steps $a >"$WORK/rerun-$n-a.out" 2>&1 || { record rerun-same-dir "$n" 0 - "first run failed"; return; }
  local before; before=$(checksums "$dir")
  local t0; t0=$(now)
  start_coord "rerun-$n-b" "${BASE[@]}" "${flags[@]}" --steps $b
  wait $CPID; local rc=$?
  local detect; detect=$(awk -v a="$t0" -v b="$(now)" 'BEGIN{printf "%.2f", b - a}')
  local ok=1 note="$a then $b steps"
  [ $rc -eq 2 ] || { ok=0; note+=", fresh rerun rc $rc"; }
  grep -q "already holds .* checkpoint(s) of another run" "$ERR" || { ok=0; note+=", no refusal"; }
  [ "$(checksums "$dir")" = "$before" ] || { ok=0; note+=", FILES CHANGED"; }
  start_coord "rerun-$n-c" "${BASE[@]}" "${flags[@]}" --steps $b --resume
  wait $CPID; rc=$?
  [ $rc -eq 0 ] || { ok=0; note+=", resume rc $rc"; }
  local want=$(( a > b ? a : b ))
  [ "$(ls "$dir" | tail -1)" = "$(printf 'step-%012d.ckpt' $want)" ] || { ok=0; note+=", newest $(ls "$dir" | tail -1), want step $want"; }
  record rerun-same-dir "$n" $ok "$detect" "$note"
}

# --resume with one flag that changes the math: refused at once (no loop), files unchanged.
run_resume_changed_flags() {
  local n=$1 src="$WORK/changed-src" dir="$WORK/changed-$1"
  local flags=(--procs 1 --threads 1 --seed 4 --batch 128 --checkpoint-dir)
  if [ ! -d "$src" ]; then
    "${BASE[@]}" "${flags[@]}" "$src" --steps 200 >"$WORK/changed-src.out" 2>&1 || { record resume-changed-flags "$n" 0 - "first run failed"; return; }
  fi
  rm -rf "$dir"; cp -r "$src" "$dir"
  local changes=("--batch 256:--batch" "--lr 0.01:--lr" "--no-shuffle:--no-shuffle" "--augment flip:--augment"
                 "--optimizer sgd:--optimizer" "--seed 5:--seed" "--model tf_tutorial_cnn:tf_tutorial_cnn")
  local pick=${changes[$((RANDOM % ${#changes[@]}))]}
  local change=${pick%%:*} named=${pick#*:}
  local before; before=$(checksums "$dir")
  local t0; t0=$(now)
  # shellcheck disable=SC2086  # the change is one or two words
  start_coord "changed-$n" timeout 60 "${BASE[@]}" "${flags[@]}" "$dir" --steps 400 --resume $change
  wait $CPID; local rc=$?
  local detect; detect=$(awk -v a="$t0" -v b="$(now)" 'BEGIN{printf "%.2f", b - a}')
  local ok=1 note="$change"
  [ $rc -eq 2 ] || { ok=0; note+=", rc $rc"; }
  grep -q -- "$named" "$ERR" || { ok=0; note+=", $named not named"; }
  [ "$(checksums "$dir")" = "$before" ] || { ok=0; note+=", FILES CHANGED"; }
  [ "$(wc -l <"$OUT")" -lt 20 ] || { ok=0; note+=", $(wc -l <"$OUT") lines of output"; }
  record resume-changed-flags "$n" $ok "$detect" "$note"
}

# --- Stop signals (coordinator/stop_signals.h) ---
# A stop signal at a random step: exit 128+signo, report "interrupted" naming the signal, the
# final checkpoint at the step the stderr line names, loadable, and no orphan. Detection: the
# signal to the coordinator's exit.
signal_number() { case $1 in INT) echo 2 ;; TERM) echo 15 ;; HUP) echo 1 ;; esac; }
run_signal_stop() {  # kind n signal
  local kind=$1 n=$2 sig=$3 dir="$WORK/$1-$2"
  rm -rf "$dir"; mkdir -p "$dir"
  # `cmd &` in a script starts cmd with SIGINT ignored (and so does anything this script
  # inherited that way), and the coordinator, like any program, keeps a signal ignored at
  # its start ignored (docs/reliability.md, Signals): env --default-signal gives it SIGINT.
  start_coord "$kind-$n" env --default-signal=INT "${BASE[@]}" --procs 2 --threads 1 --steps 100000 \
    --checkpoint-dir "$dir/ck" --report "$dir/report.json"
  if ! wait_for "$OUT" 60 'worker 1 pid' >/dev/null; then
    kill -9 $CPID 2>/dev/null; wait $CPID 2>/dev/null; record "$kind" "$n" 0 - "workers never joined"; return
  fi
  local pids=($(worker_pids "$OUT"))
  sleep "$(rand_between 0.1 2.0)"
  local t0; t0=$(now)
  kill -"$sig" $CPID
  wait $CPID; local rc=$?
  local detect; detect=$(awk -v a="$t0" -v b="$(now)" 'BEGIN{printf "%.2f", b - a}')
  local want=$((128 + $(signal_number "$sig")))
  local step; step=$(grep -oP "SIG$sig: stopping after step \K[0-9]+" "$ERR")
  local ok=1 note="after step ${step:-?}"
  [ $rc -eq $want ] || { ok=0; note+=", rc $rc (want $want)"; }
  grep -qE "\"status\": \"interrupted\"" "$dir/report.json" 2>/dev/null || { ok=0; note+=", report not interrupted"; }
  grep -qE "\"signal\": \"SIG$sig\"" "$dir/report.json" 2>/dev/null || { ok=0; note+=", report names no SIG$sig"; }
  local ck="$dir/ck/$(printf 'step-%012d.ckpt' "${step:-0}")"
  if [ -z "$step" ] || [ ! -f "$ck" ]; then
    ok=0; note+=", no checkpoint at the step named"
  elif ! "$COMPARE" seed_cnn "$ck" "$ck" >/dev/null 2>&1; then
    ok=0; note+=", checkpoint does not load"
  fi
  wait_all_gone 10 "${pids[@]}" || { ok=0; note+=", ORPHAN"; kill -9 "${pids[@]}" 2>/dev/null; }
  record "$kind" "$n" $ok "$detect" "$note"
}
# SIGTERM at a random step of the reference run, with only the final checkpoint to go on
# (no --checkpoint-every), then --resume: bit-equal to the unbroken reference. The step is
# drawn first and the signal sent once the progress line shows it (redrawn every 0.1 s), so
# it lands inside the run however fast the machine is at the moment.
run_sigterm_resume() {
  local n=$1 dir="$WORK/sigterm-resume-$1"
  rm -rf "$dir"
  local flags=(--procs 2 --threads 1 --seed 9 --steps $REF_STEPS --checkpoint-dir "$dir")
  local target=$((1 + RANDOM % (REF_STEPS - 30)))
  start_coord "sigterm-resume-$n-a" "${BASE[@]}" "${flags[@]}" --progress on
  local pids=() t_end=$(awk -v n="$(now)" 'BEGIN{printf "%.3f", n + 120}') done_steps
  while awk -v n="$(now)" -v u="$t_end" 'BEGIN{exit !(n < u)}'; do
    [ ${#pids[@]} -eq 0 ] && pids=($(worker_pids "$OUT"))
    done_steps=$(progress_step "$OUT"); [ "${done_steps:-0}" -ge $target ] && break
    kill -0 $CPID 2>/dev/null || break
    sleep 0.02
  done
  local t0; t0=$(now)
  kill -TERM $CPID 2>/dev/null; wait $CPID; local rc=$?
  local detect; detect=$(awk -v a="$t0" -v b="$(now)" 'BEGIN{printf "%.2f", b - a}')
  local at; at=$(grep -oP "SIGTERM: stopping after step \K[0-9]+" "$ERR")
  local ok=1 note="drew step $target, stopped after step ${at:-?}"
  [ $rc -eq 143 ] || { ok=0; note+=", rc $rc"; }
  [ $rc -eq 0 ] && note+=" (the signal came after the run had ended: no interruption)"
  wait_all_gone 10 "${pids[@]}" || { ok=0; note+=", ORPHAN"; kill -9 "${pids[@]}" 2>/dev/null; }
  start_coord "sigterm-resume-$n-b" "${BASE[@]}" "${flags[@]}" --resume
  wait $CPID; rc=$?
  [ $rc -eq 0 ] || { ok=0; note+=", resume rc $rc"; }
  grep -q "resuming from $dir/$(printf 'step-%012d.ckpt' "${at:-0}")" "$ERR" || { ok=0; note+=", did not resume from it"; }
  local last; last=$(ls "$dir"/step-*.ckpt | tail -1)
  if "$COMPARE" seed_cnn "$WORK/reference.ckpt" "$last" >"$WORK/sigterm-resume-$n.cmp" 2>&1; then
    note+=", bit-equal"
  else
    ok=0; note+=", $(cat "$WORK/sigterm-resume-$n.cmp")"
  fi
  record sigterm-resume "$n" $ok "$detect" "$note"
}
# --- end of stop signals ---

run_door() {  # kind n rogue-mode expected-status
  local kind=$1 n=$2 mode=$3 want=$4
  local pf="$WORK/$kind-$n.port"; rm -f "$pf"
  local token; token="tok-$RANDOM$RANDOM"
  THREADSPLIT_TOKEN=$token start_coord "$kind-$n" "${BASE[@]}" --external-workers 1 --steps 5 --port-file "$pf" --connect-timeout 60
  local port; port=$(external_port "$pf") || { kill -9 $CPID; record "$kind" "$n" 0 - "no port"; return; }
  local t0; t0=$(now)
  THREADSPLIT_TOKEN=$token "$ROGUE" "127.0.0.1:$port" "$mode" >"$WORK/$kind-$n.rogue" 2>&1
  local rrc=$? detect; detect=$(awk -v a="$t0" -v b="$(now)" 'BEGIN{printf "%.2f", b - a}')
  THREADSPLIT_TOKEN=$token OMP_NUM_THREADS=1 "$WORKER" --coordinator "127.0.0.1:$port" >"$WORK/$kind-$n.worker" 2>&1 &
  local wpid=$!
  wait $CPID; local rc=$?
  wait $wpid; local wrc=$?
  local ok=1 note="$mode"
  [ $rrc -eq 0 ] && grep -q "status $want" "$WORK/$kind-$n.rogue" || { ok=0; note+=", not refused ($(tail -1 "$WORK/$kind-$n.rogue"))"; }
  [ $rc -eq 0 ] && [ $wrc -eq 0 ] || { ok=0; note+=", run did not go on (rc $rc, worker $wrc)"; }
  grep -qE "refused a (worker|connection)" "$ERR" || { ok=0; note+=", not logged"; }
  record "$kind" "$n" $ok "$detect" "$note"
}

run_malformed() {
  local n=$1
  local modes=(no-hello old-protocol other-build bad-rank bad-length too-many-samples second-hello nan-gradient)
  local mode=${modes[$((RANDOM % ${#modes[@]}))]}
  case $mode in
    no-hello|old-protocol|other-build|bad-rank)
      local want=7; [ $mode = no-hello ] && want=3
      run_door malformed "$n" "$mode" $want; return ;;
  esac
  local pf="$WORK/malformed-$n.port"; rm -f "$pf"
  local token="tok-$RANDOM$RANDOM"
  THREADSPLIT_TOKEN=$token start_coord "malformed-$n" "${BASE[@]}" --external-workers 2 --steps 20 --port-file "$pf" \
    --on-worker-failure continue --connect-timeout 60
  local port; port=$(external_port "$pf") || { kill -9 $CPID; record malformed "$n" 0 - "no port"; return; }
  THREADSPLIT_TOKEN=$token OMP_NUM_THREADS=1 "$WORKER" --coordinator "127.0.0.1:$port" >"$WORK/malformed-$n.worker" 2>&1 &
  local wpid=$!
  sleep 0.5  # let the real worker take rank 0 first
  THREADSPLIT_TOKEN=$token "$ROGUE" "127.0.0.1:$port" "$mode" >"$WORK/malformed-$n.rogue" 2>&1
  local rrc=$?
  wait $CPID; local rc=$?
  wait $wpid
  local ok=1 note="$mode"
  [ $rrc -eq 0 ] && grep -q "status 3" "$WORK/malformed-$n.rogue" || { ok=0; note+=", not refused"; }
  grep -q "refused a message from worker" "$ERR" || { ok=0; note+=", not logged"; }
  if [ $mode = nan-gradient ]; then
    # 4: the run diverged (a NaN gradient is divergence, not a faulty wire)
    [ $rc -eq 4 ] && grep -q "non-finite gradient" "$ERR" || { ok=0; note+=", run not stopped (rc $rc)"; }
    grep -q "^saved " "$OUT" || { ok=0; note+=", no checkpoint"; }
  else
    [ $rc -eq 0 ] && grep -q "trained 20 steps" "$OUT" || { ok=0; note+=", run did not go on (rc $rc)"; }
  fi
  record malformed "$n" $ok - "$note"
}

# ---- Respawn (--respawn): a worker killed -9 at a random step is replaced on its cores ----
# The run must end with rc 0 and every worker again, the replacement named (new pid, the old
# one, the step), the report listing it, the parameters those of an unbroken run up to float
# summation order, and no process left behind. Detection: kill to the replacement's join.
RESPAWN_STEPS=100
RESPAWN_FLAGS=(--procs 2 --threads 1 --seed 5 --optimizer sgd --lr 0.01 --momentum 0.9 --steps $RESPAWN_STEPS)
respawn_reference() {
  [ -f "$WORK/respawn-reference.ckpt" ] && return
  "${BASE[@]}" "${RESPAWN_FLAGS[@]}" --save "$WORK/respawn-reference.ckpt" >"$WORK/respawn-reference.out" 2>&1 ||
    { echo "fault_campaign: the respawn reference run failed" >&2; exit 1; }
}
run_respawn() {
  local n=$1 rep="$WORK/respawn-$1.json" ckpt="$WORK/respawn-$1.ckpt"
  start_coord "respawn-$n" "${BASE[@]}" "${RESPAWN_FLAGS[@]}" --on-worker-failure continue --respawn 1 \
    --failure-grace 2 --report "$rep" --save "$ckpt" --progress on
  if ! wait_for "$OUT" 60 'worker 1 pid' >/dev/null; then
    kill -9 $CPID 2>/dev/null; wait $CPID 2>/dev/null; record respawn "$n" 0 - "workers never joined"; return
  fi
  local pids=($(worker_pids "$OUT"))
  local victim=$((RANDOM % 2))
  wait_for_step "$OUT" $((1 + RANDOM % (RESPAWN_STEPS - 30))) 60  # a step drawn first, as above
  local t0; t0=$(now)
  kill -9 "${pids[$victim]}"
  local seen; seen=$(wait_for "$ERR" 60 "WORKER RESPAWNED: worker $victim ") || seen=""
  wait $CPID; local rc=$?
  local detect="-"; [ -n "$seen" ] && detect=$(awk -v a="$t0" -v b="$seen" 'BEGIN{printf "%.2f", b - a}')
  local ok=1 note="worker $victim"
  local fresh; fresh=$(grep -oP "WORKER RESPAWNED: worker $victim \(pid \K\d+(?=, cores [0-9]+\) replaces pid ${pids[$victim]}, which was killed by signal 9)" "$ERR")
  [ -n "$fresh" ] || { ok=0; note+=", no respawn line"; }
  note+=" $(grep -oP 'WORKER RESPAWNED: .* at step \K\d+' "$ERR" | head -1 | sed 's/^/at step /')"
  [ $rc -eq 0 ] || { ok=0; note+=", rc $rc"; }
  grep -q "WORKER LOST: worker $victim (pid ${pids[$victim]}" "$ERR" || { ok=0; note+=", no loss line"; }
  grep -q "trained $RESPAWN_STEPS steps" "$OUT" || { ok=0; note+=", not all steps"; }
  grep -q "\"new_pid\": ${fresh:-x}," "$rep" 2>/dev/null && grep -q '"outcome": "rejoined"' "$rep" || { ok=0; note+=", not in the report"; }
  [ "$(grep -c 'exited with status 0' "$rep" 2>/dev/null)" -ge 2 ] || { ok=0; note+=", not every worker at the end"; }
  # 1e-4 of the reference's largest parameter (0.29), the continue-policy test's tolerance.
  local cmp; cmp=$("$COMPARE" seed_cnn "$WORK/respawn-reference.ckpt" "$ckpt" 2>&1)
  local diff; diff=$(sed -n 's/.*max |diff| //p' <<<"$cmp")
  if [ -n "$diff" ] && awk -v d="$diff" 'BEGIN{exit !(d < 2.9e-5)}'; then note+=", max |diff| $diff"; else ok=0; note+=", $cmp"; fi
  wait_all_gone 10 "${pids[@]}" $fresh || { ok=0; note+=", ORPHAN"; kill -9 "${pids[@]}" $fresh 2>/dev/null; }
  record respawn "$n" $ok "$detect" "$note"
}
# ---- end of respawn ----
# --- Workers that lie and runs that diverge (docs/reliability.md) ---
# A real worker (rank 0) and the rogue (rank 1, tests/tools/rogue_worker.cpp), which takes
# part honestly until a random step FROM and then lies. Detection: from the rogue's "lying
# from step" line to the coordinator's line naming the outcome.
liar_run() {  # kind n mode from coordinator-flags... ; sets LRC, LDIR, LROGUE, LDETECT, LWRC
  local kind=$1 n=$2 mode=$3 from=$4; shift 4
  LDIR="$WORK/$kind-$n"; rm -rf "$LDIR"; mkdir -p "$LDIR"
  local pf="$LDIR/port" token="tok-$RANDOM$RANDOM"
  THREADSPLIT_TOKEN=$token start_coord "$kind-$n" "${BASE[@]}" --external-workers 2 --port-file "$pf" \
    --failure-grace 2 --checkpoint-dir "$LDIR/ckpt" --checkpoint-every 1 --report "$LDIR/report.json" "$@"
  local port; port=$(external_port "$pf") || { kill -9 $CPID; wait $CPID; LRC=-1; return; }
  THREADSPLIT_TOKEN=$token THREADSPLIT_RANK=0 OMP_NUM_THREADS=1 "$WORKER" --coordinator "127.0.0.1:$port" \
    >"$LDIR/worker.out" 2>&1 &
  local wpid=$!
  THREADSPLIT_TOKEN=$token THREADSPLIT_RANK=1 "$ROGUE" "127.0.0.1:$port" "$mode" "$from" >"$LDIR/rogue.out" 2>&1 &
  LROGUE=$!
  local t0 t1
  t0=$(wait_for "$LDIR/rogue.out" 60 'lying from step') || t0=
  t1=$(wait_for "$ERR" 60 'run aborted|WORKER LOST|the run diverged') || t1=
  LDETECT=-
  [ -n "$t0" ] && [ -n "$t1" ] && LDETECT=$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.2f", b - a}')
  wait $CPID; LRC=$?
  wait $wpid; LWRC=$?
  wait $LROGUE 2>/dev/null
}
# Every checkpoint the run saved loads (load_checkpoint refuses non-finite values); prints
# the newest one's step.
liar_files_ok() {
  local f newest=
  for f in "$LDIR"/ckpt/step-*.ckpt; do
    [ -f "$f" ] || return 1
    "$COMPARE" seed_cnn "$f" "$f" >/dev/null 2>&1 || return 1
    newest=$f
  done
  [ -n "$newest" ] || return 1
  "$COMPARE" seed_cnn "$newest" "$newest" | grep -oP 'steps \K\d+'
}
run_stale_deal() {
  local n=$1 from; from=$((2 + RANDOM % 20))
  local policy=abort; [ $((RANDOM % 2)) = 1 ] && policy=continue
  liar_run stale-deal "$n" stale-deal "$from" --steps 40 --on-worker-failure $policy
  local ok=1 note="$policy from step $from"
  [ "$LRC" = -1 ] && { record stale-deal "$n" 0 - "no port"; return; }
  grep -q "a result for deal 0 (step $from), a deal it was never dealt" "$ERR" || { ok=0; note+=", not refused"; }
  local step; step=$(liar_files_ok) || { ok=0; note+=", a checkpoint does not load"; }
  if [ $policy = abort ]; then
    [ $LRC -eq 1 ] && grep -q "run aborted: worker 1 (pid $LROGUE)" "$ERR" || { ok=0; note+=", rc $LRC or message"; }
    [ "$step" = "$from" ] || { ok=0; note+=", checkpoint of step $step"; }
  else
    [ $LRC -eq 0 ] && grep -q "trained 40 steps" "$OUT" || { ok=0; note+=", run did not go on (rc $LRC)"; }
    grep -q "WORKER LOST: worker 1 (pid $LROGUE)" "$ERR" || { ok=0; note+=", no WORKER LOST"; }
    grep -q "WORKER LOST: worker 0" "$ERR" && { ok=0; note+=", the honest worker was dropped"; }
    [ $LWRC -eq 0 ] || { ok=0; note+=", honest worker rc $LWRC"; }
  fi
  wait_all_gone 5 $LROGUE || { ok=0; note+=", rogue left running"; }
  record stale-deal "$n" $ok "$LDETECT" "$note"
}
run_huge_gradient() {
  local n=$1 from; from=$((2 + RANDOM % 20))
  local ok=1 step
  if [ $((RANDOM % 2)) = 1 ]; then
    # Adam: v grows by 0.001 * 1e40 a step and overflows some 35 steps in: divergence.
    liar_run huge-gradient "$n" huge-gradient "$from" --steps 120 --optimizer adam
    local note="adam from step $from"
    [ "$LRC" = -1 ] && { record huge-gradient "$n" 0 - "no port"; return; }
    [ $LRC -eq 4 ] || { ok=0; note+=", rc $LRC"; }
    grep -q "the run diverged at step .*the optimizer state 'v': inf" "$ERR" || { ok=0; note+=", no divergence line"; }
    grep -q '"status": "diverged"' "$LDIR/report.json" || { ok=0; note+=", report status"; }
    step=$(liar_files_ok) || { ok=0; note+=", a checkpoint does not load"; }
    grep -q "the run diverged at step $step " "$ERR" || { ok=0; note+=", last checkpoint step $step is not the last good one"; }
    note+=", diverged at step $step"
    LDETECT=-  # it takes ~35 steps by design: no detection time
  else
    local policy=abort; [ $((RANDOM % 2)) = 1 ] && policy=continue
    liar_run huge-gradient "$n" huge-gradient "$from" --steps 40 --optimizer sgd --max-grad-norm 100 \
      --on-worker-failure $policy
    local note="sgd --max-grad-norm 100, $policy, from step $from"
    [ "$LRC" = -1 ] && { record huge-gradient "$n" 0 - "no port"; return; }
    grep -q "a gradient of L2 norm 1e+20 for step $from, above --max-grad-norm 100" "$ERR" || { ok=0; note+=", not refused"; }
    step=$(liar_files_ok) || { ok=0; note+=", a checkpoint does not load"; }
    if [ $policy = abort ]; then
      [ $LRC -eq 1 ] && [ "$step" = "$from" ] || { ok=0; note+=", rc $LRC, checkpoint of step $step"; }
    else
      [ $LRC -eq 0 ] && grep -q "trained 40 steps" "$OUT" || { ok=0; note+=", run did not go on (rc $LRC)"; }
    fi
  fi
  record huge-gradient "$n" $ok "$LDETECT" "$note"
}
run_nan_loss() {
  local n=$1 from; from=$((2 + RANDOM % 20))
  local policy=abort; [ $((RANDOM % 2)) = 1 ] && policy=continue
  liar_run nan-loss "$n" nan-loss "$from" --steps 40 --on-worker-failure $policy
  local ok=1 note="$policy from step $from"
  [ "$LRC" = -1 ] && { record nan-loss "$n" 0 - "no port"; return; }
  [ $LRC -eq 4 ] || { ok=0; note+=", rc $LRC"; }
  grep -q "the run diverged at step $from (a worker's loss)" "$ERR" || { ok=0; note+=", no divergence line"; }
  grep -q "WORKER LOST" "$ERR" && { ok=0; note+=", blamed a worker"; }
  grep -q '"status": "diverged"' "$LDIR/report.json" || { ok=0; note+=", report status"; }
  local step; step=$(liar_files_ok) || { ok=0; note+=", a checkpoint does not load"; }
  [ "$step" = "$from" ] || { ok=0; note+=", checkpoint of step $step"; }
  record nan-loss "$n" $ok "$LDETECT" "$note"
}

# ---- Before authentication (docs/reliability.md): oversized Hellos, another data copy ----

# 52 Hellos of 800 KB (the first with the right token, the last of 8 MiB) at a coordinator
# waiting for its one worker; then a real worker joins and the run must end normally, with
# the refusals echoed cut short and the log, the report and what the coordinator keeps
# (its anonymous memory before and after the Hellos) small.
run_oversized_hello() {
  local n=$1
  local pf="$WORK/oversized-$n.port" report="$WORK/oversized-$n.json"; rm -f "$pf" "$report"
  local token="tok-$RANDOM$RANDOM"
  THREADSPLIT_TOKEN=$token start_coord "oversized-$n" "${BASE[@]}" --external-workers 1 --steps 5 --port-file "$pf" \
    --connect-timeout 60 --report "$report"
  local port; port=$(external_port "$pf") || { kill -9 $CPID; record oversized-hello "$n" 0 - "no port"; return; }
  sleep "$(rand_between 0 0.5)"
  local anon0; anon0=$(awk '/RssAnon/{print $2}' "/proc/$CPID/status" 2>/dev/null)
  local t0; t0=$(now)
  THREADSPLIT_TOKEN=$token "$ROGUE" "127.0.0.1:$port" oversized-hello >"$WORK/oversized-$n.rogue" 2>&1
  local rrc=$? detect; detect=$(awk -v a="$t0" -v b="$(now)" 'BEGIN{printf "%.2f", b - a}')
  local anon1; anon1=$(awk '/RssAnon/{print $2}' "/proc/$CPID/status" 2>/dev/null)
  local kept=$(( (${anon1:-0} - ${anon0:-0}) / 1024 ))
  THREADSPLIT_TOKEN=$token OMP_NUM_THREADS=1 "$WORKER" --coordinator "127.0.0.1:$port" >"$WORK/oversized-$n.worker" 2>&1 &
  local wpid=$!
  wait $CPID; local rc=$?
  wait $wpid; local wrc=$?
  local ok=1 note="52 Hellos (42 MB) in ${detect} s, coordinator anonymous memory +${kept} MB"
  [ $rrc -eq 0 ] || { ok=0; note+=", rogue rc $rrc ($(tail -1 "$WORK/oversized-$n.rogue"))"; }
  grep -q "first status 7: a Hello whose hostname is 204800 bytes.*\.\.\. (204800 bytes)" "$WORK/oversized-$n.rogue" ||
    { ok=0; note+=", no truncated echo"; }
  grep -q "last status 8" "$WORK/oversized-$n.rogue" || { ok=0; note+=", 8 MiB Hello not stopped by the receive limit"; }
  [ $rc -eq 0 ] && [ $wrc -eq 0 ] && grep -q "trained 5 steps" "$OUT" || { ok=0; note+=", run did not go on (rc $rc, worker $wrc)"; }
  local longest; longest=$(awk '{ if (length($0) > m) m = length($0) } END { print m + 0 }' "$ERR")
  [ "$longest" -lt 400 ] && [ "$(stat -c %s "$ERR")" -lt 65536 ] || { ok=0; note+=", log line of $longest bytes"; }
  [ -f "$report" ] && [ "$(stat -c %s "$report")" -lt 262144 ] || { ok=0; note+=", report missing or large"; }
  grep -qE '"and [0-9]+ more refusals \((5[1-9]|[6-9][0-9]) in all\)"' "$report" 2>/dev/null || { ok=0; note+=", refusals not counted"; }
  [ -n "$anon1" ] && [ "$kept" -lt 32 ] || { ok=0; note+=", the coordinator kept memory"; }
  record oversized-hello "$n" $ok "$detect" "$note"
}

# A hand-started worker with its own copy of the data, one random label changed: refused at
# Hello naming both fingerprints; then a worker with an equal copy joins and the run ends.
run_data_mismatch() {
  local n=$1 copy="$WORK/data-copy" f
  if [ ! -f "$copy/test_batch.bin" ]; then
    mkdir -p "$copy" && cp "$DATA"/*.bin "$copy"/
  fi
  for f in "$DATA"/*.bin; do cmp -s "$f" "$copy/$(basename "$f")" || cp "$f" "$copy/"; done  # undo the last run's change
  local files=(data_batch_1 data_batch_2 data_batch_3 data_batch_4 data_batch_5 test_batch)
  local file="$copy/${files[$((RANDOM % 6))]}.bin" rec=$(( (RANDOM * 32768 + RANDOM) % 10000 ))
  local old; old=$(od -An -tu1 -j $((rec * 3073)) -N1 "$file" | tr -d ' ')
  printf "\\$(printf %o $(( (old + 1 + RANDOM % 9) % 10 )))" | dd of="$file" bs=1 seek=$((rec * 3073)) conv=notrunc status=none
  local pf="$WORK/datamismatch-$n.port"; rm -f "$pf"
  local token="tok-$RANDOM$RANDOM"
  THREADSPLIT_TOKEN=$token start_coord "datamismatch-$n" "${BASE[@]}" --external-workers 1 --steps 5 --port-file "$pf" \
    --connect-timeout 60
  local port; port=$(external_port "$pf") || { kill -9 $CPID; record data-mismatch "$n" 0 - "no port"; return; }
  local t0; t0=$(now)
  THREADSPLIT_TOKEN=$token OMP_NUM_THREADS=1 "$WORKER" --coordinator "127.0.0.1:$port" --data "$copy" \
    >"$WORK/datamismatch-$n.other" 2>&1
  local orc=$? detect; detect=$(awk -v a="$t0" -v b="$(now)" 'BEGIN{printf "%.2f", b - a}')
  THREADSPLIT_TOKEN=$token OMP_NUM_THREADS=1 "$WORKER" --coordinator "127.0.0.1:$port" --data "$DATA" \
    >"$WORK/datamismatch-$n.worker" 2>&1 &
  local wpid=$!
  wait $CPID; local rc=$?
  wait $wpid; local wrc=$?
  local ok=1 note="$(basename "$file") record $rec"
  [ $orc -eq 4 ] || { ok=0; note+=", other copy exited $orc"; }
  grep -qE "CIFAR-10 copy \(fingerprint [0-9a-f]{8}\) differs from the coordinator's .* \(fingerprint [0-9a-f]{8}\)" \
    "$WORK/datamismatch-$n.other" || { ok=0; note+=", fingerprints not named"; }
  grep -q "refused a worker" "$ERR" || { ok=0; note+=", not logged"; }
  [ $rc -eq 0 ] && [ $wrc -eq 0 ] && grep -q "trained 5 steps" "$OUT" || { ok=0; note+=", run did not go on (rc $rc, worker $wrc)"; }
  record data-mismatch "$n" $ok "$detect" "$note"
}

cd "$WORK"  # abort checkpoints without --checkpoint-dir land here
echo "fault campaign: $RUNS runs per kind, work dir $WORK"
for kind in "${KINDS[@]}"; do
  for n in $(seq 1 "$RUNS"); do
    case $kind in
      kill9-abort) run_worker_fault "$kind" "$n" KILL abort ;;
      kill9-continue) run_worker_fault "$kind" "$n" KILL continue ;;
      sigstop-continue) run_worker_fault "$kind" "$n" STOP continue ;;
      sigstop-abort) run_worker_fault "$kind" "$n" STOP abort ;;
      coordinator-kill) run_coordinator_kill "$n" ;;
      interrupt-resume) reference; run_interrupt_resume "$n" ;;
      corrupt-checkpoint) run_corrupt_checkpoint "$n" ;;
      rerun-same-dir) run_rerun_same_dir "$n" ;;
      resume-changed-flags) run_resume_changed_flags "$n" ;;
      wrong-token) run_door wrong-token "$n" bad-token 7 ;;
      malformed) run_malformed "$n" ;;
      respawn) respawn_reference; run_respawn "$n" ;;
      stale-deal) run_stale_deal "$n" ;;
      huge-gradient) run_huge_gradient "$n" ;;
      nan-loss) run_nan_loss "$n" ;;
      sigterm-stop) run_signal_stop "$kind" "$n" TERM ;;
      sigint-stop) run_signal_stop "$kind" "$n" INT ;;
      sigterm-resume) reference; run_sigterm_resume "$n" ;;
      oversized-hello) run_oversized_hello "$n" ;;
      data-mismatch) run_data_mismatch "$n" ;;
      *) echo "fault_campaign: unknown kind $kind" >&2; exit 2 ;;
    esac
  done
done
echo
echo "summary (kind, runs, as designed, longest detection s):"
awk -F'\t' '{ r[$1]++; ok[$1] += $3; if ($4 != "-" && $4 + 0 > mx[$1]) mx[$1] = $4 + 0; order[$1] = order[$1] ? order[$1] : ++k }
  END { for (x in r) printf "%-20s %4d %4d   %s\n", x, r[x], ok[x], (x in mx) ? sprintf("%.2f", mx[x]) : "-" }' "$RESULTS" | sort
echo "per-run lines: $RESULTS"

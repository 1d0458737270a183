#!/usr/bin/env bash
# A single-node Slurm cluster made for this test (munged, slurmctld and slurmd as root, every
# file in one temporary folder, ports of their own), and scripts/slurm/threadsplit.sbatch run on
# it: a short seed_cnn run of 2 tasks must train with both ranks; a long one stopped with
# `scancel --batch --signal=TERM` must write its checkpoint and stop cleanly; a resubmission
# with --resume must continue from that checkpoint (and one more must find nothing left); the
# script's own --signal=B:TERM@120 must stop a run under a 1-minute limit with its checkpoint.
# Every daemon it started is stopped at the end, failed or not. Exit 77 (ctest: Skipped), with
# the reason, where Slurm cannot run here.
#   BUILD_DIR=build tests/slurm_single_node.sh     (CIFAR10_DIR: real data, else generated)
# docs/slurm.md explains the configuration.
set -uo pipefail
me=slurm_single_node.sh
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD_DIR="$(cd "${BUILD_DIR:-$ROOT/build}" && pwd)"
SBATCH_SCRIPT="$ROOT/scripts/slurm/threadsplit.sbatch"
skip() { echo "$me: SKIPPED: $*"; exit 77; }
fail() { echo "$me: FAILED: $*" >&2; show_logs; exit 1; }

[[ $(id -u) -eq 0 ]] || skip "not root: this test starts slurmctld and slurmd as root (SlurmUser=root)"
for c in munged mungekey slurmctld slurmd sbatch srun sinfo scontrol scancel jq; do
  command -v "$c" >/dev/null ||
    skip "$c is not installed (apt-get install slurm-wlm munge jq; scripts/test.sh installs them)"
done
[[ -x "$BUILD_DIR/coordinator/threadsplit" && -x "$BUILD_DIR/worker/threadsplit_worker" ]] ||
  fail "no threadsplit build in $BUILD_DIR (set BUILD_DIR)"

# Outside a job the batch script refuses to start, saying how to submit it.
out="$(env -u SLURM_JOB_ID "$SBATCH_SCRIPT" --data x 2>&1)"
rc=$?
[[ $rc == 2 && $out == *"not inside a Slurm job (SLURM_JOB_ID is not set): submit it with sbatch"* ]] ||
  fail "outside Slurm the batch script exited $rc saying: $out"

# Under /tmp, not the build folder: munge's socket path must fit a sockaddr_un (108 bytes).
T="$(mktemp -d /tmp/ts-slurm.XXXXXX)"
chmod 755 "$T"
CONF="$T/slurm.conf"
pids=()
show_logs() {
  for f in "$T"/log/*.log "$T"/job*.out; do
    [[ -f $f ]] || continue
    echo "---- $f (last 40 lines)" >&2
    tail -n 40 "$f" >&2
  done
}
sl() { SLURM_CONF="$CONF" "$@"; }
# The processes of our jobs carry SLURM_CONF=$CONF (sbatch passes its environment on), the
# step daemons (slurmstepd) our marker from slurmd: both outlive slurmd under
# proctrack/linuxproc, so they are found by it and stopped by their ids.
ours() {
  local e p
  for e in /proc/[0-9]*/environ; do
    p="${e#/proc/}"
    p="${p%/environ}"
    [[ $p != $$ ]] || continue
    { tr '\0' '\n' <"$e"; } 2>/dev/null | grep -qxF -e "SLURM_CONF=$CONF" -e "TS_SLURM_TEST=$T" && echo "$p"
  done
}
cleanup() {
  local p left
  if [[ -f $CONF ]]; then sl scancel --quiet --user=root 2>/dev/null; fi
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null; done
  for _ in $(seq 50); do
    left=0
    for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && left=1; done
    ((left)) || break
    sleep 0.1
  done
  for p in "${pids[@]}" $(ours); do kill -KILL "$p" 2>/dev/null; done
  wait 2>/dev/null
  rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

# Two free ports (not listening in /proc/net/tcp{,6}), one for slurmctld, one for slurmd.
free_port() {
  local p hex
  while :; do
    p=$((20000 + RANDOM % 30000))
    hex="$(printf ':%04X ' "$p")"
    grep -q "$hex" /proc/net/tcp /proc/net/tcp6 2>/dev/null || { echo "$p"; return; }
  done
}
ctld_port="$(free_port)"
slurmd_port="$(free_port)"
while [[ $slurmd_port == "$ctld_port" ]]; do slurmd_port="$(free_port)"; done

# munged wants its key private and the socket's folder open to all (execute).
mkdir -p "$T"/{key,munge,state,spool,log}
chmod 700 "$T/key"
chmod 755 "$T/munge"
mungekey --create --keyfile="$T/key/munge.key" >/dev/null 2>&1 ||
  skip "mungekey cannot create a key: $(mungekey --create --keyfile="$T/key/k2" 2>&1 | tail -1)"
chmod 600 "$T/key/munge.key"
TS_SLURM_TEST="$T" munged --foreground --key-file="$T/key/munge.key" --socket="$T/munge/munge.socket" \
  --pid-file="$T/munge/munged.pid" --log-file="$T/log/munged.log" --seed-file="$T/key/munged.seed" \
  --num-threads=2 >"$T/log/munged.out" 2>&1 &
pids+=($!)
for _ in $(seq 50); do [[ -S $T/munge/munge.socket ]] && break; sleep 0.1; done
[[ -S $T/munge/munge.socket ]] || skip "munged did not start here: $(tail -n 3 "$T/log/munged.out" "$T/log/munged.log" 2>/dev/null | tr '\n' ' ')"

# The node as slurmd sees it (sockets, cores, threads), named localhost.
hw="$(slurmd -C 2>/dev/null | head -1)"
[[ $hw == NodeName=* ]] || skip "slurmd -C cannot read this machine's layout: $hw"
cpus="$(sed -n 's/.* CPUs=\([0-9]*\).*/\1/p' <<<"$hw")"
layout="$(grep -o 'CPUs=.* ThreadsPerCore=[0-9]*' <<<"$hw")"
((cpus >= 2)) || skip "this machine has $cpus CPU(s); the test runs 2 tasks of 1 core"
cat >"$CONF" <<EOF
ClusterName=tstest
SlurmctldHost=localhost
SlurmctldPort=$ctld_port
SlurmdPort=$slurmd_port
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$T/munge/munge.socket
StateSaveLocation=$T/state
SlurmdSpoolDir=$T/spool
SlurmctldPidFile=$T/slurmctld.pid
SlurmdPidFile=$T/slurmd.pid
SlurmctldLogFile=$T/log/slurmctld.log
SlurmdLogFile=$T/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/affinity
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
SwitchType=switch/none
ReturnToService=2
KillWait=5
MinJobAge=600
NodeName=localhost NodeAddr=127.0.0.1 $layout State=UNKNOWN
PartitionName=test Nodes=localhost Default=YES MaxTime=10 State=UP
EOF

TS_SLURM_TEST="$T" slurmctld -D -c -f "$CONF" >"$T/log/slurmctld.out" 2>&1 &
pids+=($!)
TS_SLURM_TEST="$T" slurmd -D -f "$CONF" -N localhost >"$T/log/slurmd.out" 2>&1 &
pids+=($!)
state=""
for _ in $(seq 150); do
  state="$(sl sinfo -h -n localhost -o %T 2>/dev/null)"
  [[ $state == idle ]] && break
  for p in "${pids[@]}"; do
    kill -0 "$p" 2>/dev/null ||
      skip "a Slurm daemon exited at start here (pid $p): $(tail -n 2 "$T"/log/slurm*.out "$T"/log/slurm*.log 2>/dev/null | tr '\n' ' ' | cut -c1-600)"
  done
  sleep 0.2
done
[[ $state == idle ]] ||
  skip "the node did not become idle within 30 s (sinfo says '$state'): $(tail -n 3 "$T/log/slurmd.log" 2>/dev/null | tr '\n' ' ' | cut -c1-600)"
echo "$me: single-node Slurm up in $SECONDS s (slurmctld port $ctld_port, slurmd port $slurmd_port, $layout)"

data="${CIFAR10_DIR:-}"
if [[ -z $data || ! -f $data/data_batch_1.bin || ! -f $data/test_batch.bin ]]; then
  data="$T/synthetic"
  "$BUILD_DIR/coordinator/threadsplit" make-synthetic-data "$data" --seed 7 >/dev/null ||
    fail "threadsplit make-synthetic-data $data failed"
fi

# submit NAME SBATCH-FLAGS... -- THREADSPLIT-FLAGS...: prints the job id.
submit() {
  local name="$1" sflags=()
  shift
  while [[ $1 != -- ]]; do sflags+=("$1"); shift; done
  shift
  sl env THREADSPLIT_BUILD="$BUILD_DIR" sbatch --parsable --chdir="$T" --output="$T/$name.out" \
    --job-name="$name" "${sflags[@]}" "$SBATCH_SCRIPT" --data "$data" --model seed_cnn --batch 64 \
    --eval-every 0 --progress off "$@"
}
job_field() { sl scontrol show job "$1" -o 2>/dev/null | grep -o " $2=[^ ]*" | cut -d= -f2-; }
wait_job() {  # JOB SECONDS: waits until it left the queue; prints its state
  local s
  for _ in $(seq $(($2 * 5))); do
    s="$(job_field "$1" JobState)"
    case "$s" in
      COMPLETED|FAILED|CANCELLED|TIMEOUT|NODE_FAIL|OUT_OF_MEMORY|BOOT_FAIL|DEADLINE|PREEMPTED)
        echo "$s"; return ;;
      *) sleep 0.2 ;;  # PENDING, RUNNING, SIGNALING, COMPLETING, ...
    esac
  done
  echo "STILL_QUEUED_AFTER_${2}s($s)"
}
started=$SECONDS

# 1. A short run of 2 tasks: both ranks train, each on its own core.
job="$(submit job1 --ntasks=2 --cpus-per-task=1 --time=5 -- --steps 20 --report "$T/r1.json" \
  --checkpoint-dir "$T/ck1")" || fail "sbatch refused the job: $job"
st="$(wait_job "$job" 120)"
[[ $st == COMPLETED && $(job_field "$job" ExitCode) == 0:0 ]] ||
  fail "job 1 ended $st, exit $(job_field "$job" ExitCode)"
[[ -f $T/r1.json ]] || fail "job 1 wrote no report"
jq -e '.config.external_workers == 2' "$T/r1.json" >/dev/null || fail "report: not 2 external workers"
ranks="$(jq -c '[.workers[].rank] | sort' "$T/r1.json")"
[[ $ranks == "[0,1]" ]] || fail "report: worker ranks $ranks, not [0,1]"
# Bound by srun --cpu-bind=cores (read back from each worker's affinity): one core each, not
# the same one; both said Goodbye after the run.
cores="$(jq -c '[.workers[].cores] | sort' "$T/r1.json")"
jq -e '[.workers[].cores] | (map(test("^[0-9]+$")) | all) and (unique | length == 2)' "$T/r1.json" \
  >/dev/null || fail "report: workers' cores $cores, not one core each, two different"
jq -e '[.workers[] | has("cpu_user_s")] | all' "$T/r1.json" >/dev/null || fail "report: a worker sent no Goodbye"
echo "$me: job 1: ranks $ranks, cores $cores"
ls "$T"/ck1/step-000000000020.ckpt >/dev/null 2>&1 || fail "job 1 left no checkpoint of step 20 in ck1: $(ls "$T/ck1" 2>&1)"
grep -q "coordinator exit 0, workers (srun) exit 0" "$T/job1.out" || fail "job 1: the script did not see both exit 0"

# 2. A long run stopped by SIGTERM to the batch shell (what --signal=B:TERM@120 sends).
job="$(submit job2 --ntasks=2 --cpus-per-task=1 --time=5 -- --steps 100000 --report "$T/r2.json" \
  --checkpoint-dir "$T/ck2" --checkpoint-every 2)" || fail "sbatch refused job 2: $job"
for _ in $(seq 300); do compgen -G "$T/ck2/step-*.ckpt" >/dev/null && break; sleep 0.2; done
compgen -G "$T/ck2/step-*.ckpt" >/dev/null || fail "job 2 trained no step in 60 s"
sl scancel --batch --signal=TERM "$job" || fail "scancel --batch --signal=TERM $job failed"
st="$(wait_job "$job" 60)"
line="$(grep -o 'SIGTERM: stopping after step [0-9]* .*' "$T/job2.out")"
step="$(sed -n 's/SIGTERM: stopping after step \([0-9]*\) .*/\1/p' <<<"$line")"
[[ -n $step ]] || fail "job 2 ($st) did not say it stopped after a step on SIGTERM"
ckpt="$T/ck2/$(printf 'step-%012d.ckpt' "$step")"
[[ -f $ckpt ]] || fail "job 2 stopped after step $step but $ckpt is not there"
jq -e '.interrupted.signal == "SIGTERM"' "$T/r2.json" >/dev/null || fail "report 2 has no interrupted.signal SIGTERM"
grep -q "workers (srun) exit 0" "$T/job2.out" || fail "job 2: the workers did not exit 0 after the stop"
echo "$me: job 2: $st (exit $(job_field "$job" ExitCode)) after step $step, checkpoint written"

# 3. The same command with --resume continues from it (--steps counts from step 0).
to=$((step + 4))
job="$(submit job3 --ntasks=2 --cpus-per-task=1 --time=5 -- --steps "$to" --report "$T/r3.json" \
  --checkpoint-dir "$T/ck2" --checkpoint-every 2 --resume)" || fail "sbatch refused job 3: $job"
st="$(wait_job "$job" 120)"
[[ $st == COMPLETED ]] || fail "job 3 (--resume) ended $st, exit $(job_field "$job" ExitCode)"
grep -q "resuming from $ckpt (step $step" "$T/job3.out" || fail "job 3 did not resume from $ckpt"
[[ -f $T/ck2/$(printf 'step-%012d.ckpt' "$to") ]] || fail "job 3 left no checkpoint of step $to"
echo "$me: job 3: resumed at step $step, ended at $to"

# 4. Job 3 again: its run has ended, so the job ends at once, exit 0, without workers.
job="$(submit job4 --ntasks=2 --cpus-per-task=1 --time=5 -- --steps "$to" --checkpoint-dir "$T/ck2" \
  --checkpoint-every 2 --resume)" || fail "sbatch refused job 4: $job"
st="$(wait_job "$job" 60)"
[[ $st == COMPLETED ]] || fail "job 4 (a finished run resumed) ended $st, exit $(job_field "$job" ExitCode)"
grep -q "nothing left to train" "$T/job4.out" && grep -q "no worker started" "$T/job4.out" ||
  fail "job 4 did not say its run had nothing left to train"
echo "$me: job 4: a finished run resubmitted: nothing left to train, exit 0"
# 5. The script's own #SBATCH --signal=B:TERM@120 under a 1-minute limit: slurmctld sends the
# signal at its next look at the time limits (here 10-30 s after the start), not at the limit.
t0=$SECONDS
job="$(submit job5 --ntasks=2 --cpus-per-task=1 --time=1 -- --steps 1000000 --epochs 1000 \
  --report "$T/r5.json" --checkpoint-dir "$T/ck5" --checkpoint-every 100)" || fail "sbatch refused job 5: $job"
st="$(wait_job "$job" 75)"
[[ $st != TIMEOUT ]] || fail "job 5 ran into its time limit ($st): no signal came before it"
step="$(sed -n 's/.*SIGTERM: stopping after step \([0-9]*\) .*/\1/p' "$T/job5.out")"
[[ -n $step ]] || fail "job 5 ($st) did not stop on --signal=B:TERM@120"
[[ -f $T/ck5/$(printf 'step-%012d.ckpt' "$step") ]] || fail "job 5 stopped after step $step without its checkpoint"
jq -e '.interrupted.signal == "SIGTERM"' "$T/r5.json" >/dev/null || fail "report 5 has no interrupted.signal SIGTERM"
grep -q "workers (srun) exit 0" "$T/job5.out" || fail "job 5: the workers did not exit 0 after the stop"
echo "$me: job 5: the time-limit signal stopped it after step $step, $((SECONDS - t0)) s after submission"
echo "$me: passed (jobs took $((SECONDS - started)) s)"

#!/usr/bin/env bash
# A run whose workers OpenMPI starts, on the hosts of a hostfile: starts the coordinator here
# with --external-workers N, reads the port it listens on from its --port-file, then runs
#   mpirun --hostfile FILE -np N -x THREADSPLIT_TOKEN [MPIRUN ARGS] \
#       threadsplit_worker --coordinator ADDRESS:PORT [WORKER ARGS]
# Each worker takes its rank from OMPI_COMM_WORLD_RANK and reports the cores mpirun bound it
# to (the run report's "workers"). Every argument that is not one of the options below goes
# to the coordinator (threadsplit --help), e.g.
#   scripts/launch_mpi.sh --hostfile hosts --address 10.0.0.1 --mpirun-args '--bind-to core' \
#       --steps 300 --report run.json
# Options:
#   --hostfile FILE       OpenMPI hostfile, one "HOST slots=N" a line; required
#   --np N                workers (default: the hostfile's slots, summed)
#   --address HOST        where the workers reach this host (default: 127.0.0.1 when the
#                         hostfile names only this host; required otherwise)
#   --listen HOST         what the coordinator listens on (default: --address; 0.0.0.0: all)
#   --mpirun-args 'ARGS'  more mpirun flags, split at spaces ('--bind-to core --oversubscribe')
#   --worker-args 'ARGS'  more threadsplit_worker flags, split at spaces ('--threads 2')
#   --worker-bin PATH     the worker, at the same path on every host
#                         (default: $BUILD_DIR/worker/threadsplit_worker)
#   --mpirun PATH         OpenMPI's mpirun (default: the one on PATH)
# The run token is THREADSPLIT_TOKEN when set, else a random one; it reaches the workers in
# their environment (mpirun -x), never on a command line. As root, mpirun gets
# --allow-run-as-root. The build and CIFAR-10 (--data, else as train.sh finds it) must be at
# the same paths on every host. Exit status: the coordinator's, else mpirun's (mpirun's when
# it failed first and the coordinator was stopped for it); 2: bad usage.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD_DIR="${BUILD_DIR:-$ROOT/build}"
if [[ "${1:-}" == -h || "${1:-}" == --help ]]; then
  sed -n '2,/^[^#]/{/^#/s/^# \{0,1\}//p}' "$0"
  exit 0
fi
die() { echo "launch_mpi: $*" >&2; exit 2; }

hostfile="" np="" address="" listen="" mpirun_args="" worker_args=""
worker_bin="$BUILD_DIR/worker/threadsplit_worker" mpirun="mpirun" data=""
coord_args=()
while (($#)); do
  case "$1" in
    --hostfile|--np|--address|--listen|--mpirun-args|--worker-args|--worker-bin|--mpirun|--data)
      [[ $# -ge 2 ]] || die "$1 needs a value (see --help)"
      case "$1" in
        --hostfile) hostfile="$2" ;;
        --np) np="$2" ;;
        --address) address="$2" ;;
        --listen) listen="$2" ;;
        --mpirun-args) mpirun_args="$2" ;;
        --worker-args) worker_args="$2" ;;
        --worker-bin) worker_bin="$2" ;;
        --mpirun) mpirun="$2" ;;
        --data) data="$2" ;;
      esac
      shift 2 ;;
    --external-workers|--external-workers=*|--port|--port=*|--port-file|--port-file=*|--bind|--bind=*)
      die "${1%%=*} is set by this script: it starts the coordinator with --external-workers (from --np), --listen (--address, --listen), --port 0 and a --port-file" ;;
    --data=*) data="${1#--data=}"; shift ;;
    --procs|--procs=*|--threads|--threads=*|--inter-op|--inter-op=*|--cores|--cores=*)
      die "${1%%=*} is the coordinator's split of its own cores; here mpirun places the workers: use --np, --mpirun-args (e.g. '--bind-to core') and --worker-args (e.g. '--threads 2')" ;;
    *) coord_args+=("$1"); shift ;;
  esac
done

# The hostfile: its hosts, and its slots when every line gives them.
[[ -n "$hostfile" ]] || die "--hostfile FILE is required (one \"HOST slots=N\" a line; see --help)"
[[ -e "$hostfile" ]] || die "hostfile $hostfile does not exist"
[[ -f "$hostfile" && -r "$hostfile" ]] || die "hostfile $hostfile is not a readable file"
hosts=() slots=0 slots_known=1 lineno=0
while IFS= read -r line || [[ -n "$line" ]]; do
  lineno=$((lineno + 1))
  line="${line%%#*}"
  read -r -a words <<<"$line" || true
  ((${#words[@]})) || continue
  hosts+=("${words[0]}")
  n=""
  for w in "${words[@]:1}"; do
    [[ "$w" == slots=* ]] && n="${w#slots=}"
  done
  if [[ -z "$n" ]]; then
    slots_known=0
  elif [[ "$n" =~ ^[0-9]+$ ]]; then
    slots=$((slots + 10#$n))
  else
    die "hostfile $hostfile line $lineno: slots must be a whole number, got '$n'"
  fi
done <"$hostfile"
((${#hosts[@]})) || die "hostfile $hostfile names no host"
if [[ -z "$np" ]]; then
  ((slots_known)) || die "hostfile $hostfile has a line without slots=N, so the worker count is unknown: give --np N"
  np=$slots
fi
[[ "$np" =~ ^[0-9]+$ ]] && ((10#$np >= 1)) || die "--np must be a whole number of workers, at least 1, got '$np'"

# The address the workers dial: loopback only when every host is this one.
is_this_host() {
  case "$1" in
    localhost|127.*|::1|"$(hostname)"|"$(hostname -s 2>/dev/null)"|"$(hostname -f 2>/dev/null)") return 0 ;;
  esac
  return 1
}
if [[ -z "$address" ]]; then
  for h in "${hosts[@]}"; do
    is_this_host "$h" || die "hostfile $hostfile names another host ($h): give --address HOST, an address of this host that it can reach ('hostname -I' lists them)"
  done
  address=127.0.0.1
fi
listen="${listen:-$address}"

# The programs.
command -v "$mpirun" >/dev/null 2>&1 ||
  die "$mpirun not found: install OpenMPI (apt-get install openmpi-bin) or name it with --mpirun PATH"
"$mpirun" --version 2>/dev/null | grep -q "Open MPI" ||
  die "$mpirun is not OpenMPI's (its --version does not say Open MPI); this script needs OpenMPI's -x and --hostfile"
BIN="$BUILD_DIR/coordinator/threadsplit"
[[ -x "$BIN" ]] || die "$BIN was not built: run scripts/setup.sh (or set BUILD_DIR)"
[[ -x "$worker_bin" ]] || die "worker $worker_bin is not an executable file here; it must be at that path on every host (--worker-bin PATH)"
data="$("$ROOT/scripts/find_cifar10.sh" "$BIN" "$data")"

if [[ -z "${THREADSPLIT_TOKEN:-}" ]]; then
  THREADSPLIT_TOKEN="$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
fi
export THREADSPLIT_TOKEN

work="$(mktemp -d "${TMPDIR:-/tmp}/launch_mpi.XXXXXX")"
coord=0 mpi=0
stop() {  # Ctrl-C or SIGTERM: the coordinator stops at a step boundary and ends the workers
  echo "launch_mpi: stopping the coordinator (it ends the workers)" >&2
  ((coord)) && kill -TERM "$coord" 2>/dev/null || true
}
trap stop INT TERM
trap 'rm -rf "$work"' EXIT

"$BIN" --data "$data" --external-workers "$np" --listen "$listen" --port 0 \
  --port-file "$work/port" ${coord_args[@]+"${coord_args[@]}"} &
coord=$!
# The port the coordinator really listens on: it writes the file once it listens.
while [[ ! -s "$work/port" ]]; do
  if ! kill -0 "$coord" 2>/dev/null; then
    rc=0
    wait "$coord" || rc=$?
    echo "launch_mpi: the coordinator exited ($rc) before it listened; nothing was started" >&2
    exit "$rc"
  fi
  sleep 0.05 || true  # a Ctrl-C ends the sleep; the trap has handled it
done
port="$(<"$work/port")"

as_root=()
[[ $(id -u) -ne 0 ]] || as_root=(--allow-run-as-root)
read -r -a extra_mpi <<<"$mpirun_args" || true
read -r -a extra_worker <<<"$worker_args" || true
cmd=("$mpirun" --hostfile "$hostfile" -np "$np" ${as_root[@]+"${as_root[@]}"} -x THREADSPLIT_TOKEN
     ${extra_mpi[@]+"${extra_mpi[@]}"} "$worker_bin" --coordinator "$address:$port"
     ${extra_worker[@]+"${extra_worker[@]}"})
echo "launch_mpi: ${cmd[*]}"
"${cmd[@]}" &
mpi=$!

# Until both are done. A failed mpirun (no worker started, or one died) stops the
# coordinator rather than leave it waiting out its --connect-timeout.
mpi_rc="" coord_rc="" mpi_failed_first=0
while [[ -z "$mpi_rc" || -z "$coord_rc" ]]; do
  if [[ -z "$coord_rc" ]] && ! kill -0 "$coord" 2>/dev/null; then
    coord_rc=0
    wait "$coord" || coord_rc=$?
  fi
  if [[ -z "$mpi_rc" ]] && ! kill -0 "$mpi" 2>/dev/null; then
    mpi_rc=0
    wait "$mpi" || mpi_rc=$?
    if [[ "$mpi_rc" != 0 && -z "$coord_rc" ]]; then
      echo "launch_mpi: mpirun failed ($mpi_rc); stopping the coordinator" >&2
      mpi_failed_first=1
      kill -TERM "$coord" 2>/dev/null || true
    fi
  fi
  sleep 0.1 || true
done
if [[ "$coord_rc" != 0 && $mpi_failed_first == 0 ]]; then exit "$coord_rc"; fi
exit "$mpi_rc"

#!/usr/bin/python3
"""Peer comparison: threadsplit against PyTorch on the same network, init scheme, optimizer,
global batch and process x thread split.

Speed (default): for each split P x T and each glibc allocator setting, runs PyTorch
data-parallel training (P processes, gloo + DistributedDataParallel when P > 1, process r
pinned to cores [r*T, (r+1)*T) with os.sched_setaffinity before torch starts, OMP_NUM_THREADS=T
and torch.set_num_threads(T)) and threadsplit on the same split, R times interleaved, and
prints images/s of each and the ratio.

    /usr/bin/python3 scripts/compare_pytorch.py --data DIR [--model seed_cnn] [--splits 1x2,2x1]
        [--allocators default,no-trim] [--warmup 20] [--steps 100] [--repeats 3] [--out r.json]
        [--precision f32|bf16|both] [--only torch] [--bn-group 64] [--torch-layout channels_last|nchw]

airbench94 (default batch 512): ghost batch norm over --bn-group samples, airbench's Nesterov
SGD and summed label-smoothed loss on both sides; --precision bf16 is torch.autocast(cpu,
bfloat16) around forward and loss in PyTorch and --precision bf16 in threadsplit. --only torch
runs the PyTorch half alone (no threadsplit binary needed).

Numerics: loads a threadsplit checkpoint into PyTorch and compares one training step on the
next batch (threadsplit resumed with --no-shuffle --augment none for exactly one step): the
loss, the gradient (recovered exactly from the Adam m slot threadsplit saves after the step),
and the updated parameters.

    /usr/bin/python3 scripts/compare_pytorch.py --numerics CKPT --data DIR [--split 1x2]

Needs Debian's python3-torch, python3-numpy and python3-protobuf (apt-get install -y
python3-torch python3-numpy python3-protobuf) and protoc, run with /usr/bin/python3 (the
Debian interpreter those packages belong to). threadsplit must be built (build/coordinator).
"""
import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)

APT_HINT = ("apt-get install -y python3-torch python3-numpy python3-protobuf, then run this "
            "script with /usr/bin/python3 (Debian's interpreter, not a pyenv/venv python3)")

try:
    import numpy as np
except ImportError:
    sys.exit("compare_pytorch: numpy is not importable by %s. Fix: %s" % (sys.executable, APT_HINT))

import torch_reference as ref  # noqa: E402  (needs numpy only at import)

# What "no-trim" means: glibc keeps freed memory (never trims the heap top, serves large
# blocks from the heap instead of fresh mmaps) -- the same three settings threadsplit applies
# to itself with mallopt (common/malloc_tuning.cpp), here through glibc's environment.
ALLOCATORS = {
    "default": {},
    "no-trim": {"MALLOC_TRIM_THRESHOLD_": str(1 << 30), "MALLOC_MMAP_THRESHOLD_": str(1 << 30),
                "MALLOC_TOP_PAD_": str(64 << 20)},
}
MALLOC_VARS = ("MALLOC_TRIM_THRESHOLD_", "MALLOC_MMAP_THRESHOLD_", "MALLOC_TOP_PAD_",
               "MALLOC_ARENA_MAX", "GLIBC_TUNABLES")


class Failure(Exception):
    pass


def need_torch():
    try:
        import torch  # noqa: F401
    except ImportError:
        raise Failure("PyTorch is not importable by %s. Fix: %s" % (sys.executable, APT_HINT))


def default_data_dir():
    for d in (os.path.join(ROOT, "..", "shared", "data", "cifar-10-batches-bin"),
              os.path.join(ROOT, "data", "cifar-10-batches-bin")):
        if os.path.isdir(d):
            return os.path.abspath(d)
    return None


def parse_split(text):
    try:
        p, t = text.lower().split("x")
        p, t = int(p), int(t)
    except ValueError:
        raise Failure("a split is PxT, e.g. 2x1, got %r" % text)
    if p < 1 or t < 1:
        raise Failure("a split needs P >= 1 and T >= 1, got %r" % text)
    return p, t


def default_splits(ncores):
    return [(p, ncores // p) for p in range(1, ncores + 1) if ncores % p == 0]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def clean_env():
    """This process's environment without allocator or thread settings that would leak in."""
    env = dict(os.environ)
    for k in MALLOC_VARS + ("OMP_NUM_THREADS", "OMP_PLACES", "OMP_PROC_BIND", "MKL_NUM_THREADS"):
        env.pop(k, None)
    return env


# ---------------------------------------------------------------------------------------------
# Speed

def run_torch(args, cores, p, t, allocator, workdir, rep, precision="f32"):
    result = os.path.join(workdir, "torch_%dx%d_%s_%s_%d.json" % (p, t, allocator, precision, rep))
    port = free_port()
    procs = []
    for rank in range(p):
        spec = dict(model=args.model, procs=p, threads=t, rank=rank,
                    cores=cores[rank * t:(rank + 1) * t], batch=args.batch, warmup=args.warmup,
                    steps=args.steps, seed=args.seed, data=args.data, master_port=port,
                    result=result, lr=args.lr, precision=precision, bn_group=args.bn_group,
                    channels_last=args.torch_layout == "channels_last")
        env = clean_env()
        env["OMP_NUM_THREADS"] = str(t)
        env.update(ALLOCATORS[allocator])
        procs.append(subprocess.Popen(
            [sys.executable, os.path.join(HERE, "torch_reference.py"), "speed-worker",
             json.dumps(spec)], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT))
    outputs, failed = [], False
    deadline = time.time() + args.timeout
    for rank, pr in enumerate(procs):
        try:
            out, _ = pr.communicate(timeout=max(1, deadline - time.time()))
        except subprocess.TimeoutExpired:
            for q in procs:
                q.kill()
            raise Failure("PyTorch %dx%d (%s) took over %d s; see --timeout" % (p, t, allocator, args.timeout))
        outputs.append(out.decode(errors="replace"))
        failed |= pr.returncode != 0
    if failed or not os.path.exists(result):
        raise Failure("PyTorch %dx%d (%s) failed:\n%s" % (p, t, allocator,
                                                        "\n".join(o[-3000:] for o in outputs)))
    with open(result) as f:
        return json.load(f)


def threadsplit_run(args, cores, p, t, steps, workdir, tag, extra=()):
    report = os.path.join(workdir, "ts_%s.json" % tag)
    cmd = [args.threadsplit, "--procs", str(p), "--threads", str(t),
           "--cores", ",".join(map(str, cores[:p * t])), "--steps", str(steps),
           "--batch", str(args.batch), "--model", args.model, "--data", args.data,
           "--seed", str(args.seed)]
    # airbench94 keeps threadsplit's recipe learning rate unless --lr was given.
    if args.model != "airbench94" or args.lr_given is not None:
        cmd += ["--lr", repr(args.lr)]
    cmd += ["--eval-every", "0", "--augment", "none", "--progress", "off",
            "--report", report] + list(extra)
    try:
        pr = subprocess.run(cmd, env=clean_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            timeout=args.timeout)
    except subprocess.TimeoutExpired:
        raise Failure("threadsplit took over %d s: %s" % (args.timeout, " ".join(cmd)))
    out = pr.stdout.decode(errors="replace")
    if pr.returncode != 0 or not os.path.exists(report):
        raise Failure("threadsplit failed (exit %d): %s\n%s" % (pr.returncode, " ".join(cmd), out[-3000:]))
    with open(report) as f:
        return json.load(f), out


def run_threadsplit(args, cores, p, t, workdir, rep, precision="f32"):
    """One run of W+N steps with --warmup-steps W: the report's `timed` object covers the N
    steps after the warm-up (from the first timed step's start to the last one's parameters
    being sent), the same window PyTorch is timed over."""
    extra = ["--warmup-steps", str(args.warmup)] if args.warmup > 0 else []
    if args.model == "airbench94":
        extra += ["--precision", precision]
        if args.bn_group != ref.AIRBENCH_BN_GROUP:  # threadsplit's default is the same 64
            extra += ["--bn-group", str(args.bn_group)]
    full, _ = threadsplit_run(args, cores, p, t, args.warmup + args.steps, workdir,
                              "%dx%d_%s_%d" % (p, t, precision, rep), extra)
    tot = full["totals"]
    res = {"images_per_s_incl_warmup": tot["images_per_s"], "all_seconds": tot["train_seconds"],
           "binding": [w.get("cores") for w in full.get("workers", [])]}
    timed = full.get("timed") or {}
    if args.warmup > 0 and timed.get("images_per_s"):
        res["timed_seconds"] = timed["seconds"]
        res["images_per_s"] = timed["images_per_s"]
        res["shares"] = timed.get("shares", {})
    else:
        res["timed_seconds"] = tot["train_seconds"]
        res["images_per_s"] = tot["images_per_s"]
    return res


def summary(values):
    v = [x for x in values if x == x]
    if not v:
        return {"median": float("nan"), "min": float("nan"), "max": float("nan"), "runs": values}
    return {"median": statistics.median(v), "min": min(v), "max": max(v), "runs": values}


def speed_mode(args):
    need_torch()
    cores = sorted(os.sched_getaffinity(0))
    ncores = len(cores)
    splits = [parse_split(s) for s in args.splits.split(",")] if args.splits else default_splits(ncores)
    for p, t in splits:
        if p * t > ncores:
            raise Failure("split %dx%d needs %d cores, this process may run on %d (%s)"
                          % (p, t, p * t, ncores, ",".join(map(str, cores))))
        if args.batch < p:
            raise Failure("--batch %d is smaller than P=%d" % (args.batch, p))
        if args.model == "airbench94" and args.batch % (p * args.bn_group):
            raise Failure("--batch %d does not deal %d workers whole batch-norm groups of %d: "
                          "make it a multiple of %d" % (args.batch, p, args.bn_group, p * args.bn_group))
    allocators = args.allocators.split(",")
    for a in allocators:
        if a not in ALLOCATORS:
            raise Failure("unknown allocator setting %r (known: %s)" % (a, ", ".join(ALLOCATORS)))
    import torch
    precisions = ["f32", "bf16"] if args.precision == "both" else [args.precision]
    print("compare_pytorch: model %s, global batch %d, %d warm-up + %d timed steps, %d repeats, "
          "precision %s, cores %s; PyTorch %s (%s, layout %s), threadsplit %s"
          % (args.model, args.batch, args.warmup, args.steps, args.repeats, ",".join(precisions),
             ",".join(map(str, cores)), torch.__version__, sys.executable, args.torch_layout,
             "not run (--only torch)" if args.only == "torch" else args.threadsplit))
    print("compare_pytorch: load average now %s (other work on the machine makes numbers noisy)"
          % " ".join(open("/proc/loadavg").read().split()[:3]))
    runs = {}  # (split, framework, allocator, precision) -> list of per-run dicts
    workdir = tempfile.mkdtemp(prefix="ts_compare_")
    try:
        for rep in range(args.repeats):
            for si, (p, t) in enumerate(splits):
                jobs = [] if args.only == "torch" else [("threadsplit", "built-in", q) for q in precisions]
                jobs += [("pytorch", a, q) for q in precisions for a in allocators]
                shift = (rep + si) % len(jobs)  # rotate the order so no job always goes first
                for fw, alloc, prec in jobs[shift:] + jobs[:shift]:
                    if fw == "threadsplit":
                        r = run_threadsplit(args, cores, p, t, workdir, rep, prec)
                    else:
                        r = run_torch(args, cores, p, t, alloc, workdir, rep, prec)
                    runs.setdefault(("%dx%d" % (p, t), fw, alloc, prec), []).append(r)
                    print("  run %d/%d  %dx%d  %-11s %-9s %-4s %8.0f images/s  (%.0f incl. warm-up)"
                          % (rep + 1, args.repeats, p, t, fw, alloc, prec, r["images_per_s"],
                             r["images_per_s_incl_warmup"]), flush=True)
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            print("compare_pytorch: run files kept in %s" % workdir)

    rows = []
    for (split, fw, alloc, prec), rs in runs.items():
        rows.append({"split": split, "framework": fw, "allocator": alloc, "precision": prec,
                     "images_per_s": summary([r["images_per_s"] for r in rs]),
                     "images_per_s_incl_warmup": summary([r["images_per_s_incl_warmup"] for r in rs]),
                     "runs": rs})
    ratios = []
    for (p, t), prec in [(sp, q) for sp in splits for q in precisions]:
        split = "%dx%d" % (p, t)
        ts = runs.get((split, "threadsplit", "built-in", prec))
        for a in allocators:
            pt = runs.get((split, "pytorch", a, prec))
            if ts and pt:
                ratios.append({"split": split, "pytorch_allocator": a, "precision": prec,
                               "ratio": summary([r["images_per_s"] for r in ts])["median"]
                               / summary([r["images_per_s"] for r in pt])["median"]})

    def best(fw, prec, alloc=None):
        cands = [r for r in rows if r["framework"] == fw and r["precision"] == prec
                 and (alloc is None or r["allocator"] == alloc)]
        return max(cands, key=lambda r: r["images_per_s"]["median"]) if cands else None

    best_vs = []
    for prec in precisions:
        bt = best("threadsplit", prec)
        for a in [None] + allocators:
            bp = best("pytorch", prec, a)
            if bt and bp:
                best_vs.append({"threadsplit": bt["split"], "pytorch": bp["split"] + " " + bp["allocator"],
                                "pytorch_allocator": a or "any", "precision": prec,
                                "ratio": bt["images_per_s"]["median"] / bp["images_per_s"]["median"]})

    print()
    print("compare_pytorch: load average at the end %s (over the core count: numbers disturbed)"
          % " ".join(open("/proc/loadavg").read().split()[:3]))
    print("images/s, median (min-max) of %d runs; timed = %d steps after %d warm-up, global batch %d"
          % (args.repeats, args.steps, args.warmup, args.batch))
    print("%-6s %-12s %-10s %-5s %24s %14s" % ("split", "framework", "allocator", "prec",
                                               "timed images/s", "incl. warm-up"))
    for r in sorted(rows, key=lambda r: (r["split"], r["precision"], r["framework"] != "threadsplit",
                                         r["allocator"])):
        s = r["images_per_s"]
        print("%-6s %-12s %-10s %-5s %8.0f (%6.0f-%6.0f) %14.0f" % (
            r["split"], r["framework"], r["allocator"], r["precision"], s["median"], s["min"], s["max"],
            r["images_per_s_incl_warmup"]["median"]))
    print()
    print("ratio threadsplit / PyTorch (medians of timed images/s):")
    for q in ratios:
        print("  %-6s %-4s vs PyTorch %-9s %6.2fx" % (q["split"], q["precision"], q["pytorch_allocator"],
                                                     q["ratio"]))
    for q in best_vs:
        print("  best vs best %-4s (PyTorch allocator: %-8s): threadsplit %s / PyTorch %s = %.2fx"
              % (q["precision"], q["pytorch_allocator"], q["threadsplit"], q["pytorch"], q["ratio"]))
    print()
    print("notes: threadsplit's timed figure is its report's `timed` window (--warmup-steps W: the "
          "N steps after the warm-up, start of the first to parameters sent after the last); "
          "PyTorch's is N*B over the wall time of "
          "the N steps on rank 0 (slowest rank), each step = batch from memmap, forward, backward "
          "(DDP allreduce over gloo when P > 1), Keras-form Adam (airbench94: ghost batch norm, "
          "airbench's Nesterov SGD, no lr schedule or lookahead; bf16 = autocast). threadsplit sets its own malloc "
          "options (mallopt), so it has one allocator row. Both use no augmentation.")
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"mode": "speed", "model": args.model, "batch": args.batch,
                       "precisions": precisions, "torch_layout": args.torch_layout,
                       "bn_group": args.bn_group, "only": args.only,
                       "warmup": args.warmup, "steps": args.steps, "repeats": args.repeats,
                       "cores": cores, "allocators": {a: ALLOCATORS[a] for a in allocators},
                       "torch": torch.__version__, "rows": rows, "ratios": ratios,
                       "best_vs_best": best_vs}, f, indent=1)
        print("wrote %s" % args.out)


# ---------------------------------------------------------------------------------------------
# Numerics

def rel(a, b):
    """||a - b|| / ||b||."""
    nb = float(np.linalg.norm(b))
    return float(np.linalg.norm(a - b)) / nb if nb > 0 else float(np.linalg.norm(a - b))


def numerics_mode(args):
    need_torch()
    import torch
    import torch.nn.functional as F
    import read_checkpoint

    if not os.path.isfile(args.numerics):
        raise Failure("--numerics %s: no such file (a checkpoint from threadsplit --save)" % args.numerics)
    if not (shutil.which("protoc") or os.path.exists("/usr/bin/protoc")):
        raise Failure("protoc is not installed (read_checkpoint.py needs it): apt-get install -y protobuf-compiler")
    try:
        ck = read_checkpoint.load(args.numerics)
    except read_checkpoint.CheckpointError as e:
        raise Failure(str(e))
    except ImportError as e:
        raise Failure("cannot read checkpoints (%s). Fix: %s" % (e, APT_HINT))
    model_name = ck["model"]
    if model_name not in ("seed_cnn", "tf_tutorial_cnn"):
        raise Failure("--numerics compares seed_cnn and tf_tutorial_cnn steps only; %s's checkpoint "
                      "needs a numerics mode that knows its optimizer and batch norm" % model_name)
    cfg = json.loads(ck["config_json"]) if ck["config_json"] else {}
    batch = args.batch_given or int(cfg.get("batch", cfg.get("global_batch", 128)) or 128)
    opt = ck["optimizer"]
    if opt is None:
        raise Failure("%s has no optimizer state; the gradient check needs it" % args.numerics)
    p, t = parse_split(args.split) if args.split else (1, len(os.sched_getaffinity(0)))
    cores = sorted(os.sched_getaffinity(0))
    if p * t > len(cores):
        raise Failure("--split %dx%d needs %d cores, have %d" % (p, t, p * t, len(cores)))

    # The batch threadsplit's next step computes with --no-shuffle: file order, position kept.
    train_records = int(cfg.get("train_records", ref.TRAIN_RECORDS))
    if train_records != ref.TRAIN_RECORDS:
        raise Failure("the checkpoint's run trained on %d records; this script knows CIFAR-10's "
                      "45000 (validation_split 0.1) only" % train_records)
    steps_per_epoch = -(-ref.TRAIN_RECORDS // batch)
    k = ck["step_in_epoch"] if ck["step_in_epoch"] < steps_per_epoch else 0
    idx = np.arange(k * batch, min((k + 1) * batch, ref.TRAIN_RECORDS))
    data = ref.Cifar10Train(args.data)
    x_np, y_np = data.batch(idx)

    print("numerics: %s, model %s, step %d (epoch %d, step_in_epoch %d), optimizer %s iterations %d"
          % (args.numerics, model_name, ck["step"], ck["epoch"], ck["step_in_epoch"], opt["kind"],
             opt["iterations"]))
    print("numerics: batch = training records %d..%d in file order (%d), no augmentation"
          % (idx[0], idx[-1], len(idx)))

    # PyTorch: the checkpoint's tensors, loss and gradient in float64 and in float32.
    def torch_step(dtype):
        m = ref.build_model(model_name).to(dtype)
        sd = m.state_dict()
        names = list(ck["params"])
        if sorted(names) != sorted(sd):
            raise Failure("checkpoint tensors %s do not match the PyTorch model's %s"
                          % (names, list(sd)))
        for n in names:
            if tuple(sd[n].shape) != ck["params"][n].shape:
                raise Failure("%s: checkpoint shape %s, PyTorch %s" % (n, ck["params"][n].shape, tuple(sd[n].shape)))
        m.load_state_dict({n: torch.from_numpy(ck["params"][n].astype(np.float64)).to(dtype) for n in names})
        x = torch.from_numpy(x_np).to(dtype)
        loss = F.cross_entropy(m(x), torch.from_numpy(y_np))
        loss.backward()
        return float(loss), {n: q.grad.detach().to(torch.float64).numpy() for n, q in m.named_parameters()}

    loss64, g64 = torch_step(torch.float64)
    loss32, g32 = torch_step(torch.float32)

    # threadsplit: resume from the checkpoint for exactly one step on that batch.
    workdir = tempfile.mkdtemp(prefix="ts_numerics_")
    after = os.path.join(workdir, "after.ckpt")
    extra = ["--init", args.numerics, "--save", after, "--no-shuffle", "--optimizer", opt["kind"],
             "--epochs", str(max(3, ck["epoch"] + 2))]
    if opt["kind"] == "sgd":
        extra += ["--momentum", repr(opt["momentum"])]
    sub = argparse.Namespace(**vars(args))
    sub.model, sub.batch, sub.seed, sub.lr = model_name, batch, ck["seed"], opt["learning_rate"]
    try:
        report, out = threadsplit_run(sub, cores, p, t, 1, workdir, "numerics", extra)
        ck1 = read_checkpoint.load(after)
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    ts_loss = report["epochs"][-1]["step_losses"][-1]
    if ck1["step"] != ck["step"] + 1:
        raise Failure("threadsplit's resumed run ended at step %d, expected %d" % (ck1["step"], ck["step"] + 1))

    # threadsplit's gradient, recovered from the optimizer state it saved after the step.
    o0, o1 = opt, ck1["optimizer"]
    gts, bound, how = {}, {}, ""
    u = 2.0 ** -24
    for n in ck["params"]:
        p0 = ck["params"][n].astype(np.float64)
        p1 = ck1["params"][n].astype(np.float64)
        if o0["kind"] == "adam":
            b1 = o0["beta1"]
            m0 = o0["slots"][n + "/m"].astype(np.float64)
            m1 = o1["slots"][n + "/m"].astype(np.float64)
            gts[n] = (m1 - b1 * m0) / (1.0 - b1)
            # float32 rounding of b1*m0, (1-b1)*g, their sum: a few ulps of each, over (1-b1).
            bound[n] = 3 * u * (np.abs(m1) + b1 * np.abs(m0) + (1 - b1) * np.abs(gts[n])) / (1 - b1)
            how = "g = (m_after - beta1*m_before) / (1 - beta1) from the Adam m slots"
        elif o0["momentum"] > 0:
            mu, lr = o0["momentum"], o0["learning_rate"]
            v0 = o0["slots"][n + "/velocity"].astype(np.float64)
            v1 = o1["slots"][n + "/velocity"].astype(np.float64)
            gts[n] = (mu * v0 - v1) / lr
            bound[n] = 3 * u * (np.abs(v1) + mu * np.abs(v0)) / lr
            how = "g = (momentum*velocity_before - velocity_after) / lr from the velocity slots"
        else:
            lr = o0["learning_rate"]
            gts[n] = (p0 - p1) / lr
            bound[n] = 3 * u * (np.abs(p0) + np.abs(p1)) / lr
            how = "g = (p_before - p_after) / lr (plain SGD: coarse, float32 parameters)"

    # The update: Keras Adam (float64) from the checkpoint state with PyTorch's float64 gradient.
    upd_rel = {}
    if o0["kind"] == "adam":
        tt = o0["iterations"] + 1
        b1, b2, eps = o0["beta1"], o0["beta2"], o0["epsilon"]
        lr_t = o0["learning_rate"] * np.sqrt(1 - b2 ** tt) / (1 - b1 ** tt)
        for n in ck["params"]:
            m = b1 * o0["slots"][n + "/m"] + (1 - b1) * g64[n]
            v = b2 * o0["slots"][n + "/v"] + (1 - b2) * g64[n] ** 2
            p1_ref = ck["params"][n].astype(np.float64) - lr_t * m / (np.sqrt(v) + eps)
            step_ref = p1_ref - ck["params"][n]
            step_ts = ck1["params"][n].astype(np.float64) - ck["params"][n]
            upd_rel[n] = rel(step_ts, step_ref)

    print()
    print("loss on the batch: PyTorch float64 %.9f | PyTorch float32 %.9f | threadsplit %.9f "
          "(report step_losses)" % (loss64, loss32, ts_loss))
    print("  |threadsplit - float64| = %.2e, |float32 PyTorch - float64| = %.2e"
          % (abs(ts_loss - loss64), abs(loss32 - loss64)))
    print()
    print("gradient, per tensor: relative L2 error against PyTorch float64 (yardstick: PyTorch "
          "float32's own error)")
    print("threadsplit's gradient: %s" % how)
    print("%-14s %-14s %11s %12s %12s %12s %9s" % ("tensor", "shape", "|g| float64", "threadsplit",
                                                  "torch fp32", "adam update", "recovery"))
    worst_ts, worst_32 = 0.0, 0.0
    all_ts = np.concatenate([gts[n].ravel() for n in ck["params"]])
    all_64 = np.concatenate([g64[n].ravel() for n in ck["params"]])
    all_32 = np.concatenate([g32[n].ravel() for n in ck["params"]])
    for n in ck["params"]:
        e_ts, e_32 = rel(gts[n], g64[n]), rel(g32[n], g64[n])
        worst_ts, worst_32 = max(worst_ts, e_ts), max(worst_32, e_32)
        rec = float(np.linalg.norm(bound[n])) / max(float(np.linalg.norm(g64[n])), 1e-300)
        print("%-14s %-14s %11.3e %12.2e %12.2e %12s %9.1e" % (
            n, "x".join(map(str, ck["params"][n].shape)), float(np.linalg.norm(g64[n])), e_ts, e_32,
            ("%.2e" % upd_rel[n]) if n in upd_rel else "-", rec))
    print("%-14s %-14s %11.3e %12.2e %12.2e" % ("all", "", float(np.linalg.norm(all_64)),
                                                rel(all_ts, all_64), rel(all_32, all_64)))
    print("(recovery: bound on the error the float32 slot arithmetic adds to threadsplit's "
          "recovered gradient, relative; adam update: threadsplit's parameter step against "
          "Keras Adam in float64 on PyTorch's gradient)")
    ok = (abs(ts_loss - loss64) <= max(1e-5, 20 * abs(loss32 - loss64))
          and rel(all_ts, all_64) <= max(1e-4, 20 * rel(all_32, all_64)))
    print()
    print("verdict: %s (threshold: within 20x of float32 PyTorch's own error, floor 1e-5 loss, "
          "1e-4 gradient)" % ("AGREE" if ok else "DISAGREE"))
    if model_name == "tf_tutorial_cnn":
        print("LRN convention check (PyTorch LocalResponseNorm vs oneDNN's formula): max rel diff %.1e"
              % ref.check_lrn_convention())
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"mode": "numerics", "checkpoint": args.numerics, "model": model_name,
                       "records": [int(idx[0]), int(idx[-1])], "loss": {"torch64": loss64,
                       "torch32": loss32, "threadsplit": ts_loss},
                       "gradient_rel_err": {n: {"threadsplit": rel(gts[n], g64[n]),
                                                "torch32": rel(g32[n], g64[n])} for n in ck["params"]},
                       "update_rel_err": upd_rel, "gradient_source": how, "agree": ok}, f, indent=1)
        print("wrote %s" % args.out)
    return 0 if ok else 1


# ---------------------------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog=__doc__.split("\n\n", 1)[1], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=default_data_dir(),
                    help="CIFAR-10 binary version (default: ../shared/data/cifar-10-batches-bin if present)")
    ap.add_argument("--model", default="seed_cnn", choices=ref.MODELS)
    ap.add_argument("--splits", help="speed: comma-separated PxT (default: every P x T = all cores)")
    ap.add_argument("--allocators", default="default,no-trim",
                    help="speed: PyTorch's glibc malloc settings to run: default, no-trim (default both)")
    ap.add_argument("--batch", type=int, default=None, help="global batch (default 128; numerics: the checkpoint's)")
    ap.add_argument("--warmup", type=int, default=20, help="speed: untimed steps first (default 20)")
    ap.add_argument("--steps", type=int, default=100, help="speed: timed steps (default 100)")
    ap.add_argument("--repeats", type=int, default=3, help="speed: runs of each, interleaved (default 3)")
    ap.add_argument("--lr", type=float, default=None,
                    help="learning rate (default 1e-3; airbench94: the recipe's, both sides)")
    ap.add_argument("--precision", choices=("f32", "bf16", "both"), default="f32",
                    help="speed, airbench94: f32, bf16 (PyTorch autocast, threadsplit --precision "
                         "bf16) or both (default f32)")
    ap.add_argument("--only", choices=("torch",), help="speed: run the PyTorch half only")
    ap.add_argument("--bn-group", type=int, default=ref.AIRBENCH_BN_GROUP,
                    help="airbench94: samples per batch-norm group (default %d)" % ref.AIRBENCH_BN_GROUP)
    ap.add_argument("--torch-layout", choices=("nchw", "channels_last"), default="channels_last",
                    help="airbench94, PyTorch's activation memory format (default channels_last: "
                         "measured ~10%% faster than nchw in f32 and bf16 at batch 512, 1x2)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--numerics", metavar="CKPT", help="numerics mode on this threadsplit checkpoint")
    ap.add_argument("--split", help="numerics: threadsplit's PxT for the one step (default 1 x all cores)")
    ap.add_argument("--threadsplit", default=os.path.join(ROOT, "build", "coordinator", "threadsplit"),
                    help="the threadsplit binary (default build/coordinator/threadsplit)")
    ap.add_argument("--timeout", type=int, default=900, help="seconds any one run may take (default 900)")
    ap.add_argument("--out", help="write the results as JSON")
    ap.add_argument("--keep", action="store_true", help="keep the temporary run files")
    args = ap.parse_args()
    args.batch_given = args.batch
    if args.batch is None:
        args.batch = 512 if args.model == "airbench94" else 128
    args.lr_given = args.lr
    if args.lr is None:
        args.lr = 1e-3
    try:
        if not args.data:
            raise Failure("--data DIR is required (CIFAR-10 binary version, cifar-10-batches-bin)")
        if not os.path.isdir(args.data):
            raise Failure("--data %s: no such directory (CIFAR-10 binary version; "
                          "scripts/get_cifar10.sh fetches it)" % args.data)
        ref.Cifar10Train(args.data)  # checks the files now, not inside a worker
        args.data = os.path.abspath(args.data)
        if args.model != "airbench94" and args.precision != "f32":
            raise Failure("--precision %s is for airbench94 only; %s runs in f32"
                          % (args.precision, args.model))
        if args.bn_group < 1:
            raise Failure("--bn-group must be at least 1")
        if args.only and args.numerics:
            raise Failure("--only torch is for speed runs; --numerics needs threadsplit")
        if args.only != "torch" and not os.access(args.threadsplit, os.X_OK):
            raise Failure("%s is not an executable: build threadsplit first (scripts/setup.sh) or "
                          "give --threadsplit" % args.threadsplit)
        for name in ("batch", "warmup", "steps", "repeats"):
            if getattr(args, name) < (0 if name == "warmup" else 1):
                raise Failure("--%s must be at least %d" % (name, 0 if name == "warmup" else 1))
        if args.numerics:
            return numerics_mode(args)
        speed_mode(args)
        return 0
    except (Failure, ref.DataError) as e:
        print("compare_pytorch: %s" % e, file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Read a threadsplit checkpoint (proto/checkpoint.proto) into numpy arrays.

    scripts/read_checkpoint.py run/checkpoint.ckpt     # prints every tensor: name, shape, stats

    import read_checkpoint
    ckpt = read_checkpoint.load("run/checkpoint.ckpt")
    ckpt["params"]["conv1.weight"]        # numpy float32, PyTorch layout [out, in, kh, kw]
    ckpt["optimizer"]["slots"]["conv1.weight/m"]

Needs: python3 with the protobuf and numpy modules (Debian: apt-get install python3-protobuf
python3-numpy, then run it with /usr/bin/python3) and protoc on PATH, which generates the
Python module for checkpoint.proto into a temporary directory on every run, so the reader
never goes stale against the .proto file.
"""
import argparse
import importlib
import os
import shutil
import subprocess
import sys
import tempfile
import zlib

import numpy as np

PROTO_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "proto")
FORMAT_VERSION = 1


class CheckpointError(Exception):
    pass


def _checkpoint_module(proto_dir=PROTO_DIR):
    """Generates checkpoint_pb2 with protoc and imports it."""
    protoc = shutil.which("protoc") or "/usr/bin/protoc"
    out = tempfile.mkdtemp(prefix="ts_ckpt_pb_")
    try:
        subprocess.run([protoc, "--proto_path=" + os.path.abspath(proto_dir),
                        "--python_out=" + out, "checkpoint.proto"], check=True)
        sys.path.insert(0, out)
        try:
            return importlib.import_module("checkpoint_pb2")
        finally:
            sys.path.remove(out)
    finally:
        shutil.rmtree(out, ignore_errors=True)


def _tensor(t):
    data = np.frombuffer(t.data, dtype="<f4")
    shape = tuple(t.shape)
    if data.size != int(np.prod(shape, dtype=np.int64)):
        raise CheckpointError("tensor %r: %d bytes do not fit shape %s" % (t.name, len(t.data), shape))
    return data.reshape(shape).astype(np.float32)


def load(path, proto_dir=PROTO_DIR):
    """Returns {"model", "step", "epoch", "step_in_epoch", "seed", "config_json",
    "params": {name: array}, "optimizer": None or {"kind", hyper-parameters, "iterations",
    "slots": {name: array}}}. Raises CheckpointError when the file is not a sound checkpoint."""
    pb = _checkpoint_module(proto_dir)
    with open(path, "rb") as f:
        raw = f.read()
    ckpt = pb.Checkpoint()
    try:
        ckpt.ParseFromString(raw)
    except Exception as e:  # protobuf's DecodeError
        raise CheckpointError("%s: not a threadsplit checkpoint (%s)" % (path, e))
    stored = ckpt.crc32
    ckpt.crc32 = 0
    computed = zlib.crc32(ckpt.SerializeToString())  # the CRC-32 zlib computes in common/checkpoint.cpp
    if stored != computed:
        raise CheckpointError("%s: damaged (CRC-32 stored 0x%08x, computed 0x%08x)"
                              % (path, stored, computed))
    if ckpt.format_version != FORMAT_VERSION:
        raise CheckpointError("%s: unsupported format_version %d" % (path, ckpt.format_version))
    result = {
        "model": ckpt.model,
        "step": ckpt.step,
        "epoch": ckpt.epoch,
        "step_in_epoch": ckpt.step_in_epoch,
        "seed": ckpt.seed,
        "config_json": ckpt.config_json,
        "params": {t.name: _tensor(t) for t in ckpt.params},
        "optimizer": None,
    }
    if ckpt.HasField("optimizer"):
        o = ckpt.optimizer
        result["optimizer"] = {
            "kind": o.kind, "learning_rate": o.learning_rate, "beta1": o.beta1,
            "beta2": o.beta2, "epsilon": o.epsilon, "momentum": o.momentum,
            "iterations": o.iterations, "slots": {t.name: _tensor(t) for t in o.slots},
        }
    return result


def _print_tensors(tensors):
    for name, a in tensors.items():
        print("  %-24s %-18s mean %+.6f  std %.6f  min %+.6f  max %+.6f" % (
            name, "x".join(map(str, a.shape)), a.mean(), a.std(), a.min(), a.max()))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("checkpoint")
    parser.add_argument("--proto-dir", default=PROTO_DIR, help="folder holding checkpoint.proto")
    args = parser.parse_args()
    try:
        c = load(args.checkpoint, args.proto_dir)
    except (CheckpointError, OSError) as e:
        sys.exit("read_checkpoint: %s" % e)
    print("%s: model %s, step %d, epoch %d, step_in_epoch %d, seed %d" % (
        args.checkpoint, c["model"], c["step"], c["epoch"], c["step_in_epoch"], c["seed"]))
    n = sum(a.size for a in c["params"].values())
    print("params: %d tensors, %d values" % (len(c["params"]), n))
    _print_tensors(c["params"])
    o = c["optimizer"]
    if o is None:
        print("optimizer: none")
    else:
        print("optimizer: %s, lr %g, beta1 %g, beta2 %g, epsilon %g, momentum %g, iterations %d"
              % (o["kind"], o["learning_rate"], o["beta1"], o["beta2"], o["epsilon"],
                 o["momentum"], o["iterations"]))
        _print_tensors(o["slots"])
    if c["config_json"]:
        print("config: %s" % c["config_json"])


if __name__ == "__main__":
    main()

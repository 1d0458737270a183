#!/usr/bin/python3
"""ONNX fixtures for --model-file (issue 14): PyTorch 1.13 twins of threadsplit's nets, exported
to ONNX, with one training step's reference values, and tiny files the importer must refuse.

    /usr/bin/python3 scripts/onnx_fixtures.py [--out tests/data/onnx] [--full] [--check]
    /usr/bin/python3 scripts/onnx_fixtures.py --verify tests/data/onnx   # committed = script's?

Writes, for each fixture NAME (seed_cnn, tf_tutorial_cnn_small, airbench94_small, resnet8):
  NAME.onnx       the model, opset 13, batch dimension dynamic ("N"), batch norm kept as
                  BatchNormalization nodes (inference form), initializer names = our tensor names
  NAME.json       manifest of one training step on a fixed batch of 8: loss, labels, and where
                  each tensor (input, weights, logits, gradients, running statistics after the
                  step) lies in NAME.bin (little-endian; see README.md in the output folder)
  NAME.bin
and unsupported/*.onnx with unsupported/refusals.json (what each refusal must name).

--full also writes tf_tutorial_cnn and airbench94 at the built-in widths (7 and 8 MB .onnx
files: not committed). --check evaluates every exported graph with a small numpy ONNX
interpreter and compares its logits with PyTorch's (checks the graphs mean what we say).

Run with Debian's python3 (python3-torch 1.13, python3-onnx 1.12). Running it again gives
byte-identical files: fixed seeds, one thread, no timestamps in the output.
"""
import argparse
import copy
import json
import math
import os
import sys
import warnings
from collections import OrderedDict

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch_reference as ref  # noqa: E402  (constants shared with the other PyTorch twin)

BATCH = 8
SEED = 14
OPSET = 13


def need_modules():
    try:
        import numpy  # noqa: F401
        import onnx  # noqa: F401
        import torch  # noqa: F401
    except ImportError as e:
        sys.exit("onnx_fixtures.py needs Debian's python3-torch and python3-onnx "
                 "(apt-get install python3-torch python3-onnx; run with /usr/bin/python3): %s" % e)


# ---------------------------------------------------------------------------------------------
# Models. Module names are threadsplit's layer names, so state_dict (and ONNX initializer)
# names are our tensor names: conv1.weight, fc.bias, group1.norm1.running_mean, ...

def model_classes():
    import torch
    from torch import nn
    import torch.nn.functional as F

    def onnx_only(op, forward, **attrs):
        """A function that exports as the one ONNX node `op` with `attrs` (torch would write a
        decomposition). Only used while exporting; attributes live in the class because the
        tracer takes tensors only."""

        class Fn(torch.autograd.Function):
            @staticmethod
            def forward(ctx, x):
                return forward(x)

            @staticmethod
            def symbolic(g, x):
                return g.op(op, x, **attrs)

        return Fn.apply

    class SamePadMaxPool(nn.Module):
        """TF "SAME" max pooling as common/network.cpp: out = ceil(in / stride), the extra
        padding at the end, never winning the max (3x3 stride 2 on 32 or 16: 0 before, 1
        after)."""

        def __init__(self, kernel, stride):
            super().__init__()
            self.kernel, self.stride = kernel, stride

        def forward(self, x):
            size = int(x.shape[-1])  # a plain int: the tracer would make it a tensor
            out = -(-size // self.stride)
            total = max((out - 1) * self.stride + self.kernel - size, 0)
            before, after = total // 2, total - total // 2
            if torch.onnx.is_in_onnx_export():
                # One MaxPool with asymmetric pads (ONNX pads = [h_begin, w_begin, h_end,
                # w_end]; padding never wins an ONNX max), not torch's Pad(-inf) + MaxPool.
                k, s = self.kernel, self.stride
                return onnx_only("MaxPool", self.pooled(before, after), kernel_shape_i=[k, k],
                                 strides_i=[s, s], pads_i=[before, before, after, after])(x)
            return self.pooled(before, after)(x)

        def pooled(self, before, after):
            return lambda x: F.max_pool2d(F.pad(x, (before, after, before, after), value=-math.inf),
                                          self.kernel, self.stride)

    class Lrn(nn.Module):
        """PyTorch's LocalResponseNorm = ONNX's LRN = oneDNN's (all divide alpha by size):
        y = x / (k + alpha / size * sum over `size` channels centred on c)^beta."""

        def __init__(self, size, alpha, beta, k):
            super().__init__()
            self.size, self.alpha, self.beta, self.k = size, alpha, beta, k

        def forward(self, x):
            if torch.onnx.is_in_onnx_export():
                # ONNX's LRN node, not F.local_response_norm's decomposition (Pad, AvgPool, ...).
                return onnx_only("LRN", self.lrn, size_i=self.size, alpha_f=self.alpha,
                                 beta_f=self.beta, bias_f=self.k)(x)
            return self.lrn(x)

        def lrn(self, x):
            return F.local_response_norm(x, self.size, self.alpha, self.beta, self.k)

    class Scale(nn.Module):
        def __init__(self, factor):
            super().__init__()
            self.factor = factor

        def forward(self, x):
            return x * self.factor

    class BasicBlock(nn.Module):
        """ResNet basic block: conv3x3(stride) BN ReLU conv3x3 BN, plus the input (or a 1x1
        strided conv + BN of it when the shape changes), then ReLU."""

        def __init__(self, c_in, c_out, stride):
            super().__init__()
            self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(c_out)
            self.relu1 = nn.ReLU()
            self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(c_out)
            self.shortcut = stride != 1 or c_in != c_out
            if self.shortcut:
                self.shortcut_conv = nn.Conv2d(c_in, c_out, 1, stride, 0, bias=False)
                self.shortcut_bn = nn.BatchNorm2d(c_out)
            self.relu2 = nn.ReLU()

        def forward(self, x):
            y = self.bn2(self.conv2(self.relu1(self.bn1(self.conv1(x)))))
            s = self.shortcut_bn(self.shortcut_conv(x)) if self.shortcut else x
            return self.relu2(y + s)

    return SamePadMaxPool, Lrn, Scale, BasicBlock


def build(name):
    """(model, notes) for a fixture name. Conv/Linear weights and biases get PyTorch's default
    init under the fixture's seed; batch-norm tensors are randomized in randomize_bn."""
    import torch
    from torch import nn
    SamePadMaxPool, Lrn, Scale, BasicBlock = model_classes()
    torch.manual_seed(SEED)
    if name == "seed_cnn":
        layers = [
            ("conv1", nn.Conv2d(3, 32, 3)), ("relu1", nn.ReLU()), ("pool1", nn.MaxPool2d(2)),
            ("conv2", nn.Conv2d(32, 64, 3)), ("relu2", nn.ReLU()),
            ("gap", nn.AdaptiveAvgPool2d(1)), ("flatten", nn.Flatten()),
            ("fc", nn.Linear(64, 10)),
        ]
        notes = "the built-in seed_cnn, layer for layer"
    elif name in ("tf_tutorial_cnn", "tf_tutorial_cnn_small"):
        small = name.endswith("_small")
        c1, c2, f3, f4 = (16, 16, 64, 32) if small else (64, 64, 384, 192)
        lrn = (ref.LRN_SIZE, ref.LRN_ALPHA, ref.LRN_BETA, ref.LRN_K)
        layers = [
            ("conv1", nn.Conv2d(3, c1, 5, padding=2)), ("relu1", nn.ReLU()),
            ("pool1", SamePadMaxPool(3, 2)), ("norm1", Lrn(*lrn)),
            ("conv2", nn.Conv2d(c1, c2, 5, padding=2)), ("relu2", nn.ReLU()),
            ("norm2", Lrn(*lrn)), ("pool2", SamePadMaxPool(3, 2)), ("flatten", nn.Flatten()),
            ("fc3", nn.Linear(c2 * 8 * 8, f3)), ("relu3", nn.ReLU()),
            ("fc4", nn.Linear(f3, f4)), ("relu4", nn.ReLU()),
            ("fc5", nn.Linear(f4, 10)),
        ]
        notes = ("tf_tutorial_cnn's layers with widths conv 16, 16 and dense 64, 32 (built-in: "
                 "64, 64, 384, 192)" if small else "the built-in tf_tutorial_cnn, layer for layer")
    elif name in ("airbench94", "airbench94_small"):
        small = name.endswith("_small")
        widths = (32, 64, 64) if small else ref.AIRBENCH_WIDTHS
        layers = [("whiten", nn.Conv2d(3, 24, 2, bias=True)), ("whiten_gelu", nn.GELU())]
        c_in = 24
        for i, width in enumerate(widths, 1):
            group = [
                ("conv1", nn.Conv2d(c_in, width, 3, padding=1, bias=False)),
                ("pool", nn.MaxPool2d(2)),
                ("norm1", nn.BatchNorm2d(width, eps=ref.AIRBENCH_BN_EPS,
                                         momentum=ref.AIRBENCH_BN_MOMENTUM)),
                ("gelu1", nn.GELU()),
                ("conv2", nn.Conv2d(width, width, 3, padding=1, bias=False)),
                ("norm2", nn.BatchNorm2d(width, eps=ref.AIRBENCH_BN_EPS,
                                         momentum=ref.AIRBENCH_BN_MOMENTUM)),
                ("gelu2", nn.GELU()),
            ]
            layers.append(("group%d" % i, nn.Sequential(OrderedDict(group))))
            c_in = width
        layers += [("pool", nn.MaxPool2d(3)), ("flatten", nn.Flatten()),
                   ("fc", nn.Linear(c_in, 10, bias=False)), ("logit_scale", Scale(1.0 / 9.0))]
        notes = ("airbench94's layers with conv widths 32, 64, 64 (built-in: 64, 256, 256)"
                 if small else "the built-in airbench94, layer for layer")
        notes += ("; batch-norm scales (groupN.normK.weight) are ones: the built-in has no "
                  "scale (fixed at 1, as airbench's requires_grad=False weight)")
    elif name == "resnet8":
        layers = [("conv1", nn.Conv2d(3, 16, 3, 1, 1, bias=False)), ("bn1", nn.BatchNorm2d(16)),
                  ("relu1", nn.ReLU()),
                  ("stage1", BasicBlock(16, 16, 1)), ("stage2", BasicBlock(16, 32, 2)),
                  ("stage3", BasicBlock(32, 64, 2)),
                  ("gap", nn.AdaptiveAvgPool2d(1)), ("flatten", nn.Flatten()),
                  ("fc", nn.Linear(64, 10))]
        notes = ("ResNet-8 for CIFAR: conv3x3 16 + BN + ReLU, one basic block per stage (16, "
                 "32, 64 channels; stages 2 and 3 stride 2 with a 1x1 stride-2 conv + BN "
                 "shortcut), Add then ReLU, global average pool, Linear 64->10; no conv biases")
    else:
        raise ValueError("unknown fixture %r" % name)
    model = nn.Sequential(OrderedDict(layers))
    randomize_bn(model, fixed_scale=name.startswith("airbench94"))
    return model, notes


def randomize_bn(model, fixed_scale):
    """Batch-norm tensors off their trivial init (scale 1, shift 0, mean 0, var 1), so a
    test that mixes them up fails: scale U(0.5, 1.5) (kept at 1 with fixed_scale), shift
    U(-0.2, 0.2), running mean U(-0.1, 0.1), running var U(0.5, 1.5)."""
    import torch
    from torch import nn
    g = torch.Generator().manual_seed(SEED + 1)

    def u(n, lo, hi):
        return torch.rand(n, generator=g) * (hi - lo) + lo

    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                c = m.num_features
                if not fixed_scale:
                    m.weight.copy_(u(c, 0.5, 1.5))
                m.bias.copy_(u(c, -0.2, 0.2))
                m.running_mean.copy_(u(c, -0.1, 0.1))
                m.running_var.copy_(u(c, 0.5, 1.5))


def fixed_batch():
    """8 images like normalized CIFAR pixels (uint8 / 255, then (x - mean) / std per channel
    with CIFAR-10's mean and std) and 8 labels, from a fixed seed."""
    import torch
    g = torch.Generator().manual_seed(SEED + 2)
    pixels = torch.randint(0, 256, (BATCH, 3, 32, 32), generator=g, dtype=torch.int64)
    labels = torch.randint(0, 10, (BATCH,), generator=g, dtype=torch.int64)
    mean = torch.tensor(ref.CIFAR_MEAN, dtype=torch.float64).view(1, 3, 1, 1)
    std = torch.tensor(ref.CIFAR_STD, dtype=torch.float64).view(1, 3, 1, 1)
    x = ((pixels.double() / 255.0 - mean) / std).float()
    return x, labels


# ---------------------------------------------------------------------------------------------
# Export

def export(model, path):
    """torch.onnx.export in inference form with batch norm kept as nodes: TrainingMode.PRESERVE
    on a model in eval mode skips torch's eval peephole (which fuses Conv + BN) and writes
    BatchNormalization with the running statistics; constant folding off keeps every
    initializer under its parameter name. Returns the loaded onnx.ModelProto."""
    import onnx
    import torch
    model.eval()
    # torch 1.13 merges initializers of equal value in an eval-mode export, so airbench's
    # all-ones batch-norm scales would become one tensor under one layer's name. With
    # is_train it merges only tensors that are one parameter, which is what we want.
    dedup = torch._C._jit_pass_onnx_deduplicate_initializers
    torch._C._jit_pass_onnx_deduplicate_initializers = lambda g, p, is_train: dedup(g, p, True)
    try:
        with warnings.catch_warnings():
            # Expected: the pool's padding is a constant of the trace (inputs are always
            # 32x32), and torch 1.13 calls Graph.op from a Function's symbolic "deprecated".
            warnings.filterwarnings("ignore", "Converting a tensor to a Python integer")
            warnings.filterwarnings("ignore", ".*_graph_op' is deprecated")
            torch.onnx.export(model, torch.zeros(BATCH, 3, 32, 32), path, export_params=True,
                              opset_version=OPSET, training=torch.onnx.TrainingMode.PRESERVE,
                              do_constant_folding=False, input_names=["input"],
                              output_names=["logits"],
                              dynamic_axes={"input": {0: "N"}, "logits": {0: "N"}})
    finally:
        torch._C._jit_pass_onnx_deduplicate_initializers = dedup
    proto = onnx.load(path)
    onnx.checker.check_model(proto, full_check=True)
    n_bn = sum(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())
    got = sum(n.op_type == "BatchNormalization" for n in proto.graph.node)
    if got != n_bn:
        sys.exit("%s: %d BatchNormalization nodes, the model has %d batch norms" % (path, got, n_bn))
    want = {k for k in model.state_dict() if not k.endswith("num_batches_tracked")}
    inits = {i.name for i in proto.graph.initializer}
    if not want <= inits:
        sys.exit("%s: initializers %s missing (got %s)" % (path, sorted(want - inits), sorted(inits)))
    return proto


def initializer_values(proto):
    from onnx import numpy_helper
    return {i.name: numpy_helper.to_array(i) for i in proto.graph.initializer}


# ---------------------------------------------------------------------------------------------
# Reference values

def reference(model, x, labels):
    """One training step in float64: batch norm in training mode over the whole batch of 8
    (one group), loss = mean softmax cross-entropy, gradients of every parameter (frozen ones
    of the built-in nets included), and the running statistics after the step (PyTorch's
    update with the module's momentum and the unbiased batch variance)."""
    import torch
    import torch.nn.functional as F
    m = copy.deepcopy(model).double().train()
    for p in m.parameters():
        p.requires_grad_(True)
        p.grad = None
    logits = m(x.double())
    loss = F.cross_entropy(logits, labels)
    loss.backward()
    grads = OrderedDict((n, p.grad.detach().clone()) for n, p in m.named_parameters())
    running = OrderedDict((n, b.detach().clone()) for n, b in m.named_buffers()
                          if n.endswith("running_mean") or n.endswith("running_var"))
    with torch.no_grad():
        e = copy.deepcopy(model).double().eval()
        logits_eval = e(x.double())
    return float(loss), logits.detach(), logits_eval, grads, running


def write_json(path, obj):
    """One key (or one list entry) a line: readable, and diffs stay small."""
    lines = []
    for k, v in obj.items():
        if isinstance(v, list) and v and isinstance(v[0], dict):
            body = ",\n".join("  " + json.dumps(e) for e in v)
            lines.append(" %s: [\n%s\n ]" % (json.dumps(k), body))
        else:
            lines.append(" %s: %s" % (json.dumps(k), json.dumps(v)))
    with open(path, "w") as f:
        f.write("{\n" + ",\n".join(lines) + "\n}\n")
    json.load(open(path))  # what we wrote parses


class BinWriter:
    """Tensors appended to one little-endian file, each at an 8-byte aligned byte offset."""

    def __init__(self):
        self.chunks, self.size, self.entries, self.arrays = [], 0, [], []

    def add(self, section, name, array, dtype):
        import numpy as np
        a = np.ascontiguousarray(np.asarray(array, dtype=np.dtype(dtype).newbyteorder("<")))
        pad = (-self.size) % 8
        if pad:
            self.chunks.append(b"\0" * pad)
            self.size += pad
        data = a.tobytes()
        self.entries.append(OrderedDict([
            ("section", section), ("name", name), ("shape", list(a.shape)), ("dtype", dtype),
            ("offset", self.size), ("count", int(a.size))]))
        self.chunks.append(data)
        self.size += len(data)
        self.arrays.append(((section, name), a))

    def write(self, path):
        with open(path, "wb") as f:
            for c in self.chunks:
                f.write(c)


def write_fixture(name, out_dir, check):
    import numpy as np
    import torch
    model, notes = build(name)
    onnx_path = os.path.join(out_dir, name + ".onnx")
    proto = export(model, onnx_path)
    inits = initializer_values(proto)
    # The reference runs from exactly the exported float32 initializers.
    state = model.state_dict()
    for k, v in state.items():
        if k in inits and not np.array_equal(inits[k], v.numpy()):
            sys.exit("%s: initializer %s differs from the model's" % (onnx_path, k))
    x, labels = fixed_batch()
    loss, logits, logits_eval, grads, running = reference(model, x, labels)
    if check:
        got = evaluate_onnx(proto, x.numpy().astype(np.float64))
        err = float(np.abs(got - logits_eval.numpy()).max() / np.abs(logits_eval.numpy()).max())
        print("  check %s: numpy ONNX interpreter vs PyTorch eval logits, max rel diff %.2e"
              % (name, err))
        # Not 1e-15: the graph's constants are float32 (1/9, sqrt 2, LRN alpha, eps).
        if err > 1e-6:
            sys.exit("%s: the exported graph does not compute the model's logits" % onnx_path)

    w = BinWriter()
    w.add("input", "input", x.numpy(), "float32")
    weight_names = [n for n in state if not n.endswith("num_batches_tracked")]
    for n in weight_names:
        w.add("weight", n, inits[n], "float32")
    w.add("output", "logits_train", logits.numpy(), "float64")
    w.add("output", "logits_eval", logits_eval.numpy(), "float64")
    for n, g in grads.items():
        w.add("grad", n, g.numpy(), "float64")
    for n, r in running.items():
        w.add("running_after", n, r.numpy(), "float64")
    w.write(os.path.join(out_dir, name + ".bin"))

    bns = []
    for mname, mod in model.named_modules():
        if isinstance(mod, torch.nn.BatchNorm2d):
            bns.append(OrderedDict([("name", mname), ("eps", mod.eps),
                                    ("momentum", mod.momentum),
                                    ("onnx_momentum", 1.0 - mod.momentum)]))
    frozen = ["whiten.weight"] + [n for n in grads if n.endswith(".weight") and ".norm" in n] \
        if name.startswith("airbench94") else []
    manifest = OrderedDict([
        ("format", "threadsplit-onnx-reference-1"),
        ("model", name),
        ("notes", notes),
        ("onnx", name + ".onnx"),
        ("bin", name + ".bin"),
        ("bin_bytes", w.size),
        ("batch", BATCH),
        ("input_shape", [BATCH, 3, 32, 32]),
        ("labels", [int(v) for v in labels]),
        ("loss", loss),
        ("loss_definition", "mean over the batch of softmax cross-entropy of logits_train"),
        ("precision", "float64 forward and backward from the float32 initializers"),
        ("batch_norm_mode", "training: statistics of the whole batch (one group of %d)" % BATCH),
        ("batch_norm", bns),
        ("frozen_in_builtin", frozen),
        ("param_count", int(sum(g.numel() for g in grads.values()))),
        ("tensors", w.entries),
    ])
    write_json(os.path.join(out_dir, name + ".json"), manifest)
    # Read back as a C++ reader would: each tensor from its offset, count and dtype.
    raw = open(os.path.join(out_dir, name + ".bin"), "rb").read()
    arrays = dict(w.arrays)
    for e in manifest["tensors"]:
        got = np.frombuffer(raw, dtype=np.dtype(e["dtype"]).newbyteorder("<"),
                            count=e["count"], offset=e["offset"]).reshape(e["shape"])
        if not np.array_equal(got, arrays[(e["section"], e["name"])]):
            sys.exit("%s.bin: %s %s does not read back" % (name, e["section"], e["name"]))
    print("%-22s loss %.6f  params %7d  onnx %7d B  bin %7d B  (%d BatchNormalization)"
          % (name, loss, manifest["param_count"], os.path.getsize(onnx_path), w.size, len(bns)))


# ---------------------------------------------------------------------------------------------
# A small numpy ONNX interpreter for the ops the fixtures use (float64), for --check.

def evaluate_onnx(proto, x):
    import numpy as np
    from onnx import numpy_helper
    from scipy.special import erf
    env = {k: v.astype(np.float64) if v.dtype.kind == "f" else v
           for k, v in initializer_values(proto).items()}
    env[proto.graph.input[0].name] = x

    def attrs(node):
        import onnx
        return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}

    def conv(x, w, b, a):
        s = a.get("strides", [1, 1])
        p = a.get("pads", [0, 0, 0, 0])
        assert a.get("group", 1) == 1 and a.get("dilations", [1, 1]) == [1, 1]
        x = np.pad(x, ((0, 0), (0, 0), (p[0], p[2]), (p[1], p[3])))
        kh, kw = w.shape[2:]
        win = np.lib.stride_tricks.sliding_window_view(x, (kh, kw), axis=(2, 3))
        win = win[:, :, ::s[0], ::s[1]]
        y = np.einsum("nchwij,ocij->nohw", win, w, optimize=True)
        return y + (b.reshape(1, -1, 1, 1) if b is not None else 0)

    def pool(x, a, kind):
        k, s = a["kernel_shape"], a.get("strides", [1, 1])
        p = a.get("pads", [0, 0, 0, 0])
        assert a.get("ceil_mode", 0) == 0
        fill = -np.inf if kind == "max" else 0.0
        x = np.pad(x, ((0, 0), (0, 0), (p[0], p[2]), (p[1], p[3])), constant_values=fill)
        win = np.lib.stride_tricks.sliding_window_view(x, tuple(k), axis=(2, 3))[:, :, ::s[0], ::s[1]]
        return win.max(axis=(4, 5)) if kind == "max" else win.mean(axis=(4, 5))

    for node in proto.graph.node:
        a = attrs(node)
        i = [env[n] if n else None for n in node.input]
        op = node.op_type
        if op == "Constant":
            y = numpy_helper.to_array(a["value"]).astype(np.float64)
        elif op == "Conv":
            y = conv(i[0], i[1], i[2] if len(i) > 2 else None, a)
        elif op == "Relu":
            y = np.maximum(i[0], 0)
        elif op == "MaxPool":
            y = pool(i[0], a, "max")
        elif op == "GlobalAveragePool":
            y = i[0].mean(axis=(2, 3), keepdims=True)
        elif op == "Flatten":
            y = i[0].reshape(i[0].shape[0], -1)
        elif op == "Gemm":
            assert a.get("transA", 0) == 0 and a.get("transB", 0) == 1
            y = a.get("alpha", 1.0) * i[0] @ i[1].T
            if len(i) > 2:
                y = y + a.get("beta", 1.0) * i[2]
        elif op == "MatMul":
            y = i[0] @ i[1]
        elif op == "Transpose":
            y = np.transpose(i[0], a["perm"])
        elif op == "LRN":
            size, c = a["size"], i[0].shape[1]
            sq = np.pad(i[0] ** 2, ((0, 0), ((size - 1) // 2, size // 2), (0, 0), (0, 0)))
            s = sum(sq[:, j:j + c] for j in range(size))
            y = i[0] / (a.get("bias", 1.0) + a.get("alpha", 1e-4) / size * s) ** a.get("beta", 0.75)
        elif op == "BatchNormalization":
            sh = (1, -1, 1, 1)
            y = ((i[0] - i[3].reshape(sh)) / np.sqrt(i[4].reshape(sh) + a.get("epsilon", 1e-5))
                 * i[1].reshape(sh) + i[2].reshape(sh))
        elif op in ("Add", "Mul", "Div"):
            y = {"Add": np.add, "Mul": np.multiply, "Div": np.divide}[op](i[0], i[1])
        elif op == "Erf":
            y = erf(i[0])
        else:
            raise ValueError("the checker does not know op %s (node %s)" % (op, node.name))
        env[node.output[0]] = y
    return env[proto.graph.output[0].name]


# ---------------------------------------------------------------------------------------------
# Files the importer must refuse: each a minimal otherwise-supported net (Conv, GAP, Flatten,
# Gemm) with one thing wrong.

def write_unsupported(out_dir):
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    rng = np.random.default_rng(SEED)
    os.makedirs(out_dir, exist_ok=True)
    listing = OrderedDict()

    def init(name, shape):
        return numpy_helper.from_array(
            (rng.standard_normal(shape) * 0.1).astype(np.float32), name)

    def head(src, c):
        """GAP -> Flatten -> Gemm to 10 logits from an [N, c, h, w] tensor named src."""
        nodes = [helper.make_node("GlobalAveragePool", [src], ["gap_out"], name="gap"),
                 helper.make_node("Flatten", ["gap_out"], ["flat"], name="flatten", axis=1),
                 helper.make_node("Gemm", ["flat", "fc.weight", "fc.bias"], ["logits"],
                                  name="fc", transB=1)]
        return nodes, [init("fc.weight", (10, c)), init("fc.bias", (10,))]

    def conv1(out="conv1_out", c=4, **kw):
        return (helper.make_node("Conv", ["input", "conv1.weight", "conv1.bias"], [out],
                                 name="conv1", kernel_shape=[3, 3], pads=[1, 1, 1, 1], **kw),
                [init("conv1.weight", (c, 3, 3, 3)), init("conv1.bias", (c,))])

    def save(fname, nodes, inits, why, node, op, names=None, input_shape=("N", 3, 32, 32),
             outputs=None, attribute=None):
        graph = helper.make_graph(
            nodes, fname.replace(".onnx", ""),
            [helper.make_tensor_value_info("input", TensorProto.FLOAT, list(input_shape))],
            outputs or [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 10])],
            inits)
        m = helper.make_model(graph, producer_name="threadsplit onnx_fixtures.py",
                              opset_imports=[helper.make_opsetid("", OPSET)])
        m.ir_version = 7  # what torch 1.13 writes for opset 13
        onnx.checker.check_model(m, full_check=True)
        onnx.save(m, os.path.join(out_dir, fname))
        listing[fname] = OrderedDict([
            ("node", node), ("op", op), ("attribute", attribute),
            ("must_name", names if names is not None else [n for n in (node, op) if n]),
            ("why", why)])

    c, ci = conv1()
    hn, hi = head("act", 4)

    save("unsupported_op_sigmoid.onnx",
         [c, helper.make_node("Sigmoid", ["conv1_out"], ["act"], name="sigmoid_mid")] + hn,
         ci + hi, "Sigmoid is not a supported op", "sigmoid_mid", "Sigmoid")

    hn2, hi2 = head("conv1_out", 4)
    hn2 = hn2[:-1] + [helper.make_node("Gemm", ["flat", "fc.weight", "fc.bias"], ["fc_out"],
                                       name="fc", transB=1),
                      helper.make_node("Softmax", ["fc_out"], ["logits"], name="softmax_out",
                                       axis=1)]
    save("unsupported_op_softmax_output.onnx", [c] + hn2, ci + hi2,
         "Softmax (a model ending in probabilities): the loss is softmax cross-entropy of "
         "logits, the graph must end in logits", "softmax_out", "Softmax")

    def relu(src="conv1_out"):
        return helper.make_node("Relu", [src], ["act"], name="relu1")

    def second_conv(**kw):
        wshape = kw.pop("wshape", (4, 4, 3, 3))
        return (helper.make_node("Conv", ["act", "conv2.weight"], ["conv2_out"], name="conv2", **kw),
                [init("conv2.weight", wshape)])

    def conv2_case(fname, why, attribute, **kw):
        c2, c2i = second_conv(**kw)
        hn3, hi3 = head("conv2_out", 4)
        save(fname, [c, relu(), c2] + hn3, ci + c2i + hi3, why, "conv2", "Conv",
             attribute=attribute)

    conv2_case("conv_group2.onnx", "Conv with group=2 (only groups 1)", "group",
               kernel_shape=[3, 3], pads=[1, 1, 1, 1], group=2, wshape=(4, 2, 3, 3))
    conv2_case("conv_dilation2.onnx", "Conv with dilations [2, 2]", "dilations",
               kernel_shape=[3, 3], pads=[2, 2, 2, 2], dilations=[2, 2])
    conv2_case("conv_kernel_3x1.onnx", "Conv with a non-square kernel 3x1", "kernel_shape",
               kernel_shape=[3, 1], pads=[1, 0, 1, 0], wshape=(4, 4, 3, 1))
    conv2_case("conv_pads_hw_differ.onnx", "Conv padding differs between H and W "
               "(pads [1, 0, 1, 0]: one padding for both axes only)", "pads",
               kernel_shape=[3, 3], pads=[1, 0, 1, 0])
    conv2_case("conv_stride_hw_differ.onnx", "Conv strides [2, 1] (one stride for both axes)", "strides",
               kernel_shape=[3, 3], pads=[1, 1, 1, 1], strides=[2, 1])

    hn4, hi4 = head("pool_out", 4)
    save("maxpool_ceil_mode.onnx",
         [c, relu(), helper.make_node("MaxPool", ["act"], ["pool_out"], name="pool1",
                                      kernel_shape=[3, 3], strides=[2, 2], ceil_mode=1)] + hn4,
         ci + hi4, "MaxPool with ceil_mode=1", "pool1", "MaxPool", attribute="ceil_mode")

    save("lrn_size_even.onnx",
         [c, helper.make_node("LRN", ["conv1_out"], ["act"], name="norm1", size=4,
                              alpha=1e-3, beta=0.75, bias=1.0)] + hn,
         ci + hi, "LRN with an even size 4 (oneDNN's window is centred: odd sizes only)",
         "norm1", "LRN", attribute="size")

    save("input_dynamic_height.onnx", [c, relu()] + hn, ci + hi,
         "input dimension 2 is dynamic ('H'): only the batch may be, the rest must be 3x32x32",
         None, None, ["input"], input_shape=("N", 3, "H", 32))

    c1, c1i = (helper.make_node("Conv", ["input", "conv1.weight", "conv1.bias"], ["conv1_out"],
                                name="conv1", kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
               [init("conv1.weight", (4, 1, 3, 3)), init("conv1.bias", (4,))])
    save("input_not_3x32x32.onnx", [c1, relu()] + hn, c1i + hi,
         "input is [N, 1, 28, 28]: CIFAR-10 images are 3x32x32", None, None,
         ["input"], input_shape=("N", 1, 28, 28))

    # Gemm's transA on the [4, 4] activation itself (batch fixed at 4 so the shapes agree).
    hn5, hi5 = head("act", 4)
    hn5[-1] = helper.make_node("Gemm", ["flat", "fc.weight", "fc.bias"], ["logits"],
                               name="fc", transA=1, transB=1)
    save("gemm_transA.onnx", [c, relu()] + hn5, ci + hi5,
         "Gemm with transA=1 (the activation must be A untransposed; the batch is fixed at "
         "4 here only so that the shapes agree)", "fc", "Gemm",
         attribute="transA",
         input_shape=(4, 3, 32, 32),
         outputs=[helper.make_tensor_value_info("logits", TensorProto.FLOAT, [4, 10])])

    hn6, hi6 = head("act", 4)
    save("two_outputs.onnx", [c, relu()] + hn6, ci + hi6,
         "two graph outputs (logits and act): one output, the logits", None, None,
         ["logits", "act"],
         outputs=[helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 10]),
                  helper.make_tensor_value_info("act", TensorProto.FLOAT, ["N", 4, 32, 32])])

    bias_c = numpy_helper.from_array(
        (rng.standard_normal((1, 4, 1, 1)) * 0.1).astype(np.float32), "chan_bias")
    save("add_broadcast.onnx",
         [c, relu(), helper.make_node("Add", ["act", "chan_bias"], ["act2"], name="add_bias")]
         + head("act2", 4)[0], ci + [bias_c] + hi,
         "Add of [N,4,32,32] and a [1,4,1,1] constant (broadcasting): Add sums two branches "
         "of one shape", "add_bias", "Add")

    save("mul_two_branches.onnx",
         [c, relu(), helper.make_node("Mul", ["act", "conv1_out"], ["act2"], name="mul_gate")]
         + head("act2", 4)[0], ci + hi,
         "Mul of two activations (only Mul by a constant)", "mul_gate", "Mul")

    write_json(os.path.join(out_dir, "refusals.json"), listing)
    print("unsupported/: %d files" % len(listing))


FIXTURES = ("seed_cnn", "tf_tutorial_cnn_small", "airbench94_small", "resnet8")
FULL = ("tf_tutorial_cnn", "airbench94")


def verify(committed, full):
    """Regenerates every file and compares it with the committed folder."""
    import filecmp
    import tempfile
    with tempfile.TemporaryDirectory() as tmp:
        for name in list(FIXTURES) + (list(FULL) if full else []):
            write_fixture(name, tmp, False)
        write_unsupported(os.path.join(tmp, "unsupported"))
        bad = []
        for root, _, files in os.walk(tmp):
            for f in sorted(files):
                rel = os.path.relpath(os.path.join(root, f), tmp)
                theirs = os.path.join(committed, rel)
                if not os.path.isfile(theirs) or not filecmp.cmp(os.path.join(tmp, rel), theirs,
                                                                 shallow=False):
                    bad.append(rel)
    if bad:
        print("differ from %s (rerun scripts/onnx_fixtures.py and commit): %s"
              % (committed, ", ".join(bad)))
        return 1
    print("every file in %s is what the script writes" % committed)
    return 0


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=__doc__.split("\n\n", 2)[2])
    p.add_argument("--out", default="tests/data/onnx", help="output folder (default %(default)s)")
    p.add_argument("--full", action="store_true",
                   help="also write tf_tutorial_cnn and airbench94 at the built-in widths")
    p.add_argument("--check", action="store_true",
                   help="evaluate each exported graph in numpy and compare with PyTorch")
    p.add_argument("--only", nargs="*", help="only these fixtures (default: all)")
    p.add_argument("--verify", metavar="DIR",
                   help="write into a temporary folder and compare byte for byte with DIR "
                        "(the committed files); exit 1 on any difference")
    args = p.parse_args()
    need_modules()
    import torch
    torch.set_num_threads(1)  # one summation order: byte-identical reruns
    torch.use_deterministic_algorithms(True)
    if args.verify:
        return verify(args.verify, args.full)
    os.makedirs(args.out, exist_ok=True)
    names = list(FIXTURES) + (list(FULL) if args.full else [])
    if args.only:
        names = args.only
    for name in names:
        write_fixture(name, args.out, args.check)
    if not args.only:
        write_unsupported(os.path.join(args.out, "unsupported"))
    return 0


if __name__ == "__main__":
    sys.exit(main())

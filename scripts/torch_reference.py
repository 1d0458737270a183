"""PyTorch twins of threadsplit's pieces, for scripts/compare_pytorch.py.

Everything here mirrors a C++ definition; keep them in step:
  models          common/network.cpp   (seed_cnn, tf_tutorial_cnn, airbench94; parameter names
                                        and layouts)
  GhostBatchNorm  common/network.h     (batch norm over fixed groups of samples, shift only)
  airbench_sgd    common/optimizer.cpp (airbench94's Nesterov SGD, batch-norm shifts lr x 64)
  glorot_init     common/network.cpp   (Keras: Glorot-uniform weights, zero biases; the same
                                        scheme, not the same random numbers)
  KerasAdam       common/optimizer.cpp (Keras' "epsilon hat" Adam, float32 per element)
  Cifar10Train    common/cifar10.cpp   (binary version, records 0..44999 train, /255, NCHW)
  worker_share    common/epoch_plan.cpp (a global batch split evenly in rank order)

This module imports torch only inside the functions that need it, so compare_pytorch.py can
print a clear "install python3-torch" message instead of a traceback.

    python3 torch_reference.py speed-worker SPEC_JSON   # one rank of a speed run (internal)
"""
import json
import math
import os
import sys
import time

import numpy as np

RECORD_BYTES = 3073          # 1 label byte + 3 x 32 x 32 pixel bytes
RECORDS_PER_FILE = 10000
TRAIN_FILES = ["data_batch_%d.bin" % i for i in range(1, 6)]
TRAIN_RECORDS = 45000        # Keras validation_split=0.1: the last 5000 are validation
MODELS = ("seed_cnn", "tf_tutorial_cnn", "airbench94")

# airbench94's recipe (common/network.cpp, coordinator/run_options.h): batch-norm groups of 64
# consecutive samples, eps 1e-12, momentum 0.4 in PyTorch's convention (airbench's 0.6).
AIRBENCH_BN_GROUP, AIRBENCH_BN_EPS, AIRBENCH_BN_MOMENTUM = 64, 1e-12, 0.4
AIRBENCH_WIDTHS = (64, 256, 256)
# CIFAR-10's per-channel mean and std of the training images in [0, 1] (airbench's values).
CIFAR_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR_STD = (0.2470, 0.2435, 0.2616)

# tf_tutorial_cnn's LRN: TensorFlow's depth_radius 4, alpha 0.001/9, beta 0.75, bias 1, which
# in PyTorch's (and oneDNN's) convention is size 9 and alpha 0.001 (both divide alpha by size).
LRN_SIZE, LRN_ALPHA, LRN_BETA, LRN_K = 9, 0.001, 0.75, 1.0


class DataError(Exception):
    pass


# ---------------------------------------------------------------------------------------------
# Data

class Cifar10Train:
    """The training records 0..44999 of CIFAR-10's binary version, memory-mapped."""

    def __init__(self, data_dir):
        self.files = []
        for name in TRAIN_FILES:
            path = os.path.join(data_dir, name)
            if not os.path.isfile(path):
                raise DataError("%s is missing: --data must be CIFAR-10's binary version "
                                "(cifar-10-batches-bin; scripts/get_cifar10.sh fetches it)" % path)
            size = os.path.getsize(path)
            if size != RECORD_BYTES * RECORDS_PER_FILE:
                raise DataError("%s holds %d bytes, expected %d (10000 records of 3073 bytes)"
                                % (path, size, RECORD_BYTES * RECORDS_PER_FILE))
            self.files.append(np.memmap(path, dtype=np.uint8, mode="r",
                                        shape=(RECORDS_PER_FILE, RECORD_BYTES)))
        self.size = TRAIN_RECORDS

    def rows(self, indices):
        """The raw records for these indices, in order, as a [n, 3073] uint8 array."""
        indices = np.asarray(indices, dtype=np.int64)
        out = np.empty((len(indices), RECORD_BYTES), dtype=np.uint8)
        file_of = indices // RECORDS_PER_FILE
        for f in np.unique(file_of):
            sel = np.nonzero(file_of == f)[0]
            out[sel] = self.files[int(f)][indices[sel] % RECORDS_PER_FILE]
        return out

    def batch(self, indices):
        """(images float32 [n, 3, 32, 32] in [0, 1], labels int64 [n]) as numpy arrays."""
        rows = self.rows(indices)
        labels = rows[:, 0].astype(np.int64)
        if labels.max(initial=0) > 9:
            raise DataError("a label above 9 among the records read: not CIFAR-10 data")
        images = rows[:, 1:].astype(np.float32).reshape(-1, 3, 32, 32)
        images *= np.float32(1.0 / 255.0)
        return images, labels


def worker_share(n, workers, rank):
    """(begin, count) of rank's contiguous share of a global batch of n: n // workers each,
    the first n % workers ranks one more (common/epoch_plan.h, worker_share)."""
    base, extra = divmod(n, workers)
    begin = rank * base + min(rank, extra)
    return begin, base + (1 if rank < extra else 0)


# ---------------------------------------------------------------------------------------------
# Models

def ghost_batchnorm_class():
    import torch
    from torch import nn
    import torch.nn.functional as F

    class GhostBatchNorm(nn.Module):
        """Batch norm as common/network.h defines kBatchNorm: training normalizes each group of
        `group` consecutive samples with that group's biased statistics over (samples, H, W),
        then adds the trained shift `bias` (scale fixed at 1). The running statistics get the
        mean over groups of each group's mean and unbiased variance, weighted by `momentum`
        (PyTorch's convention). Evaluation uses the running statistics.

        The groups go through one native batch-norm call: [N, C, H, W] is regrouped to
        [G, N/G * C, H, W], so "channel" j*C + c of that tensor is channel c of group j."""

        def __init__(self, channels, group, eps, momentum):
            super().__init__()
            self.group, self.eps, self.momentum = group, eps, momentum
            self.bias = nn.Parameter(torch.zeros(channels))
            self.register_buffer("running_mean", torch.zeros(channels))
            self.register_buffer("running_var", torch.ones(channels))

        def forward(self, x):
            n, c, h, w = x.shape
            if not self.training:
                return F.batch_norm(x, self.running_mean.to(x.dtype), self.running_var.to(x.dtype),
                                    None, self.bias.to(x.dtype), False, 0.0, self.eps)
            g = self.group
            if n % g:
                raise ValueError("a batch of %d samples is not a whole number of batch-norm "
                                 "groups of %d" % (n, g))
            ng = n // g
            xg = x.reshape(ng, g, c, h, w).transpose(0, 1).reshape(g, ng * c, h, w)
            # momentum 1 leaves exactly this step's per-group statistics in the scratch buffers.
            mean_g = torch.zeros(ng * c, dtype=x.dtype)
            var_g = torch.ones(ng * c, dtype=x.dtype)
            y = F.batch_norm(xg, mean_g, var_g, None, None, True, 1.0, self.eps)
            with torch.no_grad():
                m = self.momentum
                self.running_mean.mul_(1 - m).add_(mean_g.float().view(ng, c).mean(0), alpha=m)
                self.running_var.mul_(1 - m).add_(var_g.float().view(ng, c).mean(0), alpha=m)
            y = y.reshape(g, ng, c, h, w).transpose(0, 1).reshape(n, c, h, w)
            return y + self.bias.to(y.dtype).view(1, c, 1, 1)

    return GhostBatchNorm


def build_model(name, bn_group=AIRBENCH_BN_GROUP):
    """The network as an nn.Sequential whose state_dict names match threadsplit's checkpoint
    tensors (conv1.weight, fc.bias, group1.norm1.running_mean, ...)."""
    import torch
    from torch import nn
    import torch.nn.functional as F

    class SamePadMaxPool(nn.Module):
        """TF "SAME" max pooling: pad right/bottom so out = ceil(in / stride); the padding
        never wins the max (common/network.cpp: 3x3 stride 2 on 32 or 16 pads 0 before, 1
        after)."""

        def __init__(self, kernel, stride):
            super().__init__()
            self.kernel, self.stride = kernel, stride

        def forward(self, x):
            size = x.shape[-1]
            out = -(-size // self.stride)
            total = max((out - 1) * self.stride + self.kernel - size, 0)
            before = total // 2
            x = F.pad(x, (before, total - before, before, total - before), value=-math.inf)
            return F.max_pool2d(x, self.kernel, self.stride)

    if name == "seed_cnn":
        layers = [
            ("conv1", nn.Conv2d(3, 32, 3)), ("relu1", nn.ReLU()), ("pool1", nn.MaxPool2d(2)),
            ("conv2", nn.Conv2d(32, 64, 3)), ("relu2", nn.ReLU()),
            ("gap", nn.AdaptiveAvgPool2d(1)), ("flatten", nn.Flatten()),
            ("fc", nn.Linear(64, 10)),
        ]
    elif name == "tf_tutorial_cnn":
        layers = [
            ("conv1", nn.Conv2d(3, 64, 5, padding=2)), ("relu1", nn.ReLU()),
            ("pool1", SamePadMaxPool(3, 2)),
            ("norm1", nn.LocalResponseNorm(LRN_SIZE, LRN_ALPHA, LRN_BETA, LRN_K)),
            ("conv2", nn.Conv2d(64, 64, 5, padding=2)), ("relu2", nn.ReLU()),
            ("norm2", nn.LocalResponseNorm(LRN_SIZE, LRN_ALPHA, LRN_BETA, LRN_K)),
            ("pool2", SamePadMaxPool(3, 2)), ("flatten", nn.Flatten()),
            ("fc3", nn.Linear(64 * 8 * 8, 384)), ("relu3", nn.ReLU()),
            ("fc4", nn.Linear(384, 192)), ("relu4", nn.ReLU()),
            ("fc5", nn.Linear(192, 10)),
        ]
    elif name == "airbench94":
        # common/network.cpp build_network("airbench94"), layer for layer and name for name.
        GhostBatchNorm = ghost_batchnorm_class()

        class Scale(nn.Module):
            def __init__(self, factor):
                super().__init__()
                self.factor = factor

            def forward(self, x):
                return x * self.factor

        whiten = nn.Conv2d(3, 24, 2, bias=True)
        whiten.weight.requires_grad_(False)  # frozen: set from the data, never trained
        layers = [("whiten", whiten), ("whiten_gelu", nn.GELU())]
        c_in = 24
        for i, width in enumerate(AIRBENCH_WIDTHS, 1):
            group = [
                ("conv1", nn.Conv2d(c_in, width, 3, padding=1, bias=False)),
                ("pool", nn.MaxPool2d(2)),
                ("norm1", GhostBatchNorm(width, bn_group, AIRBENCH_BN_EPS, AIRBENCH_BN_MOMENTUM)),
                ("gelu1", nn.GELU()),
                ("conv2", nn.Conv2d(width, width, 3, padding=1, bias=False)),
                ("norm2", GhostBatchNorm(width, bn_group, AIRBENCH_BN_EPS, AIRBENCH_BN_MOMENTUM)),
                ("gelu2", nn.GELU()),
            ]
            from collections import OrderedDict
            layers.append(("group%d" % i, nn.Sequential(OrderedDict(group))))
            c_in = width
        layers += [("pool", nn.MaxPool2d(3)), ("flatten", nn.Flatten()),
                   ("fc", nn.Linear(256, 10, bias=False)), ("logit_scale", Scale(1.0 / 9.0))]
    else:
        raise ValueError("unknown model %r (known: %s)" % (name, ", ".join(MODELS)))
    from collections import OrderedDict
    return nn.Sequential(OrderedDict(layers))


def glorot_init(model, seed):
    """Keras' defaults, as common/network.cpp: U(-l, l), l = sqrt(6 / (fan_in + fan_out)),
    fan_in = in*kh*kw, fan_out = out*kh*kw for convolutions; biases zero. torch's generator,
    so the same scheme, not the same numbers as threadsplit."""
    import torch
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith(".bias"):
                p.zero_()
                continue
            out, inp = p.shape[0], p.shape[1]
            k = int(np.prod(p.shape[2:])) if p.dim() > 2 else 1
            limit = math.sqrt(6.0 / (inp * k + out * k))
            p.copy_((torch.rand(p.shape, generator=g, dtype=torch.float64) * 2 - 1) * limit)


def pytorch_default_init(model, seed):
    """common/network.cpp's pytorch_default_init: weights U(-1/sqrt(fan_in), 1/sqrt(fan_in)),
    biases and batch-norm shifts zero, running_var one, and dirac on the first in-channel
    filters of every 3x3 conv (torch.nn.init.dirac_(w[:in])). torch's generator: the same
    scheme, not the same numbers as threadsplit."""
    import torch
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() == 1:
                p.zero_()
                continue
            bound = 1.0 / math.sqrt(int(np.prod(p.shape[1:])))
            p.copy_((torch.rand(p.shape, generator=g, dtype=torch.float64) * 2 - 1) * bound)
            if name.startswith("group") and p.dim() == 4:
                torch.nn.init.dirac_(p[:p.shape[1]])


def init_model(name, model, seed):
    if name == "airbench94":
        pytorch_default_init(model, seed)
    else:
        glorot_init(model, seed)


def check_lrn_convention():
    """Checks PyTorch's LocalResponseNorm against oneDNN's formula as threadsplit states it
    (common/network.h): dst = src / (k + alpha/size * sum over `size` channels centred on
    the channel, clipped at the edges)^beta. Returns the largest relative difference."""
    import torch
    torch.manual_seed(0)
    x = torch.randn(2, 16, 3, 3, dtype=torch.float64) * 3
    y = torch.nn.LocalResponseNorm(LRN_SIZE, LRN_ALPHA, LRN_BETA, LRN_K)(x)
    c, r = x.shape[1], LRN_SIZE // 2
    ref = torch.empty_like(x)
    for ch in range(c):
        lo, hi = max(0, ch - r), min(c, ch + r + 1)
        s = (x[:, lo:hi] ** 2).sum(dim=1)
        ref[:, ch] = x[:, ch] / (LRN_K + LRN_ALPHA / LRN_SIZE * s) ** LRN_BETA
    return float(((y - ref).abs() / ref.abs().clamp_min(1e-12)).max())


# ---------------------------------------------------------------------------------------------
# Optimizer

def keras_adam_class():
    import torch

    class KerasAdam(torch.optim.Optimizer):
        """Adam as Keras (and threadsplit's common/optimizer.cpp) computes it:
            lr_t = lr * sqrt(1 - beta2^t) / (1 - beta1^t)
            m = beta1*m + (1-beta1)*g;  v = beta2*v + (1-beta2)*g^2
            p -= lr_t * m / (sqrt(v) + eps)
        torch.optim.Adam differs in where eps enters: it divides by sqrt(v_hat) + eps with
        v_hat = v / (1 - beta2^t), i.e. eps is scaled by sqrt(1 - beta2^t) relative to this.
        Same cost; this one is exact against threadsplit."""

        def __init__(self, params, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-7):
            super().__init__(params, dict(lr=lr, beta1=beta1, beta2=beta2, eps=eps))
            self.iterations = 0

        @torch.no_grad()
        def step(self, closure=None):
            self.iterations += 1
            t = float(self.iterations)
            for group in self.param_groups:
                b1, b2 = group["beta1"], group["beta2"]
                lr_t = group["lr"] * math.sqrt(1.0 - b2 ** t) / (1.0 - b1 ** t)
                for p in group["params"]:
                    if p.grad is None:
                        continue
                    st = self.state[p]
                    if not st:
                        st["m"] = torch.zeros_like(p)
                        st["v"] = torch.zeros_like(p)
                    m, v, g = st["m"], st["v"], p.grad
                    m.mul_(b1).add_(g, alpha=1.0 - b1)
                    v.mul_(b2).addcmul_(g, g, value=1.0 - b2)
                    p.addcdiv_(m, v.sqrt().add_(group["eps"]), value=-lr_t)

    return KerasAdam


def airbench_sgd(model, batch):
    """airbench94's optimizer: Nesterov SGD, momentum 0.85, in airbench's units
    lr = 11.5 / kilostep, decay 0.0153 * batch / kilostep with kilostep = 1024 * (1 + 1 / (1 -
    momentum)); torch's weight_decay multiplies by lr, so it gets decay / lr. The batch-norm
    shifts run at lr x 64 with the same decay, i.e. torch's weight_decay / 64."""
    import torch
    momentum = 0.85
    kilostep = 1024 * (1 + 1 / (1 - momentum))
    lr = 11.5 / kilostep
    wd = 0.0153 * batch / kilostep
    norm = [p for n, p in model.named_parameters() if ".norm" in n and p.requires_grad]
    other = [p for n, p in model.named_parameters() if ".norm" not in n and p.requires_grad]
    return torch.optim.SGD([dict(params=norm, lr=lr * 64, weight_decay=wd / (lr * 64)),
                            dict(params=other, lr=lr, weight_decay=wd / lr)],
                           momentum=momentum, nesterov=True)


# ---------------------------------------------------------------------------------------------
# Speed: one rank of a PyTorch data-parallel run

def speed_worker(spec):
    """Runs one rank. spec: model, procs, threads, rank, cores, batch, warmup, steps, seed,
    data, master_port, result (rank 0 writes its JSON there), and for airbench94 bn_group,
    precision (f32 | bf16: autocast around forward and loss) and channels_last. The caller set OMP_NUM_THREADS
    and any MALLOC_* variables in this process's environment before it started."""
    # Pin first: torch's OpenMP pool must be created inside this core set.
    if spec["cores"]:
        os.sched_setaffinity(0, spec["cores"])
    import torch
    import torch.distributed as dist
    import torch.nn.functional as F

    torch.set_num_threads(spec["threads"])
    P, rank, B = spec["procs"], spec["rank"], spec["batch"]
    if P > 1:
        dist.init_process_group("gloo", init_method="tcp://127.0.0.1:%d" % spec["master_port"],
                                world_size=P, rank=rank)
    data = Cifar10Train(spec["data"])
    torch.manual_seed(spec["seed"])
    airbench = spec["model"] == "airbench94"
    model = build_model(spec["model"], spec.get("bn_group", AIRBENCH_BN_GROUP))
    init_model(spec["model"], model, spec["seed"])  # same seed on every rank (DDP broadcasts rank 0's)
    channels_last = bool(spec.get("channels_last"))
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    bf16 = spec.get("precision", "f32") == "bf16"
    net = model
    if P > 1:
        from torch.nn.parallel import DistributedDataParallel
        net = DistributedDataParallel(model)
    if airbench:
        opt = airbench_sgd(model, B)
        mean = torch.tensor(CIFAR_MEAN).view(1, 3, 1, 1)
        std = torch.tensor(CIFAR_STD).view(1, 3, 1, 1)
    else:
        opt = keras_adam_class()(model.parameters(), lr=spec.get("lr", 1e-3))
    rng = np.random.default_rng(spec["seed"])
    order = rng.permutation(data.size)
    begin, count = worker_share(B, P, rank)
    steps_per_epoch = data.size // B
    total = spec["warmup"] + spec["steps"]

    def barrier():
        if P > 1:
            dist.barrier()

    barrier()
    t_start = time.perf_counter()
    t_warm = t_start
    loss_v = float("nan")
    for step in range(total):
        if step == spec["warmup"]:
            barrier()
            t_warm = time.perf_counter()
        k = step % steps_per_epoch
        if k == 0 and step > 0:
            order = rng.permutation(data.size)
        idx = order[k * B + begin: k * B + begin + count]
        x, y = data.batch(idx)
        x, y = torch.from_numpy(x), torch.from_numpy(y)
        opt.zero_grad(set_to_none=True)
        if airbench:
            x = (x - mean) / std
            if channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            # The recipe's loss is the SUM over the global batch; DDP averages over ranks, so
            # each rank's sum is scaled by P.
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                loss = F.cross_entropy(net(x), y, label_smoothing=0.2, reduction="sum") * P
        else:
            # DDP averages gradients over ranks; with equal shares that is the global-batch mean.
            loss = F.cross_entropy(net(x), y)
        loss.backward()
        opt.step()
        if step == total - 1:
            loss_v = float(loss)
    barrier()
    t_end = time.perf_counter()
    timed = torch.tensor([t_end - t_warm, t_end - t_start], dtype=torch.float64)
    if P > 1:
        dist.all_reduce(timed, op=dist.ReduceOp.MAX)
    if rank == 0:
        res = {
            "timed_seconds": float(timed[0]), "all_seconds": float(timed[1]),
            "images_per_s": spec["steps"] * B / float(timed[0]) if spec["steps"] else 0.0,
            "images_per_s_incl_warmup": total * B / float(timed[1]),
            "last_loss": loss_v, "torch": torch.__version__,
            "torch_threads": torch.get_num_threads(),
            "affinity": sorted(os.sched_getaffinity(0)),
            "ddp": P > 1, "precision": "bf16" if bf16 else "f32",
            "channels_last": channels_last,
        }
        with open(spec["result"], "w") as f:
            json.dump(res, f)
    if P > 1:
        dist.destroy_process_group()


def main(argv):
    if len(argv) == 3 and argv[1] == "speed-worker":
        speed_worker(json.loads(argv[2]))
        return 0
    sys.stderr.write(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))

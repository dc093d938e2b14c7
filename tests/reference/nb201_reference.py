#!/usr/bin/python3
"""Independent PyTorch reference for the hybridnas scores of NAS-Bench-201 architectures.

Written from SPEC.md (sections 1-3, 7). The network mirrors the NB201 benchmark's own module
layout and names, so the official fixture's weights (data/fixture/) load by name and the official
NASWOT hook rule ("every module whose type name contains ReLU") selects the same 99 modules.
Random tensors come from the engine's Philox bank (philox.py), so for the same score seed the
engine and this script score the same functions of the same numbers.

Usage:
  /usr/bin/python3 tests/reference/nb201_reference.py --archs A1 A2 ... --data FILE --out DIR
  /usr/bin/python3 tests/reference/nb201_reference.py --fixture ../shared/data/fixture
"""

import argparse
import json
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import philox  # noqa: E402

OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
# (target node, source node) of the 6 edges in arch-string order.
EDGES = ((1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2))
BN_EPS = 1e-5
CHANNELS = (16, 32, 64)
CELLS_PER_STAGE = 5
REDUCTION_CELLS = (5, 11)  # module indices of the reduction blocks in `cells`

NORMALISATION = {
    "cifar10": ((125.3, 123.0, 113.9), (63.0, 62.1, 66.7)),
    "cifar100": ((129.3, 124.1, 112.4), (68.2, 65.4, 70.4)),
}


# ---------------------------------------------------------------------------------------------
# Architecture strings

def parse_arch(arch):
    """'|a~0|+|b~0|c~1|+|d~0|e~1|f~2|' -> [a, b, c, d, e, f] (edge order of EDGES)."""
    ops = []
    for node, part in enumerate(arch.strip().strip("|").split("|+|"), start=1):
        items = [t for t in part.split("|") if t]
        if len(items) != node:
            raise ValueError("bad arch string %r" % arch)
        for src, item in enumerate(items):
            op, s = item.split("~")
            if op not in OPS or int(s) != src:
                raise ValueError("bad arch string %r" % arch)
            ops.append(op)
    return ops


def is_degenerate(ops):
    """Node 3 unreachable from node 0 through non-none edges."""
    reach = {0: True}
    for node in (1, 2, 3):
        reach[node] = any(reach[src] and ops[e] != "none"
                          for e, (dst, src) in enumerate(EDGES) if dst == node)
    return not reach[3]


# ---------------------------------------------------------------------------------------------
# Network. Class names matter: the NASWOT hook rule keys on "ReLU" in the type name, and must
# pick each ReLU and each ReLU-conv-BN wrapper but nothing else.

class TrainBN(nn.BatchNorm2d):
    """Batch norm that always normalises with the current batch (train mode, biased variance).

    Statistics are two-pass and accumulated in float64 as SPEC 2 requires of the engine; the
    normalisation itself runs in the activation dtype. `skip` turns it into the identity for
    the MAE-DET entropy pass. Subclassing BatchNorm2d keeps the fixture's parameter/buffer names.
    """

    skip = False
    # The batch statistics are part of the autograd graph (images coupled through them, as in
    # TE-NAS's NTK). detach_stats = True makes them constants in the backward pass (ntk_fast);
    # the forward values are unchanged. Set it per module or with set_detach_bn_stats.
    detach_stats = False

    def forward(self, x):
        if self.skip:
            return x
        xd = x.double()
        mean = xd.mean(dim=(0, 2, 3), keepdim=True)
        var = (xd - mean).pow(2).mean(dim=(0, 2, 3), keepdim=True)
        inv = 1.0 / torch.sqrt(var + BN_EPS)
        if self.detach_stats:
            mean, inv = mean.detach(), inv.detach()
        w = self.weight.double().view(1, -1, 1, 1)
        b = self.bias.double().view(1, -1, 1, 1)
        if x.dtype == torch.float64:
            return (xd - mean) * inv * w + b
        return (x - mean.to(x.dtype)) * (inv * w).to(x.dtype) + b.to(x.dtype)


class ReLU(nn.ReLU):
    """nn.ReLU (so isinstance checks and the hook rule see a ReLU) that the entropy pass can skip."""

    skip = False

    def forward(self, x):
        return x if self.skip else F.relu(x)


class ReLUConvBN(nn.Module):
    def __init__(self, cin, cout, k, stride):
        super().__init__()
        self.op = nn.Sequential(ReLU(), nn.Conv2d(cin, cout, k, stride, k // 2, bias=False), TrainBN(cout))

    def forward(self, x):
        return self.op(x)


class Identity(nn.Module):
    def forward(self, x):
        return x


class Zero(nn.Module):
    def forward(self, x):
        return torch.zeros_like(x)


class AvgPool3x3(nn.Module):
    def __init__(self):
        super().__init__()
        self.op = nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)

    def forward(self, x):
        return self.op(x)


def make_op(name, c):
    if name == "none":
        return Zero()
    if name == "skip_connect":
        return Identity()
    if name == "nor_conv_1x1":
        return ReLUConvBN(c, c, 1, 1)
    if name == "nor_conv_3x3":
        return ReLUConvBN(c, c, 3, 1)
    return AvgPool3x3()


class Cell(nn.Module):
    """One searched cell; `layers[j]` is edge j in arch-string order (all 6, none included)."""

    def __init__(self, ops, c):
        super().__init__()
        self.layers = nn.ModuleList([make_op(op, c) for op in ops])

    def forward(self, x):
        nodes = [x]
        for node in (1, 2, 3):
            acc = None
            for e, (dst, src) in enumerate(EDGES):  # increasing source node
                if dst == node:
                    y = self.layers[e](nodes[src])
                    acc = y if acc is None else acc + y
            nodes.append(acc)
        return nodes[3]


class ReductionBlock(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.conv_a = ReLUConvBN(cin, cout, 3, 2)
        self.conv_b = ReLUConvBN(cout, cout, 3, 1)
        self.downsample = nn.Sequential(nn.AvgPool2d(2, 2), nn.Conv2d(cin, cout, 1, 1, 0, bias=False))

    def forward(self, x):
        return self.conv_b(self.conv_a(x)) + self.downsample(x)


class NB201Net(nn.Module):
    def __init__(self, ops, num_classes):
        super().__init__()
        self.ops = list(ops)
        self.stem = nn.Sequential(nn.Conv2d(3, CHANNELS[0], 3, 1, 1, bias=False), TrainBN(CHANNELS[0]))
        cells = []
        for stage, c in enumerate(CHANNELS):
            if stage > 0:
                cells.append(ReductionBlock(CHANNELS[stage - 1], c))
            cells.extend(Cell(ops, c) for _ in range(CELLS_PER_STAGE))
        self.cells = nn.ModuleList(cells)
        self.lastact = nn.Sequential(TrainBN(CHANNELS[-1]), ReLU())
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(CHANNELS[-1], num_classes)

    def forward(self, x):
        x = self.stem(x)
        for cell in self.cells:
            x = cell(x)
        x = self.global_pooling(self.lastact(x)).flatten(1)
        return self.classifier(x)

    def set_detach_bn_stats(self, detach):
        """BN batch statistics as constants in the backward pass (True) or in the graph (False)."""
        for m in self.modules():
            if isinstance(m, TrainBN):
                m.detach_stats = detach

    def set_skip_bn_relu(self, skip):
        for m in self.modules():
            if isinstance(m, (TrainBN, ReLU)):
                m.skip = skip

    def forward_entropy(self, x):
        """MAE-DET pass (BN and ReLU must be skipped by the caller): the 18 block-output stds.

        Each block output is rescaled by its own std so that the next block sees unit scale; the
        score is the sum of the log stds (the log of the unnormalised output's scale).
        Returns (stds, zero_variance).
        """
        stds = []
        x = self.stem(x)
        for block in [None] + list(self.cells):
            if block is not None:
                x = block(x)
            xd = x.double()
            n = xd.numel()
            s = math.sqrt(float((xd - xd.mean()).pow(2).sum()) / (n - 1))
            stds.append(s)
            if not s > 0.0:
                return stds, True
            x = (xd / s).to(x.dtype)
        return stds, False


def hooked_modules(model):
    """The official NASWOT selection: every module whose type name contains 'ReLU'."""
    return [(n, m) for n, m in model.named_modules() if "ReLU" in type(m).__name__]


def param_count(model):
    return sum(p.numel() for p in model.parameters())


# ---------------------------------------------------------------------------------------------
# Weights from the Philox bank

class WeightBank:
    """Generates (and caches across architectures) the engine's weight tensors by slot."""

    def __init__(self, seed, num_classes):
        self.seed = seed
        self.num_classes = num_classes
        self.cache = {}

    def conv(self, shape, slot, purpose, repeat):
        key = ("conv", slot, purpose, repeat)
        if key not in self.cache:
            self.cache[key] = philox.conv_weight(self.seed, shape, slot, purpose, repeat)
        return self.cache[key]

    def state(self, model, purpose, repeat=0):
        """name -> float32 array for every weight of `model` under `purpose` (BN: gamma 1, beta 0)."""
        out = {}
        out["stem.0.weight"] = self.conv((16, 3, 3, 3), philox.SLOT_STEM, purpose, repeat)
        for i, cell in enumerate(model.cells):
            if isinstance(cell, ReductionBlock):
                r = REDUCTION_CELLS.index(i)
                cin, cout = CHANNELS[r], CHANNELS[r + 1]
                sa, sb, ss = philox.reduction_slots(r)
                out["cells.%d.conv_a.op.1.weight" % i] = self.conv((cout, cin, 3, 3), sa, purpose, repeat)
                out["cells.%d.conv_b.op.1.weight" % i] = self.conv((cout, cout, 3, 3), sb, purpose, repeat)
                out["cells.%d.downsample.1.weight" % i] = self.conv((cout, cin, 1, 1), ss, purpose, repeat)
                continue
            stage = i // (CELLS_PER_STAGE + 1)
            g = stage * CELLS_PER_STAGE + (i - stage * (CELLS_PER_STAGE + 1))
            c = CHANNELS[stage]
            for e, op in enumerate(model.ops):
                if op in ("nor_conv_1x1", "nor_conv_3x3"):
                    kind = 1 if op == "nor_conv_3x3" else 0
                    k = 3 if kind else 1
                    out["cells.%d.layers.%d.op.1.weight" % (i, e)] = self.conv(
                        (c, c, k, k), philox.edge_slot(g, e, kind), purpose, repeat)
        if purpose != philox.PURPOSE_ENTROPY_WEIGHTS:  # the entropy pass never reaches the head
            key = ("linear", purpose)
            if key not in self.cache:
                self.cache[key] = philox.linear_params(self.seed, self.num_classes, purpose)
            out["classifier.weight"], out["classifier.bias"] = self.cache[key]
        return out


def load_weights(model, state, dtype):
    """Load name -> array; BN affine parameters are reset to gamma 1, beta 0."""
    params = dict(model.named_parameters())
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, TrainBN):
                m.weight.fill_(1.0)
                m.bias.fill_(0.0)
        for name, arr in state.items():
            if name not in params:
                continue  # e.g. BN running statistics in the fixture: unused in train mode
            p = params[name]
            t = torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float32)).reshape(p.shape)
            p.copy_(t.to(dtype))  # float32 bank values, widened exactly for FP64 runs
    model.to(dtype)


# ---------------------------------------------------------------------------------------------
# Inputs

def read_records(path, offset, count):
    """`count` CIFAR binary records from `offset` of FILE, or of a CIFAR directory in file order."""
    rec = 3073
    if os.path.isdir(path):
        names = ["data_batch_%d.bin" % i for i in range(1, 6)] + ["test_batch.bin"]
        files = [os.path.join(path, n) for n in names if os.path.exists(os.path.join(path, n))]
    else:
        files = [path]
    blobs = []
    for f in files:
        with open(f, "rb") as fh:
            blobs.append(np.frombuffer(fh.read(), dtype=np.uint8))
    data = np.concatenate(blobs).reshape(-1, rec)
    if offset + count > data.shape[0]:
        raise SystemExit("data holds %d records; need [%d, %d)" % (data.shape[0], offset, offset + count))
    sel = data[offset:offset + count]
    return sel[:, 0].astype(np.int64), sel[:, 1:].reshape(count, 3, 32, 32)


def normalise(pixels, norm):
    mean, std = NORMALISATION[norm]
    m = np.array(mean, dtype=np.float64).reshape(1, 3, 1, 1) / 255.0
    s = np.array(std, dtype=np.float64).reshape(1, 3, 1, 1) / 255.0
    return (pixels.astype(np.float64) / 255.0 - m) / s


# ---------------------------------------------------------------------------------------------
# Proxies

def logdet_or_singular(K):
    """log|det K| via slogdet; singular per SPEC 3 (Cholesky fails or a tiny pivot) -> None."""
    try:
        L = np.linalg.cholesky(K)
    except np.linalg.LinAlgError:
        return None
    if np.min(np.diag(L)) ** 2 <= 1e-12 * np.max(np.diag(K)):
        return None
    sign, logabs = np.linalg.slogdet(K)
    return float(logabs) if sign != 0 and np.isfinite(logabs) else None


class CodeRecorder:
    """Forward hooks computing the NASWOT kernels on the fly (both hook sets) and packing the
    codes of every nn.ReLU. Each hooked wrapper sees the same input as its inner ReLU, which is
    how the official code ends up weighting conv and reduction sites twice."""

    def __init__(self, model, batch):
        self.K = np.zeros((batch, batch), dtype=np.int64)
        self.K_once = np.zeros((batch, batch), dtype=np.int64)
        self.relu_codes = []  # (name, units, packed uint8 [B, units/8]) in execution order
        self.handles = [m.register_forward_hook(self._hook(n, isinstance(m, nn.ReLU)))
                        for n, m in hooked_modules(model)]

    def _hook(self, name, is_relu):
        def hook(module, inputs, output):
            code = (inputs[0] > 0).flatten(1)
            c = code.to(torch.float64)
            # Agreements = both on + both off; float64 matmuls of 0/1 are exact at these sizes.
            agree = (c @ c.T + (1.0 - c) @ (1.0 - c).T).numpy()
            k = np.rint(agree).astype(np.int64)
            self.K += k
            if is_relu:
                self.K_once += k
                packed = np.packbits(code.numpy(), axis=1, bitorder="little")
                self.relu_codes.append((name, code.shape[1], packed))
        return hook

    def remove(self):
        for h in self.handles:
            h.remove()


def entropy_seed_hooks(model, record):
    """Forward hooks collecting a_l for every hooked module (named_modules order)."""
    handles = []
    for name, m in hooked_modules(model):
        head = name == "lastact.1"

        def hook(module, inputs, output, name=name, head=head):
            x = inputs[0].double()
            # The reference code's head ReLU runs in place, so its hook sees max(x, 0).
            v = x.clamp(min=0) if head else x.abs()
            record[name] = float(v.flatten(1).sum(1).mean())
        handles.append(m.register_forward_hook(hook))
    return handles


def score_arch(k, arch, args, bank, images, out_dir, dtype):
    ops = parse_arch(arch)
    if is_degenerate(ops):
        return {"arch": arch, "degenerate": True}
    B = images.shape[0]
    model = NB201Net(ops, args.num_classes)
    res = {"arch": arch, "degenerate": False, "param_count": param_count(model)}
    flags = []

    # naswot, naswot_once, ni: one clean and one noisy forward with default-init weights.
    load_weights(model, bank.state(model, philox.PURPOSE_DEFAULT_INIT), dtype)
    x = torch.from_numpy(images)
    z = philox.image_noise(args.score_seed, images.shape, philox.PURPOSE_NI_NOISE, 0, 0.05)
    if dtype == torch.float64:
        x_noisy = x + torch.from_numpy(z).double()
    else:
        x = x.float()
        x_noisy = x + torch.from_numpy(z)
    rec = CodeRecorder(model, B)
    with torch.no_grad():
        logits = model(x.to(dtype))
    rec.remove()
    with torch.no_grad():
        logits_noisy = model(x_noisy.to(dtype))
    lo, ln = logits.double(), logits_noisy.double()
    res["naswot"] = logdet_or_singular(rec.K.astype(np.float64))
    res["naswot_once"] = logdet_or_singular(rec.K_once.astype(np.float64))
    if res["naswot"] is None or res["naswot_once"] is None:
        flags.append("singular")
    res["K"] = rec.K.tolist()
    res["K_once"] = rec.K_once.tolist()
    res["logits"] = lo.tolist()
    res["logits_noisy"] = ln.tolist()
    res["ni"] = -float(((lo - ln) ** 2).sum())

    modules, offset = [], 0
    with open(os.path.join(out_dir, "codes_%d.bin" % k), "wb") as fh:
        for name, units, packed in rec.relu_codes:
            modules.append({"name": name, "units": units, "offset_bytes": offset})
            fh.write(packed.tobytes())
            offset += packed.nbytes
    res["modules"] = modules

    # entropy (MAE-DET): Gaussian input and weights, fresh per repeat; BN and ReLU skipped.
    model.set_skip_bn_relu(True)
    values, block_stds = [], []
    for r in range(args.entropy_repeats):
        load_weights(model, bank.state(model, philox.PURPOSE_ENTROPY_WEIGHTS, r), dtype)
        xe = philox.image_noise(args.score_seed, (args.entropy_batch, 3, 32, 32),
                                philox.PURPOSE_ENTROPY_INPUT, r)
        with torch.no_grad():
            stds, zero = model.forward_entropy(torch.from_numpy(xe).to(dtype))
        block_stds.append(stds)
        values.append(None if zero else sum(math.log(s) for s in stds) + math.log(64.0))
    model.set_skip_bn_relu(False)
    if any(v is None for v in values):
        res["entropy"] = None
        flags.append("zero_variance")
    else:
        res["entropy"] = float(np.mean(values))
    res["entropy_block_std"] = block_stds

    # entropy_seed: BN and ReLU kept, scaled Gaussian weights, B Gaussian images.
    load_weights(model, bank.state(model, philox.PURPOSE_ENTROPY_SEED_WEIGHTS), dtype)
    xs = philox.image_noise(args.score_seed, images.shape, philox.PURPOSE_ENTROPY_SEED_INPUT, 0)
    acts = {}
    handles = entropy_seed_hooks(model, acts)
    with torch.no_grad():
        model(torch.from_numpy(xs).to(dtype))
    for h in handles:
        h.remove()
    order = [n for n, _ in hooked_modules(model)]
    res["entropy_seed"] = float(sum(math.log1p(acts[n]) for n in order))
    res["entropy_seed_a"] = [{"name": n, "a": acts[n]} for n in order]
    res["flags"] = flags
    return res


def json_safe(v):
    """JSON has no infinities: a worst value is written as the string '-inf' (SPEC 3)."""
    if v is None:
        return "-inf"
    if isinstance(v, float) and not math.isfinite(v):
        return "-inf" if v < 0 or math.isnan(v) else "+inf"
    return v


def run_reference(args):
    dtype = torch.float64 if args.precision == "fp64" else torch.float32
    norm = args.norm or ("cifar100" if args.num_classes == 100 else "cifar10")
    if args.gaussian_input:
        images = philox.image_noise(args.score_seed, (args.batch, 3, 32, 32),
                                    philox.PURPOSE_GAUSSIAN_INPUT).astype(np.float64)
        labels = None
    else:
        if not args.data:
            raise SystemExit("need --data FILE|DIR (or --gaussian-input)")
        labels, pixels = read_records(args.data, args.image_offset, args.batch)
        images = normalise(pixels, norm)
    os.makedirs(args.out, exist_ok=True)
    bank = WeightBank(args.score_seed, args.num_classes)
    t0 = time.time()
    results = []
    for k, arch in enumerate(args.archs):
        t = time.time()
        res = score_arch(k, arch, args, bank, images, args.out, dtype)
        for key in ("naswot", "naswot_once", "entropy"):
            if key in res:
                res[key] = json_safe(res[key])
        results.append(res)
        print("[%d] %s degenerate=%s naswot=%s ni=%s entropy=%s entropy_seed=%s (%.1fs)" % (
            k, arch, res["degenerate"], res.get("naswot"), res.get("ni"), res.get("entropy"),
            res.get("entropy_seed"), time.time() - t), flush=True)
    settings = {
        "archs": args.archs, "data": None if args.gaussian_input else os.path.abspath(args.data),
        "gaussian_input": bool(args.gaussian_input), "image_offset": args.image_offset,
        "batch": args.batch, "entropy_batch": args.entropy_batch,
        "entropy_repeats": args.entropy_repeats, "num_classes": args.num_classes,
        "score_seed": args.score_seed, "precision": args.precision, "norm": norm,
        "labels": None if labels is None else labels.tolist(),
        "torch": torch.__version__, "code_packing": "np.packbits bitorder=little, per image",
    }
    with open(os.path.join(args.out, "reference.json"), "w") as fh:
        json.dump({"settings": settings, "archs": results}, fh)
    print("wrote %s (%d archs, %.1fs)" % (os.path.join(args.out, "reference.json"),
                                           len(results), time.time() - t0))


# ---------------------------------------------------------------------------------------------
# Self-check against the official codes' fixture (SPEC 7)

def load_blob(fixture, stem):
    with open(os.path.join(fixture, stem + ".json")) as fh:
        index = json.load(fh)
    blob = np.fromfile(os.path.join(fixture, stem + ".f32"), dtype="<f4")
    return {t["name"]: blob[t["offset"]:t["offset"] + t["numel"]].reshape(t["shape"]) for t in index}


def fixture_check(fixture):
    with open(os.path.join(fixture, "reference_scores.json")) as fh:
        ref = json.load(fh)
    ok_all = True

    def report(ok, what):
        nonlocal ok_all
        ok_all &= bool(ok)
        print("%s %s" % ("PASS" if ok else "FAIL", what), flush=True)

    report(philox._self_check(), "philox self-check")
    arch = ref["settings"]["arch"]
    ops = parse_arch(arch)
    model = NB201Net(ops, 10)
    pc = param_count(model)
    report(pc == ref["param_count"] == 587386, "param count %d (fixture %d)" % (pc, ref["param_count"]))
    names = [n for n, _ in hooked_modules(model)]
    report(names == ref["modules_hooked_by_naswot"],
           "hooked modules (%d) match the official hook set (%d)" % (len(names), len(ref["modules_hooked_by_naswot"])))

    weights = load_blob(fixture, "weights_default_init_seed0")
    missing = set(model.state_dict()) - set(weights)
    report(not missing, "every parameter/buffer name found in the fixture weights%s" %
           ("" if not missing else ": missing " + ", ".join(sorted(missing)[:5])))
    x = load_blob(fixture, "input_cifar_first16")["x"]
    # Our own CIFAR decoding must give the fixture's images (which were normalised in float32).
    data_file = os.path.join(os.path.dirname(os.path.abspath(fixture)), "cifar10", "cifar10_sample.bin")
    if os.path.exists(data_file):
        _, px = read_records(data_file, 0, 16)
        d = np.abs(normalise(px, "cifar10") - x.astype(np.float64)).max()
        report(d < 1e-6, "decoded CIFAR records 0-15 match the fixture input (max |d| %.2e)" % d)

    for label, dtype in (("fp32", torch.float32), ("fp64", torch.float64)):
        # The fixture's own weights, BN affine included (they are 1 and 0 at init anyway).
        model = NB201Net(ops, 10)
        sd = {n: torch.from_numpy(np.array(weights[n])).reshape(t.shape) for n, t in model.state_dict().items()}
        model.load_state_dict(sd)
        model.to(dtype)
        rec = CodeRecorder(model, 16)
        with torch.no_grad():
            model(torch.from_numpy(np.array(x)).to(dtype))
        rec.remove()
        for key, K, once in (("naswot", rec.K, False), ("naswot_reluonly", rec.K_once, True)):
            Kref = np.array(ref["naswot_K_reluonly" if once else "naswot_K"], dtype=np.int64)
            s = logdet_or_singular(K.astype(np.float64))
            dk = int(np.abs(K - Kref).max())
            na = int(Kref[0, 0])
            # FP32 rule (SPEC 7): |dK| <= 1e-5 * N_A and naswot to 1e-6 relative; exact K is the norm.
            rel = abs(s - ref[key]) / abs(ref[key])
            report(dk <= 1e-5 * na and rel <= 1e-6,
                   "%s %s: %.10f vs %.10f (rel %.1e), max|dK| %d of N_A %d%s" % (
                       label, key, s, ref[key], rel, dk, na, " (K exact)" if dk == 0 else ""))

    ew = load_blob(fixture, "entropy_gauss_weights_seed0")
    xe = load_blob(fixture, "entropy_gauss_input_b16")["x"]
    for label, dtype in (("fp32", torch.float32), ("fp64", torch.float64)):
        model = NB201Net(ops, 10)
        sd = {n: torch.from_numpy(np.array(ew[n])).reshape(t.shape) for n, t in model.state_dict().items()}
        model.load_state_dict(sd)
        model.to(dtype)
        model.set_skip_bn_relu(True)
        with torch.no_grad():
            stds, _ = model.forward_entropy(torch.from_numpy(np.array(xe)).to(dtype))
        sref = np.array(ref["entropy_block_std"])
        rel = float(np.max(np.abs(np.array(stds) - sref) / sref))
        ent = sum(math.log(s) for s in stds) + math.log(64.0)
        erel = abs(ent - ref["entropy"]) / abs(ref["entropy"])
        report(len(stds) == 18 and rel <= 1e-5,
               "%s entropy block stds: max rel diff %.2e over %d blocks" % (label, rel, len(stds)))
        report(erel <= 1e-5, "%s entropy %.8f vs %.8f (rel %.1e)" % (label, ent, ref["entropy"], erel))
    print("fixture self-check: %s" % ("PASS" if ok_all else "FAIL"))
    return ok_all


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--archs", nargs="+", help="NB201 arch strings")
    ap.add_argument("--data", help="CIFAR binary file or directory")
    ap.add_argument("--gaussian-input", action="store_true", help="N(0,1) images (purpose 3) instead of --data")
    ap.add_argument("--image-offset", type=int, default=0)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--entropy-batch", type=int, default=32)
    ap.add_argument("--entropy-repeats", type=int, default=4)
    ap.add_argument("--num-classes", type=int, default=10)
    ap.add_argument("--norm", choices=sorted(NORMALISATION), help="default: cifar100 if --num-classes 100, else cifar10")
    ap.add_argument("--score-seed", type=int, default=0)
    ap.add_argument("--precision", choices=("fp64", "fp32"), default="fp64")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch default)")
    ap.add_argument("--out", help="output directory")
    ap.add_argument("--fixture", help="self-check against data/fixture instead of scoring")
    args = ap.parse_args()
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    if args.fixture:
        sys.exit(0 if fixture_check(args.fixture) else 1)
    if not args.archs or not args.out:
        ap.error("--archs and --out are required (or --fixture)")
    run_reference(args)


if __name__ == "__main__":
    main()

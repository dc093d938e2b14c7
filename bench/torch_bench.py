#!/usr/bin/python3
"""PyTorch CPU baseline timings of the hybridnas proxies on NAS-Bench-201 networks.

The proxies are computed the way their official codes do it (float32, train-mode BN, torch's
own modules and RNG), so the numbers say what the published implementations cost on this CPU:
- naswot: forward hooks on every module whose type name contains "ReLU";
  x = (inp > 0).float(); K += x @ x.T + (1 - x) @ (1 - x).T; slogdet.
- ni: a clean and a noisy (x + 0.05 * N(0,1)) forward; -sum of squared logit differences.
- naswot+ni: the same, sharing the clean forward.
- entropy (MAE-DET): per repeat, Gaussian re-init of the weights and a Gaussian input, BN and ReLU
  skipped, every block output divided by its std; sum of log stds + log 64, mean over repeats.
- entropy_seed: weights N(0,1)/sqrt(k*k*Cout), Gaussian input, one forward with hooks summing
  |inp| per hooked module (max(inp, 0) for the head ReLU); sum of log(1 + a_l).
- ntk (TE-NAS get_ntk_n, float32): one forward on --ntk-batch images, then per image
  logits[i].sum().backward(retain_graph=True), gradients of every parameter with 'weight' in its
  name concatenated, zero_grad; Theta = G G^T (einsum), eigvalsh, kappa = max / min.
- ntk_fast: the same loop with the BN batch statistics detached (constants in the backward pass).
- ntk_fast_vmap: ntk_fast's gradients vectorised with torch.func (functorch before torch 2.0): vmap
  over images of grad of the per-image summed logits, BN statistics of the whole batch frozen.
The ntk proxies are slow, so they are not in the default --proxies list: name them.

Timing only: weights and inputs come from torch's RNG, not the engine's Philox bank. Each timed
call covers one proxy on an already built network, including the per-call weight re-init the
official entropy codes do. Every tensor is created on --device explicitly (no default-device
mode, whose Python hook would slow every op), and device-only calls are guarded by the device
type, so `--device cpu --smoke` runs the code that `--device cuda` runs, in seconds, on a tiny
batch (tools/gpu_check.sh --dry-run does, in CI). --json is rewritten after every proxy. Usage:
  /usr/bin/python3 bench/torch_bench.py --threads 2 --runs 5 --json bench/results/torch_cpu.json
  /usr/bin/python3 bench/torch_bench.py --proxies ntk ntk_fast ntk_fast_vmap --ntk-batch 64 --runs 1
  /usr/bin/python3 bench/torch_bench.py --device cpu --smoke
"""

import argparse
import ast
import json
import math
import os
import statistics
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

# Per-image gradients for ntk_fast_vmap: torch.func from torch 2.0 on (the device image has 2.x),
# functorch with torch.nn.utils.stateless before (Debian's 1.13). The same calls either way.
try:
    from torch.func import functional_call, grad as func_grad, vmap
except ImportError:  # pragma: no cover - torch < 2.0
    try:
        from functorch import grad as func_grad, vmap
        from torch.nn.utils.stateless import functional_call
    except ImportError:
        functional_call = None

OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
EDGES = ((1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2))
DEFAULT_ARCHS = (
    # NB201 6111 (CIFAR-10 optimum)
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|",
    # NB201 0
    "|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|skip_connect~2|",
    # NB201 3160 (the fixture's architecture)
    "|nor_conv_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|avg_pool_3x3~0|none~1|nor_conv_3x3~2|",
    # all 3x3 convolutions: the most expensive cell
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|",
)


def parse_arch(arch):
    ops = []
    for part in arch.strip().strip("|").split("|+|"):
        ops.extend(item.split("~")[0] for item in part.split("|") if item)
    assert len(ops) == 6 and all(op in OPS for op in ops), arch
    return ops


# ---------------------------------------------------------------------------------------------
# The NB201 network with stock modules. `skip` flags let the entropy pass drop BN and ReLU the
# way MAE-DET's scorer does, without rebuilding the network.

class SkippableBN(nn.BatchNorm2d):
    """Train-mode BN. `skip`: identity (entropy). `detach_stats`: the batch statistics are
    constants in the backward pass (ntk_fast); with `record_stats` they are also kept in `frozen`,
    and while `frozen` is set they are used as they are (ntk_fast_vmap's per-image calls)."""

    skip = False
    detach_stats = False
    record_stats = False
    frozen = None

    def forward(self, x):
        if self.skip:
            return x
        if self.frozen is not None:
            mean, var = self.frozen
        elif self.detach_stats:
            with torch.no_grad():
                var, mean = torch.var_mean(x, dim=(0, 2, 3), unbiased=False)
            if self.record_stats:
                self.frozen = (mean, var)
        else:
            return super().forward(x)
        return F.batch_norm(x, mean, var, self.weight, self.bias, False, 0.0, self.eps)


class SkippableReLU(nn.ReLU):
    skip = False

    def forward(self, x):
        return x if self.skip else super().forward(x)


class ReLUConvBN(nn.Module):
    def __init__(self, cin, cout, k, stride):
        super().__init__()
        self.op = nn.Sequential(SkippableReLU(), nn.Conv2d(cin, cout, k, stride, k // 2, bias=False),
                                SkippableBN(cout))

    def forward(self, x):
        return self.op(x)


class Zero(nn.Module):
    def forward(self, x):
        return x.mul(0.0)


def make_op(op, c):
    if op == "none":
        return Zero()
    if op == "skip_connect":
        return nn.Identity()
    if op == "avg_pool_3x3":
        return nn.AvgPool2d(3, 1, 1, count_include_pad=False)
    return ReLUConvBN(c, c, 1 if op == "nor_conv_1x1" else 3, 1)


class Cell(nn.Module):
    def __init__(self, ops, c):
        super().__init__()
        self.layers = nn.ModuleList([make_op(op, c) for op in ops])

    def forward(self, x):
        nodes = [x]
        for node in (1, 2, 3):
            nodes.append(sum(self.layers[e](nodes[src]) for e, (dst, src) in enumerate(EDGES) if dst == node))
        return nodes[3]


class ReductionBlock(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.conv_a = ReLUConvBN(cin, cout, 3, 2)
        self.conv_b = ReLUConvBN(cout, cout, 3, 1)
        self.downsample = nn.Sequential(nn.AvgPool2d(2, 2), nn.Conv2d(cin, cout, 1, bias=False))

    def forward(self, x):
        return self.conv_b(self.conv_a(x)) + self.downsample(x)


class Network(nn.Module):
    def __init__(self, ops, num_classes=10, C=16, N=5):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, C, 3, 1, 1, bias=False), SkippableBN(C))
        cells, chans = [], (C, 2 * C, 4 * C)
        for stage, c in enumerate(chans):
            if stage:
                cells.append(ReductionBlock(chans[stage - 1], c))
            cells.extend(Cell(ops, c) for _ in range(N))
        self.cells = nn.ModuleList(cells)
        self.lastact = nn.Sequential(SkippableBN(chans[-1]), SkippableReLU())
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(chans[-1], num_classes)

    def forward(self, x):
        x = self.stem(x)
        for cell in self.cells:
            x = cell(x)
        return self.classifier(self.pool(self.lastact(x)).flatten(1))

    def set_skip(self, skip):
        for m in self.modules():
            if isinstance(m, (SkippableBN, SkippableReLU)):
                m.skip = skip

    def bns(self):
        return [m for m in self.modules() if isinstance(m, SkippableBN)]


def relu_modules(net):
    return [m for _, m in net.named_modules() if "ReLU" in str(type(m))]


def device_of(net):
    return next(net.parameters()).device


def sync(device):
    """Waits for the device's queued work (timing); nothing to wait for on the CPU."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


# ---------------------------------------------------------------------------------------------
# Proxies

class NaswotHooks:
    def __init__(self, net, batch):
        self.K = np.zeros((batch, batch))
        self.active = True
        self.handles = [m.register_forward_hook(self.hook) for m in relu_modules(net)]

    def hook(self, module, inp, out):
        if not self.active:
            return
        x = (inp[0].view(inp[0].size(0), -1) > 0).float()
        # As the official code: both products copied to the host each hook (.cpu() is a no-op
        # on the CPU; .numpy() of a CUDA tensor is a TypeError).
        self.K = self.K + (x @ x.t()).cpu().numpy() + ((1.0 - x) @ (1.0 - x).t()).cpu().numpy()

    def remove(self):
        for h in self.handles:
            h.remove()


def naswot(net, x):
    hooks = NaswotHooks(net, x.shape[0])
    net(x)
    hooks.remove()
    return np.linalg.slogdet(hooks.K)[1]


def ni(net, x):
    o = net(x)
    o2 = net(x + 0.05 * torch.randn_like(x))
    return -float(((o.double() - o2.double()) ** 2).sum())


def naswot_ni(net, x):
    hooks = NaswotHooks(net, x.shape[0])
    o = net(x)
    hooks.active = False
    o2 = net(x + 0.05 * torch.randn_like(x))
    hooks.remove()
    return np.linalg.slogdet(hooks.K)[1], -float(((o.double() - o2.double()) ** 2).sum())


def entropy(net, batch, repeats):
    net.set_skip(True)
    values = []
    for _ in range(repeats):
        for m in net.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.normal_(m.weight)
        out = net.stem(torch.randn(batch, 3, 32, 32, device=device_of(net)))
        total = 0.0
        for block in [None] + list(net.cells):
            if block is not None:
                out = block(out)
            s = out.std()
            total += math.log(float(s))
            out = out / s
        values.append(total + math.log(64.0))
    net.set_skip(False)
    return float(np.mean(values))


def entropy_seed(net, batch):
    for m in net.modules():
        if isinstance(m, nn.Conv2d):
            k = m.kernel_size[0] * m.kernel_size[1] * m.out_channels
            nn.init.normal_(m.weight, 0.0, 1.0 / math.sqrt(k))
        elif isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0.0, 1.0 / math.sqrt(m.out_features))
            nn.init.zeros_(m.bias)
    head = net.lastact[1]
    acts = []

    def hook(module, inp, out):
        v = inp[0].clamp(min=0) if module is head else inp[0].abs()
        acts.append(float(v.flatten(1).sum(1).mean()))
    handles = [m.register_forward_hook(hook) for m in relu_modules(net)]
    net(torch.randn(batch, 3, 32, 32, device=device_of(net)))
    for h in handles:
        h.remove()
    return sum(math.log1p(a) for a in acts)


def ntk_condition(grads):
    """TE-NAS: Theta = einsum('nc,mc->nm') in float32, eigenvalues ascending, kappa = max / min."""
    theta = torch.einsum("nc,mc->nm", [grads, grads])
    ev = torch.linalg.eigvalsh(theta)
    return float(ev[-1] / ev[0])


def ntk_loop(net, x, detach_stats):
    """TE-NAS get_ntk_n: one forward, one backward per image (retain_graph), 'weight' grads."""
    for m in net.bns():
        m.detach_stats = detach_stats
    try:
        with torch.enable_grad():
            net.zero_grad()
            logits = net(x)
            grads = []
            for i in range(x.shape[0]):
                logits[i:i + 1].backward(torch.ones_like(logits[i:i + 1]), retain_graph=True)
                grads.append(torch.cat([p.grad.view(-1) for n, p in net.named_parameters()
                                        if "weight" in n and p.grad is not None], -1))
                net.zero_grad()
    finally:
        for m in net.bns():
            m.detach_stats = False
    return ntk_condition(torch.stack(grads, 0))


def ntk_fast_vmap(net, x):
    """ntk_fast vectorised: freeze the batch's BN statistics in one no-grad forward, then vmap
    over images of grad(sum of the image's logits) w.r.t. the 'weight' parameters."""
    bns = net.bns()
    for m in bns:
        m.detach_stats, m.record_stats, m.frozen = True, True, None
    try:
        with torch.no_grad():
            net(x)
        weights = {n: p.detach() for n, p in net.named_parameters() if "weight" in n}

        def f(w, xi):
            return functional_call(net, w, (xi.unsqueeze(0),)).sum()

        with torch.enable_grad():
            per_image = vmap(func_grad(f), in_dims=(None, 0))(weights, x)
        grads = torch.cat([per_image[n].reshape(x.shape[0], -1) for n in weights], 1)
    finally:
        for m in bns:
            m.detach_stats, m.record_stats, m.frozen = False, False, None
    return ntk_condition(grads)


# Tensor factories that take a device; each call in this file must name it (checked by --smoke).
FACTORIES = {"randn", "rand", "randint", "zeros", "ones", "empty", "full", "arange", "tensor", "eye",
             "linspace", "normal", "as_tensor"}


def device_hazards(path):
    """What a CPU run cannot notice but --device cuda would trip on: torch.<factory>(...) without
    device= (a CPU tensor, or a mixed-device error) and .numpy() not right after .cpu() (a
    TypeError on CUDA tensors). Returns 'line N: ...' strings."""
    tree = ast.parse(open(path).read(), path)
    bad = []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        f = node.func
        if (f.attr in FACTORIES and isinstance(f.value, ast.Name) and f.value.id == "torch"
                and not any(k.arg == "device" for k in node.keywords)):
            bad.append("line %d: torch.%s without device=" % (node.lineno, f.attr))
        if f.attr == "numpy" and not (isinstance(f.value, ast.Call) and isinstance(f.value.func, ast.Attribute)
                                      and f.value.func.attr == "cpu"):
            bad.append("line %d: .numpy() not after .cpu()" % node.lineno)
    return bad


def device_info(device):
    info = {"device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
            "tf32_cudnn": bool(torch.backends.cudnn.allow_tf32),
            "tf32_matmul": bool(torch.backends.cuda.matmul.allow_tf32),
            "NVIDIA_TF32_OVERRIDE": os.environ.get("NVIDIA_TF32_OVERRIDE")}
    if device.type != "cuda":
        info["tf32_cudnn"] = info["tf32_matmul"] = False  # flags only act on CUDA
    return info


def write_json(path, payload):
    tmp = path + ".part"
    with open(tmp, "w") as fh:
        json.dump(payload, fh, indent=1)
    os.replace(tmp, path)  # a reader (or a killed run) never sees half a file


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--arch", nargs="+", default=list(DEFAULT_ARCHS))
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--entropy-batch", type=int, default=32)
    ap.add_argument("--entropy-repeats", type=int, default=4)
    ap.add_argument("--ntk-batch", type=int, default=64, help="images of the ntk proxies")
    ap.add_argument("--num-classes", type=int, default=10)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--max-seconds", type=float, default=float("inf"),
                    help="stop timing a proxy after this many seconds (at least one timed run)")
    ap.add_argument("--proxies", nargs="+", default=["naswot", "ni", "naswot+ni", "entropy", "entropy_seed"])
    ap.add_argument("--json", help="write the results here (rewritten after every proxy)")
    ap.add_argument("--device", default="cpu", choices=("cpu", "cuda"),
                    help="cuda: the same work on the GPU (TF32 as PyTorch's defaults, or off with "
                         "NVIDIA_TF32_OVERRIDE=0)")
    ap.add_argument("--smoke", action="store_true",
                    help="every proxy once on one architecture and a tiny batch, each value checked "
                         "(not NaN), and every tensor factory call checked for device=; exit 1 on failure")
    args = ap.parse_args()
    if args.smoke:
        args.arch = [DEFAULT_ARCHS[2]]  # 3160: every op
        args.batch, args.entropy_batch, args.entropy_repeats, args.ntk_batch = 8, 4, 1, 4
        args.warmup, args.runs = 1, 1
        args.threads = 1  # tiny tensors: more threads only contend (CI runs this beside other work)
        args.proxies = ["naswot", "ni", "naswot+ni", "entropy", "entropy_seed", "ntk", "ntk_fast"] + (
            ["ntk_fast_vmap"] if functional_call is not None else [])
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    device = torch.device(args.device)

    nets = [Network(parse_arch(a), args.num_classes).to(device) for a in args.arch]
    x = torch.randn(args.batch, 3, 32, 32, device=device)  # timing only: real images cost the same
    x_ntk = torch.randn(args.ntk_batch, 3, 32, 32, device=device)

    fns = {
        "naswot": lambda net: naswot(net, x),
        "ni": lambda net: ni(net, x),
        "naswot+ni": lambda net: naswot_ni(net, x),
        "entropy": lambda net: entropy(net, args.entropy_batch, args.entropy_repeats),
        "entropy_seed": lambda net: entropy_seed(net, args.batch),
        "ntk": lambda net: ntk_loop(net, x_ntk, False),
        "ntk_fast": lambda net: ntk_loop(net, x_ntk, True),
    }
    unknown = [p for p in args.proxies if p not in fns and p != "ntk_fast_vmap"]
    if unknown:
        ap.error("unknown proxies: %s (choose from %s ntk_fast_vmap)" % (" ".join(unknown), " ".join(fns)))
    if functional_call is not None:
        fns["ntk_fast_vmap"] = lambda net: ntk_fast_vmap(net, x_ntk)
    elif "ntk_fast_vmap" in args.proxies:
        print("ntk_fast_vmap skipped: neither torch.func nor functorch imports", flush=True)
        args.proxies = [p for p in args.proxies if p != "ntk_fast_vmap"]
    print("torch %s, %s, %d threads, batch %d, entropy %dx%d, ntk batch %d, %d archs, %d warmup + %d runs" % (
        torch.__version__, device, args.threads, args.batch, args.entropy_batch, args.entropy_repeats,
        args.ntk_batch, len(nets), args.warmup, args.runs), flush=True)
    payload = dict(torch=torch.__version__, threads=args.threads, batch=args.batch, **device_info(device),
                   entropy_batch=args.entropy_batch, entropy_repeats=args.entropy_repeats,
                   ntk_batch=args.ntk_batch, archs=args.arch, warmup=args.warmup, runs=args.runs,
                   proxies={})
    failures = []
    with torch.no_grad():
        for name in args.proxies:
            fn = fns[name]
            per_arch = []  # mean seconds per architecture, one value per run
            start = time.perf_counter()
            for run in range(args.warmup + args.runs):
                sync(device)
                t0 = time.perf_counter()
                values = [fn(net) for net in nets]
                sync(device)
                t1 = time.perf_counter()
                if run >= args.warmup:
                    per_arch.append((t1 - t0) / len(nets))
                    if t1 - start > args.max_seconds:
                        break
            med = statistics.median(per_arch)
            flat = [float(v) for vs in values for v in (vs if isinstance(vs, tuple) else (vs,))]
            if any(math.isnan(v) for v in flat):
                failures.append("%s: NaN value" % name)
            payload["proxies"][name] = {"median_s": med, "archs_per_s": 1.0 / med, "runs_s": per_arch,
                                        "values": [v if math.isfinite(v) else str(v) for v in flat]}
            print("%-13s median %.4f s/arch  %.2f archs/s" % (name, med, 1.0 / med), flush=True)
            if args.json:
                write_json(args.json, payload)
    if args.smoke:
        failures += device_hazards(os.path.abspath(__file__))
        missing = [p for p in ("naswot", "ni", "naswot+ni", "entropy", "entropy_seed", "ntk", "ntk_fast")
                   if p not in payload["proxies"]]
        if missing:
            failures.append("proxies not run: %s" % " ".join(missing))
        print("smoke %s%s" % ("FAILED: " if failures else "ok", "; ".join(failures)), flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())

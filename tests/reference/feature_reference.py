#!/usr/bin/python3
"""Independent PyTorch reference for the hybridnas proxies swap, swap_reg, meco, az_expressivity,
az_progressivity and az_trainability.

Written from docs/proxies.md (sections swap, swap_reg, meco, az_*), on the NB201 network and
Philox banks of nb201_reference.py / philox.py, in float64 throughout:
- swap (SWAP-NAS, pym1024/SWAP): NB201's network (xautodl layout) in train mode, conv and linear
  weights N(0,1) from the entropy bank (purpose 1, repeat r), biases 0, BN gamma 1 beta 0; one
  forward of the first min(16, B) real images; forward hooks on every nn.ReLU with a 4-D input
  take sign(output) flattened per image and concatenated: N x U; swap = the number of distinct
  rows of its transpose (torch.unique(dim=0)), averaged over --swap-repeats repeats.
- swap_reg: swap * exp(-(P - mu)^2 / sigma), P = the parameter count / 1e3 (conv weights, BN
  gamma and beta, classifier weight and bias), mu = the count (thousands) of the all-3x3 network
  for the same number of classes, sigma = mu^2 (or --swap-mu / --swap-sigma).
- meco (MeCo, HamsterMimi/MeCo correlation/NAS_Bench_201.py): zero-cost-nas's NAS201Model module
  layout rebuilt here (every candidate op built on every edge, only the arch's ops called; cell
  convs with a bias, here 0; cell BN affine=False; stem / reduction / head BN affine), train mode,
  the default-init bank (purpose 0); a forward hook on every named_modules() entry takes the
  first image of the module's output, reshapes to C x rest, torch.corrcoef, NaN / inf -> 0, and
  the smallest real part of torch.linalg.eig; meco = the sum of the non-NaN / non-inf terms. The
  input is the first of the run's images (record --image-offset), batch 1.
- az_* (AZ-NAS, cvlab-yonsei/AZ-NAS NB201/ZeroShotProxy/compute_az_nas_score.py): NB201's network
  in train mode (BN batch statistics in the graph), Kaiming bank (purpose 7), min(64, B) Gaussian
  images (purpose 8); F_0 the stem output, F_1..F_17 the block outputs. E_b = -sum p ln(p + 1e-8)
  of the eigenvalues (eigvalsh) of the centred (BHW) x C covariance, p = s / sum s;
  expressivity = sum E_b, progressivity = min_b (E_b - E_{b-1}); trainability = mean over
  b = 17..1 of -sigma - 1 / (sigma + 1e-6) + 2, sigma the largest singular value of
  G_in^T G_out / (B H_out W_out), G_out a Rademacher cotangent on F_b (purpose 9, repeat b, +1 for
  an odd word 0), G_in = autograd.grad(F_b, F_{b-1}, G_out) pixel-unshuffled by the stride when the
  resolutions differ; a block with G_in == G_out gives -inf (flag nonfinite). An undefined E_b
  (NaN) makes expressivity and progressivity worst (flag zero_variance).

Usage:
  /usr/bin/python3 tests/reference/feature_reference.py --archs A1 A2 ... --out DIR --data FILE
      --image-offset N --batch B --swap-repeats R [--num-classes K] [--score-seed S]
      [--swap-mu MU --swap-sigma SIGMA] [--threads T]
Writes DIR/feature_reference.json (worst values as the string "-inf"; degenerate cells as
{"arch": ..., "degenerate": true}).
"""

import argparse
import json
import math
import os
import sys
import time
import warnings

import numpy as np
import torch
import torch.nn as nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import nb201_reference as ref  # noqa: E402
import philox  # noqa: E402

DT = torch.float64
# corrcoef of a one-column matrix (1 x 1 or flat outputs): NaN, set to 0 as in MeCo's code.
warnings.filterwarnings("ignore", message="cov\\(\\): degrees of freedom")


# ---------------------------------------------------------------------------------------------
# Weight banks by role. A role is ("stem",), ("edge", g, e, kind) or ("red", r, part); each model
# layout maps roles to its own parameter names.

def conv_roles(ops):
    """(role, shape, slot) of every conv weight the NB201 network builds for `ops`."""
    out = [(("stem",), (16, 3, 3, 3), philox.SLOT_STEM)]
    for stage, c in enumerate(ref.CHANNELS):
        if stage > 0:
            r = stage - 1
            cin, cout = ref.CHANNELS[r], ref.CHANNELS[r + 1]
            sa, sb, ss = philox.reduction_slots(r)
            out += [(("red", r, "a"), (cout, cin, 3, 3), sa), (("red", r, "b"), (cout, cout, 3, 3), sb),
                    (("red", r, "s"), (cout, cin, 1, 1), ss)]
        for j in range(ref.CELLS_PER_STAGE):
            g = stage * ref.CELLS_PER_STAGE + j
            for e, op in enumerate(ops):
                if op in ("nor_conv_1x1", "nor_conv_3x3"):
                    kind = 1 if op == "nor_conv_3x3" else 0
                    k = 3 if kind else 1
                    out.append((("edge", g, e, kind), (c, c, k, k), philox.edge_slot(g, e, kind)))
    return out


class Bank:
    """Cached bank tensors (float32 arrays) of one score seed."""

    def __init__(self, seed, num_classes):
        self.seed, self.num_classes, self.cache = seed, num_classes, {}

    def conv(self, shape, slot, purpose, repeat):
        key = ("conv", slot, purpose, repeat)
        if key not in self.cache:
            if purpose == philox.PURPOSE_KAIMING_WEIGHTS:
                self.cache[key] = philox.kaiming_conv_weight(self.seed, shape, slot)
            else:
                self.cache[key] = philox.conv_weight(self.seed, shape, slot, purpose, repeat)
        return self.cache[key]

    def linear(self, purpose, repeat):
        key = ("linear", purpose, repeat)
        if key not in self.cache:
            if purpose == philox.PURPOSE_DEFAULT_INIT:
                self.cache[key] = philox.linear_params(self.seed, self.num_classes, purpose)
            elif purpose == philox.PURPOSE_ENTROPY_WEIGHTS:
                self.cache[key] = philox.entropy_linear_params(self.seed, self.num_classes, repeat)
            elif purpose == philox.PURPOSE_KAIMING_WEIGHTS:
                self.cache[key] = philox.kaiming_linear_params(self.seed, self.num_classes)
            else:
                raise ValueError(purpose)
        return self.cache[key]


def xautodl_name(role):
    if role[0] == "stem":
        return "stem.0.weight"
    if role[0] == "red":
        i = ref.REDUCTION_CELLS[role[1]]
        return {"a": "cells.%d.conv_a.op.1.weight", "b": "cells.%d.conv_b.op.1.weight",
                "s": "cells.%d.downsample.1.weight"}[role[2]] % i
    _, g, e, _ = role
    stage, j = divmod(g, ref.CELLS_PER_STAGE)
    return "cells.%d.layers.%d.op.1.weight" % (stage * (ref.CELLS_PER_STAGE + 1) + j, e)


def load(model, ops, bank, purpose, repeat, name_of):
    """Conv weights and the classifier from the bank; BN gamma 1 / beta 0; conv biases 0."""
    params = dict(model.named_parameters())
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d) and m.affine:
                m.weight.fill_(1.0)
                m.bias.fill_(0.0)
            if isinstance(m, nn.Conv2d) and m.bias is not None:
                m.bias.zero_()
        seen = set()
        for role, shape, slot in conv_roles(ops):
            name = name_of(role)
            p = params[name]
            p.copy_(torch.from_numpy(bank.conv(shape, slot, purpose, repeat)).reshape(p.shape).to(p.dtype))
            seen.add(name)
        w, b = bank.linear(purpose, repeat)
        params["classifier.weight"].copy_(torch.from_numpy(w).to(DT))
        params["classifier.bias"].copy_(torch.from_numpy(b).to(DT))
        seen |= {"classifier.weight", "classifier.bias"}
    return seen


# ---------------------------------------------------------------------------------------------
# swap / swap_reg on NB201's network

def swap_counts(model, ops, bank, x, repeats):
    acts = []

    def hook(module, inputs, output):
        if isinstance(inputs, tuple) and inputs[0].dim() == 4:
            acts.append(output.detach())

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, nn.ReLU)]
    counts = []
    try:
        for r in range(repeats):
            load(model, ops, bank, philox.PURPOSE_ENTROPY_WEIGHTS, r, xautodl_name)
            acts.clear()
            with torch.no_grad():
                model(x)
            a = torch.cat([f.reshape(x.shape[0], -1) for f in acts], 1)
            counts.append(int(torch.unique(torch.sign(a).T, dim=0).shape[0]))
    finally:
        for h in handles:
            h.remove()
    return counts


# ---------------------------------------------------------------------------------------------
# MeCo on zero-cost-nas's NAS201Model layout (foresight/models/nasbench2.py, nasbench2_ops.py)

ZC_OPS = ("none", "avg_pool_3x3", "nor_conv_3x3", "nor_conv_1x1", "skip_connect")


class ZcReLUConvBN(nn.Module):
    def __init__(self, cin, cout, k, stride, pad, affine):
        super().__init__()
        self.op = nn.Sequential(nn.ReLU(inplace=False), nn.Conv2d(cin, cout, k, stride, pad, bias=not affine),
                                nn.BatchNorm2d(cout, affine=affine, track_running_stats=affine))

    def forward(self, x):
        return self.op(x)


def zc_op(name, c):
    # none, skip and pooling have the module shape of nb201_reference's (a pooling module with one
    # AvgPool2d child: two hooks): MeCo's hooks see the same; only the conv edge differs (a bias,
    # BN without affine).
    if name == "none":
        return ref.Zero()
    if name == "avg_pool_3x3":
        return ref.AvgPool3x3()
    if name == "nor_conv_3x3":
        return ZcReLUConvBN(c, c, 3, 1, 1, False)
    if name == "nor_conv_1x1":
        return ZcReLUConvBN(c, c, 1, 1, 0, False)
    return ref.Identity()


class ZcSearchCell(nn.Module):
    def __init__(self, c, ops):
        super().__init__()
        self.options = nn.ModuleList([zc_op(name, c) for _ in range(6) for name in ZC_OPS])
        self.keep_mask = [ops[e] == name for e in range(6) for name in ZC_OPS]

    def forward(self, x):
        outs, idx = [x], 0
        for node in range(3):
            edges_in = []
            for src in range(node + 1):
                for _ in ZC_OPS:
                    if self.keep_mask[idx]:
                        edges_in.append(self.options[idx](outs[src]))
                    idx += 1
            outs.append(sum(edges_in))
        return outs[-1]


class ZcReduction(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.residual = nn.Sequential(nn.AvgPool2d(2, 2, 0), nn.Conv2d(cin, cout, 1, 1, 0, bias=False))
        self.conv_a = ZcReLUConvBN(cin, cout, 3, 2, 1, True)
        self.conv_b = ZcReLUConvBN(cout, cout, 3, 1, 1, True)

    def forward(self, x):
        return self.residual(x) + self.conv_b(self.conv_a(x))


class ZcStem(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.net = nn.Sequential(nn.Conv2d(3, c, 3, padding=1, bias=False), nn.BatchNorm2d(c))

    def forward(self, x):
        return self.net(x)


class ZcTop(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.lastact = nn.Sequential(nn.BatchNorm2d(c), nn.ReLU(inplace=True))
        self.global_pooling = nn.AdaptiveAvgPool2d(1)

    def forward(self, x):
        x = self.global_pooling(self.lastact(x))
        return x.view(x.size(0), -1)


class ZcNAS201Model(nn.Module):
    def __init__(self, ops, num_classes, c=16):
        super().__init__()
        self.stem = ZcStem(c)
        self.stack_cell1 = nn.Sequential(*[ZcSearchCell(c, ops) for _ in range(5)])
        self.reduction1 = ZcReduction(c, 2 * c)
        self.stack_cell2 = nn.Sequential(*[ZcSearchCell(2 * c, ops) for _ in range(5)])
        self.reduction2 = ZcReduction(2 * c, 4 * c)
        self.stack_cell3 = nn.Sequential(*[ZcSearchCell(4 * c, ops) for _ in range(5)])
        self.top = ZcTop(4 * c)
        self.classifier = nn.Linear(4 * c, num_classes)
        self.pre_GAP = nn.Sequential(nn.BatchNorm2d(4 * c), nn.ReLU(inplace=True))  # built, never called

    def forward(self, x):
        x = self.stem(x)
        x = self.reduction1(self.stack_cell1(x))
        x = self.reduction2(self.stack_cell2(x))
        return self.classifier(self.top(self.stack_cell3(x)))


def zc_name(role):
    if role[0] == "stem":
        return "stem.net.0.weight"
    if role[0] == "red":
        r = role[1] + 1
        return {"a": "reduction%d.conv_a.op.1.weight", "b": "reduction%d.conv_b.op.1.weight",
                "s": "reduction%d.residual.1.weight"}[role[2]] % r
    _, g, e, kind = role
    stage, j = divmod(g, ref.CELLS_PER_STAGE)
    return "stack_cell%d.%d.options.%d.op.1.weight" % (stage + 1, j, e * 5 + ZC_OPS.index(
        "nor_conv_3x3" if kind else "nor_conv_1x1"))


def meco(ops, bank, num_classes, x1):
    model = ZcNAS201Model(ops, num_classes).to(DT)
    model.train()
    load(model, ops, bank, philox.PURPOSE_DEFAULT_INIT, 0, zc_name)
    terms = []

    def hook(module, inputs, output):
        fea = output[0].detach().clone()
        fea = fea.reshape(fea.shape[0], -1)
        corr = torch.corrcoef(fea)
        corr[torch.isnan(corr)] = 0
        corr[torch.isinf(corr)] = 0
        terms.append(float(torch.min(torch.real(torch.linalg.eig(corr)[0]))))

    handles = [m.register_forward_hook(hook) for _, m in model.named_modules()]
    try:
        with torch.no_grad():
            model(x1)
    finally:
        for h in handles:
            h.remove()
    kept = [t for t in terms if math.isfinite(t)]
    return float(np.sum(kept)), len(terms)


# ---------------------------------------------------------------------------------------------
# AZ-NAS on NB201's network

def az_scores(model, ops, bank, x, seed):
    load(model, ops, bank, philox.PURPOSE_KAIMING_WEIGHTS, 0, xautodl_name)
    model.set_detach_bn_stats(False)
    model.train()
    with torch.enable_grad():
        feats = [model.stem(x)]
        for cell in model.cells:
            feats.append(cell(feats[-1]))
        ent = []
        for f in feats:
            b, c, h, w = f.shape
            z = f.detach().permute(0, 2, 3, 1).reshape(b * h * w, c)
            z = z - z.mean(dim=0, keepdim=True)
            s = torch.linalg.eigvalsh(z.T @ z / z.shape[0])
            p = s / s.sum()
            ent.append(float((-p * torch.log(p + 1e-8)).sum()))
        tr, identity_blocks = [], []
        for bidx in reversed(range(1, len(feats))):
            f_out, f_in = feats[bidx], feats[bidx - 1]
            g_out = torch.from_numpy(philox.rademacher_tensor(
                seed, tuple(f_out.shape), philox.SLOT_STEM, philox.PURPOSE_AZ_COTANGENT, bidx)).to(DT)
            g_in = torch.autograd.grad(f_out, f_in, g_out, retain_graph=False)[0]
            if g_out.shape == g_in.shape and bool(torch.all(g_in == g_out)):
                tr.append(-math.inf)
                identity_blocks.append(bidx)
                continue
            if g_out.shape[2:] != g_in.shape[2:]:
                g_in = nn.functional.pixel_unshuffle(g_in, g_in.shape[2] // g_out.shape[2])
            bo, co, ho, wo = g_out.shape
            go = g_out.permute(0, 2, 3, 1).reshape(bo * ho * wo, co)
            gi = g_in.permute(0, 2, 3, 1).reshape(bo * ho * wo, g_in.shape[1])
            sig = float(torch.linalg.svdvals(gi.T @ go / (bo * ho * wo)).max())
            tr.append(-sig - 1.0 / (sig + 1e-6) + 2.0)
    ent = np.array(ent)
    res = {"az_block_entropy": ent.tolist(), "az_block_trainability": tr[::-1]}  # b = 1..17
    flags = {}
    if np.any(np.isnan(ent)):  # expressivity and progressivity only: trainability does not use E_b
        for k in ("az_expressivity", "az_progressivity"):
            res[k] = None
            flags[k] = "zero_variance"
    else:
        res["az_expressivity"] = float(np.sum(ent))
        res["az_progressivity"] = float(np.min(ent[1:] - ent[:-1]))
    if identity_blocks:
        res["az_trainability"] = None
        flags["az_trainability"] = "nonfinite"
    else:
        res["az_trainability"] = float(np.mean(tr))
    return res, flags


# ---------------------------------------------------------------------------------------------

def json_safe(v):
    if v is None:
        return "-inf"
    if isinstance(v, float) and not math.isfinite(v):
        return "-inf" if v < 0 or math.isnan(v) else "+inf"
    return v


def score_arch(arch, args, bank, mu, sigma, swap_x, meco_x, az_x):
    ops = ref.parse_arch(arch)
    if ref.is_degenerate(ops):
        return {"arch": arch, "degenerate": True}
    res = {"arch": arch, "degenerate": False}
    sec = {}
    model = ref.NB201Net(ops, args.num_classes).to(DT)
    t = time.time()
    counts = swap_counts(model, ops, bank, swap_x, args.swap_repeats)
    res["swap"] = float(np.mean(counts))
    res["swap_counts"] = counts
    p_thousands = ref.param_count(model) / 1e3
    res["params_thousands"] = p_thousands
    res["swap_reg"] = res["swap"] * math.exp(-(p_thousands - mu) ** 2 / sigma)
    sec["swap"] = time.time() - t
    t = time.time()
    res["meco"], res["meco_hook_calls"] = meco(ops, bank, args.num_classes, meco_x)
    sec["meco"] = time.time() - t
    t = time.time()
    az, flags = az_scores(model, ops, bank, az_x, args.score_seed)
    sec["az"] = time.time() - t
    res.update(az)
    for k in ("az_expressivity", "az_progressivity", "az_trainability"):
        res[k] = json_safe(res[k])
    res["az_block_trainability"] = [json_safe(v) for v in res["az_block_trainability"]]
    res["flags"] = flags
    res["seconds"] = sec
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--archs", nargs="+", required=True, help="NB201 arch strings")
    ap.add_argument("--out", required=True, help="output directory (writes feature_reference.json)")
    ap.add_argument("--data", required=True, help="CIFAR binary file or directory (swap, meco)")
    ap.add_argument("--image-offset", type=int, default=0)
    ap.add_argument("--batch", type=int, default=128,
                    help="swap: first min(16, B) images; meco: the first; az_*: min(64, B) Gaussian images")
    ap.add_argument("--swap-repeats", type=int, default=32)
    ap.add_argument("--swap-mu", type=float, help="default: params (thousands) of the all-3x3 network")
    ap.add_argument("--swap-sigma", type=float, help="default: mu^2")
    ap.add_argument("--num-classes", type=int, default=10)
    ap.add_argument("--score-seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch default)")
    args = ap.parse_args()
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    bank = Bank(args.score_seed, args.num_classes)
    n_swap, n_az = min(16, args.batch), min(64, args.batch)
    _, pixels = ref.read_records(args.data, args.image_offset, n_swap)
    images = ref.normalise(pixels, "cifar100" if args.num_classes == 100 else "cifar10")
    swap_x = torch.from_numpy(np.ascontiguousarray(images[:n_swap])).to(DT)
    meco_x = torch.from_numpy(np.ascontiguousarray(images[:1])).to(DT)
    az_x = torch.from_numpy(philox.image_noise(args.score_seed, (n_az, 3, 32, 32),
                                               philox.PURPOSE_AZ_INPUT, 0)).to(DT)
    mu = args.swap_mu if args.swap_mu is not None else ref.param_count(
        ref.NB201Net(["nor_conv_3x3"] * 6, args.num_classes)) / 1e3
    sigma = args.swap_sigma if args.swap_sigma is not None else mu * mu
    results = []
    for a in args.archs:
        t = time.time()
        r = score_arch(a, args, bank, mu, sigma, swap_x, meco_x, az_x)
        if not r["degenerate"]:
            r["seconds"]["total"] = time.time() - t
        results.append(r)
        print(json.dumps({k: v for k, v in r.items() if k not in ("az_block_entropy", "az_block_trainability")}),
              flush=True)
    os.makedirs(args.out, exist_ok=True)
    settings = {"num_classes": args.num_classes, "score_seed": args.score_seed, "data": os.path.abspath(args.data),
                "image_offset": args.image_offset, "batch": args.batch, "swap_images": n_swap,
                "az_images": n_az, "swap_repeats": args.swap_repeats, "swap_mu": mu, "swap_sigma": sigma,
                "precision": "fp64", "torch": torch.__version__}
    with open(os.path.join(args.out, "feature_reference.json"), "w") as fh:
        json.dump({"settings": settings, "archs": results}, fh)


if __name__ == "__main__":
    main()

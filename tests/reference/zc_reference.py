#!/usr/bin/python3
"""Independent PyTorch reference for the hybridnas proxies params, flops, synflow and logsynflow.

Written from docs/proxies.md, on the NB201 network and Philox weight bank of nb201_reference.py
(xautodl module names; the engine's kDefault bank for the score seed), in float64:
- params: every parameter of the module (conv weights, BN affine gamma and beta, the classifier's
  weight and bias) / 1e6, as xautodl's get_model_infos counts them.
- flops: forward hooks on every Conv2d and Linear of one 1 x 3 x 32 x 32 forward: multiply-adds
  k_h k_w C_in C_out H_out W_out (+ C_out H_out W_out with a bias) and in x out (+ out), / 1e6.
- synflow (zero-cost-nas, the bn=False copy): every parameter replaced by its absolute value, BN
  layers bypassed (identity), one input image of ones, R = sum of the logits, backward; the sum
  over every Conv2d and Linear weight of |w * dR/dw|.
- logsynflow (FreeREA): the same pass, sum of |w * log(dR/dw + 1)|.
- zico (ZiCo, with --data): train-mode BN; for the two halves h of the --batch images, the gradient
  g_h of the mean cross-entropy against their labels for every Conv2d and Linear weight; per
  layer S = sum over weights with std_h g_h != 0 of mean_h |g_h| / std_h g_h (numpy's std over
  the two batches), zico = sum over layers with S > 0 of log S.

Usage:
  /usr/bin/python3 tests/reference/zc_reference.py --archs A1 A2 ... --out DIR [--num-classes K]
      [--data FILE --image-offset N --batch B]   (zico)
Writes DIR/zc_reference.json.
"""

import argparse
import json
import os
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import nb201_reference as ref  # noqa: E402
import philox  # noqa: E402


def count_params(model):
    return sum(p.numel() for p in model.parameters()) / 1e6


def count_flops(model, dtype):
    total = [0]

    def hook(module, inputs, output):
        if isinstance(module, nn.Conv2d):
            kh, kw = module.kernel_size
            hw = output.shape[2] * output.shape[3]
            macs = kh * kw * module.in_channels * module.out_channels // module.groups * hw
            total[0] += macs + (module.out_channels * hw if module.bias is not None else 0)
        elif isinstance(module, nn.Linear):
            total[0] += module.in_features * module.out_features + (
                module.out_features if module.bias is not None else 0)

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    try:
        with torch.no_grad():
            model(torch.zeros(1, 3, 32, 32, dtype=dtype))
    finally:
        for h in handles:
            h.remove()
    return total[0] / 1e6


def synflow_pair(model):
    """(synflow, logsynflow) of `model`, whose parameters this replaces by their absolute values."""
    for m in model.modules():
        if isinstance(m, ref.TrainBN):
            m.skip = True
    with torch.no_grad():
        for p in model.parameters():
            p.abs_()
    model.zero_grad(set_to_none=True)
    with torch.enable_grad():
        model(torch.ones(1, 3, 32, 32, dtype=torch.float64)).sum().backward()
    syn = logsyn = 0.0
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)) and m.weight.grad is not None:
            w, g = m.weight.detach(), m.weight.grad
            syn += float((w * g).abs().sum())
            logsyn += float((w * torch.log(g + 1)).abs().sum())
    return syn, logsyn


def zico(model, images, labels):
    """ZiCo of `model` (train-mode BN, FP64) on the two halves of `images`."""
    half = images.shape[0] // 2
    grads = {}
    for h in range(2):
        x = torch.from_numpy(np.ascontiguousarray(images[h * half:(h + 1) * half])).double()
        y = torch.from_numpy(np.asarray(labels[h * half:(h + 1) * half], dtype=np.int64))
        model.zero_grad(set_to_none=True)
        with torch.enable_grad():
            F.cross_entropy(model(x), y).backward()
        for name, m in model.named_modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)) and m.weight.grad is not None:
                grads.setdefault(name, []).append(m.weight.grad.detach().reshape(-1).numpy().copy())
    score = 0.0
    for g in grads.values():
        g = np.array(g)
        std = np.std(g, axis=0)
        nz = np.nonzero(std)[0]
        s = float(np.sum(np.mean(np.abs(g), axis=0)[nz] / std[nz]))
        if s != 0.0:
            score += float(np.log(s))
    return score


def score_arch(arch, bank, num_classes, images=None, labels=None):
    ops = ref.parse_arch(arch)
    if ref.is_degenerate(ops):
        return {"arch": arch, "degenerate": True}
    model = ref.NB201Net(ops, num_classes)
    ref.load_weights(model, bank.state(model, philox.PURPOSE_DEFAULT_INIT), torch.float64)
    res = {"arch": arch, "degenerate": False, "params": count_params(model),
           "flops": count_flops(model, torch.float64)}
    if images is not None:
        res["zico"] = zico(model, images, labels)  # before synflow_pair, which abs()es the weights
    res["synflow"], res["logsynflow"] = synflow_pair(model)
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--archs", nargs="+", required=True, help="NB201 arch strings")
    ap.add_argument("--num-classes", type=int, default=10)
    ap.add_argument("--score-seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch default)")
    ap.add_argument("--out", required=True, help="output directory (writes zc_reference.json)")
    ap.add_argument("--data", help="CIFAR binary file or directory (zico)")
    ap.add_argument("--image-offset", type=int, default=0)
    ap.add_argument("--batch", type=int, default=32, help="zico's images: two batches of batch / 2")
    args = ap.parse_args()
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    bank = ref.WeightBank(args.score_seed, args.num_classes)
    images = labels = None
    if args.data:
        labels, pixels = ref.read_records(args.data, args.image_offset, args.batch)
        images = ref.normalise(pixels, "cifar100" if args.num_classes == 100 else "cifar10")
    results = [score_arch(a, bank, args.num_classes, images, labels) for a in args.archs]
    os.makedirs(args.out, exist_ok=True)
    settings = {"num_classes": args.num_classes, "score_seed": args.score_seed, "torch": torch.__version__}
    with open(os.path.join(args.out, "zc_reference.json"), "w") as fh:
        json.dump({"settings": settings, "archs": results}, fh)
    for r in results:
        print(json.dumps(r))


if __name__ == "__main__":
    main()

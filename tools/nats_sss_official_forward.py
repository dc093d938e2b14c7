#!/usr/bin/python3
"""Writes tests/reference/nats_sss_official_forward.json: the outputs of xautodl's own NATS-SSS
network (DynamicShapeTinyNet, the "infer.shape.tiny" model NATS-Bench trains) in FP64 on weights
and inputs given by closed formulas, so that tests/test_nats_sss.cpp can run our plan on the same
numbers without a copy of the weights or of xautodl in this repository.

Usage: /usr/bin/python3 tools/nats_sss_official_forward.py XAUTODL_PARENT > tests/reference/nats_sss_official_forward.json
  XAUTODL_PARENT: a directory holding an unmodified xautodl/ package (e.g. `git archive` of
  D-X-Y/AutoDL-Projects, folder xautodl/, into /tmp). Nothing of it is copied into this repo.

Formulas (the test computes the same ones):
  key(name)  = sum over the characters c_j of the parameter's name of (j + 1) * ord(c_j), mod 997
  weight i   = sin(0.61 i + 0.37 key) / sqrt(fan_in), fan_in = numel / out_channels (conv, linear)
  bias i     = 0.1 sin(0.61 i + 0.37 key) (the classifier's)
  BN         = PyTorch's defaults (gamma 1, beta 0), train mode: batch statistics
  input j    = sin(0.0137 j + 0.5), j the flat index of the 2 x 3 x 32 x 32 batch
Outputs: logits (2 x 10), the pooled features (2 x c5) and, per top-level module output (stem,
cells.0 .. cells.4, lastact), its sum and sum of squares.
"""
import json
import math
import sys

import torch

sys.path.insert(0, sys.argv[1])
from xautodl.config_utils import dict2config  # noqa: E402
from xautodl.models import get_cell_based_tiny_net  # noqa: E402

GENOTYPE = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"
ARCHS = ["8:8:8:8:8", "16:32:48:24:56", "24:8:16:16:8", "64:40:40:64:32"]


def key(name):
    return sum((j + 1) * ord(c) for j, c in enumerate(name)) % 997


def formula(name, shape, bias):
    n = 1
    for s in shape:
        n *= s
    k = key(name)
    i = torch.arange(n, dtype=torch.float64)
    v = torch.sin(0.61 * i + 0.37 * k)
    if bias:
        return (0.1 * v).reshape(shape)
    return (v / math.sqrt(n / shape[0])).reshape(shape)


def main():
    torch.set_default_dtype(torch.float64)
    out = {
        "how": "tools/nats_sss_official_forward.py run with /usr/bin/python3 (torch " + torch.__version__ + ") on an "
               "unmodified xautodl/ from D-X-Y/AutoDL-Projects @ f46486e21b71ae6459a700be720d7648b5429569 (git archive "
               "into /tmp); the network is get_cell_based_tiny_net({'name': 'infer.shape.tiny', 'channels': arch, "
               "'genotype': the NATS-SSS cell, 'num_classes': 10}), .double(), .train(); weights and input by the "
               "script's formulas.",
        "archs": [],
    }
    j = torch.arange(2 * 3 * 32 * 32, dtype=torch.float64)
    x = torch.sin(0.0137 * j + 0.5).reshape(2, 3, 32, 32)
    for arch in ARCHS:
        cfg = dict2config({"name": "infer.shape.tiny", "channels": arch, "genotype": GENOTYPE, "num_classes": 10}, None)
        net = get_cell_based_tiny_net(cfg).double().train()
        names = []
        with torch.no_grad():
            for name, p in net.named_parameters():
                if p.dim() >= 2:
                    p.copy_(formula(name, tuple(p.shape), False))
                    names.append(name)
                elif name == "classifier.bias":
                    p.copy_(formula(name, tuple(p.shape), True))
                    names.append(name)
        blocks = []

        def hook(_m, _i, o):
            blocks.append([float(o.sum()), float((o * o).sum())])

        mods = [net.stem] + list(net.cells) + [net.lastact]
        handles = [m.register_forward_hook(hook) for m in mods]
        with torch.no_grad():
            feats, logits = net(x)
        for h in handles:
            h.remove()
        out["archs"].append({
            "arch": arch,
            "weights": names,
            "logits": logits.tolist(),
            "features": feats.tolist(),
            "blocks": blocks,
        })
    json.dump(out, sys.stdout, indent=1)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()

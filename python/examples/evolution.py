#!/usr/bin/env python3
"""A small evolutionary search written in Python, scoring through ``hybridnas serve``.

Regularized evolution (Real et al., 2019) over NAS-Bench-201 cells: a population of arch strings,
tournament selection, one-edge mutation, the oldest member removed. The fitness is one training-free
proxy (NASWOT by default) computed by the hybridnas server; the search loop is plain Python, as in
any NAS framework that calls hybridnas as its scorer.

    python3 python/examples/evolution.py --budget 60 -- --preset cpu-quick --proxies naswot

Arguments after ``--`` go to ``hybridnas serve`` (data, batch sizes, backend, cache, ...).
"""

import argparse
import os
import random
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from hybridnas import Client  # noqa: E402

OPS = ["none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3"]
EDGES = [(1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2)]  # (to node, from node), arch-string order


def arch_string(ops):
    e = ["%s~%d" % (op, src) for op, (_, src) in zip(ops, EDGES)]
    return "|%s|+|%s|%s|+|%s|%s|%s|" % tuple(e)


def mutate(ops, rng):
    child = list(ops)
    i = rng.randrange(len(child))
    child[i] = rng.choice([o for o in OPS if o != child[i]])
    return child


def fitness(record, proxy):
    v = record[proxy]
    if isinstance(v, str):  # "-inf" / "+inf": a flagged worst value (degenerate cell, ...)
        v = float(v)
    return -v if proxy in ("ntk", "ntk_fast") else v  # the NTK condition numbers: lower is better


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--budget", type=int, default=100, help="architectures to score (100)")
    ap.add_argument("--population", type=int, default=20, help="population size (20)")
    ap.add_argument("--sample", type=int, default=5, help="tournament size (5)")
    ap.add_argument("--proxy", default="naswot", help="fitness proxy (naswot)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("serve_args", nargs="*", help="arguments for hybridnas serve (after --)")
    a = ap.parse_args()
    if a.population < 2 or not 1 <= a.sample <= a.population:
        ap.error("--population must be at least 2 and --sample between 1 and --population")
    if a.budget < a.population:
        ap.error("--budget (%d) must be at least --population (%d): the first generation alone "
                 "scores that many" % (a.budget, a.population))
    rng = random.Random(a.seed)
    seen = {}
    with Client(a.serve_args + ["-q"]) as hn:
        if a.proxy not in hn.ready["proxies"]:
            sys.exit("the server does not compute %s (it computes %s): pass --proxies" %
                     (a.proxy, ", ".join(hn.ready["proxies"])))

        def evaluate(batch):
            fresh = [b for b in dict.fromkeys(map(arch_string, batch)) if b not in seen]
            if fresh:  # one request per generation: the server scores it as one population
                for rec in hn.score(fresh, proxies=[a.proxy]):
                    seen[rec["arch"]] = (fitness(rec, a.proxy), rec.get("index"))
            return [seen[arch_string(b)][0] for b in batch]

        population = [[rng.choice(OPS) for _ in EDGES] for _ in range(a.population)]
        scores = evaluate(population)
        while len(seen) < a.budget:
            children = []
            for _ in range(max(1, min(a.population // 4, a.budget - len(seen)))):
                contenders = rng.sample(range(len(population)), a.sample)
                parent = population[max(contenders, key=lambda i: scores[i])]
                children.append(mutate(parent, rng))
            child_scores = evaluate(children)
            population = population[len(children):] + children  # the oldest leave
            scores = scores[len(children):] + child_scores
        best = max(seen.items(), key=lambda kv: kv[1][0])
        print("scored %d architectures; best by %s: %s (NB201 index %s, %s %.4g)" %
              (len(seen), a.proxy, best[0], best[1][1], a.proxy, best[1][0]))


if __name__ == "__main__":
    main()

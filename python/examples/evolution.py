#!/usr/bin/env python3
"""A small evolutionary search written in Python, scoring through ``hybridnas serve``.

Regularized evolution (Real et al., 2019) over the server's space: a population of arch strings,
tournament selection, a mutation that changes one gene (an NB201 cell's edge operation, or one
NATS-SSS layer width), the oldest member removed. The fitness is one training-free proxy (NASWOT by
default) computed by the hybridnas server; the search loop is plain Python, as in any NAS framework
that calls hybridnas as its scorer.

    python3 python/examples/evolution.py --budget 60 -- --preset cpu-quick --proxies naswot
    python3 python/examples/evolution.py --proxy synflow -- --space nats-sss --preset synflow-rank

Arguments after ``--`` go to ``hybridnas serve`` (data, batch sizes, backend, cache, ...).
"""

import argparse
import os
import random
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from hybridnas import Client, HybridnasError  # noqa: E402

OPS = ["none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3"]
EDGES = [(1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2)]  # (to node, from node), arch-string order
WIDTHS = [8, 16, 24, 32, 40, 48, 56, 64]  # NATS-SSS: five layers, each one of these


# A genome is a tuple of genes: NB201, the six edges' operations; NATS-SSS, the five layer widths.
def genes_of(space):
    return (OPS, len(EDGES)) if space == "nb201" else (WIDTHS, 5)


def arch_string(genome, space):
    if space == "nb201":
        e = ["%s~%d" % (op, src) for op, (_, src) in zip(genome, EDGES)]
        return "|%s|+|%s|%s|+|%s|%s|%s|" % tuple(e)
    return ":".join(map(str, genome))


def mutate(genome, space, rng):
    choices, _ = genes_of(space)
    child = list(genome)
    i = rng.randrange(len(child))
    child[i] = rng.choice([g for g in choices if g != child[i]])
    return child


def fitness(record, proxy):
    v = record[proxy]
    if isinstance(v, str):  # "-inf" / "+inf": a flagged worst value (degenerate cell, ...)
        v = float(v)
    return -v if proxy in ("ntk", "ntk_fast") else v  # the NTK condition numbers: lower is better


def main():
    try:
        search()
    except HybridnasError as e:  # the server refused to start or refused a request: its words
        sys.exit("hybridnas: %s" % e)


def search():
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

        space = hn.space
        if space not in ("nb201", "nats-sss"):
            sys.exit("this example knows the nb201 and nats-sss spaces, not the server's %s" % space)
        choices, length = genes_of(space)
        if a.budget > len(choices) ** length:
            sys.exit("--budget %d is more than the %d architectures of the %s space" %
                     (a.budget, len(choices) ** length, space))

        def evaluate(batch):
            fresh = [b for b in dict.fromkeys(arch_string(g, space) for g in batch) if b not in seen]
            if fresh:  # one request per generation: the server scores it as one population
                for rec in hn.score(fresh, proxies=[a.proxy]):
                    if "error" in rec:
                        sys.exit("the server refused %s: %s" % (rec.get("input"), rec["error"]))
                    seen[rec["arch"]] = (fitness(rec, a.proxy), rec.get("index"))
            return [seen[arch_string(g, space)][0] for g in batch]

        population = [[rng.choice(choices) for _ in range(length)] for _ in range(a.population)]
        scores = evaluate(population)
        while len(seen) < a.budget:
            children = []
            for _ in range(max(1, min(a.population // 4, a.budget - len(seen)))):
                contenders = rng.sample(range(len(population)), a.sample)
                parent = population[max(contenders, key=lambda i: scores[i])]
                children.append(mutate(parent, space, rng))
            child_scores = evaluate(children)
            population = population[len(children):] + children  # the oldest leave
            scores = scores[len(children):] + child_scores
        best = max(seen.items(), key=lambda kv: kv[1][0])
        print("scored %d architectures; best by %s: %s (%s index %s, %s %.4g)" %
              (len(seen), a.proxy, best[0], "NB201" if space == "nb201" else "NATS-SSS", best[1][1],
               a.proxy, best[1][0]))


if __name__ == "__main__":
    main()

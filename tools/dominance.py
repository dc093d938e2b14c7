#!/usr/bin/python3
"""Which architectures no proxy aggregation can put first: a Pareto-dominance check over a table.

A fitness that is strictly increasing in every proxy's value (z with positive weights, rank and
logrank of AZ-NAS, whole-space or archive-relative alike) ranks an architecture d above an
architecture a whenever d is better than a in every proxy of the fitness: d Pareto-dominates a.
So if one architecture d dominates every architecture at or above an accuracy threshold, no such
fitness over those proxies ranks any of them above d, and a search that has seen d never answers
with one of them. This prints, for the architectures at or above --threshold (CIFAR-10 test
accuracy of the NB201 table) and each proxy set:
  - the dominators: architectures better in every proxy of the set than all of them,
  - for every proxy of the table, how many of them it ranks above the most accurate dominator
    (a proxy that ranks some above it breaks the dominance when added to the set).
Directions follow SPEC.md 3 (engine/proxy.hpp): higher is better except ntk and ntk_fast.
Flagged values (degenerate cells, non-finite values) are never better than anything.

  /usr/bin/python3 tools/dominance.py [--scores .studydata/cpu_table_merged.jsonl]
      [--threshold 94.2] [--proxies a,b,c ...]

--scores: `hybridnas score --format jsonl` records of the whole space (tools/table_to_cache.py
writes the merged table; .xz is read too). --table: the NB201 CSV (arch_index, cifar10_test,
cifar10_valid). Without --proxies: every proxy in the scores file except ni, then with ni.
Exit status 2 for unreadable input or an unknown proxy.
"""
import argparse
import csv
import json
import lzma
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LOWER_IS_BETTER = {"ntk", "ntk_fast"}


def load(scores_path, table_path, column):
    acc = {}
    with open(table_path, newline="") as fh:
        for row in csv.DictReader(fh):
            acc[int(row["arch_index"])] = float(row[column])
    opener = lzma.open if scores_path.endswith(".xz") else open
    recs = []
    with opener(scores_path, "rt") as fh:
        for line in fh:
            if line.strip():
                r = json.loads(line)
                if r.get("index") in acc:
                    recs.append(r)
    return recs, acc


def oriented(r, p):
    """The proxy's value with higher = better; None when absent, flagged or not finite."""
    v = r.get(p)
    if p in r.get("flags", {}) or not isinstance(v, (int, float)) or v != v or v in (float("inf"), float("-inf")):
        return None
    return -v if p in LOWER_IS_BETTER else v


def check(recs, acc, proxies, threshold):
    top = [r for r in recs if acc[r["index"]] >= threshold]
    # d dominates all of `top` in p iff its value exceeds the best value any of them has in p.
    best_top = {}
    for p in proxies:
        vals = [oriented(r, p) for r in top]
        best_top[p] = max((v for v in vals if v is not None), default=float("-inf"))
    dominators = []
    for r in recs:
        if acc[r["index"]] >= threshold:
            continue
        vals = [oriented(r, p) for p in proxies]
        if all(v is not None and v > best_top[p] for v, p in zip(vals, proxies)):
            dominators.append(r)
    return top, dominators


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scores", default=os.path.join(ROOT, ".studydata", "cpu_table_merged.jsonl"))
    ap.add_argument("--table", default=os.path.join(ROOT, "..", "shared", "data", "nb201", "nb201_cifar10.csv"))
    ap.add_argument("--column", default="cifar10_test")
    ap.add_argument("--threshold", type=float, default=94.2)
    ap.add_argument("--proxies", action="append", help="comma-separated proxy set (repeatable)")
    args = ap.parse_args()
    try:
        recs, acc = load(args.scores, args.table, args.column)
    except (OSError, KeyError, ValueError, lzma.LZMAError) as e:
        print("dominance.py: cannot read %s / %s: %s" % (args.scores, args.table, e), file=sys.stderr)
        return 2
    if not recs:
        print("dominance.py: no architecture of %s is in %s" % (args.scores, args.table), file=sys.stderr)
        return 2
    known = sorted({k for r in recs for k, v in r.items()
                    if isinstance(v, (int, float)) and not isinstance(v, bool) and k != "index"})
    sets = [s.split(",") for s in args.proxies] if args.proxies else [[p for p in known if p != "ni"], known]
    for s in sets:
        unknown = [p for p in s if p not in known]
        if unknown:
            print("dominance.py: %s not in %s (it has %s)" % (",".join(unknown), args.scores, ",".join(known)),
                  file=sys.stderr)
            return 2
    for s in sets:
        top, dominators = check(recs, acc, s, args.threshold)
        print("proxies: %s" % ",".join(s))
        print("  %d architectures at or above %.2f (%s)" % (len(top), args.threshold, args.column))
        if not top:
            continue
        if not dominators:
            print("  no architecture dominates all of them: an aggregation of these proxies can rank one first")
        else:
            dominators.sort(key=lambda r: -acc[r["index"]])
            print("  dominated, in every proxy, by %d architecture(s): %s" % (
                len(dominators), ", ".join("%d (%.2f)" % (r["index"], acc[r["index"]]) for r in dominators[:10])))
        if dominators:
            ref = dominators[0]
            print("  the most accurate dominator: %d %s" % (ref["index"], ref["arch"]))
            print("  of the %d, how many each proxy of the table ranks above it (above 0: it breaks the "
                  "dominance):" % len(top))
            for p in known:
                rv = oriented(ref, p)
                above = sum(1 for r in top if rv is not None and oriented(r, p) is not None and oriented(r, p) > rv)
                print("    %-18s %d%s" % (p, above, "" if p in s else "   (not in the set)"))
    return 0


if __name__ == "__main__":
    sys.exit(main())

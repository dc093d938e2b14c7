#!/usr/bin/python3
"""Which architectures no proxy aggregation can put first: a Pareto-dominance check over a table.

Architecture d dominates architecture a over a proxy set when d is at least as good as a in every
proxy of the set and better in one. A fitness that is strictly increasing in every proxy's value
(z with positive weights, rank and AZ-NAS's logrank; whole-space or archive-relative alike) then
ranks d above a, whatever its weights. So when every architecture at or above an accuracy
threshold is dominated by one below it, no such fitness ranks one of them first over the whole
space, and a search never answers with an architecture once it has seen one of its dominators.
For the architectures at or above --threshold (a column of the benchmark table) and each proxy set,
this prints:
  - how many of them are dominated by an architecture below the threshold (if all are, no such
    fitness can rank one of them first; if not, the undominated ones can be);
  - the architectures below the threshold that dominate all of them, if any;
  - for every proxy of the scores file, how many of them it ranks above the most accurate such
    dominator (a proxy above 0 breaks that dominance when added to the set).
Directions and worst values follow the engine (SPEC.md 3, engine/proxy.hpp, engine/fitness.cpp):
higher is better except ntk and ntk_fast; a flagged, null, absent or non-finite value is the worst
(as are values <= 0 of synflow, ntk and ntk_fast, whose logarithm the fitness takes).

  /usr/bin/python3 tools/dominance.py [--scores .studydata/cpu_table_merged.jsonl]
      [--table ../shared/data/nb201/nb201_cifar10.csv] [--column cifar10_test]
      [--threshold 94.2] [--proxies a,b,c ...]

--scores: `hybridnas score --format jsonl` records of the whole space (tools/table_to_cache.py
writes the merged table; .xz is read too). Without --proxies: every proxy of the scores file
but ni, then all of them with ni. Warns on stderr when architectures of the table at or above
the threshold have no record. Exit status 2 for unreadable or malformed input or an unknown proxy.
"""
import argparse
import csv
import json
import lzma
import math
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LOWER_IS_BETTER = {"ntk", "ntk_fast"}
LOG_TAKEN = {"ntk", "ntk_fast", "synflow"}  # the fitness takes their log: values <= 0 are worst
WORST = float("-inf")


class InputError(Exception):
    pass


def load(scores_path, table_path, column):
    acc = {}
    try:
        with open(table_path, newline="") as fh:
            for n, row in enumerate(csv.DictReader(fh), start=2):
                try:
                    acc[int(row["arch_index"])] = float(row[column])
                except (KeyError, TypeError, ValueError):
                    raise InputError("%s line %d: no integer arch_index and number %s" % (table_path, n, column))
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise InputError("cannot read %s: %s" % (table_path, e))
    opener = lzma.open if scores_path.endswith(".xz") else open
    recs, seen = [], set()
    try:
        with opener(scores_path, "rt") as fh:
            for n, line in enumerate(fh, start=1):
                if not line.strip():
                    continue
                try:
                    r = json.loads(line)
                except ValueError as e:
                    raise InputError("%s line %d: not JSON (%s)" % (scores_path, n, e))
                if not isinstance(r, dict) or not isinstance(r.get("flags", {}), dict):
                    raise InputError("%s line %d: not a score record (an object with a flags object)" % (scores_path, n))
                i = r.get("index")
                if i is None or isinstance(i, bool) or not isinstance(i, int):
                    raise InputError("%s line %d: no integer index (the records need the table's indices)"
                                     % (scores_path, n))
                if i in seen:
                    raise InputError("%s line %d: index %d appears twice" % (scores_path, n, i))
                seen.add(i)
                if i in acc:
                    recs.append(r)
    except (OSError, EOFError, lzma.LZMAError, UnicodeDecodeError) as e:
        raise InputError("cannot read %s: %s" % (scores_path, e))
    return recs, acc


def value(r, p):
    """The proxy's value with higher = better; WORST when flagged, null, absent or not finite."""
    v = r.get(p)
    if p in r.get("flags", {}) or isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        return WORST
    if p in LOG_TAKEN and v <= 0:
        return WORST
    return -v if p in LOWER_IS_BETTER else v


def dominates(d, a):
    """d, a: value tuples. At least as good in every proxy and better in one."""
    return all(x >= y for x, y in zip(d, a)) and any(x > y for x, y in zip(d, a))


def check(recs, acc, proxies, threshold):
    vals = {r["index"]: tuple(value(r, p) for p in proxies) for r in recs}
    top = [r for r in recs if acc[r["index"]] >= threshold]
    below = [r for r in recs if acc[r["index"]] < threshold]
    dominated = {}  # top index -> how many architectures below the threshold dominate it
    common = None   # below-threshold architectures dominating every top one
    for a in top:
        va = vals[a["index"]]
        ds = [d for d in below if dominates(vals[d["index"]], va)]
        dominated[a["index"]] = len(ds)
        ids = {d["index"] for d in ds}
        common = ids if common is None else common & ids
    common = sorted(common or (), key=lambda i: -acc[i])
    return top, dominated, common


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scores", default=os.path.join(ROOT, ".studydata", "cpu_table_merged.jsonl"))
    ap.add_argument("--table", default=os.path.join(ROOT, "..", "shared", "data", "nb201", "nb201_cifar10.csv"))
    ap.add_argument("--column", default="cifar10_test")
    ap.add_argument("--threshold", type=float, default=94.2)
    ap.add_argument("--proxies", action="append", help="comma-separated proxy set (repeatable)")
    args = ap.parse_args()
    if not math.isfinite(args.threshold):
        print("dominance.py: --threshold must be a finite number", file=sys.stderr)
        return 2
    try:
        recs, acc = load(args.scores, args.table, args.column)
    except InputError as e:
        print("dominance.py: %s" % e, file=sys.stderr)
        return 2
    if not recs:
        print("dominance.py: no record of %s has an index of %s" % (args.scores, args.table), file=sys.stderr)
        return 2
    known = sorted({k for r in recs for k, v in r.items()
                    if isinstance(v, (int, float)) and not isinstance(v, bool) and k != "index"})
    if args.proxies:
        sets = [[p for p in s.split(",") if p] for s in args.proxies]
    else:
        sets = [[p for p in known if p != "ni"], known] if "ni" in known else [known]
    for s in sets:
        unknown = [p for p in s if p not in known]
        if unknown or not s or len(set(s)) != len(s):
            print("dominance.py: --proxies %s: %s (the scores file has %s)" % (
                ",".join(s), "unknown: " + ",".join(unknown) if unknown else "empty or a proxy twice",
                ",".join(known)), file=sys.stderr)
            return 2
    have = {r["index"] for r in recs}
    missing = sorted(i for i, a in acc.items() if a >= args.threshold and i not in have)
    if missing:
        print("dominance.py: warning: %d architecture(s) of the table at or above %g have no record in %s "
              "(left out): %s" % (len(missing), args.threshold, args.scores, ", ".join(map(str, missing[:10]))),
              file=sys.stderr)
    for s in sets:
        absent = {p: sum(1 for r in recs if p not in r) for p in s}
        for p, n in absent.items():
            if n:
                print("dominance.py: warning: %d record(s) have no %s (counted as its worst value)" % (n, p),
                      file=sys.stderr)
        top, dominated, common = check(recs, acc, s, args.threshold)
        print("proxies: %s" % ",".join(s))
        print("  %d architectures at or above %g (%s)" % (len(top), args.threshold, args.column))
        if not top:
            continue
        free = sorted((i for i, n in dominated.items() if n == 0), key=lambda i: -acc[i])
        if not free:
            print("  every one is dominated by an architecture below %g: no fitness that grows with every "
                  "proxy ranks one of them first" % args.threshold)
        else:
            print("  %d of them dominated by none below %g: a fitness that grows with every proxy can rank "
                  "one first: %s" % (len(free), args.threshold,
                                     ", ".join("%d (%.2f)" % (i, acc[i]) for i in free[:10])))
        if common:
            print("  dominated, all of them, by %d architecture(s): %s" % (
                len(common), ", ".join("%d (%.2f)" % (i, acc[i]) for i in common[:10])))
            ref = next(r for r in recs if r["index"] == common[0])
            print("  the most accurate of those: %d %s" % (ref["index"], ref.get("arch", "")))
            print("  of the %d, how many each proxy of the scores file ranks above it (above 0: it breaks "
                  "this dominance):" % len(top))
            for p in known:
                rv = value(ref, p)
                above = sum(1 for r in top if value(r, p) > rv)
                print("    %-18s %d%s" % (p, above, "" if p in s else "   (not in the set)"))
        else:
            print("  no single architecture below %g dominates all of them" % args.threshold)
    return 0


if __name__ == "__main__":
    sys.exit(main())

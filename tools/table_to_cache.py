#!/usr/bin/python3
"""Rebuilds the score cache of a committed whole-space CPU table without running a network.

tools/quality_study.py searches over a score cache (`search --cache-only`). The cache itself is
not committed (it is large); the tables are (bench/results/cpu_table_pass{1,..,6}.jsonl.xz). This
script scores one architecture with the table's settings into the cache, so that hybridnas
writes the cache and its settings keys, then inserts every row of the table under those keys
(and writes the decompressed tables beside the cache, for quality_study.py's correlations).

  /usr/bin/python3 tools/table_to_cache.py [--cache .studydata/cpu_table.db]
"""
import argparse
import json
import lzma
import os
import sqlite3
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "build", "cli", "hybridnas")
OPS = ["none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3"]
COMMON = ["--backend", "cpu", "--batch", "32", "--entropy-batch", "16", "--entropy-repeats", "2",
          "--image-offset", "1000", "--score-seed", "0", "--swap-repeats", "4", "-q"]
PASSES = [("cpu_table_pass1.jsonl.xz", "naswot,naswot_once,ni,entropy,entropy_seed,ntk_fast", []),
          ("cpu_table_pass2.jsonl.xz", "ni,ntk_fast", ["--num-classes", "1"]),
          ("cpu_table_pass3.jsonl.xz", "params,flops,synflow,logsynflow", []),
          ("cpu_table_pass4.jsonl.xz", "zico", []),
          ("cpu_table_pass5.jsonl.xz", "az_expressivity,az_progressivity,az_trainability,meco", []),
          ("cpu_table_pass6.jsonl.xz", "swap,swap_reg", [])]


def genes_code(arch):
    """The engine's dense code (net::genes_code): sum of op index * 5^edge, edges in string order."""
    ops = [tok.split("~")[0] for node in arch.split("+") for tok in node.strip("|").split("|")]
    return sum(OPS.index(op) * 5 ** e for e, op in enumerate(ops))


def value(v):
    return float("inf") if v == "+inf" else float("-inf") if v == "-inf" else float(v)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cache", default=os.path.join(ROOT, ".studydata", "cpu_table.db"))
    ap.add_argument("--data", default=os.path.join(ROOT, "..", "shared", "data", "cifar10", "cifar10_sample.bin"))
    args = ap.parse_args()
    os.makedirs(os.path.dirname(os.path.abspath(args.cache)), exist_ok=True)
    for table, proxies, extra in PASSES:
        path = os.path.join(ROOT, "bench", "results", table)
        # One real scoring run creates the cache (or reuses it); the settings file it writes beside
        # its output names this pass's cache keys exactly.
        with tempfile.TemporaryDirectory() as tmp:
            out = os.path.join(tmp, "one.jsonl")
            r = subprocess.run([BIN, "score", "--index", "0", "--proxies", proxies, "--cache", args.cache,
                                "--data", args.data, "--out", out] + COMMON + extra, capture_output=True, text=True)
            if r.returncode != 0:
                sys.exit("hybridnas score failed:\n" + r.stderr)
            keys = json.load(open(out + ".settings.json"))["settings"]["proxy_settings"]
        db = sqlite3.connect(args.cache, timeout=120)
        rows = []
        # The decompressed table too, where tools/quality_study.py reads it (--scores).
        plain = os.path.join(os.path.dirname(os.path.abspath(args.cache)), table[:-len(".xz")])
        with lzma.open(path, "rt") as fh, open(plain, "w") as out:
            for line in fh:
                out.write(line)
                rec = json.loads(line)
                code = genes_code(rec["arch"])
                for p, key in keys.items():
                    if p in rec:
                        rows.append((code, p, key, 0, value(rec[p]), rec["flags"].get(p, ""),
                                     rec["seconds"].get(p, 0.0)))
        with db:
            db.executemany("INSERT OR REPLACE INTO scores VALUES(?, ?, ?, ?, ?, ?, ?)", rows)
        db.close()
        print("%s: %d rows under %s" % (table, len(rows), ", ".join(sorted(keys))), flush=True)
    # Every 10-class pass joined by architecture (tools/quality_study.py's correlations read it).
    folder = os.path.dirname(os.path.abspath(args.cache))
    merged = os.path.join(folder, "cpu_table_merged.jsonl")
    subprocess.run([sys.executable, os.path.join(ROOT, "tools", "merge_scores.py"), merged] +
                   [os.path.join(folder, "cpu_table_pass%d.jsonl" % p) for p in (1, 3, 4, 5, 6)], check=True)


if __name__ == "__main__":
    main()

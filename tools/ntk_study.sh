#!/usr/bin/env bash
# Issue-3 study: what ntk_fast costs in ranking quality. Scores 100 random NB201 architectures
# (search seed 0) with ntk and ntk_fast on the CPU at a small batch, then reports Spearman rho
# between them and each one's Kendall tau against CIFAR-10 test accuracy.
#   tools/ntk_study.sh [BATCH (16)] [COUNT (100)]
set -euo pipefail
cd "$(dirname "$0")/.."
batch=${1:-16}
count=${2:-100}
out=bench/results/ntk_study_b${batch}.jsonl
data=${HYBRIDNAS_DATA:-../shared/data/cifar10/cifar10_sample.bin}
/usr/bin/python3 - "$count" > /tmp/ntk_study_archs.txt <<'PY'
import random, sys
print("\n".join(str(i) for i in random.Random(0).sample(range(15625), int(sys.argv[1]))))
PY
build/cli/hybridnas score --archs /tmp/ntk_study_archs.txt --proxies ntk,ntk_fast --batch "$batch" \
  --data "$data" --image-offset 1000 --backend cpu --out "$out"
/usr/bin/python3 - "$out" <<'PY'
import csv, json, math, sys
from scipy.stats import kendalltau, spearmanr
acc = {int(r["arch_index"]): float(r["cifar10_test"]) for r in csv.DictReader(open("../shared/data/nb201/nb201_cifar10.csv"))}
rows = [json.loads(l) for l in open(sys.argv[1]) if '"arch"' in l]
ok = [r for r in rows if all(isinstance(r[p], float) and math.isfinite(r[p]) for p in ("ntk", "ntk_fast"))]
a = [acc[r["index"]] for r in ok]
ntk, fast = [r["ntk"] for r in ok], [r["ntk_fast"] for r in ok]
print("architectures %d, excluded (degenerate or ill-conditioned) %d" % (len(ok), len(rows) - len(ok)))
print("spearman(ntk, ntk_fast) = %.4f" % spearmanr(ntk, fast)[0])
# Lower kappa is better: tau against accuracy of -kappa.
print("kendall tau vs accuracy: ntk %.4f, ntk_fast %.4f" % (kendalltau([-x for x in ntk], a)[0], kendalltau([-x for x in fast], a)[0]))
print("seconds per arch (one thread): ntk %.2f, ntk_fast %.2f" % (
    sum(r["seconds"]["ntk"] for r in ok) / len(ok), sum(r["seconds"]["ntk_fast"] for r in ok) / len(ok)))
PY

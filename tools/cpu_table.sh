#!/usr/bin/env bash
# Scores the whole NB201 space on the CPU at a reduced configuration, into a score cache and a
# JSON-lines table (resumable: run it again after an interruption). Four passes, the second for
# the seed preset's 1-class heads, the third and fourth for the proxies of docs/proxies.md:
#   pass 1: naswot, naswot_once, ni, entropy, entropy_seed, ntk_fast; 10 classes
#   pass 2: ni, ntk_fast; 1 class
#   pass 3: params, flops, synflow, logsynflow; 10 classes (no images; 2.5 minutes)
#   pass 4: zico; 10 classes (the batch's halves as its two mini-batches; 31 minutes)
#   pass 5: az_expressivity, az_progressivity, az_trainability (32 Gaussian images), meco (record
#           1000); 10 classes
#   pass 6: swap, swap_reg (records 1000-1015), 4 repeats (the authors' code: 32); 10 classes
# Settings: batch 32 (records 1000-1031 of the data: the first training images), entropy 16 x 2,
# ntk_fast on those 32 images, score seed 0. About 4-5 hours on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
data=${HYBRIDNAS_DATA:-../shared/data/cifar10/cifar10_sample.bin}
mkdir -p .studydata
common=(--all --cache .studydata/cpu_table.db --batch 32 --entropy-batch 16 --entropy-repeats 2
        --data "$data" --image-offset 1000 --score-seed 0 --backend cpu --resume)
build/cli/hybridnas score "${common[@]}" --proxies naswot,naswot_once,ni,entropy,entropy_seed,ntk_fast \
  --out .studydata/cpu_table_pass1.jsonl
build/cli/hybridnas score "${common[@]}" --proxies ni,ntk_fast --num-classes 1 --out .studydata/cpu_table_pass2.jsonl
build/cli/hybridnas score "${common[@]}" --proxies params,flops,synflow,logsynflow --out .studydata/cpu_table_pass3.jsonl
build/cli/hybridnas score "${common[@]}" --proxies zico --out .studydata/cpu_table_pass4.jsonl
build/cli/hybridnas score "${common[@]}" --proxies az_expressivity,az_progressivity,az_trainability,meco \
  --out .studydata/cpu_table_pass5.jsonl
build/cli/hybridnas score "${common[@]}" --proxies swap,swap_reg --swap-repeats 4 --out .studydata/cpu_table_pass6.jsonl
for p in 1 2 3 4 5 6; do xz -9 -c .studydata/cpu_table_pass$p.jsonl > bench/results/cpu_table_pass$p.jsonl.xz; done

#!/usr/bin/env bash
# Scores the whole NATS-Bench size space (32,768 networks, --space nats-sss) on the CPU at the
# configuration of the NB201 CPU table (tools/cpu_table.sh), into a score cache and JSON-lines
# tables (resumable: run it again after an interruption; `PASSES="1 3"` runs some passes only).
#   pass 1: params, flops, synflow, logsynflow (no images)
#   pass 2: naswot, naswot_once, ni (records 1000-1031)
#   pass 3: meco (record 1000)
#   pass 4: swap, swap_reg (records 1000-1015, 4 repeats; the authors' code: 32)
#   pass 5: az_expressivity, az_progressivity, az_trainability (32 Gaussian images)
#   pass 6: zico (the batch's halves as its two mini-batches)
#   pass 7: entropy (16 x 2), entropy_seed
#   pass 8: ntk_fast (the slowest; a pass stopped part-way resumes from the cache)
# Settings: batch 32, 10 classes, score seed 0. The committed tables: bench/results/sss_table_passN.jsonl.xz.
set -euo pipefail
cd "$(dirname "$0")/.."
data=${HYBRIDNAS_DATA:-../shared/data/cifar10/cifar10_sample.bin}
bin=${HYBRIDNAS_BIN:-build/cli/hybridnas}
mkdir -p .studydata
common=(--space nats-sss --all --cache .studydata/sss_table.db --batch 32 --entropy-batch 16 --entropy-repeats 2
        --data "$data" --image-offset 1000 --score-seed 0 --backend cpu --swap-repeats 4 --resume)
proxies=("" "params,flops,synflow,logsynflow" "naswot,naswot_once,ni" "meco" "swap,swap_reg"
         "az_expressivity,az_progressivity,az_trainability" "zico" "entropy,entropy_seed" "ntk_fast")
for p in ${PASSES:-1 2 3 4 5 6 7 8}; do
  "$bin" score "${common[@]}" --proxies "${proxies[$p]}" --out .studydata/sss_table_pass$p.jsonl
  xz -9 -c .studydata/sss_table_pass$p.jsonl > bench/results/sss_table_pass$p.jsonl.xz
done

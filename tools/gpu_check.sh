#!/usr/bin/env bash
# Runs ON THE GPU MACHINE, in the repository root, in one device call (tools/gpu_prepare.sh
# staged .devdata/ here first). Every step logs to $OUT and the script goes on after a failure:
#   1. environment (driver, GPU, cuDNN found in the pip package nvidia-cudnn-cu13)
#   (a second call can export HYBRIDNAS_CUDA_SYNC=1: every launch then synchronises, and a
#    faulting kernel is named in the error)
#   2. hybridnas devices
#   3. the Gpu* tests (first mismatches per kernel are printed), plus the CPU fixture tests,
#      and compute-sanitizer's memcheck over the kernel tests
#   4. hybridnas bench --backend cuda (FP32 without TF32, then --tf32), presets included
#   5. the PyTorch reference timing on the same GPU: TF32 off (NVIDIA_TF32_OVERRIDE=0), then
#      PyTorch's defaults
#   6. a short table (also $OUT/summary.txt)
# Budget: about 6-8 minutes on an H100; steps stop themselves (--max-seconds, timeouts).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/hybridnas_out}
mkdir -p "$OUT"
log() { echo "== $*" | tee -a "$OUT/steps.log"; }

# 1. Environment.
mkdir -p /tmp/hnlib && tar -C /tmp/hnlib -xJf .devdata/lib.tar.xz
libdirs=/tmp/hnlib
for d in /usr/local/cuda/lib64 /usr/local/cuda/lib; do [[ -d $d ]] && libdirs="$libdirs:$d"; done
py=$(command -v python3)
site=$($py -c 'import site; print(" ".join(site.getsitepackages()))' 2>/dev/null)
for s in $site; do
  for d in "$s"/nvidia/*/lib; do [[ -d $d ]] && libdirs="$libdirs:$d"; done
done
export LD_LIBRARY_PATH="$libdirs:${LD_LIBRARY_PATH:-}"
export HYBRIDNAS_DATA_DIR=$PWD/.devdata/data
export HYBRIDNAS_TABLE=$PWD/.devdata/data/nb201/nb201_cifar10.csv
BIN=.devdata/bin
log "environment"
{ nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv; 
  echo "LD_LIBRARY_PATH=$LD_LIBRARY_PATH"; ldd $BIN/hybridnas | grep -E "not found|cudnn|cublas|openblas"; } \
  2>&1 | tee "$OUT/environment.txt"

# 2. Devices.
log "devices"
$BIN/hybridnas devices --json 2>&1 | tee "$OUT/devices.json"

# 3. Tests.
log "Gpu* tests"
timeout 240 $BIN/hybridnas_tests --gtest_filter='Gpu*:Fixture*:Ntk.ExactMatches*' \
  --gtest_output=xml:"$OUT/gpu_tests.xml" 2>&1 | tee "$OUT/gpu_tests.log" | grep -E "^\[|mismatch|gpu |Failure|Expected" | head -150

# 3b. Memory errors in the kernels (compute-sanitizer; refused on some machines, then skipped).
if command -v compute-sanitizer >/dev/null; then
  log "compute-sanitizer memcheck"
  timeout 120 compute-sanitizer --tool memcheck --error-exitcode 9 $BIN/hybridnas_tests \
    --gtest_filter='GpuKernels*' > "$OUT/memcheck.log" 2>&1
  echo "memcheck exit $?" | tee -a "$OUT/memcheck.log"; grep -E "ERROR SUMMARY|Invalid" "$OUT/memcheck.log" | head -5
fi

# 4. Our benchmark.
log "bench cuda fp32"
timeout 200 $BIN/hybridnas bench --backend cuda --presets --repeat-archs 8 --runs 3 --max-seconds 15 \
  --json "$OUT/bench_cuda_fp32.json" 2>&1 | tee "$OUT/bench_cuda_fp32.log"
log "bench cuda tf32"
timeout 90 $BIN/hybridnas bench --backend cuda --tf32 --presets --proxies naswot,ni,entropy,ntk --repeat-archs 8 \
  --runs 3 --max-seconds 10 --json "$OUT/bench_cuda_tf32.json" 2>&1 | tee "$OUT/bench_cuda_tf32.log"

# 5. The PyTorch reference on the same GPU.
log "torch cuda, TF32 off"
NVIDIA_TF32_OVERRIDE=0 timeout 150 $py bench/torch_bench.py --device cuda --runs 3 --warmup 1 \
  --proxies naswot ni naswot+ni entropy entropy_seed ntk ntk_fast --json "$OUT/torch_cuda_tf32_off.json" \
  2>&1 | tee "$OUT/torch_cuda_tf32_off.log"
log "torch cuda, PyTorch defaults"
timeout 60 $py bench/torch_bench.py --device cuda --runs 3 --warmup 1 --proxies naswot+ni entropy ntk \
  --json "$OUT/torch_cuda_default.json" 2>&1 | tee "$OUT/torch_cuda_default.log"

# 6. Summary.
log "summary"
$py - "$OUT" <<'PY' 2>&1 | tee "$OUT/summary.txt"
import json, os, sys
out = sys.argv[1]
def load(n):
    try:
        return json.load(open(os.path.join(out, n)))
    except Exception:
        return None
ours, torch_off = load("bench_cuda_fp32.json"), load("torch_cuda_tf32_off.json")
tf32, torch_def = load("bench_cuda_tf32.json"), load("torch_cuda_default.json")
if ours:
    print("device:", ours["device"], "driver", ours["driver"], ours["date"])
    print("%-18s %12s %12s %9s %12s" % ("proxy", "ours arch/s", "torch arch/s", "ratio", "%FP32 peak"))
    for name, r in ours["proxies"].items():
        t = (torch_off or {}).get("proxies", {}).get(name)
        ta = t["archs_per_s"] if t else float("nan")
        print("%-18s %12.1f %12.2f %9.1f %12.1f" % (name, r["archs_per_s"], ta, r["archs_per_s"] / ta if t else float("nan"),
                                                100 * r.get("fraction_of_fp32_peak", float("nan"))))
if tf32:
    for name, r in tf32["proxies"].items():
        print("tf32 %-13s %12.1f arch/s" % (name, r["archs_per_s"]))
if torch_def:
    for name, r in torch_def["proxies"].items():
        print("torch defaults %-8s %8.2f arch/s" % (name, r["archs_per_s"]))
PY
grep -E "tests? (ran|PASSED|FAILED|SKIPPED)|\[  (PASSED|FAILED|SKIPPED)" "$OUT/gpu_tests.log" | tail -12

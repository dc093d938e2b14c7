#!/usr/bin/env bash
# Runs ON THE GPU MACHINE, in the repository root, in one device call, after tools/gpu_prepare.sh
# staged .devdata/ here:  run(command="tools/gpu_check.sh", carry=[".devdata"], timeout_s=480)
# Steps, each under its own timeout from PLAN below; the script goes on after a failure:
#   env            driver and GPU, where our binaries find their libraries, `hybridnas devices`
#   tests          the Gpu* tests: kernels vs their CPU twins, CUDA vs CPU scorer under SPEC.md 7's
#                  FP32 rule (batch 16, and batch 128 for the chunked NTK), the device GA. The
#                  CPU-only tests run in CI, not here.
#   memcheck       compute-sanitizer memcheck over our own kernels' tests (skipped if absent)
#   fp32_*, tf32_* hybridnas bench --backend cuda over populations of 1, 100 and 1000
#                  architectures (.devdata/archs_N.txt), every proxy and preset; FP32, then --tf32.
#                  *_fwd: forward-only proxies; *_ntk: the NTK proxies and the presets, apart so
#                  that their time cannot starve the others
#   torch_*        bench/torch_bench.py on the same GPU: TF32 off (NVIDIA_TF32_OVERRIDE=0), then
#                  PyTorch's defaults
#   summary        archs/s per case and population, ours and PyTorch's ($OUT/summary.txt)
# At most 8 files come back from $OUT, so logs, JSON and the test XML go to a work directory that
# is archived to $OUT/results.tgz after every step and every 20 s; $OUT/steps.log lists each
# step's timeout, seconds and exit code. LD_LIBRARY_PATH (staged libraries, then the image's CUDA)
# is set on our binaries only: python3's torch must load its own CUDA libraries.
# Options: --dry-run     check here, without a GPU, everything that can be (CI runs it)
#          --steps a,b   run only these steps (a rerun: --steps tests,summary)
#          --plan        print the time plan
# A rerun can export HYBRIDNAS_CUDA_SYNC=1: every launch then synchronises, and a faulting kernel
# is named in its error.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
. tools/gpu_libs.sh

# The time plan, in one place: step:timeout_s, in order. The worst case, the timeouts plus
# KILL_GRACE_S each (timeout -k) plus SETUP_S, must fit PLAN_BUDGET_S (--dry-run checks): a session
# has 900 s of device time, the machine's start (a minute or more) included, and one call at most
# 600 s; 420 s leaves room to rerun part. Steps are also cut short when the budget runs out.
PLAN_BUDGET_S=420
KILL_GRACE_S=2
SETUP_S=5
PLAN=(
  env:15
  tests:85
  memcheck:20
  fp32_p1:15
  fp32_p100_fwd:15
  fp32_p100_ntk:25
  fp32_p1000_fwd:20
  fp32_p1000_ntk:40
  tf32_p1:10
  tf32_p100:25
  tf32_p1000_fwd:20
  tf32_p1000_ntk:25
  torch_tf32_off:40
  torch_default:25
  summary:5
)

# ---------------------------------------------------------------------------------------------
# The steps. Each runs as `bash -c step_NAME` under `timeout`, output in $WORK/NAME.log.

hn() { env LD_LIBRARY_PATH="$HN_LD${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" "$@"; }

step_env() {
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv
  echo "LD_LIBRARY_PATH of our binaries: $HN_LD"
  for b in hybridnas hybridnas_tests; do
    echo "ldd $b:"
    hn ldd "$BIN/$b" | grep -E "not found|libcu|libnvJit|openblas|gfortran|gomp|sqlite"
  done
  hn "$BIN/hybridnas" devices --json
}

step_tests() {
  hn "$BIN/hybridnas_tests" --gtest_filter='Gpu*' --gtest_output=xml:"$WORK/gpu_tests.xml"
}

step_memcheck() {
  local cs
  cs=$(command -v compute-sanitizer || command -v /usr/local/cuda/bin/compute-sanitizer) ||
    { echo "compute-sanitizer not found: skipped"; return 0; }
  hn "$cs" --tool memcheck --error-exitcode 9 "$BIN/hybridnas_tests" \
    --gtest_filter='GpuKernels.*:GpuPopulation.SegmentedKernelsMatchTheCpuPerMember:-GpuKernels.ConvolutionsThroughCudnnMatchTheCpu'
}

# bench TAG N ARGS...: N architectures on the CIFAR-10 sample (az-meco-zico's zico needs labelled
# images; bench refuses it on Gaussian input); the JSON is rewritten after every case.
bench() {
  local tag=$1 n=$2
  shift 2
  hn "$BIN/hybridnas" bench --backend cuda --archs "$DEV/archs_$n.txt" --data "$DEV/data/cifar10/cifar10_sample.bin" \
    --json "$WORK/bench_$tag.json" "$@"
}
# *_fwd: the forward-only proxies (and naswot+ni, which bench adds); *_ntk: the NTK proxies and
# the presets, which contain one. Cases run in this order, the cheap ones first.
FWD=naswot,ni,naswot_once,entropy,entropy_seed
NTK=ntk_fast,ntk
step_fp32_p1() { bench fp32_p1 1 --presets --warmup 1 --runs 3 --max-seconds 2; }
step_fp32_p100_fwd() { bench fp32_p100_fwd 100 --proxies "$FWD" --warmup 1 --runs 3 --max-seconds 2; }
step_fp32_p100_ntk() { bench fp32_p100_ntk 100 --proxies "$NTK" --presets --warmup 1 --runs 1; }
step_fp32_p1000_fwd() { bench fp32_p1000_fwd 1000 --proxies "$FWD" --warmup 1 --runs 1; }
step_fp32_p1000_ntk() { bench fp32_p1000_ntk 1000 --proxies "$NTK" --presets --warmup 1 --runs 1; }
step_tf32_p1() { bench tf32_p1 1 --tf32 --presets --warmup 1 --runs 3 --max-seconds 2; }
step_tf32_p100() { bench tf32_p100 100 --tf32 --presets --warmup 1 --runs 1; }
step_tf32_p1000_fwd() { bench tf32_p1000_fwd 1000 --tf32 --proxies "$FWD" --warmup 1 --runs 1; }
step_tf32_p1000_ntk() { bench tf32_p1000_ntk 1000 --tf32 --proxies "$NTK" --presets --warmup 1 --runs 1; }

# No LD_LIBRARY_PATH of ours here. The ntk proxies last: the slowest (their JSON is written per proxy).
step_torch_tf32_off() {
  NVIDIA_TF32_OVERRIDE=0 "$PY" bench/torch_bench.py --device cuda --warmup 1 --runs 3 --max-seconds 2 \
    --proxies naswot ni naswot+ni entropy entropy_seed ntk_fast_vmap ntk_fast ntk --json "$WORK/torch_tf32_off.json"
}
step_torch_default() {
  "$PY" bench/torch_bench.py --device cuda --warmup 1 --runs 3 --max-seconds 2 \
    --proxies naswot+ni entropy ntk_fast ntk --json "$WORK/torch_default.json"
}

step_summary() {
  "$PY" - "$WORK" "$OUT/steps.log" <<'PY' | tee "$OUT/summary.txt"
import glob, json, os, re, sys
work, steps = sys.argv[1], sys.argv[2]
def load(path):
    try:
        with open(path) as fh:
            return json.load(fh)
    except Exception:
        return None
cols, device = {}, None  # (label) -> {case: archs/s}
for prec in ("fp32", "tf32"):
    for n in (1, 100, 1000):
        merged = {}
        base = os.path.join(work, "bench_%s_p%d" % (prec, n))
        for path in sorted(glob.glob(base + ".json") + glob.glob(base + "_*.json")):
            j = load(path) or {}
            device = device or "%s, driver %s, %s" % (j.get("device"), j.get("driver"), j.get("date"))
            merged.update({k: v.get("archs_per_s") for k, v in j.get("proxies", {}).items()})
        cols["%s %d" % (prec, n)] = merged
for tag, label in (("tf32_off", "torch off"), ("default", "torch def")):
    j = load(os.path.join(work, "torch_%s.json" % tag)) or {}
    cols[label] = {k: v.get("archs_per_s") for k, v in j.get("proxies", {}).items()}
order = ["naswot", "naswot_once", "ni", "naswot+ni", "entropy", "entropy_seed", "ntk_fast", "ntk_fast_vmap",
         "ntk", "preset:hybrid", "preset:seed", "preset:cpu-quick", "preset:az-nas",
         "preset:az-meco-zico", "preset:synflow-rank"]
cases = [c for c in order if any(c in v for v in cols.values())]
cases += sorted({c for v in cols.values() for c in v} - set(cases))
print("device:", device or "no bench JSON")
print("archs/s; fp32/tf32 N: hybridnas bench over N architectures; torch: 4 architectures, TF32 off / defaults")
print("%-17s" % "case" + "".join("%10s" % c for c in cols))
for c in cases:
    cells = [cols[k].get(c) for k in cols]
    print("%-17s" % c + "".join("%10s" % ("-" if v is None else "%.4g" % v) for v in cells))
log = os.path.join(work, "tests.log")
if os.path.exists(log):
    lines = open(log, errors="replace").read().splitlines()
    keep = r"\[==========\] \d+ tests? from .* ran|\[  (PASSED|FAILED|SKIPPED) +\] \d+ tests?|\[  FAILED  \] \S+$"
    print("tests:", "; ".join(l.strip() for l in lines if re.match(keep, l)) or "no result (see tests.log)")
print(open(steps).read().rstrip())
PY
}

# ---------------------------------------------------------------------------------------------
# Driver.

plan_total() {
  local s total=$SETUP_S
  for s in "${PLAN[@]}"; do total=$((total + ${s#*:} + KILL_GRACE_S)); done
  echo "$total"
}

print_plan() {
  local s
  printf "%-16s %s\n" step timeout_s
  for s in "${PLAN[@]}"; do printf "%-16s %5s\n" "${s%%:*}" "${s#*:}"; done
  echo "worst case: the timeouts + ${KILL_GRACE_S}s kill grace each + ${SETUP_S}s setup = $(plan_total)s" \
    "(budget ${PLAN_BUDGET_S}s)"
}

snapshot() {  # archive the work directory into $OUT; a temp name per writer, then an atomic rename
  tar -C "$WORK" -czf "$OUT/results.$1.part" . 2>/dev/null && mv -f "$OUT/results.$1.part" "$OUT/results.tgz"
}

show_excerpt() {  # what the reply's output tail should carry of a step's log
  local log=$WORK/$1.log
  case $1 in
    tests)
      grep -E '^\[ +(OK|FAILED|SKIPPED) +\] .*\([0-9]+ ms\)|^\[  (PASSED|FAILED) +\] [0-9]|mismatch|Failure' \
        -e 'e_gpu.* FAIL|cuDNN algorithms' "$log" | head -60 ;;
    memcheck) grep -E 'ERROR SUMMARY|Invalid|error|skipped|PASSED|FAILED' "$log" | head -10 ;;
    summary) ;;
    env) head -30 "$log" ;;
    *) tail -n 16 "$log" ;;
  esac
}

run_step() {  # NAME TIMEOUT
  local name=$1 t=$2 t0=$SECONDS rc note=""
  local left=$((PLAN_BUDGET_S - SECONDS - KILL_GRACE_S))
  ((t > left)) && t=$left
  if ((t < 3)); then
    printf "%-16s %4s %5s %s\n" "$name" "$2" - "skipped: the plan's time is spent" | tee -a "$OUT/steps.log"
    return
  fi
  echo "== $name (timeout ${t}s)"
  timeout -k "$KILL_GRACE_S" "$t" bash -c "step_$name" >"$WORK/$name.log" 2>&1
  rc=$?
  ((rc == 124 || rc == 137)) && note=" (timed out)"
  show_excerpt "$name"
  printf "%-16s %4s %5s rc %s%s\n" "$name" "$2" "$((SECONDS - t0))" "$rc" "$note" | tee -a "$OUT/steps.log"
  snapshot main
}

device_run() {  # [comma-separated steps]
  local only=${1:-} s name
  OUT=${OUT:-/tmp/hybridnas_out}
  DEV=${HN_DEVDATA:-$PWD/.devdata}
  PY=${HN_PYTHON:-python3}
  WORK=$(mktemp -d /tmp/hybridnas_run.XXXXXX)  # what results.tgz archives: logs, JSON, XML
  local lib
  lib=$(mktemp -d /tmp/hybridnas_lib.XXXXXX)
  RUN_TMP=("$WORK" "$lib")
  trap 'rm -rf "${RUN_TMP[@]}"' EXIT  # everything of $WORK is in results.tgz by then
  mkdir -p "$OUT"
  if [[ ! -f $DEV/lib.tgz || ! -f $DEV/bin.tgz ]]; then
    echo "no $DEV/lib.tgz or bin.tgz: run tools/gpu_prepare.sh here first, and carry .devdata" >&2
    exit 1
  fi
  tar -C "$lib" -xzf "$DEV/lib.tgz"
  tar -C "$lib" -xzf "$DEV/bin.tgz"
  BIN=$lib/bin  # not under $WORK, which is archived to $OUT
  HN_LD=$lib
  local sites
  sites=$("$PY" -c 'import site; print(" ".join(site.getsitepackages()))' 2>/dev/null)
  for s in /usr/local/cuda/lib64 /usr/local/cuda/lib $sites; do
    [[ $s == /usr/local/cuda/* ]] && { [[ -d $s ]] && HN_LD+=":$s"; continue; }
    for d in "$s"/nvidia/*/lib; do [[ -d $d ]] && HN_LD+=":$d"; done
  done
  export OUT DEV BIN PY WORK HN_LD FWD NTK
  export HYBRIDNAS_DATA_DIR=$DEV/data HYBRIDNAS_TABLE=$DEV/data/nb201/nb201_cifar10.csv PYTHONUNBUFFERED=1
  local steps
  mapfile -t steps < <(compgen -A function step_)
  export -f hn bench "${steps[@]}"
  printf "%-16s %4s %5s %s\n" step plan secs result >"$OUT/steps.log"
  (while sleep 20; do snapshot bg; done) &
  local snap_pid=$!
  for s in "${PLAN[@]}"; do
    name=${s%%:*}
    [[ -z $only || ",$only," == *",$name,"* ]] && run_step "$name" "${s#*:}"
  done
  kill "$snap_pid" 2>/dev/null
  wait "$snap_pid" 2>/dev/null
  snapshot main
  rm -f "$OUT"/results.*.part
  echo "== done in ${SECONDS}s; $OUT: $(cd "$OUT" && echo *)"
}

# ---------------------------------------------------------------------------------------------
# --dry-run: here, without a GPU.

dry_run() {
  local tmp fails=0 s so f out
  tmp=$(mktemp -d /tmp/hybridnas_dry.XXXXXX)
  DRY_TMP=$tmp
  trap 'rm -rf "$DRY_TMP"' EXIT
  ok() { printf "  ok    %s\n" "$*"; }
  info() { printf "  info  %s\n" "$*"; }
  bad() { printf "  FAIL  %s\n" "$*"; fails=$((fails + 1)); }
  echo "gpu_check.sh --dry-run"

  # 1. The scripts parse (and pass shellcheck where it is installed).
  if bash -n tools/gpu_check.sh && bash -n tools/gpu_prepare.sh && bash -n tools/gpu_libs.sh; then
    ok "scripts parse"
  else
    bad "a script does not parse"
  fi
  if command -v shellcheck >/dev/null; then
    if shellcheck -S warning -x tools/gpu_check.sh tools/gpu_prepare.sh tools/gpu_libs.sh >"$tmp/sc.log" 2>&1; then
      ok "shellcheck (warnings and errors)"
    else
      bad "shellcheck:"; head -30 "$tmp/sc.log"
    fi
  fi

  # 2. Stage as for a session, from the build as it is (build/, or $HN_BUILD_DIR).
  local bdir=${HN_BUILD_DIR:-build}
  if tools/gpu_prepare.sh --no-build --dest "$tmp/dev" >"$tmp/prepare.log" 2>&1; then
    ok "staged ($(tail -1 "$tmp/prepare.log" | cut -f1)): $(grep 'staged libraries' "$tmp/prepare.log" | cut -d: -f2)"
  else
    bad "tools/gpu_prepare.sh --no-build:"; cat "$tmp/prepare.log"
    echo "dry run: $fails failure(s)"
    return 1
  fi
  local dev=$tmp/dev lib=$tmp/lib staged
  staged=$(du -sb "$dev" | cut -f1)  # what travels, before unpacking here
  mkdir -p "$lib" && tar -C "$lib" -xzf "$dev/lib.tgz" && tar -C "$dev" -xzf "$dev/bin.tgz"

  # 3. Every library of both binaries, recursively, resolves from the staged tree alone, the
  #    device's CUDA and the base system (tools/gpu_libs.sh); staged files are real files named by
  #    their soname.
  local -A seen=()
  local queue=("$dev/bin/hybridnas" "$dev/bin/hybridnas_tests") missing=()
  while ((${#queue[@]})); do
    f=${queue[0]}
    queue=("${queue[@]:1}")
    for so in $(hn_needed "$f"); do
      [[ -n ${seen[$so]:-} ]] && continue
      seen[$so]=1
      if hn_cuda_provided "$so" || hn_base_system "$so"; then continue; fi
      if [[ -f $lib/$so && ! -L $lib/$so ]]; then queue+=("$lib/$so"); else missing+=("$so (${f##*/})"); fi
    done
  done
  if ((${#missing[@]})); then
    bad "not in the staged tree: ${missing[*]}"
  else
    ok "NEEDED closure resolves (${#seen[@]} sonames)"
  fi
  for f in "$lib"/*; do
    so=$(readelf -d "$f" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
    [[ $so == "${f##*/}" ]] || bad "staged ${f##*/} has soname '$so'"
  done
  tar -tvzf "$dev/lib.tgz" | grep -q '^l' && bad "lib.tgz holds symbolic links"
  # The loader's own view: with the staged directory first, nothing outside CUDA and the base
  # system may come from this machine's directories.
  out=$(for f in "$dev/bin/hybridnas" "$dev/bin/hybridnas_tests"; do LD_LIBRARY_PATH=$lib ldd "$f"; done |
    while read -r so arrow path _; do
      [[ $arrow == "=>" ]] || continue
      hn_cuda_provided "$so" || hn_base_system "$so" || [[ $path == "$lib/"* ]] || echo "$so => $path"
    done | sort -u)
  [[ -z $out ]] && ok "ldd with the staged path: every other library from the staged tree" || bad "ldd: $out"

  # 4. The binaries run from the staged tree (the GPU tests skip here), and they are for sm_90.
  if LD_LIBRARY_PATH=$lib HYBRIDNAS_DATA_DIR=$dev/data "$dev/bin/hybridnas_tests" \
      --gtest_filter='Fp32Rule.*:Gpu*' >"$tmp/tests.log" 2>&1; then
    ok "staged hybridnas_tests: $(grep -cE '^\[ +OK +\]' "$tmp/tests.log") Fp32Rule passed," \
      "$(sed -n 's/^\[  SKIPPED \] \([0-9]*\) tests*,.*/\1/p' "$tmp/tests.log") Gpu* skipped (no GPU)"
  else
    bad "staged hybridnas_tests:"; tail -20 "$tmp/tests.log"
  fi
  for s in GpuEndToEnd.CudaScorerMatchesTheCpuScorer GpuEndToEnd.ChunkedNtkAtBatch128MatchesTheCpu \
      GpuPopulation.SegmentedKernelsMatchTheCpuPerMember GpuPopulation.ScoresDoNotDependOnThePopulation; do
    grep -q "${s#*.}" "$tmp/tests.log" || bad "test $s not found"
  done
  if command -v cuobjdump >/dev/null || [[ -x /usr/local/cuda/bin/cuobjdump ]]; then
    "$(command -v cuobjdump || echo /usr/local/cuda/bin/cuobjdump)" --list-elf "$dev/bin/hybridnas" | grep -q sm_90 &&
      ok "cuobjdump: sm_90 code" || bad "no sm_90 code in hybridnas"
  elif grep -qE '^CMAKE_CUDA_ARCHITECTURES:[A-Z]+=.*\b90' "$bdir/CMakeCache.txt" 2>/dev/null; then
    ok "$bdir/ configured for sm_90 ($(grep '^CMAKE_CUDA_ARCHITECTURES' "$bdir/CMakeCache.txt"))"
  else
    bad "$bdir/ is not configured for CUDA architecture 90"
  fi
  # KINDS.md does not name the device image's OS: say what our files ask of it (the env step's
  # ldd there prints "version ... not found" if it has less).
  info "needed from the device's base system: $(for f in "$dev"/bin/* "$lib"/*; do objdump -T "$f"; done |
    grep -oE '\b(GLIBC|GLIBCXX)_[0-9.]+' | sort -Vu |
    awk -F_ '{v[$1] = $2} END {printf "glibc %s, libstdc++ %s (GLIBCXX)", v["GLIBC"], v["GLIBCXX"]}')"
  local help
  help=$(LD_LIBRARY_PATH=$lib "$dev/bin/hybridnas" bench --help 2>&1)
  for s in --backend --archs --json --presets --proxies --tf32 --warmup --runs --max-seconds; do
    grep -q -- "$s" <<<"$help" || bad "hybridnas bench has no $s"
  done
  for s in 1 100 1000; do
    [[ $(sort -u "$dev/archs_$s.txt" | wc -l) == "$s" ]] || bad "archs_$s.txt: not $s distinct architectures"
  done

  # 5. What travels fits the device call's 64 MiB.
  local tree
  tree=$(git ls-files -z -co --exclude-standard | du -cb --files0-from=- 2>/dev/null | tail -1 | cut -f1)
  (((tree + staged) < 60 * 1024 * 1024)) && ok "working tree + .devdata: $(((tree + staged) >> 20)) MiB of 64" ||
    bad "working tree + .devdata = $(((tree + staged) >> 20)) MiB: over 60 of the call's 64 MiB"

  # 6. The PyTorch script's device code path, on CPU tensors.
  local py=python3
  /usr/bin/python3 -c 'import torch' 2>/dev/null && py=/usr/bin/python3
  if OMP_NUM_THREADS=1 "$py" bench/torch_bench.py --device cpu --smoke --json "$tmp/smoke.json" \
      >"$tmp/smoke.log" 2>&1; then
    ok "torch_bench.py --device cpu --smoke: $(grep -c 'archs/s' "$tmp/smoke.log") proxies," \
      "$(grep '^torch ' "$tmp/smoke.log" | cut -d, -f1)"
  else
    bad "torch_bench.py --smoke:"; tail -20 "$tmp/smoke.log"
  fi

  # 7. The time plan: within budget, one step function per entry.
  local total
  total=$(plan_total)
  ((total <= PLAN_BUDGET_S)) && ok "time plan: ${total}s worst case <= ${PLAN_BUDGET_S}s (${#PLAN[@]} steps)" ||
    bad "time plan: ${total}s worst case > ${PLAN_BUDGET_S}s"
  ((PLAN_BUDGET_S + 60 <= 600)) || bad "PLAN_BUDGET_S + a minute exceeds one call's 600 s"
  for s in "${PLAN[@]}"; do declare -F "step_${s%%:*}" >/dev/null || bad "no function step_${s%%:*}"; done
  for s in $(compgen -A function step_); do
    [[ " ${PLAN[*]} " == *" ${s#step_}:"* ]] || bad "$s is not in PLAN"
  done

  # 8. A rehearsal of the device run (GPU steps fail fast here): what comes back fits the tool's
  #    limits (<= 8 files, plain names, <= 2 folders down) and the archive holds every step's log.
  if OUT=$tmp/out HN_DEVDATA=$dev HN_PYTHON=$py timeout 120 tools/gpu_check.sh >"$tmp/rehearsal.log" 2>&1; then
    local n names logs
    n=$(find "$tmp/out" -type f | wc -l)
    names=$(find "$tmp/out" -mindepth 1 | sed "s|^$tmp/out/||" | grep -vE '^[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+){0,2}$')
    logs=$(tar -tzf "$tmp/out/results.tgz" | grep -c '\.log$')
    ((n <= 8)) && [[ -z $names ]] && [[ -s $tmp/out/summary.txt ]] && ((logs == ${#PLAN[@]})) &&
      ok "rehearsal: \$OUT holds $(cd "$tmp/out" && echo *); results.tgz has $logs step logs" ||
      {
        bad "rehearsal output: $n files, odd names '$names', $logs of ${#PLAN[@]} logs"
        tail -30 "$tmp/rehearsal.log"
      }
  else
    bad "rehearsal failed:"; tail -30 "$tmp/rehearsal.log"
  fi

  echo "dry run: $fails failure(s)"
  ((fails == 0))
}

case ${1:-} in
  --dry-run) dry_run ;;
  --plan) print_plan ;;
  --steps) device_run "${2:?--steps needs a comma-separated list}" ;;
  "") device_run ;;
  *) echo "usage: tools/gpu_check.sh [--dry-run | --plan | --steps a,b]" >&2; exit 2 ;;
esac

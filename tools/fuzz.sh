#!/usr/bin/env bash
# Builds the libFuzzer targets (tests/fuzz/, clang, ASan + UBSan, HYBRIDNAS_CUDA=OFF) and runs each
# for SECONDS (default 20) over its seed corpus (tests/fuzz/corpus/<target>/) and the inputs that
# once crashed it (tests/fuzz/regressions/<target>/), two targets at a time. The tree is never
# written to: new inputs go to a temporary directory. Fails on any crash, sanitizer report, leak,
# timeout or finding, printing the reproducer.
#
#   tools/fuzz.sh [SECONDS]     FUZZ_BUILD_DIR (default build-fuzz), FUZZ_TARGETS (default all),
#                               FUZZ_JOBS (default nproc), CXX (default clang++-14), TMPDIR
#                               (default /dev/shm when writable)
# Reproduce a failure:  build-fuzz/tests/fuzz/fuzz_<target> <the input file>
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${1:-20}
build=${FUZZ_BUILD_DIR:-build-fuzz}
jobs=${FUZZ_JOBS:-$(nproc)}
all_targets="arch_input arch_lines cifar checkpoint stats score_file cache cache_rows serve_request"
targets=${FUZZ_TARGETS:-$all_targets}

# The longest input worth trying per target: a few records or lines of each format.
max_len() {
  case $1 in
    arch_input) echo 512 ;;
    cifar) echo 8192 ;;             # two CIFAR-10 / CIFAR-100 records and a bit
    cache) echo 20480 ;;            # a 4-5 page SQLite file
    cache_rows) echo 512 ;;
    stats) echo 2048 ;;
    *) echo 4096 ;;
  esac
}

cmake -S . -B "$build" -DCMAKE_CXX_COMPILER="${CXX:-clang++-14}" -DCMAKE_BUILD_TYPE=Release \
  -DHYBRIDNAS_CUDA=OFF -DHYBRIDNAS_FUZZ=ON -DHYBRIDNAS_BUILD_TESTS=OFF >/dev/null
cmake --build "$build" --target fuzz_targets -j"$(nproc)"

# Targets that read files write them to $TMPDIR: a RAM file system when there is one (the cache
# targets run 3x faster there).
[[ -z ${TMPDIR:-} && -d /dev/shm && -w /dev/shm ]] && export TMPDIR=/dev/shm
work=$(mktemp -d "${TMPDIR:-/tmp}/hybridnas_fuzz.XXXXXX")
trap 'rm -rf "$work"' EXIT
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

run_target() {
  local t=$1
  local bin="$build/tests/fuzz/fuzz_$t" dirs=("tests/fuzz/corpus/$t")
  [[ -d tests/fuzz/regressions/$t ]] && dirs+=("tests/fuzz/regressions/$t")
  mkdir -p "$work/new/$t" "$work/artifacts/$t"
  # The first directory receives new inputs; the tree's directories are only read.
  "$bin" -max_total_time="$seconds" -max_len="$(max_len "$t")" -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="$work/artifacts/$t/" "$work/new/$t" "${dirs[@]}" \
    >"$work/$t.log" 2>&1
}

for t in $targets; do
  while (($(jobs -rp | wc -l) >= jobs)); do wait -n || true; done
  (rc=0; run_target "$t" || rc=$?; echo "$rc" >"$work/$t.rc") &
done
wait
status=0
for t in $targets; do
  if [[ $(cat "$work/$t.rc") == 0 ]]; then
    runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$work/$t.log" | grep -o '[0-9]*$' || echo '?')
    echo "fuzz: $t ok ($runs runs in ${seconds}s, $(find "$work/new/$t" -type f | wc -l) new inputs)"
    continue
  fi
  status=1
  echo "fuzz: $t FAILED" >&2
  tail -n 60 "$work/$t.log" >&2
  for a in "$work/artifacts/$t"/*; do
    [[ -f $a ]] || continue
    echo "fuzz: reproducer for $t ($(stat -c %s "$a") bytes), base64:" >&2
    base64 -w 76 "$a" >&2
    mkdir -p "$build/fuzz-artifacts/$t"
    cp "$a" "$build/fuzz-artifacts/$t/"
    echo "fuzz: kept as $build/fuzz-artifacts/$t/$(basename "$a"); reproduce with" \
         "$build/tests/fuzz/fuzz_$t $build/fuzz-artifacts/$t/$(basename "$a");" \
         "add it under tests/fuzz/regressions/$t/" >&2
  done
done
exit $status

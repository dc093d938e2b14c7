#!/usr/bin/env bash
# Sets up (tools/setup.sh) and runs the whole test suite. GPU tests skip without a GPU.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh
# Tests run two at a time on CI's 2 cores, each with OpenMP threads: idle threads sleep instead
# of spinning so that the two do not starve each other.
export OMP_WAIT_POLICY=passive
ctest --test-dir build --output-on-failure -j"$(nproc)" --timeout 1200
# The device scripts, checked without a GPU (README "GPU sessions"; under a minute).
tools/gpu_check.sh --dry-run

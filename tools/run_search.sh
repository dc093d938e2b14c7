#!/usr/bin/env bash
# The main job: sets up (tools/setup.sh), then runs a GA search with the default preset
# (cpu-quick on a machine without a GPU: about 5 minutes on 2 cores) and reports the
# architecture it found with its NAS-Bench-201 CIFAR-10 test accuracy.
# Images: the first training images of $HYBRIDNAS_DATA (default: the repository's sample).
# Extra arguments go to `hybridnas search` (e.g. --budget 1000 --runs 5).
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh
data=${HYBRIDNAS_DATA:-../shared/data/cifar10/cifar10_sample.bin}
offset=${HYBRIDNAS_IMAGE_OFFSET:-1000}
exec build/cli/hybridnas search --data "$data" --image-offset "$offset" "$@"

#!/usr/bin/env bash
# Run HERE (no GPU needed) before a GPU session's device call: builds Release for sm_90 and
# stages everything the device machine lacks into .devdata/ (ignored by git), which the call
# names in `carry`:
#   .devdata/bin/      hybridnas, hybridnas_tests
#   .devdata/lib.tar.xz  OpenBLAS, SQLite, libgomp, libgfortran, libquadmath (the image has CUDA,
#                      cuBLAS, cuSOLVER and cuDNN as the pip package nvidia-cudnn-cu13)
#   .devdata/data/     ../shared/data (CIFAR-10 sample, NB201 table, fixture)
# Then, in one device call:  run(command="tools/gpu_check.sh", carry=[".devdata"], timeout_s=540)
set -euo pipefail
cd "$(dirname "$0")/.."
CUDA_ARCHS=90 tools/setup.sh >/dev/null
mkdir -p .devdata/bin .devdata/data
cp build/cli/hybridnas build/tests/hybridnas_tests .devdata/bin/
libs=()
for l in libopenblas.so.0 libgfortran.so.5 libquadmath.so.0 libsqlite3.so.0 libgomp.so.1; do
  libs+=("$(readlink -f "/lib/x86_64-linux-gnu/$l")")
done
tmp=$(mktemp -d)
for f in "${libs[@]}"; do cp "$f" "$tmp/"; done
(cd "$tmp" && for f in *; do
   base=$(echo "$f" | sed -E 's/(\.so\.[0-9]+).*/\1/'); [[ "$f" == "$base" ]] || ln -sf "$f" "$base"; done)
tar -C "$tmp" -cJf .devdata/lib.tar.xz .
rm -rf "$tmp"
cp -r ../shared/data/cifar10 ../shared/data/nb201 ../shared/data/fixture .devdata/data/
grep -qx '/.devdata/' .git/info/exclude 2>/dev/null || echo '/.devdata/' >> .git/info/exclude
du -sh .devdata

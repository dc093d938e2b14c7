#!/usr/bin/env bash
# Run HERE (no GPU needed) before a GPU session's device call: builds Release for sm_90
# (tools/setup.sh) and stages what the device machine lacks into .devdata/ (ignored by git),
# which the call names in `carry`:
#   bin.tgz             bin/hybridnas, bin/hybridnas_tests (gzip -9: a third of their size, so
#                       that the working tree and .devdata stay inside one call's 64 MiB)
#   lib.tgz             every library the two binaries load that the device does not provide
#                       (tools/gpu_libs.sh), found through ldd and copied under its soname
#                       (cp -L), so the loader finds libopenblas.so.0 and not only its real name
#   archs_1.txt, archs_100.txt, archs_1000.txt
#                       bench populations: NB201 6111, then distinct non-degenerate cells drawn
#                       with a fixed seed; each file starts with the smaller ones
#   data/               the CIFAR-10 sample (Gpu* tests) and the NB201 table
# Then check it here with `tools/gpu_check.sh --dry-run` and run, in one device call,
#   run(command="tools/gpu_check.sh", carry=[".devdata"], timeout_s=480)
# Options: --no-build (use the build as it is), --dest DIR (stage into DIR instead of .devdata).
# $HN_BUILD_DIR: the build to stage from with --no-build (default build/).
set -euo pipefail
cd "$(dirname "$0")/.."
. tools/gpu_libs.sh
build=1
dest=.devdata
while (($#)); do
  case "$1" in
    --no-build) build=0 ;;
    --dest) dest=$2; shift ;;
    *) echo "gpu_prepare.sh: unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
bdir=${HN_BUILD_DIR:-build}
if ((build)); then CUDA_ARCHS=90 tools/setup.sh >/dev/null && bdir=build; fi
data=../shared/data
bins=("$bdir/cli/hybridnas" "$bdir/tests/hybridnas_tests")
for f in "${bins[@]}" "$data/cifar10/cifar10_sample.bin" "$data/nb201/nb201_cifar10.csv"; do
  [[ -f $f ]] || { echo "gpu_prepare.sh: $f is missing" >&2; exit 1; }
done

mkdir -p "$dest"
rm -rf "${dest:?}/bin" "$dest/bin.tgz" "$dest/lib.tgz" "$dest/data" "$dest"/archs_*.txt
mkdir -p "$dest/data/cifar10" "$dest/data/nb201"

# Libraries: the loader's view here (ldd: the whole closure), minus what the device provides.
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for b in "${bins[@]}"; do
  while read -r soname arrow path _; do
    [[ $arrow == "=>" ]] || continue
    if hn_cuda_provided "$soname" || hn_base_system "$soname"; then continue; fi
    [[ $path == /* ]] || { echo "gpu_prepare.sh: $b needs $soname, not found here" >&2; exit 1; }
    [[ -e $tmp/$soname ]] || cp -L "$path" "$tmp/$soname"
  done < <(ldd "$b")
done
tar -C "$tmp" -czf "$dest/lib.tgz" .
echo "staged libraries: $(cd "$tmp" && echo *)"
mkdir "$tmp/bin_stage" "$tmp/bin_stage/bin"
cp "${bins[@]}" "$tmp/bin_stage/bin/"
tar -C "$tmp/bin_stage" -cf - bin | gzip -9 >"$dest/bin.tgz"

cp "$data/cifar10/cifar10_sample.bin" "$dest/data/cifar10/"
cp "$data/nb201/nb201_cifar10.csv" "$dest/data/nb201/"

python3 - "$dest" <<'PY'
import random, sys
ops = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
edges = ((1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2))
def degenerate(g):  # SPEC.md 1: node 3 unreachable from node 0
    reach = [True, False, False, False]
    for (to, frm), op in zip(edges, g):
        if op != "none" and reach[frm]:
            reach[to] = True
    return not reach[3]
def arch(g):
    return "|%s~0|+|%s~0|%s~1|+|%s~0|%s~1|%s~2|" % g
pop = [("nor_conv_3x3", "nor_conv_3x3", "nor_conv_3x3", "skip_connect", "nor_conv_3x3", "nor_conv_1x1")]  # 6111
rng, seen = random.Random(201), set(pop)
while len(pop) < 1000:
    g = tuple(rng.choice(ops) for _ in range(6))
    if g not in seen and not degenerate(g):
        seen.add(g)
        pop.append(g)
for n in (1, 100, 1000):
    with open("%s/archs_%d.txt" % (sys.argv[1], n), "w") as fh:
        fh.write("".join(arch(g) + "\n" for g in pop[:n]))
PY
du -sh "$dest"

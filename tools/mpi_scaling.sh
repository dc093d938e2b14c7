#!/usr/bin/env bash
# Scaling of `score` from one process to MPI ranks on this machine (docs/scale-out.md): the same
# N architectures (naswot + ni, batch 16, CPU backend) scored by 1 process x 1 thread, by
# `mpirun -np 2` x 1 thread, and by 1 process x all cores; checks that the outputs are equal and
# writes the wall times as JSON (default bench/results/<date>-cpu-mpi-scaling.json).
# Usage: tools/mpi_scaling.sh [N=600] [OUT.json]
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-600}
out=${2:-bench/results/$(date +%F)-cpu-mpi-scaling.json}
bin=build/cli/hybridnas
data=${HYBRIDNAS_DATA:-../shared/data/cifar10/cifar10_sample.bin}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
seq 0 $((n - 1)) >"$tmp/archs.txt"
common=(score --archs "$tmp/archs.txt" --data "$data" --image-offset 1000 --proxies naswot,ni --batch 16 -q --force)
mpirun=(mpirun --oversubscribe --allow-run-as-root)

timed() {  # timed NAME CMD... : wall seconds of CMD
  local name=$1 t0 t1
  shift
  t0=$(date +%s.%N)
  "$@" >/dev/null 2>"$tmp/$name.err" || { cat "$tmp/$name.err" >&2; exit 1; }
  t1=$(date +%s.%N)
  python3 -c "print($t1 - $t0)"
}

one=$(timed one "$bin" "${common[@]}" --threads 1 --out "$tmp/one.jsonl")
two=$(timed two "${mpirun[@]}" -np 2 "$bin" "${common[@]}" --threads 1 --out "$tmp/two.jsonl")
omp=$(timed omp "$bin" "${common[@]}" --threads 0 --out "$tmp/omp.jsonl")

python3 - "$tmp" "$n" "$one" "$two" "$omp" "$out" "$(nproc)" <<'EOF'
import json, sys, datetime, platform
tmp, n, one, two, omp, out, cores = sys.argv[1], int(sys.argv[2]), *map(float, sys.argv[3:6]), sys.argv[6], int(sys.argv[7])
def rec(name):
    rs = [json.loads(l) for l in open(f"{tmp}/{name}.jsonl")]
    for r in rs: r.pop("seconds")
    return rs
assert rec("one") == rec("two") == rec("omp"), "outputs differ"
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), platform.processor())
res = {"what": "hybridnas score of NB201 indices 0..N-1, naswot+ni, batch 16, CPU backend, FP32",
       "date": datetime.date.today().isoformat(), "cpu": cpu, "cores": cores, "architectures": n,
       "outputs_equal": True,
       "runs": [{"setup": "1 process, 1 thread", "seconds": round(one, 2), "archs_per_s": round(n / one, 1)},
                {"setup": "mpirun -np 2, 1 thread each", "seconds": round(two, 2), "archs_per_s": round(n / two, 1),
                 "speedup_vs_1_process_1_thread": round(one / two, 2)},
                {"setup": f"1 process, {cores} OpenMP threads", "seconds": round(omp, 2), "archs_per_s": round(n / omp, 1)}]}
with open(out, "w") as f:
    json.dump(res, f, indent=1)
    f.write("\n")
print(json.dumps(res, indent=1))
EOF

#!/usr/bin/env python3
"""What `hybridnas serve` saves a caller: latency of a one-architecture request against one
`hybridnas score` process per architecture, and throughput of N architectures sent as N single
requests against one list (docs/serve.md). Writes a JSON file of what it measured.

    /usr/bin/python3 bench/serve_bench.py --out bench/results/DATE-cpu-serve.json [--backend cpu]
        [--archs 1000] [--latency-archs 10] [--data FILE]

Settings: "cheap" = naswot at batch 8 (set-up and protocol costs dominate), "preset" = the
backend's default preset (cpu-quick on the CPU; the GPU's on cuda), whose scoring dominates. The
throughput test uses the cheap settings (N architectures at the preset would take many minutes on
2 cores). Architectures are NB201 indices drawn with a fixed seed, none repeated (no cache).
"""

import argparse
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))
import hybridnas  # noqa: E402


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--backend", default="cpu")
    ap.add_argument("--archs", type=int, default=1000, help="throughput test size (1000)")
    ap.add_argument("--latency-archs", type=int, default=10, help="latency samples per setting (10)")
    ap.add_argument("--data", default=os.path.join(here, "..", "..", "shared", "data", "cifar10", "cifar10_sample.bin"))
    a = ap.parse_args()
    binary = hybridnas.find_binary()
    common = ["--backend", a.backend, "--data", a.data, "-q"]
    settings = {"cheap": ["--proxies", "naswot", "--batch", "8"], "preset": []}
    rng = random.Random(0)
    pool = rng.sample(range(15625), a.archs + 4 * a.latency_archs)
    result = {"backend": a.backend, "machine": platform.node(), "cpu": platform.processor(),
              "cores": os.cpu_count(), "binary": binary, "date": time.strftime("%Y-%m-%d"),
              "latency": {}, "throughput": {}}
    with hybridnas.Client(common) as probe:
        result["version"] = probe.ready["version"]
        result["device"] = probe.ready["device"]

    for name, extra in settings.items():
        # One score process per architecture: what a caller pays without a server.
        proc = []
        for _ in range(a.latency_archs):
            arch = str(pool.pop())
            t0 = time.perf_counter()
            r = subprocess.run([binary, "score", *common, *extra, "--index", arch], capture_output=True, text=True)
            proc.append(time.perf_counter() - t0)
            if r.returncode != 0:
                sys.exit("score failed: " + r.stderr)
        t0 = time.perf_counter()
        with hybridnas.Client(common + extra) as c:
            startup = time.perf_counter() - t0
            served = []
            for _ in range(a.latency_archs):
                arch = pool.pop()
                t1 = time.perf_counter()
                c.score([arch])
                served.append(time.perf_counter() - t1)
            pings = [c.ping() for _ in range(20)]
        result["latency"][name] = {
            "settings": " ".join(extra) or "default preset",
            "score_process_s_median": statistics.median(proc),
            "serve_request_s_median": statistics.median(served),
            "serve_startup_s": startup,
            "ping_s_median": statistics.median(pings),
            "samples": a.latency_archs,
        }
        print(name, json.dumps(result["latency"][name]), flush=True)

    extra = settings["cheap"]
    archs = pool[: a.archs]
    with hybridnas.Client(common + extra) as c:
        t0 = time.perf_counter()
        singles = [c.score([x])[0] for x in archs]
        t_single = time.perf_counter() - t0
    with hybridnas.Client(common + extra) as c:
        t0 = time.perf_counter()
        listed = c.score(archs)
        t_list = time.perf_counter() - t0
    same = all(x["naswot"] == y["naswot"] for x, y in zip(singles, listed))
    result["throughput"] = {
        "settings": " ".join(extra),
        "archs": a.archs,
        "single_requests_s": t_single,
        "single_requests_archs_per_s": a.archs / t_single,
        "one_list_s": t_list,
        "one_list_archs_per_s": a.archs / t_list,
        "records_identical": same,
    }
    print("throughput", json.dumps(result["throughput"]), flush=True)
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    with open(a.out, "w") as f:
        json.dump(result, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()

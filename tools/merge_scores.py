#!/usr/bin/python3
"""Merges JSON-lines score files of the same architectures into one (`hybridnas eval` reads one).

Each record of `hybridnas score --format jsonl` holds an architecture's proxies, flags and seconds;
the passes of tools/cpu_table.sh hold different proxies of the same 15,625 architectures. This
joins them by architecture string, in the first file's order; a proxy present in several files
takes the last file's value. Files may be .xz-compressed.

  python3 tools/merge_scores.py OUT.jsonl IN1.jsonl[.xz] IN2.jsonl[.xz] ...
"""
import json
import lzma
import sys


def records(path):
    opener = lzma.open if path.endswith(".xz") else open
    with opener(path, "rt") as fh:
        for line in fh:
            if line.strip():
                yield json.loads(line)


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    out, inputs = sys.argv[1], sys.argv[2:]
    merged, order = {}, []
    for i, path in enumerate(inputs):
        seen = 0
        for rec in records(path):
            arch = rec["arch"]
            if arch not in merged:
                if i > 0:
                    sys.exit("%s: architecture %s is not in %s" % (path, arch, inputs[0]))
                merged[arch] = {"arch": arch, "flags": {}, "seconds": {}}
                order.append(arch)
            m = merged[arch]
            for k, v in rec.items():
                if k in ("flags", "seconds"):
                    m[k].update(v)
                elif k != "arch":
                    m[k] = v
            seen += 1
        if seen != len(order):
            sys.exit("%s holds %d architectures, %s %d" % (path, seen, inputs[0], len(order)))
    with open(out, "w") as fh:
        for arch in order:
            fh.write(json.dumps(merged[arch]) + "\n")
    print("%s: %d architectures from %d files" % (out, len(order), len(inputs)))


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Agreement between two runs of mcnn-classify --embeddings at different precisions
(docs/precision.md): per frame the cosine of the embeddings (or logits) and whether the top-1
label is the same.  Standard library only.

    mcnn-classify --precision fp32 --embeddings fp32.st IMAGES...
    mcnn-classify --precision int8 --embeddings int8.st IMAGES...
    python3 bench/compare_precision.py fp32.st int8.st
"""
import json
import math
import struct
import sys


def read_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, t in header.items():
        if name == "__metadata__" or t["dtype"] != "F32":
            continue
        a, b = t["data_offsets"]
        values = struct.unpack("<%df" % ((b - a) // 4), data[a:b])
        cols = t["shape"][-1] if t["shape"] else 1
        out[name] = [values[i:i + cols] for i in range(0, len(values), cols)]
    return out


def cosine(x, y):
    xy = sum(a * b for a, b in zip(x, y))
    xx = sum(a * a for a in x)
    yy = sum(b * b for b in y)
    return xy / math.sqrt(xx * yy) if xx > 0 and yy > 0 else float(xx == yy)


def argmax(v):
    return max(range(len(v)), key=lambda i: v[i])


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    a, b = read_safetensors(sys.argv[1]), read_safetensors(sys.argv[2])
    for name in sorted(set(a) & set(b)):
        rows = list(zip(a[name], b[name]))
        cos = [cosine(x, y) for x, y in rows]
        agree = sum(argmax(x) == argmax(y) for x, y in rows)
        print("%-12s %d rows: cosine min %.6f mean %.6f; top-1 agreement %d/%d" %
              (name, len(rows), min(cos), sum(cos) / len(cos), agree, len(rows)))


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Paired comparison of two masked-span evaluations of the same items.

    python3 paired.py A.jsonl B.jsonl

Both files are `pretrainzero eval --task masked-span --out` outputs over the same items
(same data, --seed and --limit). Prints the items right in both, in A only and in B
only, and the difference in exact match (A - B, percentage points) with a 95 %
paired-bootstrap interval (2,000 resamples of items, seed 0).
"""
import json
import random
import sys


def read(path):
    with open(path) as lines:
        return {row["id"]: row["correct"] for row in map(json.loads, lines)}


def main():
    a, b = read(sys.argv[1]), read(sys.argv[2])
    if a.keys() != b.keys():
        sys.exit("the two files do not hold the same items")
    ids = sorted(a)
    both = sum(a[i] and b[i] for i in ids)
    only_a = sum(a[i] and not b[i] for i in ids)
    only_b = sum(b[i] and not a[i] for i in ids)
    rng = random.Random(0)
    diffs = sorted(
        sum(a[i] - b[i] for i in (rng.choice(ids) for _ in ids)) for _ in range(2000)
    )
    scale = 100 / len(ids)
    print(f"{len(ids)} items: right in both {both}, in A only {only_a}, in B only {only_b}")
    print(f"exact match A - B: {(only_a - only_b) * scale:+.1f} points, 95 % interval "
          f"[{diffs[50] * scale:+.1f}, {diffs[1949] * scale:+.1f}]")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""How often a model's predictor gives the two-sided reader's word, against stage 6's,
on the held-out spans of the two-sided measurement.

    python3 agreement.py STAGE6.jsonl OTHER.jsonl READERS.jsonl

STAGE6.jsonl and OTHER.jsonl are `pretrainzero eval --task masked-span --out` files of
the same items; READERS.jsonl is the `--out` of `perf/two_sided_reader.py` for stage 6
(its `left` and `two_sided` words). A predictor's word is the first word of its
extracted answer, cut as `first_words.py` cuts a response. Printed for both models, with paired
intervals for the difference: agreement with each reader, right answers, and right
answers on the items where the two-sided reader is right and stage 6 is not.
"""

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "perf"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "31m-continuation"))
from experiment import bootstrap  # noqa: E402
from first_words import by_id, first_word, readers_by_id  # noqa: E402


def paired(label, a, b):
    n = len(a)
    interval = bootstrap([y - x for x, y in zip(a, b)])
    print(f"| {label} | {n} | {sum(a)} | {sum(b)} | {sum(b) - sum(a):+d} "
          f"[{round(interval['low'] * n):+d}, {round(interval['high'] * n):+d}] |")


def main():
    stage6, other = by_id(sys.argv[1]), by_id(sys.argv[2])
    readers = readers_by_id(sys.argv[3])
    spans = [i for i in readers if i in other and i in stage6]
    word = {name: {i: first_word(rows[i].get("extracted") or "") for i in spans}
            for name, rows in [("stage6", stage6), ("other", other)]}
    print("| of the two-sided measurement's spans | items | stage 6 | other | paired difference [95 %] |")
    print("|---|---:|---:|---:|---:|")
    for reader in ("two_sided", "left"):
        paired(f"predictor's word = the {'two-sided' if reader == 'two_sided' else 'left-only'} reader's",
               [word["stage6"][i] == readers[i][reader] for i in spans],
               [word["other"][i] == readers[i][reader] for i in spans])
    paired("predictor's word right", [word["stage6"][i] == readers[i]["gold"] for i in spans],
           [word["other"][i] == readers[i]["gold"] for i in spans])
    gap = [i for i in spans if readers[i]["two_sided"] == readers[i]["gold"]
           and word["stage6"][i] != readers[i]["gold"]]
    paired("right, where the two-sided reader is right and stage 6 not",
           [False] * len(gap), [word["other"][i] == readers[i]["gold"] for i in gap])


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Why greedy answers stop after one word: the model's next-token probabilities after
a right first word.

    python3 perf/span_continuation.py --model MODEL_DIR ITEMS.jsonl [--binary B]

ITEMS.jsonl is the `--out` of `pretrainzero eval --task masked-span` for that model.
For every two- or three-word gold span whose first word the greedy answer got right,
the prompt followed by that word is scored with `pretrainzero score --json`, and two
probabilities are read at the position after it: of the closing `}` (the answer ends)
and of the first token of the gold span's second word (the answer goes on, rightly).
Prints their medians and how often `}` is the more likely of the two.
"""

import argparse
import json
import math
import statistics
from pathlib import Path

from binary import run
from paired_eval import load


def score(binary, model, text):
    return json.loads(run(binary, ["score", "--model", model, "--text", text, "--json"], model))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("items", type=Path)
    parser.add_argument("--model", required=True)
    parser.add_argument("--binary", default="target/release/pretrainzero")
    args = parser.parse_args()
    rows = load(args.items)
    cases = [r for r in rows
             if len(r["gold"].split()) > 1
             and (r.get("extracted") or "").split()[:1] == r["gold"].split()[:1]]
    if not cases:
        raise SystemExit(f"error: {args.items}: no multi-word span with its first word right")
    closing, going_on = [], []
    for row in cases:
        first, second = row["gold"].split()[:2]
        # The answer follows the prompt's `\boxed{` after a space (the window format's
        # answer lead); `\boxed{` is an added token, so the joint encoding splits there
        # as the separate encodings of prompt and answer do.
        ends = score(args.binary, args.model, f"{row['prompt']} {first}}}")
        goes_on = score(args.binary, args.model, f"{row['prompt']} {first} {second}")
        after_first = len(ends["ids"]) - 1  # ids up to and including the first word
        if ends["ids"][:after_first] != goes_on["ids"][:after_first]:
            raise SystemExit(f"error: item {row['id']}: the first word encodes differently "
                             "before `}` and before the second word")
        closing.append(math.exp(ends["target_logprobs"][-1]))
        going_on.append(math.exp(goes_on["target_logprobs"][after_first - 1]))
    print(f"{len(cases)} multi-word spans with the first word right")
    print(f"median P(`}}`) after it: {statistics.median(closing):.3f}")
    print(f"median P(first token of the gold second word): {statistics.median(going_on):.4f}")
    print(f"`}}` the more likely of the two: {sum(c > g for c, g in zip(closing, going_on))} "
          f"of {len(cases)}")


if __name__ == "__main__":
    main()

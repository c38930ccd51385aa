#!/usr/bin/env python3
"""Can the model copy from its context? The repeated-sequence test for induction heads.

    python3 perf/copy_test.py --model MODEL_DIR [MODEL_DIR ...] [--binary B]

A sequence of 30 random words, each one token of the model's vocabulary (a space and
four or more lowercase letters, from its tokenizer.json), is written twice and scored
with `pretrainzero score --ids --json`. Nothing predicts the first copy, a word salad;
a model that copies from its context (has induction heads) predicts the second copy
from the first, so its loss there falls far below its loss on the first copy. A model
that does not copy has about the same loss on both. Five sequences per model, from a
fixed seed; prints the mean loss per token on each copy.
"""

import argparse
import json
import random
import re
import statistics

from binary import run

LENGTH = 30
SEQUENCES = 5


def token_losses(binary, model, ids):
    out = run(binary, ["score", "--model", model, "--ids", ",".join(map(str, ids)), "--json"], model)
    try:
        return [-lp for lp in json.loads(out)["target_logprobs"]]
    except (ValueError, KeyError, TypeError) as e:
        raise SystemExit(f"error: {model}: unexpected output of {binary} score --json ({e})")


def word_tokens(model):
    """Ids of the vocabulary's whole-word tokens: a space (byte-level `Ġ`), then four or
    more lowercase letters."""
    path = f"{model}/tokenizer.json"
    try:
        with open(path) as f:
            vocab = json.load(f)["model"]["vocab"]
    except (OSError, KeyError, TypeError, ValueError) as e:
        raise SystemExit(f"error: {path}: no BPE vocabulary ({e})")
    ids = sorted(i for token, i in vocab.items() if re.fullmatch(r"Ġ[a-z]{4,}", token))
    if len(ids) < LENGTH:
        raise SystemExit(f"error: {path}: only {len(ids)} whole-word tokens")
    return ids


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", nargs="+", required=True)
    parser.add_argument("--binary", default="target/release/pretrainzero")
    args = parser.parse_args()
    print("| model | loss/token, first copy | loss/token, second copy | difference |")
    print("|---|---:|---:|---:|")
    for model in args.model:
        rng = random.Random(0)
        words = word_tokens(model)
        first, second = [], []
        for _ in range(SEQUENCES):
            sequence = rng.sample(words, LENGTH)
            losses = token_losses(args.binary, model, sequence + sequence)
            # losses[i] is the loss of token i + 1: the first copy's targets are tokens
            # 1..LENGTH-1, the second copy's tokens LENGTH+1..2*LENGTH-1 (its first
            # token follows a copy of the sequence's last one, which nothing predicts).
            first.append(statistics.mean(losses[: LENGTH - 1]))
            second.append(statistics.mean(losses[LENGTH:]))
        a, b = statistics.mean(first), statistics.mean(second)
        print(f"| {model} | {a:.2f} | {b:.2f} | {b - a:+.2f} |")


if __name__ == "__main__":
    main()

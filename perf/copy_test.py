#!/usr/bin/env python3
"""Can the model copy from its context? The repeated-sequence test for induction heads.

    python3 perf/copy_test.py --model MODEL_DIR [MODEL_DIR ...] [--binary B]
        [--lengths 10 20 40] [--ids TOKEN_IDS.json]

A sequence of random words, each one token of the model's vocabulary (a space and
four or more lowercase letters, from its tokenizer.json), is written twice and scored
with `pretrainzero score --ids --json`. Nothing predicts the first copy, a word salad;
a model that copies from its context (has induction heads) predicts the second copy
from the first, so its loss there falls far below its loss on the first copy. A model
that does not copy has about the same loss on both. Sequences of 10, 20 and 40 words,
three of each per model, from a fixed seed: a model that learned to repeat whatever
came a fixed number of tokens earlier (a shortcut that salads of one length teach)
copies at one length only, while induction heads copy at every length. Prints the mean
loss per token on each copy, and the difference at each length. `--ids` draws the
salads from a JSON list of token ids instead (a copying toy's `token_ids.json`), to
test a toy model on its own words.
"""

import argparse
import json
import random
import re
import statistics

from binary import run

LENGTHS = (10, 20, 40)
SEQUENCES_PER_LENGTH = 3


def token_losses(binary, model, ids):
    out = run(binary, ["score", "--model", model, "--ids", ",".join(map(str, ids)), "--json"], model)
    try:
        return [-lp for lp in json.loads(out)["target_logprobs"]]
    except (ValueError, KeyError, TypeError) as e:
        raise SystemExit(f"error: {model}: unexpected output of {binary} score --json ({e})")


def word_tokens(model, lengths):
    """Ids of the vocabulary's whole-word tokens: a space (byte-level `Ġ`), then four or
    more lowercase letters."""
    path = f"{model}/tokenizer.json"
    try:
        with open(path) as f:
            vocab = json.load(f)["model"]["vocab"]
    except (OSError, KeyError, TypeError, ValueError) as e:
        raise SystemExit(f"error: {path}: no BPE vocabulary ({e})")
    ids = sorted(i for token, i in vocab.items() if re.fullmatch(r"Ġ[a-z]{4,}", token))
    if len(ids) < max(lengths):
        raise SystemExit(f"error: {path}: only {len(ids)} whole-word tokens, fewer than the "
                         f"{max(lengths)} words of the longest --lengths")
    return ids


def token_ids(path, lengths):
    """The ids listed in a JSON file, such as a copying toy's `token_ids.json`."""
    try:
        with open(path) as f:
            ids = json.load(f)
    except (OSError, ValueError) as e:
        raise SystemExit(f"error: {path}: {e}")
    if not isinstance(ids, list) or not all(type(i) is int and i >= 0 for i in ids):
        raise SystemExit(f"error: {path}: not a JSON list of token ids")
    if len(set(ids)) < max(lengths):
        raise SystemExit(f"error: {path}: only {len(set(ids))} distinct ids, fewer than the "
                         f"{max(lengths)} words of the longest --lengths")
    return sorted(set(ids))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", nargs="+", required=True)
    parser.add_argument("--binary", default="target/release/pretrainzero")
    parser.add_argument("--lengths", nargs="+", type=int, default=list(LENGTHS))
    parser.add_argument("--ids", help="JSON list of token ids to draw the salads from")
    args = parser.parse_args()
    if min(args.lengths) < 2:
        raise SystemExit("error: --lengths: a salad needs at least 2 words")
    toy_words = token_ids(args.ids, args.lengths) if args.ids else None
    columns = " | ".join(f"difference, {n} words" for n in args.lengths)
    print(f"| model | loss/token, first copy | loss/token, second copy | difference | {columns} |")
    print("|---|---:|---:|---:|" + "---:|" * len(args.lengths))
    for model in args.model:
        rng = random.Random(0)
        words = toy_words or word_tokens(model, args.lengths)
        first, second, by_length = [], [], []
        for length in args.lengths:
            differences = []
            for _ in range(SEQUENCES_PER_LENGTH):
                sequence = rng.sample(words, length)
                losses = token_losses(args.binary, model, sequence + sequence)
                # losses[i] is the loss of token i + 1: the first copy's targets are
                # tokens 1..length-1, the second copy's tokens length+1..2*length-1 (its
                # first token follows a copy of the sequence's last one, which nothing
                # predicts).
                a = statistics.mean(losses[: length - 1])
                b = statistics.mean(losses[length:])
                first.append(a)
                second.append(b)
                differences.append(b - a)
            by_length.append(statistics.mean(differences))
        a, b = statistics.mean(first), statistics.mean(second)
        columns = " | ".join(f"{d:+.2f}" for d in by_length)
        print(f"| {model} | {a:.2f} | {b:.2f} | {b - a:+.2f} | {columns} |")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""The copying toy: word salads written twice, as a WikiExtractor corpus.

    python3 toy_corpus.py --tokenizer models/pretrainzero-wiki-tiny/tokenizer.json --out /tmp/copytok
        [--words 15 15] [--documents 3000] [--all-words] [--seed 0]

600 whole-word tokens of the tokenizer (a space, then four or more lowercase letters)
are drawn once (`--all-words`: every one of them, in id order); each paragraph is a
salad of them drawn at random and then the same salad again, three paragraphs per
document. Half of every paragraph is predictable only by copying from the context.
Each salad's length is drawn from `--words MIN MAX`: with one length (the default, 15)
a model can learn to repeat whatever came that many tokens earlier instead of forming
induction heads; lengths that vary rule that shortcut out. MIN is at least 6, because
`pretrain` drops paragraphs of fewer than 12 words by default. `--out` also gets
`token_ids.json`, the ids drawn from, for `torch_toy.py` and `perf/copy_test.py --ids`.
"""
import argparse
import json
import random
import re
from pathlib import Path


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tokenizer", required=True, type=Path)
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--words", nargs=2, type=int, default=[15, 15], metavar=("MIN", "MAX"))
    parser.add_argument("--documents", type=int, default=3000)
    parser.add_argument("--all-words", action="store_true")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    shortest, longest = args.words
    if not 6 <= shortest <= longest:
        raise SystemExit(f"error: --words {shortest} {longest}: need 6 <= MIN <= MAX")
    if args.documents < 1:
        raise SystemExit(f"error: --documents {args.documents}: need at least 1")
    vocab = json.loads(args.tokenizer.read_text())["model"]["vocab"]
    words = sorted((i, t[1:]) for t, i in vocab.items() if re.fullmatch(r"Ġ[a-z]{4,}", t))
    rng = random.Random(args.seed)
    chosen = words if args.all_words else rng.sample(words, 600)
    lines = []
    for doc in range(args.documents):
        lines.append(f'<doc id="{doc}" url="x" title="T{doc}">\nT{doc}\n')
        for _ in range(3):
            # One length draws nothing, so the default corpus stays byte-identical to
            # the one the first toy runs trained on.
            length = shortest if shortest == longest else rng.randint(shortest, longest)
            salad = " ".join(rng.choice(chosen)[1] for _ in range(length))
            lines.append(f" {salad} {salad}\n")
        lines.append("</doc>\n")
    (args.out / "AA").mkdir(parents=True, exist_ok=True)
    (args.out / "AA" / "wiki_00").write_text("".join(lines))
    (args.out / "token_ids.json").write_text(json.dumps([i for i, _ in chosen]))


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""The copying toy: word salads written twice, as a WikiExtractor corpus.

    python3 toy_corpus.py --tokenizer models/pretrainzero-wiki-tiny/tokenizer.json --out /tmp/copytok

600 whole-word tokens of the tokenizer (a space, then four or more lowercase letters)
are drawn once (seed 0); each paragraph is 15 of them drawn at random and then the
same 15 again, three paragraphs per document, 3,000 documents. Half of every
paragraph is predictable only by copying from the context. `--out` also gets
`token_ids.json`, the 600 ids, for `torch_toy.py`.
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
    args = parser.parse_args()
    vocab = json.loads(args.tokenizer.read_text())["model"]["vocab"]
    words = sorted((i, t[1:]) for t, i in vocab.items() if re.fullmatch(r"Ġ[a-z]{4,}", t))
    rng = random.Random(0)
    chosen = rng.sample(words, 600)
    lines = []
    for doc in range(3000):
        lines.append(f'<doc id="{doc}" url="x" title="T{doc}">\nT{doc}\n')
        for _ in range(3):
            salad = " ".join(rng.choice(chosen)[1] for _ in range(15))
            lines.append(f" {salad} {salad}\n")
        lines.append("</doc>\n")
    (args.out / "AA").mkdir(parents=True, exist_ok=True)
    (args.out / "AA" / "wiki_00").write_text("".join(lines))
    (args.out / "token_ids.json").write_text(json.dumps([i for i, _ in chosen]))


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""What a predictor that found [mask] perfectly could get from the left context alone.

For each item of a masked-span evaluation (`pretrainzero eval --task masked-span ...
--out items.jsonl`), the text of the paragraph before `[mask]` is given to the model
as a plain-text prompt (`pretrainzero generate --greedy`, the pretraining format), and
the first words of its continuation (as many as the gold span has) are compared with
the gold span. Items whose mask starts the paragraph are skipped.

    python3 left_context.py --binary target/release/pretrainzero \
        --model models/pretrainzero-wiki-31m --items items.jsonl

(The write-up measured stage 1 of the 31M model, the folder's content until commit
1577472; see its README.)
"""
import argparse
import collections
import json
import subprocess


def text_before_mask(prompt):
    """The paragraph's text before [mask], from a built-in or suffix-first prompt."""
    if "Text before [mask]: " in prompt:
        return prompt.split("Text before [mask]: ", 1)[1].split("\\boxed{")[0].rstrip()
    paragraph = prompt.split("Paragraph: ", 1)[1].split("\n\nMissing words:")[0]
    return paragraph.split("[mask]")[0].rstrip()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--binary", required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--items", required=True, help="per-item output of eval --out")
    args = parser.parse_args()

    hits, scored, first_words = 0, 0, collections.Counter()
    with open(args.items) as lines:
        items = [json.loads(line) for line in lines]
    for item in items:
        left = text_before_mask(item["prompt"])
        if not left:
            continue
        gold_words = item["gold"].split()
        out = subprocess.run(
            [args.binary, "generate", "--model", args.model, "--prompt", left,
             "--max-new-tokens", str(3 * len(gold_words) + 2), "--greedy"],
            capture_output=True, text=True, check=True,
        ).stdout
        words = out.split()
        guess = " ".join(words[: len(gold_words)]).strip(".,;:")
        first_words[words[0] if words else ""] += 1
        scored += 1
        hits += guess == item["gold"]
    print(f"left-context greedy continuation: exact match {hits}/{scored} "
          f"({100 * hits / max(scored, 1):.1f} %); most common first words: "
          f"{first_words.most_common(5)}")


if __name__ == "__main__":
    main()

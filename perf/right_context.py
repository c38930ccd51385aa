#!/usr/bin/env python3
"""Does the predictor use the words after the mask? Two measurements on one-word spans.

    python3 perf/right_context.py --model MODEL_DIR ITEMS.jsonl [--binary B] [--limit N]

ITEMS.jsonl is the `--out` of `pretrainzero eval --task masked-span` for that model, in
the window prompt format (`configs/prompt-templates/window.json`). For every item whose
gold span is one word and whose mask does not start its paragraph:

1. Left context alone: the paragraph's text before `[mask]` is given to the model as
   plain text (`generate --greedy`, the pretraining format) and the first word of the
   continuation is compared with the gold word. This is what the language model knows
   without the task format and without anything after the mask; the eval's own answers
   are paired with it item by item.
2. Swapped right context: the item's prompt is rebuilt with the text after the mask
   (the "Text after [mask]" line and the words after `[mask]` in the "Around [mask]"
   line) taken from the next item, and answered greedily again. A predictor that reads
   the words after the mask changes its answer for many items; one that does not keeps
   nearly all of them. Both answers are generated one prompt at a time; how many of the
   unswapped ones equal the eval's (batched) answers is printed as a check.
"""

import argparse
from pathlib import Path

from binary import run
from paired_eval import load

AFTER = "Text after [mask]: "
BEFORE = "\n\nText before [mask]: "
AROUND = "\n\nAround [mask]: "


def generate(binary, model, prompt, max_new_tokens, stop=None):
    args = ["generate", "--model", model, "--prompt", prompt,
            "--max-new-tokens", str(max_new_tokens), "--greedy"]
    return run(binary, args + (["--stop", stop] if stop else []), model)


def window_parts(item):
    """(after, before, around, before_tail, after_head) of a window-format prompt:
    `around` is its "Around [mask]" line, the others the words the template filled in."""
    prompt = item.get("prompt", "")
    if AFTER not in prompt or AROUND not in prompt:
        raise ValueError(f"item {item.get('id')}: not a window-format prompt "
                         "(no 'Text after [mask]' or 'Around [mask]' line)")
    after = prompt.split(AFTER, 1)[1].split(BEFORE, 1)[0]
    before = prompt.split(BEFORE, 1)[1].split(AROUND, 1)[0]
    around = prompt.split(AROUND, 1)[1].split("\n\n", 1)[0]
    before_tail, after_head = around.split(" [mask] ", 1) if " [mask] " in around \
        else (around.removesuffix(" [mask]"), "")
    return after, before, around, before_tail, after_head


def with_right_context(item, donor):
    """The item's prompt with the donor's text after the mask."""
    after, _, around, before_tail, _ = window_parts(item)
    donor_after, _, _, _, donor_head = window_parts(donor)
    prompt = item["prompt"].replace(AFTER + after + BEFORE, AFTER + donor_after + BEFORE, 1)
    return prompt.replace(AROUND + around + "\n\n",
                          f"{AROUND}{before_tail} [mask] {donor_head}\n\n", 1)


def answer(args, prompt):
    """The greedy answer to a task prompt, up to its closing brace."""
    return generate(args.binary, args.model, prompt, 12, "}").split("}")[0].strip()


def trim_edges(word):
    """`word` without the non-alphanumeric characters at its ends, as the project's
    span rule trims a gold span."""
    start, end = 0, len(word)
    while start < end and not word[start].isalnum():
        start += 1
    while end > start and not word[end - 1].isalnum():
        end -= 1
    return word[start:end]


def first_word(text):
    """The first word of a continuation, trimmed of the non-alphanumeric characters at
    its ends as a gold span is."""
    words = text.replace("}", " ").split()
    return trim_edges(words[0] if words else "")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("items", type=Path)
    parser.add_argument("--model", required=True)
    parser.add_argument("--binary", default="target/release/pretrainzero")
    parser.add_argument("--limit", type=int, default=0, help="at most this many items (0: all)")
    args = parser.parse_args()
    try:
        items = [r for r in load(args.items)
                 if len(r["gold"].split()) == 1 and window_parts(r)[1].strip()]
    except ValueError as e:
        raise SystemExit(f"error: {args.items}: {e}")
    if args.limit:
        items = items[: args.limit]
    if len(items) < 2:
        raise SystemExit(f"error: {args.items}: fewer than two one-word spans with text before the mask")

    task_hits = left_hits = both = kept = reproduced = 0
    for index, item in enumerate(items):
        gold = item["gold"]
        task_answer = (item.get("extracted") or "").strip()
        task_right = bool(item["correct"])
        # Enough tokens for the longest words of the vocabulary.
        left_right = first_word(generate(args.binary, args.model, window_parts(item)[1], 8)) == gold
        # Both answers come from `generate`, so batching in `eval` cannot tell them apart.
        own = answer(args, item["prompt"])
        swapped = answer(args, with_right_context(item, items[(index + 1) % len(items)]))
        reproduced += own == task_answer
        kept += swapped == own
        task_hits += task_right
        left_hits += left_right
        both += task_right and left_right

    n = len(items)
    print(f"{n} one-word spans with text before the mask ({args.items})")
    print("| predictor | right | both | this one only |")
    print("|---|---:|---:|---:|")
    print(f"| task prompt (the eval's answers) | {task_hits} | {both} | {task_hits - both} |")
    print(f"| left context alone, plain text | {left_hits} | {both} | {left_hits - both} |")
    print(f"the eval's answers reproduced one at a time: {reproduced}/{n}")
    print(f"answers unchanged when the words after the mask are another item's: "
          f"{kept}/{n} ({100 * kept / n:.1f} %)")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""First words of a model's answers against stage 6's (window format) and against the
left-only reader's, on the same held-out items.

    python3 first_words.py STAGE6.jsonl OTHER.jsonl READERS.jsonl [NAME]

STAGE6.jsonl and OTHER.jsonl are `pretrainzero eval --task masked-span --out` files
of the same items (stage 6 in the window format, and the model compared with it:
this run in the running-text format unless NAME says otherwise); READERS.jsonl is the
`--out` of `perf/two_sided_reader.py` for stage 6.

A response's first word is its first whitespace-separated word with a trailing `}`
removed: the running-text format's answers mostly have no closing brace, so every
response is read, not the extracted answer. This is stricter than
`perf/right_context.py`'s first word, which trims punctuation at its ends: a response
that opens with a quote or a comma has not answered a word. A response "starts with a
word" when it is a space followed by an ASCII letter or digit.
"""

import json
import re
import sys
from pathlib import Path

# The eval-file reader (clear errors on a wrong file) and the percentile bootstrap that
# perf/paired_eval.py uses, so that the intervals are computed the same way.
sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "perf"))
from experiment import bootstrap  # noqa: E402
from paired_eval import load  # noqa: E402


def by_id(path):
    return {row["id"]: row for row in load(Path(path))}


def readers_by_id(path):
    with open(path) as lines:
        return {row["id"]: row for row in map(json.loads, lines)}


def first_word(response):
    words = (response or "").split()
    return words[0].rstrip("}") if words else ""


def report(name, a, b, other):
    n = len(a)
    interval = bootstrap([y - x for x, y in zip(a, b)])
    diff, low, high = sum(b) - sum(a), round(interval["low"] * n), round(interval["high"] * n)
    both = sum(x and y for x, y in zip(a, b))
    print(f"{name}: stage 6 {sum(a)}, {other} {sum(b)} of {len(a)}; "
          f"paired {diff:+d} [{low:+d}, {high:+d}]; both {both}, "
          f"stage 6 only {sum(a) - both}, {other} only {sum(b) - both}")


def main():
    stage6, compared = by_id(sys.argv[1]), by_id(sys.argv[2])
    readers = readers_by_id(sys.argv[3])
    other = sys.argv[4] if len(sys.argv) > 4 else "running text"
    ids = list(compared)
    # The gold span's first word, right or not, for each format.
    for words in (1, 2, 3, None):
        chosen = [i for i in ids if words is None or len(compared[i]["gold"].split()) == words]
        gold = [compared[i]["gold"].split()[0] for i in chosen]
        a = [first_word(stage6[i]["response"]) == g for i, g in zip(chosen, gold)]
        b = [first_word(compared[i]["response"]) == g for i, g in zip(chosen, gold)]
        report(f"first word of {f'{words}-word' if words else 'all'} golds", a, b, other)

    # The two-sided measurement's spans, split by whether the compared model's
    # response starts with a word; the reader always answers a word.
    spans = [i for i in ids if i in readers]
    starts = {i: bool(re.match(r" [A-Za-z0-9]", compared[i]["response"])) for i in spans}
    for label, part in [("all", spans), (f"{other} starts with a word", [i for i in spans if starts[i]]),
                        (f"{other} starts otherwise", [i for i in spans if not starts[i]])]:
        gold = [readers[i]["gold"] for i in part]
        a = [first_word(stage6[i]["response"]) == g for i, g in zip(part, gold)]
        b = [first_word(compared[i]["response"]) == g for i, g in zip(part, gold)]
        left = sum(readers[i]["left"] == g for i, g in zip(part, gold))
        report(f"two-sided measurement's spans, {label} ({len(part)}); left-only reader {left}", a, b, other)


if __name__ == "__main__":
    main()

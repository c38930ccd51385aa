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
response is read, not the extracted answer. A response "starts with a word" when it
is a space followed by an ASCII letter or digit.
"""

import json
import random
import re
import sys


def load(path):
    with open(path) as f:
        return {r["id"]: r for r in map(json.loads, f)}


def first_word(response):
    words = (response or "").split()
    return words[0].rstrip("}") if words else ""


def paired(a, b, seed=0, resamples=2000):
    """b − a in items, with a 95 % bootstrap interval."""
    rng = random.Random(seed)
    n = len(a)
    diffs = sorted(
        sum(b[i] - a[i] for i in (rng.randrange(n) for _ in range(n))) for _ in range(resamples)
    )
    return sum(b) - sum(a), diffs[int(0.025 * resamples)], diffs[int(0.975 * resamples) - 1]


def report(name, a, b, other):
    diff, low, high = paired(a, b)
    both = sum(x and y for x, y in zip(a, b))
    print(f"{name}: stage 6 {sum(a)}, {other} {sum(b)} of {len(a)}; "
          f"paired {diff:+d} [{low:+d}, {high:+d}]; both {both}, "
          f"stage 6 only {sum(a) - both}, {other} only {sum(b) - both}")


def main():
    stage6, compared, readers = (load(p) for p in sys.argv[1:4])
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

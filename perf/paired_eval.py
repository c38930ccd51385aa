#!/usr/bin/env python3
"""Two models on the same held-out masked-span items, paired item by item.

    python3 perf/paired_eval.py BASE.jsonl OTHER.jsonl [--resamples 2000] [--seed 0]

Each file is the `--out` of `pretrainzero eval --task masked-span` with the same
corpus, `--limit` and span choice, so line i of both is the same item (checked by id
and gold span). Prints, for each model, exact match, hits by span length, one-word
answers, the most frequent answer and the mean gold-span log-likelihood per token; then
the paired differences OTHER − BASE with percentile bootstrap intervals over items, the
discordant items (hit by one model only) and an exact two-sided sign test on them.
"""

import argparse
import json
import math
from collections import Counter
from pathlib import Path

# The experiment driver's percentile bootstrap (its plotting library loads only when it
# draws), so that both report intervals the same way.
from experiment import bootstrap


def load(path: Path):
    try:
        lines = path.read_text().splitlines()
    except OSError as error:
        raise SystemExit(f"error: {path}: {error.strerror or error}")
    rows = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as error:
            raise SystemExit(f"error: {path}:{number}: not JSON ({error.msg})")
        for key in ("id", "prompt", "gold", "correct", "extracted"):
            if not isinstance(row, dict) or key not in row:
                raise SystemExit(f"error: {path}:{number}: not an `eval --out` line (no field {key!r})")
        rows.append(row)
    if not rows:
        raise SystemExit(f"error: {path}: no items")
    return rows


def summary(rows):
    answers = Counter((r["extracted"] or "").strip() for r in rows if r["extracted"] is not None)
    top, top_n = answers.most_common(1)[0] if answers else ("", 0)
    by_length = Counter()
    right_by_length = Counter()
    for r in rows:
        words = len(r["gold"].split())
        by_length[words] += 1
        right_by_length[words] += r["correct"]
    logliks = [r["gold_loglik"] for r in rows if r.get("gold_loglik") is not None]
    return {
        "hits": sum(r["correct"] for r in rows),
        "items": len(rows),
        "by_length": ", ".join(f"{right_by_length[n]}/{by_length[n]}" for n in sorted(by_length)),
        "one_word_answers": sum(len((r["extracted"] or "").split()) == 1 for r in rows),
        "top_answer": top,
        "top_share": top_n / max(1, sum(answers.values())),
        "gold_loglik": sum(logliks) / len(logliks) if logliks else float("nan"),
    }


def sign_test(wins, losses):
    """Two-sided exact binomial test of wins against losses at p = 1/2."""
    n = wins + losses
    if n == 0:
        return 1.0
    k = min(wins, losses)
    tail = sum(math.comb(n, i) for i in range(k + 1)) / 2**n
    return min(1.0, 2 * tail)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("base", type=Path)
    parser.add_argument("other", type=Path)
    parser.add_argument("--resamples", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.resamples < 100:
        raise SystemExit("error: --resamples must be at least 100 for a 95 % interval")
    base, other = load(args.base), load(args.other)
    if len(base) != len(other):
        raise SystemExit(f"error: {args.base} has {len(base)} items, {args.other} {len(other)}")
    for i, (a, b) in enumerate(zip(base, other)):
        if (a["id"], a["gold"]) != (b["id"], b["gold"]):
            raise SystemExit(f"error: item {i + 1} differs: {a['id']} {a['gold']!r} against "
                             f"{b['id']} {b['gold']!r}; run both evals on the same items")

    print("| model | exact match | one / two / three words right | one-word answers "
          "| most frequent answer | gold log-lik/token |")
    print("|---|---:|---|---:|---|---:|")
    for path, rows in ((args.base, base), (args.other, other)):
        s = summary(rows)
        print(f"| {path} | {100 * s['hits'] / s['items']:.2f} % ({s['hits']}/{s['items']}) "
              f"| {s['by_length']} | {s['one_word_answers']} "
              f"| `{s['top_answer']}` {100 * s['top_share']:.1f} % | {s['gold_loglik']:.3f} |")

    hit_delta = [int(b["correct"]) - int(a["correct"]) for a, b in zip(base, other)]
    hits = bootstrap(hit_delta, args.seed, args.resamples)
    wins = sum(d > 0 for d in hit_delta)
    losses = sum(d < 0 for d in hit_delta)
    both = sum(a["correct"] and b["correct"] for a, b in zip(base, other))
    print()
    print(f"exact match, other − base: {100 * hits['mean']:+.2f} points "
          f"[{100 * hits['low']:+.2f}, {100 * hits['high']:+.2f}] "
          f"(bootstrap, {args.resamples} resamples)")
    print(f"hits: {both} both, {losses} base only, {wins} other only; "
          f"sign test on the discordant items: p = {sign_test(wins, losses):.3f}")
    loglik_delta = [b["gold_loglik"] - a["gold_loglik"] for a, b in zip(base, other)
                    if a.get("gold_loglik") is not None and b.get("gold_loglik") is not None]
    if loglik_delta:
        loglik = bootstrap(loglik_delta, args.seed, args.resamples)
        print(f"gold log-lik/token, other − base: {loglik['mean']:+.4f} "
              f"[{loglik['low']:+.4f}, {loglik['high']:+.4f}] over {loglik['n']} items")


if __name__ == "__main__":
    main()

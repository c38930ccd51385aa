#!/usr/bin/env python3
"""Predictor examples whose answers are the model's own two-sided reading of the mask
(self-distillation), written for `pretrain --predictor-examples`.

    python3 perf/distill_answers.py --model MODEL_DIR --corpus TRAIN_SIDE.wikiextractor \\
        --items N --out EXAMPLES.jsonl [--seed S]
    python3 perf/distill_answers.py --model MODEL_DIR --check EVAL_OUT.jsonl [--limit N]

The predictor answers left to right, so it cannot weigh a candidate word by how well
the words after the mask follow it; the model's language model can, and on held-out
one-word spans that reading is right about twice as often as the predictor
(docs/experiments/31m-two-sided-reading). This script writes that reading down as
training answers: for paragraphs of TRAIN_SIDE (the train side of the article split,
`pretrainzero data split --side train`), one word is masked as the pretraining stream
masks a one-word span (a random word, its edge punctuation trimmed, every copy in the
paragraph replaced by `[mask]`, 1 to 7 copies), and the answer written is the reader's
word, right or wrong. Items whose first `[mask]` starts the paragraph or does not
follow a space are skipped. Each line of EXAMPLES.jsonl holds `masked` (the masked
paragraph) and `answer` (the word), which `pretrain` turns into a predictor example,
and, for reading the file, `gold` and `left` (the left-only reader's word).

The reader is `two_sided_reader.py`'s, batched over items for speed, and shortened:
the text before the mask is cut to its last `--prefix-tokens` tokens, and K and S
default to 12 and 6 instead of 20 and 12. `--check` scores the shortened reader on an
eval file's one-word items, as `two_sided_reader.py` does (its text rebuilt with a
space on both sides of the mask), so the two can be compared on the same items.
"""

import argparse
import json
import random
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer

from paired_eval import load
from right_context import trim_edges, window_parts
from two_sided_reader import Qwen3, check_against_binary, word_token_flags

HIDDEN = -1e9  # attention bias on padding keys


def corpus_paragraphs(path, min_words):
    """The paragraphs of a WikiExtractor file: each article's lines after its title,
    with at least `min_words` words, single-spaced as the project's corpus reader
    leaves them (a no-break space becomes a space)."""
    title_next = False
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.startswith("<doc"):
                title_next = True
                continue
            if line.startswith("</doc"):
                continue
            if title_next:
                title_next = False
                continue
            words = line.split()
            if len(words) >= min_words:
                yield " ".join(words)


def one_word_mask(paragraph, rng):
    """(span, masked paragraph) for a random word of `paragraph`, or None."""
    words = paragraph.split()
    for _ in range(8):
        span = trim_edges(words[rng.randrange(len(words))])
        if not span:
            continue
        copies = paragraph.count(span)
        if 1 <= copies <= 7:
            return span, paragraph.replace(span, "[mask]")
    return None


def branch_forward(model, ids, prefix, prefix_bias, branch=None):
    """Log-probabilities [items, K, tokens, vocab] of K continuations per item, `ids`
    [items, K, tokens], after each item's cached prefix (`prefix`: per layer, keys
    and values [items, kv heads, P, dim], hidden where `prefix_bias` [items, P] says
    so) and the continuations' own cached tokens (`branch`: per layer, [items, K, kv
    heads, T, dim]), and the extended `branch`. The prefix is read by every
    continuation without being copied K times."""
    items, k, tokens = ids.shape
    start = prefix[0][0].shape[2] + (0 if branch is None else branch[0][0].shape[3])
    x = model.embed[ids]
    group = model.heads // model.kv_heads
    causal = np.triu(np.full((tokens, tokens), -np.inf, dtype=np.float32), 1)
    new_branch = []
    for index, layer in enumerate(model.layers):
        h = model.rms(x, layer["ln1"])
        q = model.linear(h, layer["q"]).reshape(items, k, tokens, model.heads, model.dim)
        key = model.linear(h, layer["k"]).reshape(items, k, tokens, model.kv_heads, model.dim)
        value = model.linear(h, layer["v"]).reshape(items, k, tokens, model.kv_heads, model.dim)
        # [items, K, heads, tokens, dim]; rope over the last two axes.
        q = model.rope(model.rms(q.transpose(0, 1, 3, 2, 4), layer["qn"]), start)
        key = model.rope(model.rms(key.transpose(0, 1, 3, 2, 4), layer["kn"]), start)
        value = value.transpose(0, 1, 3, 2, 4)
        if branch is not None:
            key = np.concatenate([branch[index][0], key], 3)
            value = np.concatenate([branch[index][1], value], 3)
        new_branch.append((key, value))
        q = q.reshape(items, k, model.kv_heads, group, tokens, model.dim) / np.sqrt(model.dim)
        prefix_key, prefix_value = prefix[index]
        # Scores on the prefix's keys, shared by the K continuations, and on their own.
        on_prefix = q @ prefix_key[:, None, :, None].swapaxes(-1, -2)
        on_prefix += prefix_bias[:, None, None, None, None, :]
        on_branch = q @ key[:, :, :, None].swapaxes(-1, -2)
        on_branch[..., -tokens:] += causal
        scores = np.concatenate([on_prefix, on_branch], -1)
        scores -= scores.max(-1, keepdims=True)
        weights = np.exp(scores)
        weights /= weights.sum(-1, keepdims=True)
        p = prefix_key.shape[2]
        attended = weights[..., :p] @ prefix_value[:, None, :, None] + weights[..., p:] @ value[:, :, :, None]
        attended = attended.reshape(items, k, model.heads, tokens, model.dim).transpose(0, 1, 3, 2, 4)
        x = x + model.linear(attended.reshape(items, k, tokens, -1), layer["o"])
        h = model.rms(x, layer["ln2"])
        gate = model.linear(h, layer["gate"])
        x = x + model.linear((gate / (1 + np.exp(-gate))) * model.linear(h, layer["up"]), layer["down"])
    logits = model.linear(model.rms(x, model.norm), model.head)
    logits -= logits.max(-1, keepdims=True)
    return logits - np.log(np.exp(logits).sum(-1, keepdims=True)), new_branch


class Reader:
    def __init__(self, model, tokenizer, candidates, suffix_tokens, prefix_tokens):
        self.model = model
        self.tokenizer = tokenizer
        self.k = candidates
        self.s = suffix_tokens
        self.p = prefix_tokens
        self.opens_word, self.letters = word_token_flags(tokenizer)

    def encode(self, text):
        return self.tokenizer.encode(text, add_special_tokens=False).ids

    def read(self, pairs):
        """(left-only word, two-sided word) for each (before, after): `before` ends
        just before the space that precedes the word, `after` starts right after it."""
        model, k = self.model, self.k
        prefixes = [([0] + self.encode(before))[-self.p:] for before, _ in pairs]
        batch, width = len(pairs), max(len(p) for p in prefixes)
        ids = np.zeros((batch, width), dtype=np.int64)
        bias = np.zeros((batch, width), dtype=np.float32)
        for row, prefix in enumerate(prefixes):
            ids[row, width - len(prefix):] = prefix
            bias[row, : width - len(prefix)] = HIDDEN
        logprobs, cache = model.forward(ids, None, bias, last_only=True)
        next_logprobs = logprobs[:, -1]
        allowed = np.where(self.opens_word & self.letters, next_logprobs, -np.inf)
        order = np.argsort(-allowed, axis=1)[:, :k]
        # The K word-opening tokens of every item grow together, three tokens at most.
        grown = order[:, :, None]
        grown_cache = None
        for _ in range(3):
            step, grown_cache = branch_forward(model, grown[:, :, -1:], cache, bias, grown_cache)
            grown = np.concatenate([grown, step[:, :, -1].argmax(-1)[:, :, None]], 2)
        words = []
        for item in range(batch):
            found = []
            for row in grown[item]:
                seq = [int(row[0])]
                for token in row[1:]:
                    if self.opens_word[token] or not self.letters[token]:
                        break
                    seq.append(int(token))
                found.append(self.tokenizer.decode(seq).strip())
            # Never empty: a first token that decodes to nothing still stands for itself.
            words.append(list(dict.fromkeys(w for w in found if w)) or [found[0] or "?"])
        # Every candidate with the first S tokens after it, scored after its prefix
        # (an item with fewer than K distinct words pads with its last one).
        rows = []
        for item, (_, after) in enumerate(pairs):
            item_rows = []
            for word in words[item]:
                word_len = len(self.encode(" " + word))
                item_rows.append(self.encode(" " + word + after)[: word_len + self.s])
            rows.append(item_rows + [item_rows[-1]] * (k - len(item_rows)))
        length = max(len(r) for item_rows in rows for r in item_rows)
        row_ids = np.array([[r + [0] * (length - len(r)) for r in item_rows] for item_rows in rows])
        row_logprobs, _ = branch_forward(model, row_ids, cache, bias)
        best = []
        for item in range(batch):
            totals = [next_logprobs[item, ids_[0]] + sum(row_logprobs[item, j, t - 1, ids_[t]]
                                                         for t in range(1, len(ids_)))
                      for j, ids_ in enumerate(rows[item][: len(words[item])])]
            best.append(words[item][int(np.argmax(totals))])
        return [(words[i][0], best[i]) for i in range(batch)]


def check(reader, args):
    items = [r for r in load(args.check) if len(r["gold"].split()) == 1 and window_parts(r)[1].strip()]
    if args.limit:
        items = items[: args.limit]
    left = two_sided = task = 0
    for start in range(0, len(items), args.batch):
        chunk = items[start:start + args.batch]
        # As two_sided_reader.py: a space assumed on both sides of the mask.
        parts = [window_parts(r) for r in chunk]
        pairs = [(before, " " + after) for after, before, _, _, _ in parts]
        for r, (l, t) in zip(chunk, reader.read(pairs)):
            left += l == r["gold"]
            two_sided += t == r["gold"]
            task += bool(r["correct"])
        print(f"{start + len(chunk)}/{len(items)}: left {left}, two-sided {two_sided}, task {task}", flush=True)


def distill(reader, args):
    if args.out.exists():
        raise SystemExit(f"error: {args.out}: exists; refusing to overwrite it")
    paragraphs = list(corpus_paragraphs(args.corpus, args.min_words))
    if not paragraphs:
        raise SystemExit(f"error: {args.corpus}: no paragraph of {args.min_words} words or more")
    rng = random.Random(args.seed)
    rng.shuffle(paragraphs)
    examples = []
    for paragraph in paragraphs:
        masked = one_word_mask(paragraph, rng)
        if masked is None:
            continue
        span, text = masked
        before, after = text.split("[mask]", 1)
        if not before.strip() or not before.endswith(" "):
            continue
        examples.append({"masked": text, "gold": span, "before": before[:-1], "after": after})
        if len(examples) == args.items:
            break
    right = 0
    with args.out.open("w") as out:
        for start in range(0, len(examples), args.batch):
            chunk = examples[start:start + args.batch]
            answers = reader.read([(e["before"], e["after"]) for e in chunk])
            for e, (l, t) in zip(chunk, answers):
                if not t:
                    continue
                right += t == e["gold"]
                out.write(json.dumps({"masked": e["masked"], "answer": t, "gold": e["gold"], "left": l}) + "\n")
            out.flush()
            print(f"{start + len(chunk)}/{len(examples)}: two-sided right {right}", flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, type=Path)
    parser.add_argument("--binary", default="target/release/pretrainzero")
    parser.add_argument("--corpus", type=Path, help="train-side WikiExtractor file to mask")
    parser.add_argument("--items", type=int, default=1000, help="examples to write")
    parser.add_argument("--out", type=Path, help="examples file (JSON lines); never overwritten")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--min-words", type=int, default=12)
    parser.add_argument("--check", type=Path, help="score the reader on an eval --out file instead")
    parser.add_argument("--limit", type=int, default=0)
    parser.add_argument("--candidates", type=int, default=12, help="K: next words considered")
    parser.add_argument("--suffix-tokens", type=int, default=6, help="S: tokens after the mask scored")
    parser.add_argument("--prefix-tokens", type=int, default=128, help="P: tokens before the mask read")
    parser.add_argument("--batch", type=int, default=16, help="items read together")
    args = parser.parse_args()
    if not args.check and not (args.corpus and args.out):
        parser.error("give --corpus and --out, or --check")

    tokenizer = Tokenizer.from_file(str(args.model / "tokenizer.json"))
    model = Qwen3(args.model)
    check_against_binary(model, args.model, tokenizer, args.binary)
    reader = Reader(model, tokenizer, args.candidates, args.suffix_tokens, args.prefix_tokens)
    (check if args.check else distill)(reader, args)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""How many one-word masked spans does a model's own language model get right when it
reads the words after the mask as well as the words before?

    python3 perf/two_sided_reader.py --model MODEL_DIR ITEMS.jsonl [--limit N]
        [--candidates K] [--suffix-tokens S] [--out ANSWERS.jsonl]

ITEMS.jsonl is the `--out` of `pretrainzero eval --task masked-span` for that model, in
the window prompt format. For every item whose gold span is one word and whose mask
does not start its paragraph, the paragraph is rebuilt as plain text (the pretraining
format: end-of-text, then the paragraph) and three answers are compared with the gold:

1. Left only: the word opened by the most likely word-opening token after the text
   before the mask (completed greedily): the language model told that a word comes
   next, and shown nothing after it.
2. Two-sided: of the words opened by the K most likely word-opening tokens, the one
   with the highest log p(word | before) + log p(first S tokens after the mask |
   before, word): the mode of the model's own posterior over those K words given
   both sides. It is not the project's predictor (it scores K continuations of each
   item); it shows what the model's knowledge supports when read from both sides.
3. The eval's greedy answer to the task prompt (the items' `correct` field).

Also printed: how often the gold word is among the K candidates at all, and the eval's
exact match on all its items if its one-word answers were replaced by those of 1 or 2
(its other answers kept), with paired bootstrap intervals. The gap between 1 and 2 is
what the words after the mask add to the model's own knowledge; 2 is not a bound on
what a predictor could reach, but an answer that the model's weights support.

The rebuilt text is approximate, which makes both readers score lower than they
would on the true paragraph: the prompt trims the text around the mask, so a space is
assumed on both sides of the word (wrong where punctuation follows it, where it
follows an opening bracket or quote, or where the mask falls inside a word); other
copies of the span in the paragraph stay `[mask]`; tokens that decode to stray bytes
count as letters; a word is grown for at most four tokens after its first.

The model runs in NumPy (float32, from the bf16 safetensors), so nothing but `numpy`
and `tokenizers` is needed. Its log-probabilities are checked at the start against
`pretrainzero score --ids --json` (the project's model) when the binary exists.
"""

import argparse
import json
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer

from binary import run
from right_context import window_parts
from paired_eval import load
from safetensors_file import read_safetensors


class Qwen3:
    """The Qwen3 decoder in NumPy, with a key/value cache so that many continuations
    of one prefix share its computation."""

    def __init__(self, model_dir):
        config = json.loads((model_dir / "config.json").read_text())
        if config.get("model_type") != "qwen3":
            raise SystemExit(f"error: {model_dir}/config.json: model_type {config.get('model_type')!r}, qwen3 expected")
        w = read_safetensors(model_dir / "model.safetensors")
        self.embed = w["model.embed_tokens.weight"]
        self.head = w.get("lm_head.weight", self.embed)
        self.norm = w["model.norm.weight"]
        self.layers = []
        for i in range(config["num_hidden_layers"]):
            p = f"model.layers.{i}."
            self.layers.append({k: w[p + n] for k, n in [
                ("ln1", "input_layernorm.weight"), ("ln2", "post_attention_layernorm.weight"),
                ("q", "self_attn.q_proj.weight"), ("k", "self_attn.k_proj.weight"),
                ("v", "self_attn.v_proj.weight"), ("o", "self_attn.o_proj.weight"),
                ("qn", "self_attn.q_norm.weight"), ("kn", "self_attn.k_norm.weight"),
                ("gate", "mlp.gate_proj.weight"), ("up", "mlp.up_proj.weight"),
                ("down", "mlp.down_proj.weight")]})
        self.heads = config["num_attention_heads"]
        self.kv_heads = config["num_key_value_heads"]
        self.dim = config.get("head_dim") or config["hidden_size"] // self.heads
        self.eps = config["rms_norm_eps"]
        half = self.dim // 2
        self.inv_freq = 1.0 / (config["rope_theta"] ** (np.arange(half, dtype=np.float64) * 2 / self.dim))

    @staticmethod
    def linear(x, weight):
        """`x @ weight.T` over the last axis, as one matrix product (a product over
        three axes runs one small product per row)."""
        return (x.reshape(-1, x.shape[-1]) @ weight.T).reshape(x.shape[:-1] + (weight.shape[0],))

    def rms(self, x, weight):
        return x / np.sqrt((x * x).mean(-1, keepdims=True) + self.eps) * weight

    def rope(self, x, start):
        # x: [..., tokens, dim]
        angles = np.outer(np.arange(start, start + x.shape[-2]), self.inv_freq)
        cos = np.cos(np.concatenate([angles, angles], -1)).astype(np.float32)
        sin = np.sin(np.concatenate([angles, angles], -1)).astype(np.float32)
        half = self.dim // 2
        rotated = np.concatenate([-x[..., half:], x[..., :half]], -1)
        return x * cos + rotated * sin

    def forward(self, ids, cache=None, key_bias=None, last_only=False):
        """Log-probabilities [batch, tokens, vocab] of `ids` [batch, tokens] after the
        cached tokens (one row shared by every row of `ids`, or one row each), and the
        cache extended by `ids`. `key_bias` [batch, cached + tokens], when given, is
        added to every attention score on each key: a large negative number hides
        padding (rotary positions are relative, so rows padded on the left keep their
        scores). `last_only` keeps the log-probabilities of the last position alone."""
        batch, tokens = ids.shape
        start = 0 if cache is None else cache[0][0].shape[2]
        x = self.embed[ids]
        new_cache = []
        causal = np.triu(np.full((tokens, tokens), -np.inf, dtype=np.float32), 1)
        for index, layer in enumerate(self.layers):
            h = self.rms(x, layer["ln1"])
            q = self.linear(h, layer["q"]).reshape(batch, tokens, self.heads, self.dim).transpose(0, 2, 1, 3)
            k = self.linear(h, layer["k"]).reshape(batch, tokens, self.kv_heads, self.dim).transpose(0, 2, 1, 3)
            v = self.linear(h, layer["v"]).reshape(batch, tokens, self.kv_heads, self.dim).transpose(0, 2, 1, 3)
            q = self.rope(self.rms(q, layer["qn"]), start)
            k = self.rope(self.rms(k, layer["kn"]), start)
            if cache is not None:
                past_k, past_v = cache[index]
                k = np.concatenate([np.broadcast_to(past_k, (batch,) + past_k.shape[1:]), k], 2)
                v = np.concatenate([np.broadcast_to(past_v, (batch,) + past_v.shape[1:]), v], 2)
            new_cache.append((k, v))
            # Grouped-query attention: each key/value head serves `group` query heads,
            # broadcast rather than copied.
            group = self.heads // self.kv_heads
            q = q.reshape(batch, self.kv_heads, group, tokens, self.dim)
            scores = q @ k[:, :, None].transpose(0, 1, 2, 4, 3) / np.sqrt(self.dim)
            scores[..., start:] += causal
            if key_bias is not None:
                scores += key_bias[:, None, None, None, :]
            scores -= scores.max(-1, keepdims=True)
            weights = np.exp(scores)
            weights /= weights.sum(-1, keepdims=True)
            attended = (weights @ v[:, :, None]).reshape(batch, self.heads, tokens, self.dim)
            attended = attended.transpose(0, 2, 1, 3).reshape(batch, tokens, -1)
            x = x + self.linear(attended, layer["o"])
            h = self.rms(x, layer["ln2"])
            gate = self.linear(h, layer["gate"])
            x = x + self.linear((gate / (1 + np.exp(-gate))) * self.linear(h, layer["up"]), layer["down"])
        if last_only:
            x = x[:, -1:]
        logits = self.linear(self.rms(x, self.norm), self.head)
        logits -= logits.max(-1, keepdims=True)
        logprobs = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
        return logprobs, new_cache


def word_token_flags(tokenizer):
    """Per token id: whether it opens a word (byte-level BPE: it starts with the
    encoded space), and whether it is letters or digits after that space."""
    vocab = [tokenizer.id_to_token(i) for i in range(tokenizer.get_vocab_size())]
    return (np.array([t.startswith("Ġ") for t in vocab]),
            np.array([t.lstrip("Ġ").isalnum() for t in vocab]))


def check_against_binary(model, model_dir, tokenizer, binary):
    if not Path(binary).exists():
        print(f"(no {binary}: the NumPy model is not checked against the project's)")
        return
    ids = [0] + tokenizer.encode("The castle was built in the twelfth century by the king.",
                                 add_special_tokens=False).ids
    out = run(binary, ["score", "--model", str(model_dir), "--ids", ",".join(map(str, ids)), "--json"], model_dir)
    theirs = np.array(json.loads(out)["target_logprobs"])
    logprobs, _ = model.forward(np.array([ids]))
    ours = logprobs[0, np.arange(len(ids) - 1), ids[1:]]
    gap = float(np.abs(ours - theirs).max())
    print(f"NumPy model against `pretrainzero score`: largest log-prob difference {gap:.2e}")
    if gap > 1e-2:
        raise SystemExit("error: the NumPy model does not match the project's; numbers would mean nothing")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("items", type=Path)
    parser.add_argument("--model", required=True, type=Path)
    parser.add_argument("--binary", default="target/release/pretrainzero")
    parser.add_argument("--limit", type=int, default=0, help="at most this many items (0: all)")
    parser.add_argument("--candidates", type=int, default=20, help="K: next words considered")
    parser.add_argument("--suffix-tokens", type=int, default=12, help="S: tokens after the mask scored")
    parser.add_argument("--out", type=Path, help="write each item's three answers here (JSON lines)")
    args = parser.parse_args()

    tokenizer = Tokenizer.from_file(str(args.model / "tokenizer.json"))
    model = Qwen3(args.model)
    check_against_binary(model, args.model, tokenizer, args.binary)
    opens_word, letters = word_token_flags(tokenizer)

    everything = load(args.items)
    items = [r for r in everything if len(r["gold"].split()) == 1 and window_parts(r)[1].strip()]
    if args.limit:
        items = items[: args.limit]

    out = args.out.open("w") if args.out else None
    left, two_sided, task = [], [], []  # per item: right or not
    in_candidates = 0
    for n, item in enumerate(items, 1):
        after, before, _, _, _ = window_parts(item)
        prefix = [0] + tokenizer.encode(before, add_special_tokens=False).ids
        prefix_logprobs, cache = model.forward(np.array([prefix]))
        next_logprobs = prefix_logprobs[0, -1]
        # The K most likely word-opening tokens, each completed greedily into a word.
        order = np.argsort(-np.where(opens_word & letters, next_logprobs, -np.inf))[: args.candidates]
        # All K grow together, four tokens at most; each keeps the tokens before the
        # first one that opens a new word or is not a letter or digit.
        grown = order.reshape(-1, 1)
        grown_cache = cache
        for _ in range(4):
            lp, grown_cache = model.forward(grown[:, -1:], grown_cache)
            grown = np.concatenate([grown, lp[:, -1].argmax(-1).reshape(-1, 1)], 1)
        words = []
        for row in grown:
            seq = [int(row[0])]
            for token in row[1:]:
                if opens_word[token] or not letters[token]:
                    break
                seq.append(int(token))
            words.append(tokenizer.decode(seq).strip())
        words = list(dict.fromkeys(w for w in words if w))
        # Each candidate with the words after it, scored after the shared prefix.
        rows = []
        for word in words:
            # The prompt trims both sides of the mask, so a space is assumed on each.
            ids = tokenizer.encode(" " + word + " " + after, add_special_tokens=False).ids
            word_len = len(tokenizer.encode(" " + word, add_special_tokens=False).ids)
            rows.append(ids[: word_len + args.suffix_tokens])
        width = max(len(r) for r in rows)
        batch = np.array([r + [0] * (width - len(r)) for r in rows])
        logprobs, _ = model.forward(batch, cache)
        totals = []
        for row, ids in enumerate(rows):
            total = next_logprobs[ids[0]] + sum(logprobs[row, t - 1, ids[t]] for t in range(1, len(ids)))
            totals.append(total)
        left_answer = words[0]
        two_sided_answer = words[int(np.argmax(totals))]
        gold = item["gold"]
        left.append(left_answer == gold)
        two_sided.append(two_sided_answer == gold)
        task.append(bool(item["correct"]))
        in_candidates += gold in words
        if out:
            out.write(json.dumps({"id": item["id"], "gold": gold, "left": left_answer, "two_sided": two_sided_answer,
                                  "task": (item.get("extracted") or "").strip(),
                                  "task_correct": bool(item["correct"]), "candidates": words}) + "\n")
        if n % 100 == 0:
            print(f"{n}/{len(items)}: left {sum(left)}, two-sided {sum(two_sided)}, task {sum(task)}, "
                  f"gold among candidates {in_candidates}", flush=True)

    if out:
        out.close()
    n = len(items)
    print(f"\n{n} one-word spans with text before the mask ({args.items}), K = {args.candidates}, "
          f"S = {args.suffix_tokens}")
    print("| answer | right | share |")
    print("|---|---:|---:|")
    for name, hits in [("left only: the word opened by the most likely word-opening token", sum(left)),
                       ("two-sided: the best of K such words by the tokens after the mask", sum(two_sided)),
                       ("the eval's greedy answer to the task prompt", sum(task)),
                       ("gold among the K candidates (an upper bound for two-sided)", in_candidates)]:
        print(f"| {name} | {hits} | {100 * hits / n:.1f} % |")

    # What the eval's exact match on all its items would be with these answers on the
    # one-word spans and its own answers elsewhere, and the paired differences.
    elsewhere = sum(bool(r["correct"]) for r in everything) - sum(task)
    rng = np.random.default_rng(0)
    resamples = rng.integers(0, n, size=(2000, n))
    task = np.array(task)
    print(f"\nexact match on all {len(everything)} items of {args.items}, the other items' answers kept:")
    print("| one-word answers from | exact match | difference from the eval's [95 % bootstrap] |")
    print("|---|---:|---:|")
    for name, hits in [("the eval (as scored)", task), ("left only", np.array(left)),
                       ("two-sided", np.array(two_sided))]:
        diff = (hits.astype(float) - task)[resamples].sum(1) * 100 / len(everything)
        low, high = np.percentile(diff, [2.5, 97.5])
        total = elsewhere + hits.sum()
        print(f"| {name} | {100 * total / len(everything):.2f} % ({total}) | "
              f"{100 * (hits.sum() - task.sum()) / len(everything):+.2f} points [{low:+.2f}, {high:+.2f}] |")

if __name__ == "__main__":
    main()

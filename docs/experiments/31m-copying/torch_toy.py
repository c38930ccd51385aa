#!/usr/bin/env python3
"""The copying toy in PyTorch: the same shape, data and schedule as the Rust run.

    python3 torch_toy.py --config CONFIG.json --ids /tmp/copytok/token_ids.json [--steps 1500]
        [--words 15 15]

CONFIG.json is the `config.json` of the Rust run's export (the `tiny` preset). The
model is perf/torch_bench.py's Qwen3 (init std 0.02); the data are the toy's word
salads as token ids (15 of the 600, or a length drawn from `--words MIN MAX` as in
toy_corpus.py, then the same salad again, then end-of-text), packed
into 8 sequences of 128 tokens per step; AdamW (β 0.9/0.95, weight decay 0.01), peak
lr 2e-3 after 20 warm-up steps, cosine to 2e-4, global-norm clip 1.0, 2 threads.
Every 50 steps it prints the batch loss and, on a fresh salad, the loss per token of
its first and second copy: copying shows as the second falling far below the first.
The test salads have 20 distinct words, so a model that only learned to repeat what
came a fixed number of tokens earlier (possible with one training length other than
20, which is refused) does not pass.
"""
import argparse
import json
import math
import random
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "perf"))
import torch_bench  # noqa: E402

TEST_WORDS = 20


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", required=True, type=Path)
    parser.add_argument("--ids", required=True, type=Path)
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--words", nargs=2, type=int, default=[15, 15], metavar=("MIN", "MAX"))
    args = parser.parse_args()
    shortest, longest = args.words
    if not 1 <= shortest <= longest:
        raise SystemExit(f"error: --words {shortest} {longest}: need 1 <= MIN <= MAX")
    if shortest == longest == TEST_WORDS:
        raise SystemExit(f"error: --words {shortest} {longest}: the test salads have {TEST_WORDS} "
                         "words, so one training length of 20 would pass them by position alone")
    torch.manual_seed(0)
    torch.set_num_threads(2)
    model = torch_bench.Qwen3(json.loads(args.config.read_text()))
    ids = json.loads(args.ids.read_text())
    rng = random.Random(0)
    test_rng = random.Random(1)  # the test salads leave the training stream alone

    def salad():
        # One length draws nothing, so the default stream is the one of the runs
        # reported with 15-word salads.
        length = shortest if shortest == longest else rng.randint(shortest, longest)
        return [rng.choice(ids) for _ in range(length)]

    def stream():
        while True:
            words = salad()
            yield from words + words + [0]

    tokens = stream()
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3, betas=(0.9, 0.95), weight_decay=0.01)
    for step in range(args.steps):
        progress = step / args.steps
        lr = 2e-3 * min(1.0, (step + 1) / 20) * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))
        for group in opt.param_groups:
            group["lr"] = lr
        batch = torch.tensor([[next(tokens) for _ in range(129)] for _ in range(8)])
        logits = model.head(model.hidden(batch[:, :-1]))
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), batch[:, 1:].reshape(-1))
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if step % 50 == 0 or step == args.steps - 1:
            with torch.no_grad():
                words = test_rng.sample(ids, TEST_WORDS)
                test = torch.tensor([words + words])
                losses = F.cross_entropy(model.head(model.hidden(test[:, :-1]))[0], test[0, 1:],
                                         reduction="none")
            # losses[i] is the loss of token i + 1: the first copy's targets are tokens
            # 1..n-1, the second copy's n+1..2n-1 (its first token follows a copy of the
            # salad's last word, which nothing predicts).
            n = TEST_WORDS
            print(f"step {step}: loss {loss.item():.2f}, first copy {losses[: n - 1].mean():.2f}, "
                  f"second copy {losses[n:].mean():.2f}", flush=True)


if __name__ == "__main__":
    main()

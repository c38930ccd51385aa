#!/usr/bin/env python3
"""The PyTorch eager peer of `pretrainzero bench kernels`: the masked-token reward step
(per-row log-probability of the sampled token and entropy of the row, over [N, V]
logits) as a user writes it in PyTorch, `log_softmax + gather + entropy`, forward and
forward + backward, at the same shapes.

    python perf/torch_kernels.py --rows 4096,16384 --vocab 32000,151936 [--device cuda]

Prints one JSON object; perf/gpu-check.sh puts it next to the project's figures.
"""

import argparse
import json
import statistics
import time

import torch


def timed(device, repeats, fn):
    fn()
    times = []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def reward_step(logits, targets, mask):
    logp = torch.log_softmax(logits, dim=-1)
    picked = logp.gather(-1, targets[:, None]).squeeze(-1) * mask
    entropy = -(logp.exp() * logp).sum(-1) * mask
    return picked, entropy


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", default="4096,16384")
    ap.add_argument("--vocab", default="32000,151936")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--iters", type=int, default=10)
    args = ap.parse_args()
    device = torch.device(args.device)
    out = []
    for rows in map(int, args.rows.split(",")):
        for vocab in map(int, args.vocab.split(",")):
            gen = torch.Generator(device="cpu").manual_seed(0)
            logits = (torch.randn(rows, vocab, generator=gen) * 3).to(device)
            targets = torch.randint(0, vocab, (rows,), generator=gen).to(device)
            mask = (torch.rand(rows, generator=gen) < 0.8).float().to(device)
            with torch.no_grad():
                forward = timed(device, args.iters, lambda: reward_step(logits, targets, mask))
            leaf = logits.clone().requires_grad_(True)

            def forward_backward():
                leaf.grad = None
                picked, entropy = reward_step(leaf, targets, mask)
                (picked.sum() + 0.01 * entropy.sum()).backward()

            both = timed(device, args.iters, forward_backward)
            logits_bytes = rows * vocab * 4
            out.append({
                "rows": rows, "vocab": vocab,
                "forward_ms": forward * 1e3, "forward_backward_ms": both * 1e3,
                # One read of the logits: the least any forward can move.
                "forward_gb_per_s": logits_bytes / forward / 1e9,
            })
            del logits, leaf
            if device.type == "cuda":
                torch.cuda.empty_cache()
    print(json.dumps({"torch": torch.__version__, "device": str(device), "measurements": out}))


if __name__ == "__main__":
    main()

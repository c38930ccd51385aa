#!/usr/bin/env python3
"""Shape sweep at equal training compute: which 20-40M Qwen3 shape learns most per FLOP.

Every shape in configs/model-shapes/ is pretrained from a random init on the same
corpus, tokenizer, seed, learning-rate schedule shape and batch, for as many steps as
give it the same training FLOPs as `--reference-steps` steps of the reference shape
(6 x parameters touched per token, plus attention). Then one table: parameters,
FLOPs/token, steps, tokens, wall time, tokens/s, final validation loss and perplexity.

    python3 perf/shape_sweep.py --binary target/release/pretrainzero \\
        --corpus ../shared/data/wikipedia/enwiki-wikiextractor \\
        --tokenizer models/pretrainzero-wiki-tiny/tokenizer.json --out runs/shape-sweep

Nothing but the standard library is needed. Runs one shape at a time (two cores).
"""
import argparse
import json
import pathlib
import subprocess
import sys
import time


def shape_cost(config: dict, vocab: int, seq_len: int) -> tuple[int, float]:
    """(parameters, training FLOPs per token) of a Qwen3 config with tied embeddings."""
    hidden = config["hidden_size"]
    head_dim = config.get("head_dim", hidden // config["num_attention_heads"])
    q = config["num_attention_heads"] * head_dim
    kv = config["num_key_value_heads"] * head_dim
    ffn = config["intermediate_size"]
    layers = config["num_hidden_layers"]
    per_layer = hidden * q + 2 * hidden * kv + q * hidden + 3 * hidden * ffn
    per_layer += 2 * hidden + 2 * head_dim  # RMSNorms (no FLOPs worth counting)
    params = layers * per_layer + vocab * hidden + hidden
    # Forward 2 FLOPs per weight and token (LM head included: it reuses the
    # embedding), attention scores and values 2 x 2 x seq/2 x q on average
    # (causal); backward twice the forward.
    forward = 2 * (layers * per_layer + vocab * hidden) + layers * 2 * seq_len * q
    return params, 3.0 * forward


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--binary", default="target/release/pretrainzero")
    parser.add_argument("--corpus", required=True)
    parser.add_argument("--tokenizer", required=True)
    parser.add_argument("--shapes", default="configs/model-shapes")
    parser.add_argument("--reference", default="mid-8x512")
    parser.add_argument("--reference-steps", type=int, default=36)
    parser.add_argument("--out", required=True)
    parser.add_argument("--vocab", type=int, default=8192)
    parser.add_argument("--seq-len", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--warmup-fraction", type=float, default=0.1)
    parser.add_argument("--task-fraction", type=float, default=0.25)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    shapes = sorted(pathlib.Path(args.shapes).glob("*.json"))
    if not shapes:
        sys.exit(f"{args.shapes}: no *.json model configs")
    costs = {
        s.stem: shape_cost(json.loads(s.read_text()), args.vocab, args.seq_len)
        for s in shapes
    }
    if args.reference not in costs:
        sys.exit(f"--reference {args.reference}: not among {sorted(costs)}")
    tokens_per_step = args.batch_size * args.seq_len
    budget = costs[args.reference][1] * args.reference_steps * tokens_per_step
    out = pathlib.Path(args.out)
    rows = []
    for shape in shapes:
        params, flops = costs[shape.stem]
        steps = max(1, round(budget / (flops * tokens_per_step)))
        run_dir = out / shape.stem
        if not (run_dir / "final" / "model.safetensors").exists():
            command = [
                args.binary, "pretrain", "--corpus", args.corpus,
                "--preset", str(shape), "--tokenizer", args.tokenizer,
                "--out", str(run_dir), "--steps", str(steps), "--lr", str(args.lr),
                "--warmup-steps", str(max(1, round(steps * args.warmup_fraction))),
                "--batch-size", str(args.batch_size), "--seq-len", str(args.seq_len),
                "--validate-every", str(steps), "--checkpoint-every", "0",
                "--task-fraction", str(args.task_fraction), "--seed", str(args.seed),
            ]
            print("+", " ".join(command), flush=True)
            started = time.monotonic()
            subprocess.run(command, check=True)
            (run_dir / "sweep_seconds").write_text(f"{time.monotonic() - started:.1f}\n")
        metrics = [
            json.loads(line)
            for line in (run_dir / "metrics.jsonl").read_text().splitlines()
        ]
        final = [m for m in metrics if m.get("val_loss") is not None][-1]
        seconds = float((run_dir / "sweep_seconds").read_text())
        rows.append((shape.stem, params, flops, steps, final, seconds))

    print(f"\nequal training compute: {budget:.3e} FLOPs per shape "
          f"({args.reference_steps} steps of {args.reference})\n")
    print("| shape | parameters | MFLOP/token | steps | tokens | wall s | tok/s | val loss | val ppl |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name, params, flops, steps, final, seconds in rows:
        tokens = final["tokens_seen"]
        print(f"| {name} | {params / 1e6:.1f}M | {flops / 1e6:.0f} | {steps} | {tokens:,} | "
              f"{seconds:.0f} | {tokens / seconds:.0f} | {final['val_loss']:.3f} | "
              f"{final['val_perplexity']:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())

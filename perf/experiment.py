#!/usr/bin/env python3
"""PretrainZero against its baselines, several seeds, evaluated on held-out articles.

    python3 perf/experiment.py --model models/pretrainzero-wiki-tiny --steps 25 \\
        --seeds 0,1,2 --out runs/experiment [--equal-wall-clock] [--set KEY=VALUE ...]

Every arm starts from `--model` and trains on the training side of the default run's
article split (`configs/tiny-cpu.toml`: `data.validation_fraction = 0.2`,
`data.split_seed = 1`):

- `pretrainzero`, `random-span` (Random RLPT), `random-ntp`, `entropy-ntp`:
  `pretrainzero train --set policy.kind=K --set seed=S --set optim.steps=N`, with the
  paper's game (the default run's two departures, the copy-constrained generator and
  the stop-word rule, turned off);
- `pretrainzero-copy`: PretrainZero with those two departures on, as the default run;
- `continue-pt`: `pretrainzero pretrain` (next-token cross-entropy) from the same model
  on the same corpus and split, N steps of 4 × 256 tokens (about the text of the 8
  paragraphs an RL step reads) at the RL learning rate.

Then each final model and the base model are scored by `eval --task masked-span` on
the validation side of the same split (articles no run saw), random and entity spans,
greedy: exact match and the gold span's mean log-likelihood per token. Intervals are
95 % bootstrap intervals over items (items pooled over the seeds); differences are
paired (every model is scored on the same items).

`--equal-wall-clock` adds one more run per baseline (seed 0) whose step count makes its
training time equal to PretrainZero's mean training time at `--steps`.

Verification scaling: the spans each PretrainZero run (both games) chose (its
`spans.jsonl`) are scored, per window of steps, by the frozen base model (`eval --span logged`); spans
that get harder read as falling accuracy and log-likelihood.

Writes `results.md`, `results.json` and charts (PNG) under `--out`; runs and evaluations
already present are reused, so an interrupted experiment continues where it stopped.
Needs `matplotlib` (`pip install matplotlib`).
"""

import argparse
import json
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path

# Each RL arm: its span policy and the `train` overrides that define its game. Every
# arm names both departures from the paper explicitly, so that the experiment does not
# change when the default configuration does.
PAPER_GAME = ["policy.generator_copy_constraint=false",
              "policy.span_rules.reject_stop_word_spans=false"]
COPY_GAME = ["policy.generator_copy_constraint=true",
             "policy.span_rules.reject_stop_word_spans=true"]
RL_ARMS = {
    "pretrainzero": ("pretrainzero", PAPER_GAME),
    "pretrainzero-copy": ("pretrainzero", COPY_GAME),
    "random-span": ("random-span", PAPER_GAME),
    "random-ntp": ("random-ntp", PAPER_GAME),
    "entropy-ntp": ("entropy-ntp", PAPER_GAME),
}
METHODS = list(RL_ARMS) + ["continue-pt"]
CORPUS = "data/wikipedia-sample/heldout.wikiextractor"
SPLIT = ["--split", "validation", "--validation-fraction", "0.2", "--split-seed", "1"]
BOOTSTRAP = 2000


def run(command, log: Path):
    """Runs `command`, its output into `log`; a failure stops the experiment."""
    started = time.time()
    with log.open("w") as out:
        done = subprocess.run(command, stdout=out, stderr=subprocess.STDOUT)
    if done.returncode != 0:
        sys.exit(f"failed ({done.returncode}): {' '.join(map(str, command))}\nsee {log}")
    return time.time() - started


def train(args, method, seed, steps, run_dir: Path):
    """Trains one arm unless its final model exists; returns its training seconds."""
    final = run_dir / "final" / "model.safetensors"
    seconds_file = run_dir / "seconds.txt"
    if final.exists() and seconds_file.exists():
        return float(seconds_file.read_text())
    if run_dir.exists():
        subprocess.run(["rm", "-rf", str(run_dir)], check=True)
    run_dir.parent.mkdir(parents=True, exist_ok=True)
    log = run_dir.parent / f"{run_dir.name}.log"
    if method == "continue-pt":
        command = [args.binary, "pretrain", "--model", args.model, "--corpus", CORPUS,
                   "--out", run_dir, "--steps", steps, "--batch-size", 4, "--seq-len", 256,
                   "--lr", args.lr, "--warmup-steps", 2, "--min-lr-ratio", 0.1,
                   "--validation-fraction", 0.2, "--seed", 1, "--data-seed", seed,
                   "--validate-every", steps, "--checkpoint-every", steps,
                   "--min-words", 12]
    else:
        kind, game = RL_ARMS[method]
        command = [args.binary, "train", "--run-dir", run_dir,
                   "--set", f"model={args.model}", "--set", f"policy.kind={kind}",
                   "--set", f"seed={seed}", "--set", f"optim.steps={steps}",
                   "--set", f"optim.lr={args.lr}", "--set", f"checkpoint.every={steps}"]
        for override in game + args.set:
            command += ["--set", override]
    seconds = run([str(c) for c in command], log)
    seconds_file.write_text(f"{seconds:.1f}\n")
    return seconds


def evaluate(args, model: Path, out: Path, extra=()):
    """Per-item results of `eval --task masked-span` (reused when present)."""
    if not out.exists():
        log = out.with_suffix(".log")
        partial = out.with_suffix(".partial")
        partial.unlink(missing_ok=True)
        command = [args.binary, "eval", "--model", model, "--task", "masked-span",
                   "--batch-size", 64, "--out", partial, *extra]
        run([str(c) for c in command], log)
        partial.rename(out)
    return [json.loads(line) for line in out.read_text().splitlines() if line.strip()]


def held_out(args, model: Path, out: Path):
    return evaluate(args, model, out, ["--data", CORPUS, "--max-words", 80, *SPLIT,
                                       "--span", "random,entity", "--limit", args.eval_limit])


def bootstrap(values, seed=0, resamples=BOOTSTRAP):
    """Mean and 95 % percentile interval of the mean."""
    if not values:
        return None
    rng = random.Random(seed)
    n = len(values)
    means = sorted(sum(values[rng.randrange(n)] for _ in range(n)) / n for _ in range(resamples))
    return {"mean": sum(values) / n, "low": means[int(0.025 * resamples)],
            "high": means[int(0.975 * resamples) - 1], "n": n}


def by_span(items, kind):
    return {item["id"]: item for item in items if item["span"] == kind}


def score(runs_items, kind):
    """Exact match and gold log-likelihood over the items of several runs (pooled)."""
    correct, loglik = [], []
    for items in runs_items:
        for item in by_span(items, kind).values():
            correct.append(1.0 if item["correct"] else 0.0)
            if item.get("gold_loglik") is not None:
                loglik.append(item["gold_loglik"])
    return {"exact_match": bootstrap(correct), "gold_loglik": bootstrap(loglik)}


def paired_loglik_difference(runs_items, reference_items, kind):
    """Mean per-item gold log-likelihood difference against a reference model (each run
    against the same reference items), pooled over runs."""
    reference = by_span(reference_items, kind)
    differences = []
    for items in runs_items:
        for item_id, item in by_span(items, kind).items():
            ref = reference.get(item_id)
            if ref and item.get("gold_loglik") is not None and ref.get("gold_loglik") is not None:
                differences.append(item["gold_loglik"] - ref["gold_loglik"])
    return bootstrap(differences)


def paired_between(a_runs, b_runs, kind):
    """Mean gold log-likelihood difference a − b, pairing run i of a with run i of b
    (same seed) item by item."""
    differences = []
    for a_items, b_items in zip(a_runs, b_runs):
        b = by_span(b_items, kind)
        for item_id, item in by_span(a_items, kind).items():
            other = b.get(item_id)
            if other and item.get("gold_loglik") is not None and other.get("gold_loglik") is not None:
                differences.append(item["gold_loglik"] - other["gold_loglik"])
    return bootstrap(differences)


def metrics_rows(run_dir: Path):
    path = run_dir / "metrics.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def training_summary(run_dir: Path, method):
    rows = metrics_rows(run_dir)
    if method == "continue-pt":
        return {"steps": len(rows), "updates": len(rows), "signal_samples": None,
                "final_train_loss": rows[-1]["loss"] if rows else None}
    return {"steps": len(rows),
            "updates": sum(not r["update_skipped"] for r in rows),
            "signal_samples": sum(r["samples"] for r in rows),
            "zero_variance": [r["zero_variance_fraction"] for r in rows],
            "top_span_share": [r.get("top_span_share", 0.0) for r in rows]}


def fmt(ci, scale=1.0, digits=2):
    if ci is None:
        return "–"
    return (f"{scale * ci['mean']:.{digits}f} [{scale * ci['low']:.{digits}f}, "
            f"{scale * ci['high']:.{digits}f}]")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--binary", default="target/release/pretrainzero")
    parser.add_argument("--model", default="models/pretrainzero-wiki-tiny")
    parser.add_argument("--steps", type=int, default=25)
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--lr", default="5e-5")
    parser.add_argument("--eval-limit", type=int, default=1000)
    parser.add_argument("--window", type=int, default=5,
                        help="steps per window of the verification-scaling chart")
    parser.add_argument("--equal-wall-clock", action="store_true")
    parser.add_argument("--set", action="append", default=[],
                        help="a `train` override for every RL arm (e.g. a remedy)")
    parser.add_argument("--out", type=Path, default=Path("runs/experiment"))
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    methods = args.methods.split(",")
    for method in methods:
        if method not in METHODS:
            sys.exit(f"--methods: unknown method {method!r} (known: {', '.join(METHODS)})")
    args.out.mkdir(parents=True, exist_ok=True)

    results = {"config": {"model": args.model, "steps": args.steps, "seeds": seeds,
                          "lr": args.lr, "overrides": args.set, "eval_limit": args.eval_limit},
               "arms": {}}
    seconds, items, summaries = {}, {}, {}
    for method in methods:
        for seed in seeds:
            run_dir = args.out / f"{method}-s{seed}"
            print(f"train {method} seed {seed}", flush=True)
            seconds[(method, seed)] = train(args, method, seed, args.steps, run_dir)
            summaries[(method, seed)] = training_summary(run_dir, method)
            print(f"eval {method} seed {seed}", flush=True)
            items[(method, seed)] = held_out(args, run_dir / "final", args.out / f"eval-{method}-s{seed}.jsonl")
    print("eval base model", flush=True)
    base = held_out(args, Path(args.model), args.out / "eval-base.jsonl")

    wall = {}
    # The arms that play the generator/predictor game (both games), derived once.
    game_methods = [m for m in methods if RL_ARMS.get(m, ("",))[0] == "pretrainzero"]
    if args.equal_wall_clock and "pretrainzero" in methods:
        budget = statistics.mean(seconds[("pretrainzero", s)] for s in seeds)
        for method in methods:
            if method in game_methods:
                continue
            per_step = statistics.mean(seconds[(method, s)] for s in seeds) / args.steps
            steps = max(1, round(budget / per_step))
            run_dir = args.out / f"{method}-wall-s{seeds[0]}"
            print(f"train {method} for PretrainZero's wall-clock: {steps} steps", flush=True)
            took = train(args, method, seeds[0], steps, run_dir)
            wall[method] = {"steps": steps, "seconds": took,
                            "items": held_out(args, run_dir / "final",
                                              args.out / f"eval-{method}-wall-s{seeds[0]}.jsonl")}

    # Verification scaling: the frozen base model on each window of logged spans.
    scaling = {}
    for method in game_methods:
        # The chart's file names keep the paper's game unprefixed.
        prefix = "scaling" if method == "pretrainzero" else f"scaling-{method}"
        for seed in seeds:
            log = args.out / f"{method}-s{seed}" / "spans.jsonl"
            for first in range(1, args.steps + 1, args.window):
                last = min(args.steps, first + args.window - 1)
                out = args.out / f"{prefix}-s{seed}-{first}-{last}.jsonl"
                print(f"base model on the {method} spans of steps {first}-{last}, seed {seed}",
                      flush=True)
                scored = evaluate(args, Path(args.model), out,
                                  ["--data", log, "--span", "logged", "--steps", f"{first}-{last}"])
                scaling.setdefault(method, {}).setdefault((first, last), []).extend(scored)

    lines = [f"# Experiment: {args.steps} steps from `{args.model}`, seeds {args.seeds}", ""]
    if args.set:
        lines += ["RL overrides: " + ", ".join(f"`{s}`" for s in args.set), ""]
    lines += ["## Training", "",
              "| arm | seconds (mean of seeds) | steps with an update (per seed) | samples with signal (per seed) |",
              "|---|---:|---|---|"]
    for method in methods:
        secs = statistics.mean(seconds[(method, s)] for s in seeds)
        updates = " / ".join(str(summaries[(method, s)]["updates"]) for s in seeds)
        signal = " / ".join(str(summaries[(method, s)]["signal_samples"]) for s in seeds)
        lines.append(f"| {method} | {secs:.0f} | {updates} | {signal} |")
    for kind in ["random", "entity"]:
        lines += ["", f"## Held-out masked span, `{kind}` spans (validation articles, greedy)", "",
                  "| model | items | exact match % [95% CI] | gold log-lik/token [95% CI] | Δ log-lik vs base [95% CI] |",
                  "|---|---:|---:|---:|---:|"]
        base_score = score([base], kind)
        n = base_score["exact_match"]["n"] if base_score["exact_match"] else 0
        lines.append(f"| base model | {n} | {fmt(base_score['exact_match'], 100)} | "
                     f"{fmt(base_score['gold_loglik'], 1, 3)} | – |")
        results["arms"].setdefault("base", {})[kind] = base_score
        for method in methods:
            runs_items = [items[(method, s)] for s in seeds]
            s = score(runs_items, kind)
            s["loglik_vs_base"] = paired_loglik_difference(runs_items, base, kind)
            results["arms"].setdefault(method, {})[kind] = s
            lines.append(f"| + {method} ({len(seeds)} seeds) | {s['exact_match']['n']} | "
                         f"{fmt(s['exact_match'], 100)} | {fmt(s['gold_loglik'], 1, 3)} | "
                         f"{fmt(s['loglik_vs_base'], 1, 3)} |")
        for method, arm in wall.items():
            s = score([arm["items"]], kind)
            s["loglik_vs_base"] = paired_loglik_difference([arm["items"]], base, kind)
            results["arms"].setdefault(f"{method}-wall", {})[kind] = s
            lines.append(f"| + {method}, PretrainZero's wall-clock ({arm['steps']} steps, seed "
                         f"{seeds[0]}) | {s['exact_match']['n']} | {fmt(s['exact_match'], 100)} | "
                         f"{fmt(s['gold_loglik'], 1, 3)} | {fmt(s['loglik_vs_base'], 1, 3)} |")
        for method in game_methods if "random-span" in methods else []:
            diff = paired_between([items[(method, s)] for s in seeds],
                                  [items[("random-span", s)] for s in seeds], kind)
            results.setdefault(f"{method}_minus_random_span", {})[kind] = diff
            lines += ["", f"`{method}` − Random RLPT, gold log-lik/token, paired by seed and "
                          f"item: {fmt(diff, 1, 4)}"]
    if scaling:
        results["verification_scaling"] = {}
        for method, windows in scaling.items():
            lines += ["", f"## Verification scaling: the base model on `{method}`'s chosen spans", "",
                      "| steps | spans (all seeds) | base-model exact match % [95% CI] | base-model gold log-lik/token [95% CI] |",
                      "|---|---:|---:|---:|"]
            rows = results["verification_scaling"].setdefault(method, [])
            for (first, last), scored in sorted(windows.items()):
                s = score([scored], "logged")
                rows.append({"steps": [first, last], **s})
                n = s["exact_match"]["n"] if s["exact_match"] else 0
                lines.append(f"| {first}–{last} | {n} | {fmt(s['exact_match'], 100)} | "
                             f"{fmt(s['gold_loglik'], 1, 3)} |")
    results["training"] = {f"{m}-s{s}": {"seconds": seconds[(m, s)],
                                         **{k: v for k, v in summaries[(m, s)].items()}}
                           for m in methods for s in seeds}
    (args.out / "results.md").write_text("\n".join(lines) + "\n")
    (args.out / "results.json").write_text(json.dumps(results, indent=1) + "\n")
    charts(args.out, methods, seeds, summaries, results.get("verification_scaling", {}))
    print("\n".join(lines))


def charts(out: Path, methods, seeds, summaries, scaling):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for method in methods:
        if method == "continue-pt":
            continue
        curves = [summaries[(method, s)]["zero_variance"] for s in seeds]
        steps = min(len(c) for c in curves)
        mean = [statistics.mean(c[i] for c in curves) for i in range(steps)]
        ax.plot(range(1, steps + 1), mean, label=method)
    ax.set_xlabel("step")
    ax.set_ylabel("zero-variance group fraction (mean of seeds)")
    ax.set_ylim(-0.02, 1.02)
    ax.legend()
    ax.set_title("Groups with equal rewards (dropped)")
    fig.tight_layout()
    fig.savefig(out / "zero_variance.png", dpi=110)
    plt.close(fig)

    if scaling:
        fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.6))
        for method, windows in scaling.items():
            centers = [(row["steps"][0] + row["steps"][1]) / 2 for row in windows]
            for axis, key, scale, label in [(left, "exact_match", 100, "base-model exact match %"),
                                            (right, "gold_loglik", 1, "base-model gold log-lik/token")]:
                rows = [(c, row[key]) for c, row in zip(centers, windows) if row[key]]
                axis.errorbar([c for c, _ in rows], [scale * r["mean"] for _, r in rows],
                              yerr=[[scale * (r["mean"] - r["low"]) for _, r in rows],
                                    [scale * (r["high"] - r["mean"]) for _, r in rows]],
                              marker="o", capsize=3, label=method)
                axis.set_xlabel("training step (window centre)")
                axis.set_ylabel(label)
        left.legend()
        fig.suptitle("Difficulty of the generator's spans, by the frozen base model")
        fig.tight_layout()
        fig.savefig(out / "verification_scaling.png", dpi=110)
        plt.close(fig)


if __name__ == "__main__":
    main()

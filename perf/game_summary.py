#!/usr/bin/env python3
"""Does a PretrainZero run's game keep going? One table row per run, from metrics.jsonl.

    python3 perf/game_summary.py RUN_DIR [RUN_DIR ...]

The default run's target: in the second half of the steps at least half of the steps
run an update, and no single span is more than 25 % of the generator's valid masks
(`top_span_share`). Columns:

- `updates (2nd half)`: steps whose update ran, among the second half of the steps;
- `max top share (2nd half)`: the largest `top_span_share` of a second-half step, with
  that span;
- `max first-word share (2nd half)`: the largest `top_first_word_share` of a
  second-half step, with that word: a generator collapsed onto one template ("the" +
  a noun) keeps its spans distinct but not their first words (`–` for runs logged
  before this metric existed);
- `max answer share (2nd half)`: the largest `top_answer_share` of a second-half step,
  with that answer: a predictor collapsed onto one guess (`–` as above);
- `signal samples`: samples with a non-zero advantage over the run (what GRPO learns from);
- `gen reward > 0.1`: steps whose mean generator reward was above 0.1;
- `stop-word spans`: mean `stop_word_span_fraction` over the second half.
"""

import json
import sys
from pathlib import Path


def summarise(run: Path):
    """The run's summary, or None while it has no step row yet."""
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()
            if line.strip()]
    if not rows:
        return None
    second = rows[len(rows) // 2:]
    top = max(second, key=lambda r: r.get("top_span_share", 0.0))
    updates = sum(not r["update_skipped"] for r in second)
    first_word = max((r for r in second if "top_first_word_share" in r),
                     key=lambda r: r["top_first_word_share"], default=None)
    answer = max((r for r in second if "top_answer_share" in r),
                 key=lambda r: r["top_answer_share"], default=None)
    return {
        "run": str(run),
        "steps": len(rows),
        "updates_second_half": updates,
        "second_half_steps": len(second),
        "max_top_span_share": top.get("top_span_share", 0.0),
        "max_top_span": top.get("top_span", ""),
        "max_first_word": "–" if first_word is None else
        f"{first_word['top_first_word_share']:.2f} `{first_word['top_first_word']}`",
        "max_answer": "–" if answer is None else
        f"{answer['top_answer_share']:.2f} `{answer['top_answer']}`",
        "signal_samples": sum(r["samples"] for r in rows),
        "generator_reward_steps": sum(r.get("generator_reward_mean", 0.0) > 0.1 for r in rows),
        "stop_word_span_fraction": sum(r.get("stop_word_span_fraction", 0.0) for r in second)
        / len(second),
        "valid_mask_fraction": sum(r.get("valid_mask_fraction", 0.0) for r in second) / len(second),
        "predictor_accuracy": sum(r.get("predictor_accuracy", 0.0) for r in second) / len(second),
        "seconds": sum(r["step_seconds"] for r in rows),
        "meets_target": updates * 2 >= len(second)
        and all(r.get("top_span_share", 0.0) <= 0.25 for r in second),
    }


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    # Check every argument before printing anything: a shell glob such as runs/g-*
    # also matches the runs' log files.
    for run in sys.argv[1:]:
        if not (Path(run) / "metrics.jsonl").is_file():
            sys.exit(f"error: {run}: not a run folder (it has no metrics.jsonl)")
    print("| run | steps | updates (2nd half) | max top share (2nd half) | "
          "max first-word share (2nd half) | max answer share (2nd half) | signal samples | "
          "gen reward > 0.1 | stop-word spans | valid masks | predictor acc | seconds | target |")
    print("|---|---:|---:|---|---|---|---:|---:|---:|---:|---:|---:|---|")
    for run in sys.argv[1:]:
        s = summarise(Path(run))
        if s is None:
            print(f"| {run} | 0 | no step row yet |")
            continue
        print(f"| {s['run']} | {s['steps']} | {s['updates_second_half']}/{s['second_half_steps']} | "
              f"{s['max_top_span_share']:.2f} `{s['max_top_span']}` | {s['max_first_word']} | "
              f"{s['max_answer']} | "
              f"{s['signal_samples']} | "
              f"{s['generator_reward_steps']} | {s['stop_word_span_fraction']:.2f} | "
              f"{s['valid_mask_fraction']:.2f} | {s['predictor_accuracy']:.2f} | "
              f"{s['seconds']:.0f} | {'met' if s['meets_target'] else 'not met'} |")


if __name__ == "__main__":
    main()

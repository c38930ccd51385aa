#!/usr/bin/env python3
"""Median step, rollout and update times of training runs, from their metrics.jsonl.

    python perf/step_times.py RUN_DIR [RUN_DIR ...]

Only steps that ran an update count towards "with update" (a step whose groups all
had equal rewards skips the update and is much cheaper).
"""

import json
import statistics
import sys
from pathlib import Path


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    if sys.argv[1] in ("-h", "--help"):
        print(__doc__)
        return
    for run in sys.argv[1:]:
        path = Path(run) / "metrics.jsonl"
        if not path.is_file():
            sys.exit(f"error: {run}: not a run folder (no metrics.jsonl)")
        first = next((line for line in path.read_text().splitlines() if line.strip()), "{}")
        if "update_skipped" not in json.loads(first):
            sys.exit(f"error: {run}: not a `train` run (its metrics.jsonl has no update_skipped); "
                     "this script reads RL runs only")
    print("| run | steps | with update | median step s (with update) | median rollout s | "
          "median update s | rollout tok/s | update response tok/s |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for run in sys.argv[1:]:
        path = Path(run) / "metrics.jsonl"
        rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        updated = [r for r in rows if not r["update_skipped"]]
        if not updated:
            print(f"| {run} | {len(rows)} | 0 | - | - | - | - | - |")
            continue
        step = statistics.median(r["step_seconds"] for r in updated)
        # The rollout metrics sit at the top level of each row (flattened).
        rollout = statistics.median(r["rollout_seconds"] for r in updated)
        update = statistics.median(r["step_seconds"] - r["rollout_seconds"] for r in updated)
        rollout_rate = statistics.median(r["rollout_tokens_per_s"] for r in updated)
        update_rate = statistics.median(r["update_tokens_per_s"] for r in updated)
        print(f"| {run} | {len(rows)} | {len(updated)} | {step:.2f} | {rollout:.2f} | "
              f"{update:.2f} | {rollout_rate:.0f} | {update_rate:.0f} |")


if __name__ == "__main__":
    main()

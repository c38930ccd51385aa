#!/usr/bin/env python3
"""Runs `pretrainzero bench train` and its PyTorch peer on the same shapes, one after
the other in one run, and prints project / PyTorch ratios of tokens per second.

    python perf/compare.py --preset tiny --device ndarray [--threads 2] [-- BENCH ARGS]
    python perf/compare.py --device flex --column ndarray+openblas=PATH/TO/BINARY:ndarray

`--column LABEL=BINARY:DEVICE[:ARGS]` (repeatable) adds a column measured by another
build of the project, e.g. one built with `--features openblas`, or by the same build
with other `bench train` arguments (ARGS, space-separated, e.g. `--backward-shards 1`).

Arguments after `--` go to `bench train` (e.g. `--batch-size 8 --seq-len 128`); the
PyTorch side reads the shapes back from its JSON, so both always agree. The binary is
target/release/pretrainzero (build it first with `cargo build --release`) unless
--binary says otherwise.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--preset", default="tiny")
    ap.add_argument("--device", default="ndarray", help="one or several, comma-separated")
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--binary", default=str(ROOT / "target" / "release" / "pretrainzero"))
    ap.add_argument("--python", default=sys.executable, help="interpreter that has torch")
    ap.add_argument("--column", action="append", default=[], metavar="LABEL=BINARY:DEVICE[:ARGS]",
                    help="another build of the project as an extra column")
    ap.add_argument("--markdown", action="store_true", help="print only the table")
    args, bench_args = ap.parse_known_args()
    bench_args = [a for a in bench_args if a != "--"]

    env = dict(os.environ, RAYON_NUM_THREADS=str(args.threads))
    columns = [(device, args.binary, device, []) for device in args.device.split(",")]
    for column in args.column:
        label, _, target = column.partition("=")
        binary, _, rest = target.partition(":")
        device, _, extra = rest.partition(":")
        if not (label and binary and device):
            sys.exit(f"--column {column!r}: expected LABEL=BINARY:DEVICE[:ARGS]")
        columns.append((label, binary, device, extra.split()))
    ours = {}
    for label, binary, device, extra in columns:
        cmd = [binary, "bench", "train", "--preset", args.preset, "--device", device, "--json"]
        out = subprocess.run(cmd + bench_args + extra, env=env, check=True, capture_output=True,
                             text=True)
        ours[label] = json.loads(out.stdout.strip().splitlines()[-1])
    first = next(iter(ours.values()))

    with tempfile.TemporaryDirectory() as tmp:
        config, settings = Path(tmp, "config.json"), Path(tmp, "settings.json")
        config.write_text(json.dumps(first["config"]))
        settings.write_text(json.dumps(first["settings"]))
        cmd = [args.python, str(ROOT / "perf" / "torch_bench.py"), "--config", str(config),
               "--settings", str(settings), "--threads", str(args.threads)]
        out = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True)
        torch = json.loads(out.stdout.strip().splitlines()[-1])

    if not args.markdown:
        print(f"preset {args.preset}: {first['parameters'] / 1e6:.1f} M parameters (PyTorch counts "
              f"{torch['parameters'] / 1e6:.1f} M), {args.threads} threads, torch {torch['torch']}")
        print(f"settings: {json.dumps(first['settings'])}")
    devices = list(ours)
    header = "| measurement | shape | tokens counted | " + " | ".join(
        f"{d} tok/s" for d in devices) + " | PyTorch tok/s | " + " | ".join(
        f"{d} / PyTorch" for d in devices) + " |"
    print(header)
    print("|" + "---|" * 3 + "---:|" * (2 * len(devices) + 1))
    peer = {m["name"]: m for m in torch["measurements"]}
    for i, m in enumerate(first["measurements"]):
        rates = [ours[d]["measurements"][i]["tokens_per_s"] for d in devices]
        # The GRPO update's peer runs full sequences, as TRL and verl do, and, where
        # the batch has groups, with each group's prompt run once, as the project does.
        peer_names = [m["name"]] + [p for p in peer if p == m["name"] + ", shared prompt"]
        for peer_name in peer_names:
            theirs = peer[peer_name]["tokens_per_s"]
            name = m["name"] if peer_name == m["name"] else f"{m['name']} vs PyTorch shared prompt"
            print(f"| {name} | {m['shape']} | {m['tokens_counted']} | "
                  + " | ".join(f"{r:,.0f}" for r in rates)
                  + f" | {theirs:,.0f} | "
                  + " | ".join(f"{r / theirs:.2f}x" for r in rates) + " |")


if __name__ == "__main__":
    main()

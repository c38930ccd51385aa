#!/usr/bin/env python3
"""Average the weights of several model folders of one shape ("model soup"), or
combine them with given coefficients.

Fine-tuned runs that start from the same weights usually stay in one basin of the
loss, and the mean of their weights can generalise better than any one of them
(Wortsman et al., 2022). This writes that mean as a new model folder: the tensors are
summed in float64 and the mean stored in the first folder's dtype (bf16 rounded to
nearest even, or f32), and the config, tokenizer and prompt-format files are copied
from the first folder. Every folder must have the same tensors and the same copies of
those files (a model trained in another prompt format is refused: its weights answer
another prompt). The new folder's `averaged_from.json` names each ingredient with the
SHA-256 of its weights.

    python3 perf/average_weights.py --out runs/soup models/pretrainzero-wiki-31m runs/a/final runs/b/final

`--coefficients` replaces the uniform mean by a weighted sum whose coefficients add up
to 1. A negative one extrapolates: `--coefficients=1.5,-0.5 NEW OLD` goes half as far
again along the step from OLD to NEW (Zheng et al., 2024, "Weak-to-strong
extrapolation").

Nothing but NumPy is needed. The output folder must not exist yet.
"""

import argparse
import hashlib
import json
import shutil
import struct
import sys
from pathlib import Path

import numpy as np

from safetensors_file import read_raw, to_f32

COPIED_FILES = ["config.json", "tokenizer.json", "tokenizer_config.json", "prompt_templates.json"]


def from_f32(values, dtype):
    if dtype == "F32":
        return values.astype(np.float32).tobytes()
    bits = values.astype(np.float32).view(np.uint32)
    # Round to nearest, ties to even, as torch does when it casts to bfloat16.
    rounded = (bits + 0x7FFF + ((bits >> 16) & 1)) >> 16
    return rounded.astype(np.uint16).tobytes()


def combine(folders, coefficients, divisor):
    """The first file's header and the weighted sum of every tensor over the folders,
    divided by `divisor`, each file read once."""
    first_header = names = None
    sums = {}
    for folder, coefficient in zip(folders, coefficients):
        path = folder / "model.safetensors"
        header, data = read_raw(path)
        if first_header is None:
            first_header = header
            names = [n for n in header if n != "__metadata__"]
        if sorted(n for n in header if n != "__metadata__") != sorted(names):
            sys.exit(f"error: {path}: its tensors differ from those of {folders[0]}/model.safetensors")
        for name in names:
            meta = header[name]
            if meta["shape"] != first_header[name]["shape"]:
                sys.exit(f"error: {path}: tensor {name} has shape {meta['shape']}, "
                         f"{first_header[name]['shape']} in {folders[0]}")
            start, end = meta["data_offsets"]
            values = to_f32(data[start:end], meta["dtype"])
            sums[name] = sums.get(name, 0.0) + coefficient * values.astype(np.float64)
    return first_header, {name: (total / divisor).astype(np.float32) for name, total in sums.items()}


def write(path, header, means):
    """Write in the first file's tensor order and dtypes, the tensors packed one after
    the other."""
    chunks = []
    offset = 0
    out_header = {}
    if "__metadata__" in header:
        out_header["__metadata__"] = header["__metadata__"]
    for name, meta in sorted(((n, m) for n, m in header.items() if n != "__metadata__"),
                             key=lambda item: item[1]["data_offsets"][0]):
        raw = from_f32(means[name], meta["dtype"])
        out_header[name] = {"dtype": meta["dtype"], "shape": meta["shape"],
                            "data_offsets": [offset, offset + len(raw)]}
        chunks.append(raw)
        offset += len(raw)
    header_bytes = json.dumps(out_header, separators=(",", ":")).encode()
    header_bytes += b" " * (-len(header_bytes) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(header_bytes)))
        f.write(header_bytes)
        for chunk in chunks:
            f.write(chunk)


def sha256_of(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folders", nargs="+", type=Path, help="model folders (config.json + model.safetensors)")
    parser.add_argument("--out", type=Path, required=True, help="new model folder (must not exist)")
    parser.add_argument("--coefficients", type=lambda text: [float(x) for x in text.split(",")],
                        help="comma-separated, one per folder, adding up to 1 (default: the uniform mean)")
    args = parser.parse_args()
    if len(args.folders) < 2:
        sys.exit("error: give at least two model folders to average")
    coefficients = args.coefficients or [1.0] * len(args.folders)
    # The uniform mean divides the plain sum once, at the end.
    divisor = 1.0 if args.coefficients else float(len(args.folders))
    if len(coefficients) != len(args.folders):
        sys.exit(f"error: {len(coefficients)} coefficients for {len(args.folders)} folders")
    if args.coefficients and abs(sum(coefficients) - 1.0) > 1e-9:
        # Coefficients that do not add up to 1 would scale every weight, norms included.
        sys.exit(f"error: the coefficients add up to {sum(coefficients)}, not 1")
    if args.out.exists():
        sys.exit(f"error: {args.out} exists; choose a new folder (nothing is overwritten)")
    first = args.folders[0]
    for folder in args.folders:
        if not (folder / "config.json").is_file() or not (folder / "model.safetensors").is_file():
            sys.exit(f"error: {folder}: config.json and model.safetensors expected")
    for name in COPIED_FILES:
        expected = (first / name).read_bytes() if (first / name).is_file() else None
        for folder in args.folders[1:]:
            found = (folder / name).read_bytes() if (folder / name).is_file() else None
            if found != expected:
                sys.exit(f"error: {folder}/{name} differs from {first}/{name} "
                         "(only models of one shape, tokenizer and prompt format can be averaged)")
    header, means = combine(args.folders, coefficients, divisor)
    args.out.mkdir(parents=True)
    for name in COPIED_FILES:
        if (args.folders[0] / name).is_file():
            shutil.copy(args.folders[0] / name, args.out / name)
    write(args.out / "model.safetensors", header, means)
    ingredients = [{"folder": str(folder), "model_sha256": sha256_of(folder / "model.safetensors")}
                   for folder in args.folders]
    if args.coefficients:
        rule = "weighted sum (float64, rounded to the stored dtype)"
        for ingredient, coefficient in zip(ingredients, coefficients):
            ingredient["coefficient"] = coefficient
    else:
        rule = "uniform mean (float64 sum, rounded to the stored dtype)"
    (args.out / "averaged_from.json").write_text(json.dumps(
        {"rule": rule, "models": ingredients}, indent=2) + "\n")
    print(f"{args.out}: {'weighted sum' if args.coefficients else 'mean'} of {len(args.folders)} models, "
          f"{len(means)} tensors")


if __name__ == "__main__":
    main()

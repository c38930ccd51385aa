"""Reading safetensors weight files (bf16 or f32) with NumPy alone, for the perf/
scripts that run or combine the project's models outside the binary."""

import json
import struct
import sys

import numpy as np

DTYPE_BYTES = {"BF16": 2, "F32": 4}


def read_raw(path):
    """The header (name -> dtype, shape, offsets) and the data bytes of a safetensors
    file; a file that is not one, or holds another dtype, stops the script, naming it."""
    try:
        with open(path, "rb") as f:
            header_len = struct.unpack("<Q", f.read(8))[0]
            header = json.loads(f.read(header_len))
            data = f.read()
    except (OSError, struct.error, ValueError) as problem:
        sys.exit(f"error: {path}: not a readable safetensors file ({problem})")
    for name, meta in header.items():
        if name == "__metadata__":
            continue
        start, end = meta["data_offsets"]
        if meta["dtype"] not in DTYPE_BYTES:
            sys.exit(f"error: {path}: tensor {name} has dtype {meta['dtype']} (bf16 or f32 expected)")
        expected = DTYPE_BYTES[meta["dtype"]] * int(np.prod(meta["shape"], dtype=np.int64))
        if end - start != expected:
            sys.exit(f"error: {path}: tensor {name} holds {end - start} bytes where its shape "
                     f"needs {expected}")
        if end > len(data):
            sys.exit(f"error: {path}: tensor {name} ends past the end of the file (truncated?)")
    return header, data


def to_f32(raw, dtype):
    """One tensor's bytes as a flat float32 array (bf16 is float32's upper half)."""
    if dtype == "BF16":
        return (np.frombuffer(raw, dtype=np.uint16).astype(np.uint32) << 16).view(np.float32)
    return np.frombuffer(raw, dtype=np.float32)


def read_safetensors(path):
    """Every tensor of the file as a float32 array of its shape."""
    header, data = read_raw(path)
    tensors = {}
    for name, meta in header.items():
        if name == "__metadata__":
            continue
        start, end = meta["data_offsets"]
        tensors[name] = to_f32(data[start:end], meta["dtype"]).reshape(meta["shape"]).copy()
    return tensors

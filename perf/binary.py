"""Running the `pretrainzero` binary from the measurement scripts: one place that turns
a missing binary or a failed command into a one-line error instead of a traceback."""

import subprocess


def run(binary, args, about):
    """stdout of `binary ARGS`; `about` (a model folder, a file) names what failed."""
    try:
        out = subprocess.run([binary, *args], capture_output=True, text=True)
    except OSError as e:
        raise SystemExit(f"error: {binary}: cannot run it ({e})")
    if out.returncode != 0:
        raise SystemExit(f"error: {about}: {binary} {args[0]} failed: {out.stderr.strip()}")
    return out.stdout

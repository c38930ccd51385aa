# Helpers shared by the scripts that run on a lent GPU machine (gpu-check.sh,
# gpu-pretrain.sh); sourced from the repository root, here and there. They stage
# binaries here, size what a device call carries, and unpack on the machine.

# A device call carries at most this much: the checkout's tracked and
# untracked-not-ignored files, plus the carried folder.
TRAVEL_LIMIT_MIB=64
# The shipped 31M weights (60 MiB) cannot travel with a binary: `gpu-check.sh --slim`
# takes them out of git's index for the call.
SHIPPED_WEIGHTS=models/pretrainzero-wiki-31m/model.safetensors
# Where the GPU machine's CUDA libraries are.
export LD_LIBRARY_PATH=/usr/local/cuda-13.0/targets/x86_64-linux/lib:/usr/local/nvidia/lib64:${LD_LIBRARY_PATH:-}

weights_tracked() { git ls-files --error-unmatch "$SHIPPED_WEIGHTS" >/dev/null 2>&1; }

# travel_mib CARRIED_DIR [slimmed]: MiB a call would carry (with `slimmed`, as after
# `gpu-check.sh --slim`).
travel_mib() {
  local files carried=0 weights=0
  files=$(git ls-files -z --cached --others --exclude-standard | xargs -0 stat -c %s 2>/dev/null | awk '{s += $1} END {print s + 0}')
  [ -d "$1" ] && carried=$(du -sb "$1" | cut -f1)
  if [ "${2:-}" = slimmed ] && weights_tracked; then
    weights=$(stat -c %s "$SHIPPED_WEIGHTS")
  fi
  echo $(( (files + carried - weights + 1048575) / 1048576 ))
}

# require_cuda_build BINARY: a CPU build names the cuda backend too, but only a CUDA
# build links cudarc.
require_cuda_build() {
  [ -x "$1" ] && grep -q cudarc "$1" || {
    echo "error: $1 is missing or not a CUDA build; build it with: CUDARC_CUDA_VERSION=13000 cargo build --release --features cuda" >&2
    return 1
  }
}

# stage_binary BINARY DEST: stripped and xz-compressed to DEST.xz.
stage_binary() { strip -o "$2" "$1" && xz -9 -T0 "$2"; }

# unxz FILE.xz: its contents on stdout (xz where the machine has it, else python3's
# lzma: the GPU machine's image has Python, not necessarily xz).
unxz() {
  if command -v xz >/dev/null 2>&1; then xz -dc "$1"
  else python3 -c 'import lzma, shutil, sys; shutil.copyfileobj(lzma.open(sys.argv[1]), sys.stdout.buffer)' "$1"
  fi
}

# pack ARCHIVE DIR ITEM...: ITEMs of DIR as ARCHIVE (tar.gz), replaced in one move, so
# a call cut short still returns the last whole archive.
pack() {
  local archive=$1 dir=$2
  shift 2
  tar -czf "$archive.tmp" -C "$dir" "$@" && mv "$archive.tmp" "$archive"
}

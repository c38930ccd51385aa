#!/usr/bin/env bash
# The GPU device check: every CUDA measurement of the project in one call of at most
# 8 minutes on one H100/H200, each figure next to PyTorch eager on the same shapes
# from the same run. It writes $OUT/device-check.json and $OUT/device-check.md (a
# table), plus each part's raw JSON and log under $OUT/parts and $OUT/logs.
#
# 1. Build and stage here (the GPU machine has no network and no Rust toolchain):
#      CUDARC_CUDA_VERSION=13000 cargo build --release --features cuda
#      perf/gpu-check.sh --stage
#    --stage copies the binary, stripped, to target/device-check/, with the shared
#    fixtures' weights and reference outputs (not their tokenizers, which parity does
#    not read) and the PyTorch peer scripts, and refuses if the carried files exceed
#    60 MiB. Optionally it adds the CUDA build of the reward-step test
#    (cargo test --release --features cuda -p pretrainzero-kernels --no-run), when it
#    fits.
# 2. Run there, through the device tool, from the repository root:
#      command: perf/gpu-check.sh        carry: ["target/device-check"]    timeout_s: 540
# 3. Without a CUDA device, or with --dry-run, it prints what it would run and exits 0.
#
# Parts: CUDA parity on the fixtures (tolerances of the CPU tests); the reward-step
# kernels against the reference at the tests' shapes and [16384, 151936], f32 and
# bf16 logits; `bench kernels` at N ∈ {4096, 16384} × V ∈ {32000, 151936} with the
# device's copy bandwidth; `bench generate --preset qwen3-0.6b` at batch 1/8/64/256;
# `bench train --preset qwen3-0.6b`; three default-config RL steps; the PyTorch
# peers (skipped, and said so, when torch or its CUDA is absent); then the same in
# bf16 mixed precision: parity, `bench train` against PyTorch autocast, RL steps. A part that fails or
# runs out of time is recorded as such and the others still run.
set -uo pipefail
cd "$(dirname "$0")/.."

CARRY=target/device-check
OUT=${OUT:-$PWD/target/device-check-out}
LIMIT_MIB=60
mode=run
case "${1:-}" in
  --dry-run) mode=dry ;;
  --stage) mode=stage ;;
  "") ;;
  *) echo "usage: perf/gpu-check.sh [--dry-run | --stage]" >&2; exit 2 ;;
esac

if [ "$mode" = stage ]; then
  set -e
  bin=target/release/pretrainzero
  shared=${PRETRAINZERO_SHARED_DATA:-../shared/data}
  [ -x "$bin" ] || { echo "error: $bin is missing; build it with: CUDARC_CUDA_VERSION=13000 cargo build --release --features cuda" >&2; exit 1; }
  "$bin" bench kernels --help >/dev/null
  rm -rf "$CARRY" && mkdir -p "$CARRY/fixtures" "$CARRY/perf"
  cp "$bin" "$CARRY/pretrainzero" && strip "$CARRY/pretrainzero"
  for fixture in tiny-random-qwen3 tiny-random-qwen2 tiny-random-llama stories260K-hf; do
    mkdir -p "$CARRY/fixtures/$fixture"
    for f in config.json model.safetensors reference_outputs.json reference_outputs.safetensors; do
      cp "$shared/models/$fixture/$f" "$CARRY/fixtures/$fixture/"
    done
  done
  cp perf/torch_bench.py perf/torch_kernels.py "$CARRY/perf/"
  test_bin=$(ls -t target/release/deps/reward_step-* 2>/dev/null | grep -v '\.d$' | head -1 || true)
  if [ -n "$test_bin" ]; then
    cp "$test_bin" "$CARRY/reward_step" && strip "$CARRY/reward_step"
    if [ $(( $(du -sm "$CARRY" | cut -f1) )) -gt $LIMIT_MIB ]; then
      echo "note: the reward-step test binary does not fit; left out" && rm "$CARRY/reward_step"
    fi
  fi
  size=$(du -sm "$CARRY" | cut -f1)
  du -sh "$CARRY"/* | sed 's/^/  /'
  if [ "$size" -gt $LIMIT_MIB ]; then
    echo "error: $CARRY is $size MiB, over the $LIMIT_MIB MiB the device tool carries" >&2
    exit 1
  fi
  echo "staged $CARRY ($size MiB); run on the device: perf/gpu-check.sh with carry [\"$CARRY\"]"
  exit 0
fi

if [ "$mode" = run ] && ! { command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; }; then
  echo "no CUDA device here: dry run"
  mode=dry
fi

BIN=$CARRY/pretrainzero
export LD_LIBRARY_PATH=/usr/local/cuda-13.0/targets/x86_64-linux/lib:/usr/local/nvidia/lib64:${LD_LIBRARY_PATH:-}
[ "$mode" = run ] && mkdir -p "$OUT/parts" "$OUT/logs"
started=$(date +%s)

# The whole check stays inside 8 minutes: each part gets its own limit or what is
# left of the deadline, whichever is less (a part with under 5 s left is skipped).
DEADLINE_S=470

# part NAME SECONDS COMMAND...: stdout → parts/NAME.json, stderr → logs/NAME.log.
part() {
  local name=$1 seconds=$2
  shift 2
  if [ "$mode" = dry ]; then
    printf 'would run (at most %3s s) %-15s %s\n' "$seconds" "$name" "$*"
    return 0
  fi
  local t0=$(date +%s)
  local left=$(( DEADLINE_S - (t0 - started) ))
  if [ "$left" -lt 5 ]; then
    echo "{\"part\":\"$name\",\"rc\":null,\"seconds\":0,\"skipped\":\"out of time\"}" >>"$OUT/parts/status.jsonl"
    echo "$name: skipped (out of time)"
    return 0
  fi
  [ "$seconds" -gt "$left" ] && seconds=$left
  timeout "$seconds" "$@" >"$OUT/parts/$name.json" 2>"$OUT/logs/$name.log"
  local rc=$?
  echo "{\"part\":\"$name\",\"rc\":$rc,\"seconds\":$(( $(date +%s) - t0 ))}" >>"$OUT/parts/status.jsonl"
  echo "$name: rc $rc in $(( $(date +%s) - t0 )) s (total $(( $(date +%s) - started )) s)"
}

if [ "$mode" = run ]; then
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader >"$OUT/parts/gpu.txt" 2>&1
  cat "$OUT/parts/gpu.txt"
  : >"$OUT/parts/status.jsonl"
fi

part parity 45 "$BIN" check parity --fixtures "$CARRY/fixtures" --device cuda --json
part kernels-shapes 45 "$BIN" bench kernels --device cuda --rows 1,3,16,37 --vocab 1000,32001,151936 --iters 1 --json
part kernels-f32 75 "$BIN" bench kernels --device cuda --rows 4096,16384 --vocab 32000,151936 --iters 5 --json
part kernels-bf16 60 "$BIN" bench kernels --device cuda --rows 4096,16384 --vocab 32000,151936 --iters 5 --dtype bf16 --json
part generate 60 "$BIN" bench generate --device cuda --preset qwen3-0.6b --batch-sizes 1,8,64,256 --json
part train 60 "$BIN" bench train --device cuda --preset qwen3-0.6b --json
# The run folder stays out of $OUT: its final export is not worth carrying back.
RL_RUN=${TMPDIR:-/tmp}/pretrainzero-device-check-rl
[ "$mode" = run ] && rm -rf "$RL_RUN"
part rl 75 "$BIN" train --device cuda --run-dir "$RL_RUN" --set optim.steps=3 --set checkpoint.every=0
if [ -x "$CARRY/reward_step" ]; then
  part kernel-tests 30 "$CARRY/reward_step" cubecl_kernels_on_cuda --nocapture
fi

if [ "$mode" = dry ] || python3 -c "import torch; assert torch.cuda.is_available()" >/dev/null 2>&1; then
  py() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); json.dump($1, open(sys.argv[2],'w'))" "$2" "$3"; }
  if [ "$mode" = run ]; then
    py 'd["config"]' "$OUT/parts/train.json" "$OUT/train-config.json"
    py 'd["settings"]' "$OUT/parts/train.json" "$OUT/train-settings.json"
    py 'd["config"]' "$OUT/parts/generate.json" "$OUT/generate-config.json"
    py '{"prompt_len": d["prompt_len"], "response_len": d["new_tokens"], "repeats": 1}' "$OUT/parts/generate.json" "$OUT/generate-settings.json"
  fi
  part torch-kernels 45 python3 "$CARRY/perf/torch_kernels.py" --device cuda --rows 4096,16384 --vocab 32000,151936
  part torch-train 30 python3 "$CARRY/perf/torch_bench.py" --device cuda --config "$OUT/train-config.json" --settings "$OUT/train-settings.json"
  part torch-generate 30 python3 "$CARRY/perf/torch_bench.py" --device cuda --config "$OUT/generate-config.json" --settings "$OUT/generate-settings.json" --generation-batches 1,8,64,256
else
  echo "torch with CUDA is not importable here: the PyTorch ratios are left out" | tee "$OUT/parts/torch-absent.txt"
fi

# bf16 mixed precision (f32 master weights), after everything in f32 so that a
# shortage of time costs these first: parity against the same f32 reference,
# `bench train --dtype bf16` next to PyTorch under autocast, and three RL steps with
# a KL reference (so the reference policy runs in bf16 too).
part parity-bf16 30 "$BIN" check parity --fixtures "$CARRY/fixtures" --device cuda --dtype bf16 --json
part train-bf16 60 "$BIN" bench train --device cuda --preset qwen3-0.6b --dtype bf16 --json
if [ "$mode" = dry ] || python3 -c "import torch; assert torch.cuda.is_available()" >/dev/null 2>&1; then
  part torch-train-bf16 30 python3 "$CARRY/perf/torch_bench.py" --device cuda --dtype bf16 --config "$OUT/train-config.json" --settings "$OUT/train-settings.json"
fi
RL_BF16_RUN=${TMPDIR:-/tmp}/pretrainzero-device-check-rl-bf16
[ "$mode" = run ] && rm -rf "$RL_BF16_RUN"
part rl-bf16 60 "$BIN" train --device cuda --run-dir "$RL_BF16_RUN" --set optim.steps=3 --set checkpoint.every=0 --set model.dtype=bf16 --set optim.kl_coef=0.01

if [ "$mode" = dry ]; then
  echo "would run: $BIN bench device-report $OUT"
  exit 0
fi
cp "$RL_RUN/metrics.jsonl" "$OUT/parts/rl-metrics.jsonl" 2>/dev/null
cp "$RL_BF16_RUN/metrics.jsonl" "$OUT/parts/rl-bf16-metrics.jsonl" 2>/dev/null
"$BIN" bench device-report "$OUT" | tee "$OUT/device-check.md"
echo "total $(( $(date +%s) - started )) s"

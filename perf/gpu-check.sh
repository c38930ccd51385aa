#!/usr/bin/env bash
# The GPU device check: every CUDA measurement of the project in one call of at most
# 5 minutes on one H100/H200 (a lent session has 15 minutes of device time, the
# machine's start included, so a call this short leaves room for one rerun), each figure next to PyTorch eager on the same shapes
# from the same run. It leaves three files in $OUT: device-check.json,
# device-check.md (a table) and device-check-parts.tar.gz (each part's raw JSON and
# log), repacked after every part, so a call cut short still brings back what ran.
# The device tool returns at most 8 files from $OUT, so nothing else is written there.
#
# 1. Build and stage here (the GPU machine has no network and no Rust toolchain):
#      CUDARC_CUDA_VERSION=13000 cargo build --release --features cuda
#      perf/gpu-check.sh --stage
#    --stage copies the binary, stripped and xz-compressed (the CUDA build: 93 MB,
#    12 MB compressed; python3's lzma unpacks it there), to target/device-check/,
#    with the shared fixtures' weights and reference outputs (not their tokenizers,
#    which parity does not read) and the PyTorch peer scripts. It adds the CUDA build
#    of the reward-step test when one was built and it fits (6 MB compressed):
#      CUDARC_CUDA_VERSION=13000 cargo test --release --workspace --features cuda --test reward_step --no-run
#    Then it adds up what a device call carries: the checkout's tracked and
#    untracked-not-ignored files plus target/device-check, at most 64 MiB. The shipped
#    31M model's weights alone are 60 MiB, so:
# 2. Before the call, take those weights out of what travels (the file stays on disk;
#    it leaves git's index and is ignored through .git/info/exclude):
#      perf/gpu-check.sh --slim        ... and after the call: perf/gpu-check.sh --unslim
#    Without them the RL steps run the default configuration on the shipped 5M model.
# 3. Run there, through the device tool, from the repository root:
#      command: perf/gpu-check.sh        carry: ["target/device-check"]    timeout_s: 360
# 4. Without a CUDA device, or with --dry-run, it prints what it would run and exits 0.
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
# Parts and logs are written here and packed into $OUT after each part.
WORK=${TMPDIR:-/tmp}/pretrainzero-device-check
source perf/device-common.sh
mode=run
case "${1:-}" in
  --dry-run) mode=dry ;;
  --stage) mode=stage ;;
  --slim) mode=slim ;;
  --unslim) mode=unslim ;;
  "") ;;
  *) echo "usage: perf/gpu-check.sh [--dry-run | --stage | --slim | --unslim]" >&2; exit 2 ;;
esac

# Says what a call would carry now and after --slim; fails when even --slim would not
# bring it under the device tool's limit.
check_travel() {
  local now slimmed
  now=$(travel_mib "$CARRY")
  slimmed=$(travel_mib "$CARRY" slimmed)
  if [ "$slimmed" -gt $TRAVEL_LIMIT_MIB ]; then
    echo "error: a device call would carry $slimmed MiB (checkout and $CARRY), over the tool's $TRAVEL_LIMIT_MIB MiB" >&2
    return 1
  fi
  if [ "$now" -gt $TRAVEL_LIMIT_MIB ]; then
    echo "a device call would carry $now MiB, over the tool's $TRAVEL_LIMIT_MIB: run perf/gpu-check.sh --slim first ($slimmed MiB after it)"
  else
    echo "a device call carries $now MiB (limit $TRAVEL_LIMIT_MIB); carry [\"$CARRY\"], command perf/gpu-check.sh"
  fi
}

if [ "$mode" = slim ] || [ "$mode" = unslim ]; then
  exclude=$(git rev-parse --git-path info/exclude)
  if [ "$mode" = slim ]; then
    if weights_tracked; then git rm --cached --quiet -- "$SHIPPED_WEIGHTS" || exit 1; fi
    mkdir -p "$(dirname "$exclude")"
    grep -qxF "/$SHIPPED_WEIGHTS" "$exclude" 2>/dev/null || echo "/$SHIPPED_WEIGHTS" >>"$exclude"
    echo "$SHIPPED_WEIGHTS no longer travels (still on disk; git shows it as a staged deletion: do not commit now)"
    echo "after the device call: perf/gpu-check.sh --unslim"
    check_travel
    exit $?
  fi
  git reset --quiet -- "$SHIPPED_WEIGHTS" || exit 1
  [ -f "$exclude" ] && sed -i "\#^/$SHIPPED_WEIGHTS\$#d" "$exclude"
  if ! weights_tracked; then
    # A commit made while slimmed recorded the deletion: stage the file again.
    git add -f -- "$SHIPPED_WEIGHTS" || exit 1
    echo "error: the last commit deleted $SHIPPED_WEIGHTS (made while slimmed); it is staged again: commit it" >&2
    exit 1
  fi
  git diff --quiet -- "$SHIPPED_WEIGHTS" || { echo "error: $SHIPPED_WEIGHTS differs from the committed file" >&2; exit 1; }
  echo "$SHIPPED_WEIGHTS is tracked again"
  exit 0
fi

if [ "$mode" = stage ]; then
  set -e
  bin=target/release/pretrainzero
  shared=${PRETRAINZERO_SHARED_DATA:-../shared/data}
  require_cuda_build "$bin"
  rm -rf "$CARRY" && mkdir -p "$CARRY/fixtures" "$CARRY/perf"
  stage_binary "$bin" "$CARRY/pretrainzero"
  for fixture in tiny-random-qwen3 tiny-random-qwen2 tiny-random-llama stories260K-hf; do
    mkdir -p "$CARRY/fixtures/$fixture"
    for f in config.json model.safetensors reference_outputs.json reference_outputs.safetensors; do
      cp "$shared/models/$fixture/$f" "$CARRY/fixtures/$fixture/"
    done
  done
  cp perf/torch_bench.py perf/torch_kernels.py "$CARRY/perf/"
  # The newest reward-step test build that has the CUDA test (CPU builds lack it).
  test_bin=
  for candidate in $(ls -t target/release/deps/reward_step-* 2>/dev/null | grep -v '\.d$'); do
    if "$candidate" --list 2>/dev/null | grep -q cubecl_kernels_on_cuda; then test_bin=$candidate; break; fi
  done
  if [ -n "$test_bin" ]; then
    stage_binary "$test_bin" "$CARRY/reward_step"
  else
    echo "note: no CUDA build of the reward-step test; the kernel-tests part will not run"
  fi
  du -sh "$CARRY"/* | sed 's/^/  /'
  set +e
  if [ -f "$CARRY/reward_step.xz" ] && [ "$(travel_mib "$CARRY" slimmed)" -gt $TRAVEL_LIMIT_MIB ]; then
    rm "$CARRY/reward_step.xz"
    echo "note: the reward-step test binary does not fit; left out"
  fi
  check_travel
  exit $?
fi

if [ "$mode" = run ] && ! { command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; }; then
  echo "no CUDA device here: dry run"
  mode=dry
fi

# The binaries travel xz-compressed; they are unpacked outside the checkout and $OUT
# (python3's lzma: the GPU machine's image has Python, not necessarily xz).
BIN=$WORK/bin/pretrainzero
if [ "$mode" = run ]; then
  mkdir -p "$OUT" && [ -w "$OUT" ] || { echo "error: cannot write to $OUT" >&2; exit 1; }
  rm -rf "$WORK" && mkdir -p "$WORK/bin" "$WORK/parts" "$WORK/logs" || exit 1
  [ -f "$CARRY/pretrainzero.xz" ] || { echo "error: $CARRY/pretrainzero.xz is missing: stage it here with perf/gpu-check.sh --stage and carry $CARRY" >&2; exit 1; }
  { unxz "$CARRY/pretrainzero.xz" >"$BIN" && chmod +x "$BIN"; } || { echo "error: cannot unpack $CARRY/pretrainzero.xz (see the error above)" >&2; exit 1; }
  if [ -f "$CARRY/reward_step.xz" ]; then
    unxz "$CARRY/reward_step.xz" >"$WORK/bin/reward_step" && chmod +x "$WORK/bin/reward_step"
  fi
fi
# Parts and logs in one archive in $OUT, rewritten after each part.
pack_parts() { pack "$OUT/device-check-parts.tar.gz" "$WORK" parts logs; }
started=$(date +%s)

# The whole check stays inside 5 minutes: each part gets its own limit or what is
# left of the deadline, whichever is less (a part with under 5 s left is skipped).
# The parts run in order of value, so a short deadline costs the bf16 parts first.
DEADLINE_S=300

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
    echo "{\"part\":\"$name\",\"rc\":null,\"seconds\":0,\"skipped\":\"out of time\"}" >>"$WORK/parts/status.jsonl"
    echo "$name: skipped (out of time)"
    return 0
  fi
  [ "$seconds" -gt "$left" ] && seconds=$left
  timeout -k 10 "$seconds" "$@" >"$WORK/parts/$name.json" 2>"$WORK/logs/$name.log"
  local rc=$?
  echo "{\"part\":\"$name\",\"rc\":$rc,\"seconds\":$(( $(date +%s) - t0 ))}" >>"$WORK/parts/status.jsonl"
  echo "$name: rc $rc in $(( $(date +%s) - t0 )) s (total $(( $(date +%s) - started )) s)"
  pack_parts
}

if [ "$mode" = run ]; then
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader >"$WORK/parts/gpu.txt" 2>&1
  cat "$WORK/parts/gpu.txt"
  : >"$WORK/parts/status.jsonl"
fi

part parity 45 "$BIN" check parity --fixtures "$CARRY/fixtures" --device cuda --json
part kernels-shapes 45 "$BIN" bench kernels --device cuda --rows 1,3,16,37 --vocab 1000,32001,151936 --iters 1 --json
part kernels-f32 75 "$BIN" bench kernels --device cuda --rows 4096,16384 --vocab 32000,151936 --iters 5 --json
part kernels-bf16 60 "$BIN" bench kernels --device cuda --rows 4096,16384 --vocab 32000,151936 --iters 5 --dtype bf16 --json
part generate 60 "$BIN" bench generate --device cuda --preset qwen3-0.6b --batch-sizes 1,8,64,256 --json
part train 60 "$BIN" bench train --device cuda --preset qwen3-0.6b --json
# The run folders stay out of $OUT: their final exports are not worth carrying back.
# A slimmed checkout (--slim) brings no 31M weights: the RL steps then run the
# default configuration on the shipped 5M model.
RL_MODEL=models/pretrainzero-wiki-31m
[ -f "$SHIPPED_WEIGHTS" ] || RL_MODEL=models/pretrainzero-wiki-tiny
if [ "$mode" = run ]; then
  echo "$RL_MODEL" >"$WORK/parts/rl-model.txt"
else
  echo "(the RL steps use models/pretrainzero-wiki-tiny where $SHIPPED_WEIGHTS did not travel)"
fi
RL_RUN=$WORK/rl-run
part rl 75 "$BIN" train --device cuda --run-dir "$RL_RUN" --set model=$RL_MODEL --set optim.steps=3 --set checkpoint.every=0
[ "$mode" = run ] && cp "$RL_RUN/metrics.jsonl" "$WORK/parts/rl-metrics.jsonl" 2>/dev/null && pack_parts
if [ "$mode" = dry ] || [ -x "$WORK/bin/reward_step" ]; then
  part kernel-tests 30 "$WORK/bin/reward_step" cubecl_kernels_on_cuda --nocapture
fi

if [ "$mode" = dry ] || python3 -c "import torch; assert torch.cuda.is_available()" >/dev/null 2>&1; then
  py() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); json.dump($1, open(sys.argv[2],'w'))" "$2" "$3"; }
  if [ "$mode" = run ]; then
    py 'd["config"]' "$WORK/parts/train.json" "$WORK/train-config.json"
    py 'd["settings"]' "$WORK/parts/train.json" "$WORK/train-settings.json"
    py 'd["config"]' "$WORK/parts/generate.json" "$WORK/generate-config.json"
    py '{"prompt_len": d["prompt_len"], "response_len": d["new_tokens"], "repeats": 1}' "$WORK/parts/generate.json" "$WORK/generate-settings.json"
  fi
  part torch-kernels 45 python3 "$CARRY/perf/torch_kernels.py" --device cuda --rows 4096,16384 --vocab 32000,151936
  part torch-train 30 python3 "$CARRY/perf/torch_bench.py" --device cuda --config "$WORK/train-config.json" --settings "$WORK/train-settings.json"
  part torch-generate 30 python3 "$CARRY/perf/torch_bench.py" --device cuda --config "$WORK/generate-config.json" --settings "$WORK/generate-settings.json" --generation-batches 1,8,64,256
else
  echo "torch with CUDA is not importable here: the PyTorch ratios are left out" | tee "$WORK/parts/torch-absent.txt"
fi

# bf16 mixed precision (f32 master weights), after everything in f32 so that a
# shortage of time costs these first: parity against the same f32 reference,
# `bench train --dtype bf16` next to PyTorch under autocast, and three RL steps with
# a KL reference (so the reference policy runs in bf16 too).
part parity-bf16 30 "$BIN" check parity --fixtures "$CARRY/fixtures" --device cuda --dtype bf16 --json
part train-bf16 60 "$BIN" bench train --device cuda --preset qwen3-0.6b --dtype bf16 --json
if [ "$mode" = dry ] || python3 -c "import torch; assert torch.cuda.is_available()" >/dev/null 2>&1; then
  part torch-train-bf16 30 python3 "$CARRY/perf/torch_bench.py" --device cuda --dtype bf16 --config "$WORK/train-config.json" --settings "$WORK/train-settings.json"
fi
RL_BF16_RUN=$WORK/rl-bf16-run
part rl-bf16 60 "$BIN" train --device cuda --run-dir "$RL_BF16_RUN" --set model=$RL_MODEL --set optim.steps=3 --set checkpoint.every=0 --set model.dtype=bf16 --set optim.kl_coef=0.01
[ "$mode" = run ] && cp "$RL_BF16_RUN/metrics.jsonl" "$WORK/parts/rl-bf16-metrics.jsonl" 2>/dev/null && pack_parts

if [ "$mode" = dry ]; then
  echo "would run: $BIN bench device-report $WORK, then copy device-check.json and .md to $OUT"
  exit 0
fi
status=0
"$BIN" bench device-report "$WORK" | tee "$WORK/device-check.md" || status=1
cp "$WORK/device-check.json" "$WORK/device-check.md" "$OUT/" || status=1
pack_parts || status=1
echo "total $(( $(date +%s) - started )) s"
exit $status

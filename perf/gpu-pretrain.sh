#!/usr/bin/env bash
# Pretrain the shipped 31M shape (configs/model-shapes/wide-4x768.json) from scratch on
# a lent GPU in one call, evaluate it on the held-out masked spans there, and bring
# the weights back. Two CPU cores give ~0.8k tokens/s; the aim is many more tokens
# than the CPU stages saw, in the window prompt format the shipped model uses.
#
# The device tool's limits shape it: a call carries at most 64 MiB (so the checkout
# goes without the shipped 31M weights, `perf/gpu-check.sh --slim`, and the run starts
# from scratch), and at most 8 files of 16 MiB each, 64 MiB in all, come back (so the
# 60 MiB of bf16 weights come back in four parts, with a sha256 to join them by).
#
# 1. Here:  CUDARC_CUDA_VERSION=13000 cargo build --release --features cuda
#           perf/gpu-pretrain.sh --stage      # binary and corpus, xz, in target/device-pretrain
#           perf/gpu-check.sh --slim
# 2. There: command perf/gpu-pretrain.sh, carry ["target/device-pretrain"], timeout_s 480
#           (TRAIN_SECONDS, default 240, is the training time: a 20-step calibration
#           run measures the step time and the schedule's length is chosen to fill it)
# 3. Here:  perf/gpu-check.sh --unslim
#           perf/gpu-pretrain.sh --fetch FILES_AT runs/gpu-pretrain   # joins and checks the weights
#
# DEVICE (default cuda) runs the same on another backend: `DEVICE=flex TRAIN_SECONDS=20
# BATCH=2 SEQ=64`
# rehearses the whole call on the CPU.
set -uo pipefail
cd "$(dirname "$0")/.."

CARRY=target/device-pretrain
OUT=${OUT:-$PWD/target/device-pretrain-out}
WORK=${TMPDIR:-/tmp}/pretrainzero-device-pretrain
DEVICE=${DEVICE:-cuda}
TRAIN_SECONDS=${TRAIN_SECONDS:-240}
BATCH=${BATCH:-64}
SEQ=${SEQ:-256}
PART_BYTES=15000000

case "${1:-}" in
  --stage)
    set -e
    bin=target/release/pretrainzero
    corpus=${PRETRAINZERO_SHARED_DATA:-../shared/data}/wikipedia/enwiki-wikiextractor
    [ -x "$bin" ] || { echo "error: $bin is missing; build it with: CUDARC_CUDA_VERSION=13000 cargo build --release --features cuda" >&2; exit 1; }
    [ -d "$corpus" ] || { echo "error: $corpus: no such corpus folder" >&2; exit 1; }
    rm -rf "$CARRY" && mkdir -p "$CARRY"
    strip -o "$CARRY/pretrainzero" "$bin"
    xz -9 -T0 "$CARRY/pretrainzero"
    tar -cJf "$CARRY/corpus.tar.xz" -C "$(dirname "$corpus")" "$(basename "$corpus")"
    du -sh "$CARRY"/* | sed 's/^/  /'
    echo "staged $CARRY; before the call: perf/gpu-check.sh --slim (the checkout must travel without the 31M weights)"
    exit 0 ;;
  --fetch)
    from=${2:?usage: perf/gpu-pretrain.sh --fetch FILES_AT OUT_DIR}
    dest=${3:?usage: perf/gpu-pretrain.sh --fetch FILES_AT OUT_DIR}
    [ -e "$dest" ] && { echo "error: $dest exists; choose a new folder" >&2; exit 1; }
    [ -f "$from/pretrain-report.tar.gz" ] || { echo "error: $from/pretrain-report.tar.gz is missing" >&2; exit 1; }
    mkdir -p "$dest" && tar -xzf "$from/pretrain-report.tar.gz" -C "$dest" || exit 1
    cat "$from"/weights.part-* >"$dest/final/model.safetensors" || exit 1
    (cd "$dest/final" && sha256sum -c --quiet ../model.safetensors.sha256) || { echo "error: the joined weights do not match their sha256" >&2; exit 1; }
    echo "$dest/final holds the model; $dest/eval.log its held-out masked-span table"
    exit 0 ;;
  "") ;;
  *) echo "usage: perf/gpu-pretrain.sh [--stage | --fetch FILES_AT OUT_DIR]" >&2; exit 2 ;;
esac

mkdir -p "$OUT" && [ -w "$OUT" ] || { echo "error: cannot write to $OUT" >&2; exit 1; }
rm -rf "$WORK" && mkdir -p "$WORK/report" || exit 1
unxz() {
  if command -v xz >/dev/null 2>&1; then xz -dc "$1"
  else python3 -c 'import lzma, shutil, sys; shutil.copyfileobj(lzma.open(sys.argv[1]), sys.stdout.buffer)' "$1"
  fi
}
BIN=$WORK/pretrainzero
unxz "$CARRY/pretrainzero.xz" >"$BIN" && chmod +x "$BIN" || { echo "error: cannot unpack $CARRY/pretrainzero.xz (staged with --stage?)" >&2; exit 1; }
unxz "$CARRY/corpus.tar.xz" | tar -xf - -C "$WORK" || { echo "error: cannot unpack $CARRY/corpus.tar.xz" >&2; exit 1; }
CORPUS=$WORK/enwiki-wikiextractor
LOG=$WORK/report/console.log
started=$(date +%s)

# The recipe of the CPU stages in one schedule: the window format, 60 % task examples.
pretrain() {
  "$BIN" pretrain --device "$DEVICE" --corpus "$CORPUS" \
    --preset configs/model-shapes/wide-4x768.json --tokenizer models/pretrainzero-wiki-tiny/tokenizer.json \
    --prompt-templates configs/prompt-templates/window.json --task-fraction 0.6 \
    --batch-size $BATCH --seq-len $SEQ --lr 2e-3 --seed 0 --export-dtype bfloat16 \
    --checkpoint-every 0 "$@"
}

# Calibration: the median time of steps 11-20 (the first ones compile kernels).
pretrain --out "$WORK/calibration" --steps 20 --warmup-steps 2 --validate-every 0 >>"$LOG" 2>&1 \
  || { echo "error: the calibration run failed; see its log:" >&2; tail -20 "$LOG" >&2; tar -czf "$OUT/pretrain-report.tar.gz" -C "$WORK/report" .; exit 1; }
tokens_per_step=$(( BATCH * SEQ ))
steps=$(python3 -c "import json, statistics
rows = [json.loads(l) for l in open('$WORK/calibration/metrics.jsonl')][10:]
tps = statistics.median(r['tokens_per_s'] for r in rows)
print(max(50, int($TRAIN_SECONDS * tps / $tokens_per_step)))")
echo "calibration: $(( $(date +%s) - started )) s; training $steps steps of $tokens_per_step tokens" | tee -a "$LOG"

pretrain --out "$WORK/run" --steps "$steps" --warmup-steps $(( steps / 20 + 1 )) \
  --validate-every $(( steps / 4 + 1 )) >>"$LOG" 2>&1 || { echo "error: the training run failed" >&2; tail -20 "$LOG" >&2; }
tail -1 "$LOG"

if [ -f "$WORK/run/final/model.safetensors" ]; then
  "$BIN" eval --device "$DEVICE" --model "$WORK/run/final" --task masked-span --limit 500 --batch-size 64 \
    --data data/wikipedia-sample/heldout.wikiextractor --out "$WORK/report/eval-items.jsonl" \
    >"$WORK/report/eval.log" 2>&1
  tail -4 "$WORK/report/eval.log"
  mkdir -p "$WORK/report/final"
  for f in "$WORK/run/final"/*; do
    [ "$(basename "$f")" = model.safetensors ] || cp "$f" "$WORK/report/final/"
  done
  (cd "$WORK/run/final" && sha256sum model.safetensors) >"$WORK/report/model.safetensors.sha256"
  split -b $PART_BYTES -d -a 1 "$WORK/run/final/model.safetensors" "$OUT/weights.part-"
fi
cp "$WORK/run/metrics.jsonl" "$WORK/run/pretrain_config.json" "$WORK/report/" 2>/dev/null
tar -czf "$OUT/pretrain-report.tar.gz" -C "$WORK/report" . || exit 1
echo "total $(( $(date +%s) - started )) s; \$OUT: $(ls "$OUT" | tr '\n' ' ')"
[ -f "$WORK/run/final/model.safetensors" ]

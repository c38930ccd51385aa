#!/usr/bin/env bash
# Pretrain the shipped 31M shape (configs/model-shapes/wide-4x768.json) from scratch on
# a lent GPU in one call, evaluate it on the held-out masked spans there, and bring
# the weights back. Two CPU cores give ~0.8k tokens/s; the aim is many more tokens
# than the CPU stages saw, in the window prompt format the shipped model uses.
#
# The device tool's limits shape it: a call carries at most 64 MiB (so the checkout
# goes without the shipped 31M weights, `perf/gpu-check.sh --slim`, and the run starts
# from scratch), and at most 8 files of 16 MiB each, 64 MiB in all, come back (so the
# 60 MiB of bf16 weights come back in five parts, with a sha256 to join them by, next
# to console.log and pretrain-report.tar.gz: 7 files, 60.2 MiB).
#
# 1. Here:  CUDARC_CUDA_VERSION=13000 cargo build --release --features cuda
#           perf/gpu-pretrain.sh --stage      # binary and corpus, xz, in target/device-pretrain
#           perf/gpu-check.sh --slim
# 2. There: command perf/gpu-pretrain.sh, carry ["target/device-pretrain"], timeout_s 440
#           One attempt: with the machine's start it uses most of a session's 15 minutes.
#           TRAIN_SECONDS (default 180) sizes the schedule from a 20-step calibration
#           run's step time (validation, export and kernel compiles come on top);
#           DEADLINE (default 420 s) bounds the whole call: training is stopped in time
#           to keep 90 s for export and evaluation, and then its last checkpoint (every
#           quarter of the schedule) is exported instead. Weights and report are in
#           $OUT before the evaluation starts, so an evaluation cut short loses nothing.
# 3. Here:  perf/gpu-check.sh --unslim
#           perf/gpu-pretrain.sh --fetch FILES_AT runs/gpu-pretrain   # joins and checks the weights
#
# DEVICE (default cuda) runs the same on another backend: `DEVICE=flex TRAIN_SECONDS=20
# BATCH=2 SEQ=64`
# rehearses the whole call on the CPU.
set -uo pipefail
CALLER_DIR=$PWD
cd "$(dirname "$0")/.."
source perf/device-common.sh

CARRY=target/device-pretrain
OUT=${OUT:-$PWD/target/device-pretrain-out}
WORK=${TMPDIR:-/tmp}/pretrainzero-device-pretrain
DEVICE=${DEVICE:-cuda}
TRAIN_SECONDS=${TRAIN_SECONDS:-180}
DEADLINE=${DEADLINE:-420}
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
    [ "$DEVICE" != cuda ] || require_cuda_build "$bin"
    rm -rf "$CARRY" && mkdir -p "$CARRY"
    stage_binary "$bin" "$CARRY/pretrainzero"
    tar -cJf "$CARRY/corpus.tar.xz" -C "$(dirname "$corpus")" "$(basename "$corpus")"
    du -sh "$CARRY"/* | sed 's/^/  /'
    # What the call carries once the checkout is slimmed (the 31M weights left out).
    mib=$(travel_mib "$CARRY" slimmed)
    [ "$mib" -le $TRAVEL_LIMIT_MIB ] || { echo "error: a call would carry $mib MiB even slimmed, over the tool's 64" >&2; exit 1; }
    echo "staged $CARRY; the call carries $mib MiB after perf/gpu-check.sh --slim, which it needs"
    exit 0 ;;
  --fetch)
    from=${2:?usage: perf/gpu-pretrain.sh --fetch FILES_AT OUT_DIR}
    dest=${3:?usage: perf/gpu-pretrain.sh --fetch FILES_AT OUT_DIR}
    case "$from" in /*) ;; *) from=$CALLER_DIR/$from ;; esac
    case "$dest" in /*) ;; *) dest=$CALLER_DIR/$dest ;; esac
    [ -e "$dest" ] && { echo "error: $dest exists; choose a new folder" >&2; exit 1; }
    [ -f "$from/pretrain-report.tar.gz" ] || { echo "error: $from/pretrain-report.tar.gz is missing" >&2; exit 1; }
    [ -f "$from/weights.part-0" ] || { echo "error: $from has no weights.part-*: the run brought back no model (see $from/console.log)" >&2; exit 1; }
    mkdir -p "$dest" && tar -xzf "$from/pretrain-report.tar.gz" -C "$dest" || exit 1
    [ -d "$dest/final" ] || { echo "error: the report in $from has no final/ folder" >&2; exit 1; }
    cat "$from"/weights.part-* >"$dest/final/model.safetensors" || exit 1
    (cd "$dest/final" && sha256sum -c --quiet ../model.safetensors.sha256) || { echo "error: the joined weights do not match their sha256" >&2; exit 1; }
    echo "$dest/final holds the model; $dest/eval.log its held-out masked-span table"
    exit 0 ;;
  "") ;;
  *) echo "usage: perf/gpu-pretrain.sh [--stage | --fetch FILES_AT OUT_DIR]" >&2; exit 2 ;;
esac

started=$(date +%s)
left() { echo $(( DEADLINE - ($(date +%s) - started) )); }
mkdir -p "$OUT" && [ -w "$OUT" ] || { echo "error: cannot write to $OUT" >&2; exit 1; }
rm -f "$OUT"/weights.part-* "$OUT"/pretrain-report.tar.gz "$OUT"/console.log
rm -rf "$WORK" && mkdir -p "$WORK/report" || exit 1
LOG=$OUT/console.log
# The report (configs, metrics, eval, sha256) in one archive, rewritten at each stage.
pack_report() { pack "$OUT/pretrain-report.tar.gz" "$WORK/report" .; }
fail() { echo "error: $1" | tee -a "$LOG" >&2; pack_report; exit 1; }
BIN=$WORK/pretrainzero
unxz "$CARRY/pretrainzero.xz" >"$BIN" && chmod +x "$BIN" || fail "cannot unpack $CARRY/pretrainzero.xz (staged with --stage?)"
unxz "$CARRY/corpus.tar.xz" | tar -xf - -C "$WORK" || fail "cannot unpack $CARRY/corpus.tar.xz"
CORPUS=$WORK/enwiki-wikiextractor

# The recipe of the CPU stages in one schedule: the window format, 60 % task examples.
# (An array, not a function: `timeout` runs programs.)
PRETRAIN=("$BIN" pretrain --device "$DEVICE" --corpus "$CORPUS"
  --preset configs/model-shapes/wide-4x768.json --tokenizer models/pretrainzero-wiki-tiny/tokenizer.json
  --prompt-templates configs/prompt-templates/window.json --task-fraction 0.6
  --batch-size "$BATCH" --seq-len "$SEQ" --lr 2e-3 --seed 0 --export-dtype bfloat16)

# Calibration: the median tokens/s of steps 11-20 (the first ones compile kernels).
timeout -k 10 $(( $(left) / 3 )) "${PRETRAIN[@]}" --out "$WORK/calibration" --steps 20 --warmup-steps 2 \
  --validate-every 0 --checkpoint-every 0 >>"$LOG" 2>&1 || fail "the calibration run failed (console.log)"
cp "$WORK/calibration/metrics.jsonl" "$WORK/report/calibration-metrics.jsonl"
steps=$(python3 - "$WORK/calibration/metrics.jsonl" "$TRAIN_SECONDS" $(( BATCH * SEQ )) 2>>"$LOG" <<'PY'
import json, statistics, sys
rows = [json.loads(line) for line in open(sys.argv[1]) if line.strip()][10:]
tokens_per_s = statistics.median(row["tokens_per_s"] for row in rows)
print(max(50, int(float(sys.argv[2]) * tokens_per_s / int(sys.argv[3]))))
PY
)
[[ $steps =~ ^[0-9]+$ ]] || fail "no step count from the calibration run (console.log)"
echo "calibration: $(( $(date +%s) - started )) s; training $steps steps of $(( BATCH * SEQ )) tokens" | tee -a "$LOG"

# Training, stopped in time to keep 90 s for export and evaluation.
timeout -k 10 $(( $(left) - 90 )) "${PRETRAIN[@]}" --out "$WORK/run" --steps "$steps" \
  --warmup-steps $(( steps / 20 + 1 )) --validate-every $(( steps / 4 + 1 )) \
  --checkpoint-every $(( steps / 4 + 1 )) --keep-checkpoints 1 >>"$LOG" 2>&1
echo "training: exit $? at $(( $(date +%s) - started )) s" | tee -a "$LOG"
cp "$WORK/run/metrics.jsonl" "$WORK/run/pretrain_config.json" "$WORK/report/" 2>/dev/null
MODEL=$WORK/run/final
if [ ! -f "$MODEL/model.safetensors" ]; then
  echo "no final export: exporting the last checkpoint" | tee -a "$LOG"
  MODEL=$WORK/exported
  "$BIN" pretrain --device "$DEVICE" --export-checkpoint "$WORK/run" --out "$MODEL" >>"$LOG" 2>&1 \
    || fail "the run left no model to bring back (console.log)"
fi
mkdir -p "$WORK/report/final"
for f in "$MODEL"/*; do
  [ "$(basename "$f")" = model.safetensors ] || cp "$f" "$WORK/report/final/"
done
(cd "$MODEL" && sha256sum model.safetensors) >"$WORK/report/model.safetensors.sha256"
split -b $PART_BYTES -d -a 1 "$MODEL/model.safetensors" "$OUT/weights.part-" || fail "cannot write the weights to $OUT"
pack_report || exit 1

# The held-out masked spans, with what is left of the deadline.
timeout -k 5 $(( $(left) > 10 ? $(left) - 5 : 5 )) "$BIN" eval --device "$DEVICE" --model "$MODEL" \
  --task masked-span --limit 500 --batch-size 64 --data data/wikipedia-sample/heldout.wikiextractor \
  --out "$WORK/report/eval-items.jsonl" >"$WORK/report/eval.log" 2>&1
eval_rc=$?
echo "evaluation: exit $eval_rc" | tee -a "$LOG"
tail -4 "$WORK/report/eval.log"
pack_report || exit 1
echo "total $(( $(date +%s) - started )) s; \$OUT: $(ls "$OUT" | tr '\n' ' ')" | tee -a "$LOG"
exit $eval_rc

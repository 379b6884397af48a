#!/usr/bin/env bash
# 2D→3D concept distillation end to end on synthetic RGB-D objects with the committed
# tiny ONNX teacher, then classification fine-tuning from the distilled encoder and
# from scratch. Figures land in runs/concept-demo/; docs/RESULTS.md reports a run.
# Sizes: EPOCHS (distillation), FT_EPOCHS (fine-tuning), PER_CLASS (training frames).
set -euo pipefail
cd "$(dirname "$0")/.."
EPOCHS=${EPOCHS:-10}
FT_EPOCHS=${FT_EPOCHS:-10}
PER_CLASS=${PER_CLASS:-8}
OUT=runs/concept-demo
CONFIG=configs/pointmae-concept-tiny.toml
cargo build --release --quiet
E=target/release/edge4d
$E data objects --out $OUT/objects --train-per-class "$PER_CLASS" --test-per-class 4 --side 96
$E pretrain --method concept-distill --teacher-onnx tests/fixtures/teacher/tiny_teacher.onnx \
    --config $CONFIG --data $OUT/objects/train --out $OUT/distill --overwrite --epochs "$EPOCHS" \
    --batch-size 8 --lr 5e-3 --weight-decay 0.05 --warmup-epochs 1 --log-every 1
for start in distilled scratch; do
    init=()
    if [ $start = distilled ]; then init=(--init $OUT/distill/model.safetensors); fi
    $E finetune --task classification --config $CONFIG --data $OUT/objects/train \
        --val $OUT/objects/test "${init[@]}" --out $OUT/cls-$start --overwrite --epochs "$FT_EPOCHS" \
        --batch-size 8 --optimizer adamw --lr 5e-4 --weight-decay 0.05 --warmup-epochs 1 \
        --log-every 1
done

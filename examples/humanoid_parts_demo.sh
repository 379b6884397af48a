#!/usr/bin/env bash
# 4D body-part segmentation trained from scratch on the device: render the human-motion
# clips with a body-part label per point, train the segmentation net on the training
# views and report mIoU on the unseen test views (docs/RESULTS.md).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-runs/humanoid-parts}
EDGE4D="cargo run --release --quiet --"
$EDGE4D data humanoid --body-parts --frames 3 --points 512 \
    --train-clips 24 --test-clips 10 --out "$OUT/data"
$EDGE4D finetune --task semantic-segmentation --config configs/humanoid-parts.toml \
    --data "$OUT/data/train.safetensors" --val "$OUT/data/test.safetensors" \
    --epochs 3 --val-every 3 --batch-size 8 --optimizer adamw --lr 0.003 \
    --weight-decay 0 --log-every 5 --out "$OUT/run" --overwrite
$EDGE4D eval --config configs/humanoid-parts.toml --weights "$OUT/run/model.safetensors" \
    --data "$OUT/data/test.safetensors" \
    --class-names torso,head,right-arm,left-arm,right-leg,left-leg

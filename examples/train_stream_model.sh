#!/usr/bin/env bash
# Recreates models/humanoid-action.safetensors, the action model the stream_depth
# example runs: the rendered human-motion dataset (24 training clips per action from
# the training views), then 20 epochs of SGD from scratch on the device. About 15-25
# minutes on a 2-core CPU-only machine (lavapipe); test-split clip accuracy 70.0%.
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-runs/stream-model}"
cargo build --release
edge4d=./target/release/edge4d
$edge4d data humanoid --out "$out/data" --train-clips 24 --test-clips 10 --frames 16 --points 512
$edge4d finetune --task action-recognition --config configs/humanoid-small.toml \
    --data "$out/data/train.safetensors" --val "$out/data/test.safetensors" \
    --batch-size 8 --lr 0.02 --warmup-epochs 1 --gamma 0.1 --seed 0 --no-augment \
    --epochs 20 --milestones 14 --val-every 5 --out "$out/train" --overwrite
cp "$out/train/model.safetensors" models/humanoid-action.safetensors

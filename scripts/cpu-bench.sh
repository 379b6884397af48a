#!/usr/bin/env bash
# edge4d's native CPU backend side by side with the PyTorch reference on the same
# machine, in one run: P4Transformer forward and forward+backward per clip
# (humanoid-small, paper-msr), the C2P pre-training step (humanoid-c2p), fp32 matmul
# 1024³ (edge4d's gemm, torch, numpy/OpenBLAS) and the stream's per-frame latency. The
# two sides alternate for PASSES passes (the machine's speed drifts), every line is
# written to OUT (JSON lines) and the summary gives the medians over passes and ratios.
#
#   pip install -r ../shared/perf/torchref/requirements.txt   # torch, numpy, safetensors
#   PYTHON=python3 PASSES=3 THREADS=2 scripts/cpu-bench.sh [OUT]
set -euo pipefail
cd "$(dirname "$0")/.."

OUT=${1:-runs/cpu-bench.jsonl}
PASSES=${PASSES:-3}
THREADS=${THREADS:-2}
PY=${PYTHON:-python3}
TORCHREF=${TORCHREF:-../shared/perf/torchref}

if ! "$PY" -c "import torch, numpy" 2>/dev/null; then
    echo "error: $PY cannot import torch and numpy; install them with" >&2
    echo "  $PY -m pip install -r $TORCHREF/requirements.txt" >&2
    exit 1
fi
cargo build --release --locked -q
E4D="target/release/edge4d --backend cpu --threads $THREADS"
mkdir -p "$(dirname "$OUT")"
: > "$OUT"

tag() { sed -e "s/^{/{\"side\": \"$1\", \"pass\": $2, /"; }
torch() { "$PY" "$TORCHREF/bench_torch.py" --threads "$THREADS" --idle-wait 0 --tries 1 "$@"; }

for pass in $(seq "$PASSES"); do
    echo "== pass $pass of $PASSES" >&2
    $E4D bench p4transformer --json --configs humanoid-small,paper-msr --warmup 1 --repeats 5 \
        | tag edge4d "$pass" >> "$OUT"
    torch --configs humanoid-small,paper-msr --warmup 1 --repeats 5 | tag torch "$pass" >> "$OUT"
    $E4D bench c2p --json | tag edge4d "$pass" >> "$OUT"
    torch --c2p-only --c2p-phases c2p_step_sgd | tag torch "$pass" >> "$OUT"
    $E4D bench matmul --json --sizes 1024 --repeats 15 | tag edge4d "$pass" >> "$OUT"
    torch --sgemm --configs "" | tag torch "$pass" >> "$OUT"
    OMP_NUM_THREADS=$THREADS OPENBLAS_NUM_THREADS=$THREADS "$PY" - <<'PY' | tag numpy "$pass" >> "$OUT"
import json, time, numpy as np
n = 1024
a, b = np.random.rand(n, n).astype(np.float32), np.random.rand(n, n).astype(np.float32)
for _ in range(3):
    a @ b
t = []
for _ in range(15):
    t0 = time.perf_counter(); a @ b; t.append(time.perf_counter() - t0)
med = sorted(t)[len(t) // 2]
print(json.dumps({"model": "sgemm", "M": n, "gflops_median": round(2 * n**3 / med / 1e9, 1)}))
PY
    $E4D bench stream --json | tag edge4d "$pass" >> "$OUT"
done
"$PY" scripts/bench_summary.py "$OUT"

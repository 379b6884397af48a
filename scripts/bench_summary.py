"""Summary of scripts/cpu-bench.sh's JSON lines: the median over passes of each
measurement, edge4d beside PyTorch (and numpy), and their ratio."""
import json
import sys
from collections import defaultdict
from statistics import median


def main(path):
    values = defaultdict(list)
    for line in open(path):
        r = json.loads(line)
        side = r["side"]
        if r.get("op") == "p4transformer":
            values[(r["config"], "forward ms/clip", side)].append(r["forward_ms_per_clip"])
            values[(r["config"], "forward+backward ms/clip", side)].append(r["forward_backward_ms_per_clip"])
            values[(r["config"], "peak MiB (train)", side)].append(r["peak_bytes"] / 2**20)
        elif r.get("model") == "p4transformer-msr":
            phase = {"forward": "forward ms/clip", "forward_backward": "forward+backward ms/clip"}[r["phase"]]
            values[(r["config"], phase, side)].append(r["ms_per_clip_median"])
        elif r.get("op") == "c2p_step_sgd":
            values[("humanoid-c2p", "C2P step ms/clip", side)].append(r["ms_per_clip"])
        elif r.get("phase") == "c2p_step_sgd":
            values[("humanoid-c2p", "C2P step ms/clip", side)].append(r["ms_per_clip_median"])
        elif r.get("op") == "matmul":
            n = r.get("shape", [1024])[0]
            values[(f"matmul {n}³", "GFLOP/s", side)].append(r["gflops"])
        elif r.get("model") == "sgemm":
            values[(f"matmul {r.get('M', 1024)}³", "GFLOP/s", side)].append(r["gflops_median"])
        elif r.get("op") == "attention" and "ms" in r:
            case = f"attention {r['kernel']}"
            values[(case, f"{r['pass']} ms (B·H {r['batch_heads']})", side)].append(r["ms"])
        elif r.get("op") == "stream":
            what = "p50 ms/frame, reuse" if r["reuse"] else "p50 ms/frame, no reuse"
            values[("stream", what, side)].append(r["p50_ms"])
    rows = sorted({(c, w) for c, w, _ in values})
    print(f"{'case':<16} {'measure':<26} {'edge4d':>10} {'torch':>10} {'numpy':>10} {'edge4d/torch':>13}")
    for case, what in rows:
        med = {s: median(values[(case, what, s)]) for s in ("edge4d", "torch", "numpy") if values[(case, what, s)]}
        cell = lambda s: f"{med[s]:10.2f}" if s in med else f"{'':>10}"
        ratio = f"{med['edge4d'] / med['torch']:13.2f}" if "edge4d" in med and "torch" in med else ""
        n = max(len(values[(case, what, s)]) for s in med)
        print(f"{case:<16} {what:<26} {cell('edge4d')} {cell('torch')} {cell('numpy')} {ratio}  (n={n})")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "runs/cpu-bench.jsonl")

#!/usr/bin/env python3
"""Exports CLIP ViT-B/32's image encoder followed by ClipCap's MLP mapper as one ONNX
model, the frozen 2D teacher of `edge4d pretrain --method concept-distill`:

    image (1, 3, 224, 224), CLIP-preprocessed  ->  prefix (1, 10, 768)

The prefix is ClipCap's `clip_project(encode_image(image))` on the raw (not
L2-normalised) 512-d image embedding, as ClipCap's predict.py computes it.

The architecture comes from open_clip's constructor ("ViT-B-32", QuickGELU as OpenAI's
weights use) and ClipCap's `MLP((512, 3840, 7680))`. Nothing is downloaded: without
weights both start from their random initialisation (seeded), which exercises the
real-size path end to end. With weights you already have, the file layout is the same:

    --clip-weights  an open_clip / OpenAI state_dict (.pt or .bin) for ViT-B-32
    --clipcap       a ClipCap checkpoint whose clip_project.model.* is the mapper
                    (e.g. the Conceptual Captions MLP weights)

--check runs the exported model through onnxruntime and through edge4d (tract,
`edge4d bench teacher`) on the same input and prints the largest difference relative
to max |prefix| and tract's time per image.

    pip install torch open_clip_torch onnx onnxruntime safetensors
    python scripts/export_clip_clipcap.py --out teacher.onnx --check
"""
import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch import nn


class ClipCapMlp(nn.Module):
    """ClipCap's `MLP((512, 3840, 7680))`: Linear -> Tanh -> Linear."""

    def __init__(self, sizes=(512, 3840, 7680)):
        super().__init__()
        layers = []
        for i in range(len(sizes) - 1):
            layers.append(nn.Linear(sizes[i], sizes[i + 1]))
            if i < len(sizes) - 2:
                layers.append(nn.Tanh())
        self.model = nn.Sequential(*layers)

    def forward(self, x):
        return self.model(x)


class Teacher(nn.Module):
    def __init__(self, visual, mapper, prefix_length):
        super().__init__()
        self.visual = visual
        self.mapper = mapper
        self.prefix_length = prefix_length

    def forward(self, image):
        embedding = self.visual(image).float()
        prefix = self.mapper(embedding)
        return prefix.view(-1, self.prefix_length, prefix.shape[-1] // self.prefix_length)


def build(args):
    import open_clip

    torch.manual_seed(args.seed)
    model = open_clip.create_model(args.arch, pretrained=None)
    if args.clip_weights:
        state = torch.load(args.clip_weights, map_location="cpu")
        state = state.get("state_dict", state)
        missing, unexpected = model.load_state_dict(state, strict=False)
        visual_missing = [k for k in missing if k.startswith("visual.")]
        if visual_missing:
            sys.exit(f"{args.clip_weights}: no weights for {visual_missing[:5]} ...")
    mapper = ClipCapMlp((512, 3840, 768 * args.prefix_length))
    if args.clipcap:
        state = torch.load(args.clipcap, map_location="cpu")
        mapper.load_state_dict({k[len("clip_project."):]: v for k, v in state.items()
                                if k.startswith("clip_project.")})
    return Teacher(model.visual.float().eval(), mapper.eval(), args.prefix_length).eval()


def check(args, out: Path):
    """onnxruntime vs tract on one input; returns the report as a dict."""
    import numpy as np
    import onnxruntime as ort
    from safetensors.numpy import load_file, save_file

    rng = np.random.default_rng(args.seed)
    image = rng.standard_normal((1, 3, 224, 224)).astype(np.float32)
    sess = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    want = sess.run(None, {name: image})[0]
    ort_times = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        sess.run(None, {name: image})
        ort_times.append((time.perf_counter() - t0) * 1e3)
    ort_ms = sorted(ort_times)[len(ort_times) // 2]
    with tempfile.TemporaryDirectory() as tmp:
        inp, got_path = Path(tmp) / "image.safetensors", Path(tmp) / "prefix.safetensors"
        save_file({"image": image}, str(inp))
        cmd = [args.edge4d, "--backend", "cpu", "bench", "teacher", "--teacher-onnx", str(out),
               "--input", str(inp), "--output", str(got_path), "--warmup", "1",
               "--repeats", str(args.repeats), "--json"]
        res = subprocess.run(cmd, capture_output=True, text=True)
        if res.returncode != 0:
            sys.exit(f"{' '.join(cmd)} failed:\n{res.stderr}")
        bench = json.loads(res.stdout.strip().splitlines()[-1])
        got = load_file(str(got_path))["prefix"]
    scale = float(np.abs(want).max())
    diff = float(np.abs(got - want).max())
    report = {
        "teacher": str(out), "prefix": list(want.shape), "max_abs_prefix": scale,
        "max_abs_diff": diff, "relative": diff / scale,
        "tract_load_ms": bench["load_ms"], "tract_ms_per_image": bench["median_ms_per_image"],
        "onnxruntime_ms_per_image": ort_ms, "cpu_threads": bench["cpu_threads"],
    }
    print(json.dumps(report))
    if diff > 1e-4 * scale:
        sys.exit(f"tract and onnxruntime differ by {diff:.3g} > 1e-4 * max|prefix| = {1e-4 * scale:.3g}")
    return report


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--arch", default="ViT-B-32-quickgelu", help="open_clip model name")
    ap.add_argument("--clip-weights", help="state_dict for the CLIP model (default: random init)")
    ap.add_argument("--clipcap", help="ClipCap checkpoint with clip_project.model.* (default: random init)")
    ap.add_argument("--prefix-length", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="teacher.onnx")
    ap.add_argument("--check", action="store_true", help="compare onnxruntime and tract on one input")
    ap.add_argument("--edge4d", default="target/release/edge4d", help="edge4d binary for --check")
    ap.add_argument("--repeats", type=int, default=5, help="--check: timed tract runs")
    args = ap.parse_args()

    teacher = build(args)
    out = Path(args.out)
    dummy = torch.zeros(1, 3, 224, 224)
    # nn.MultiheadAttention's fused eval path has no ONNX export; the plain one does.
    torch.backends.mha.set_fastpath_enabled(False)
    with torch.no_grad():
        torch.onnx.export(teacher, dummy, str(out), input_names=["image"], output_names=["prefix"],
                          opset_version=17, dynamo=False)
    print(f"wrote {out}: image (1, 3, 224, 224) -> prefix (1, {args.prefix_length}, 768), "
          f"{out.stat().st_size / 1e6:.0f} MB")
    if args.check:
        check(args, out)


if __name__ == "__main__":
    main()

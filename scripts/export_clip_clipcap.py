#!/usr/bin/env python3
"""Exports CLIP ViT-B/32's image encoder followed by ClipCap's MLP mapper as one ONNX
model, the frozen 2D teacher of `edge4d pretrain --method concept-distill`:

    image (1, 3, 224, 224), CLIP-preprocessed  ->  prefix (1, 10, 768)

The prefix is ClipCap's `clip_project(encode_image(image))` with the raw (not
L2-normalised) 512-d image embedding, as ClipCap's predict.py computes it.

Needs torch, OpenAI's `clip` package and ClipCap weights you already have (e.g. the
Conceptual Captions MLP checkpoint, `conceptual_weights.pt`); nothing here downloads
weights unless `clip.load` does so on your machine. Not used by the tests: they load the
small model `make_tiny_teacher.py` writes, which has the same interface.

    python scripts/export_clip_clipcap.py --clipcap conceptual_weights.pt --out teacher.onnx
"""
import argparse

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
    def __init__(self, clip_model, mapper, prefix_length):
        super().__init__()
        self.visual = clip_model.visual
        self.mapper = mapper
        self.prefix_length = prefix_length

    def forward(self, image):
        embedding = self.visual(image.type(self.visual.conv1.weight.dtype)).float()
        prefix = self.mapper(embedding)
        return prefix.view(-1, self.prefix_length, prefix.shape[-1] // self.prefix_length)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clipcap", required=True, help="ClipCap checkpoint (state_dict with clip_project.model.*)")
    ap.add_argument("--clip", default="ViT-B/32", help="CLIP model name or path for clip.load")
    ap.add_argument("--prefix-length", type=int, default=10)
    ap.add_argument("--out", default="teacher.onnx")
    args = ap.parse_args()

    import clip  # OpenAI's package: pip install git+https://github.com/openai/CLIP

    clip_model, _ = clip.load(args.clip, device="cpu", jit=False)
    clip_model = clip_model.float().eval()
    state = torch.load(args.clipcap, map_location="cpu")
    mapper = ClipCapMlp()
    mapper.load_state_dict({k[len("clip_project."):]: v for k, v in state.items()
                            if k.startswith("clip_project.")})
    teacher = Teacher(clip_model, mapper.eval(), args.prefix_length).eval()
    dummy = torch.zeros(1, 3, 224, 224)
    with torch.no_grad():
        torch.onnx.export(teacher, dummy, args.out, input_names=["image"], output_names=["prefix"],
                          opset_version=17)
    print(f"wrote {args.out}: image (1, 3, 224, 224) -> prefix (1, {args.prefix_length}, 768)")


if __name__ == "__main__":
    main()

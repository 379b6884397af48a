#!/usr/bin/env python3
"""Trains a small 2D teacher that carries semantics, for concept distillation on the
synthetic objects, and exports it as ONNX with the interface
`edge4d pretrain --method concept-distill --teacher-onnx` expects:

    image (1, 3, 224, 224), CLIP-preprocessed  ->  prefix (1, prefix_length, prefix_dim)

It stands in for CLIP + ClipCap where no pre-trained weights can be fetched: a small
CNN image encoder (the CLIP role) and a ClipCap-style mapper, Linear -> Tanh -> Linear,
from its embedding to the prefix. It learns from labelled colour images only — a
folder written by `edge4d data objects` with its own seed, so none of the 3D set's
objects — through a linear classifier on the flattened prefix, so the prefix is what
carries the class. The classifier is dropped from the exported model. With --random
the same network is exported untrained (the control teacher).

    python scripts/train_teacher_2d.py --images runs/x/teacher-images/train \\
        --val runs/x/teacher-images/test --out teacher.onnx
"""
import argparse
import json
import random
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


def clip_preprocess(img: Image.Image) -> np.ndarray:
    """CLIP's resize (shorter side 224, bicubic), centre crop, scale and normalise."""
    w, h = img.size
    s = 224 / min(w, h)
    img = img.convert("RGB").resize((round(w * s), round(h * s)), Image.BICUBIC)
    w, h = img.size
    left, top = (w - 224) // 2, (h - 224) // 2
    img = img.crop((left, top, left + 224, top + 224))
    x = np.asarray(img, dtype=np.float32) / 255.0
    x = (x - np.array(CLIP_MEAN, dtype=np.float32)) / np.array(CLIP_STD, dtype=np.float32)
    return x.transpose(2, 0, 1)


def load_folder(folder: Path):
    classes = (folder / "classes.txt").read_text().split()
    xs, ys = [], []
    for line in (folder / "labels.txt").read_text().splitlines():
        if not line.strip():
            continue
        name, cls = line.split()
        xs.append(clip_preprocess(Image.open(folder / f"{name}.color.png")))
        ys.append(classes.index(cls))
    return torch.from_numpy(np.stack(xs)), torch.tensor(ys), classes


class Encoder(nn.Module):
    """The central 112 x 112 (where the objects are) -> 56 (average pooling) -> four conv
    blocks -> global average -> embedding."""

    def __init__(self, embed=64):
        super().__init__()

        def block(i, o):
            return [nn.Conv2d(i, o, 3, padding=1), nn.BatchNorm2d(o), nn.ReLU(), nn.MaxPool2d(2)]

        self.net = nn.Sequential(nn.AvgPool2d(2), *block(3, 32), *block(32, 64), *block(64, 96),
                                 *block(96, 128), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                                 nn.Linear(128, embed))

    def forward(self, x):
        return self.net(x[:, :, 56:168, 56:168])


class Teacher(nn.Module):
    def __init__(self, prefix_length, prefix_dim, embed=64, hidden=128):
        super().__init__()
        self.encoder = Encoder(embed)
        # ClipCap's MLP mapper: Linear -> Tanh -> Linear to prefix_length x prefix_dim.
        self.mapper = nn.Sequential(nn.Linear(embed, hidden), nn.Tanh(),
                                    nn.Linear(hidden, prefix_length * prefix_dim))
        self.prefix_length, self.prefix_dim = prefix_length, prefix_dim

    def forward(self, image):
        prefix = self.mapper(self.encoder(image))
        return prefix.view(-1, self.prefix_length, self.prefix_dim)


def accuracy(model, probe, x, y):
    model.eval()
    with torch.no_grad():
        logits = torch.cat([probe(model(x[i:i + 64]).flatten(1)) for i in range(0, len(x), 64)])
    return (logits.argmax(1) == y).float().mean().item()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", required=True, type=Path, help="labelled colour images (edge4d data objects)")
    ap.add_argument("--val", type=Path, help="held-out labelled images for the reported accuracy")
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--prefix-length", type=int, default=10)
    ap.add_argument("--prefix-dim", type=int, default=16)
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--random", action="store_true", help="export the untrained network")
    args = ap.parse_args()

    torch.manual_seed(args.seed)
    random.seed(args.seed)
    torch.set_num_threads(max(1, torch.get_num_threads()))
    teacher = Teacher(args.prefix_length, args.prefix_dim)
    report = {"random": args.random, "seed": args.seed}
    if not args.random:
        x, y, classes = load_folder(args.images)
        probe = nn.Linear(args.prefix_length * args.prefix_dim, len(classes))
        opt = torch.optim.Adam(list(teacher.parameters()) + list(probe.parameters()), lr=3e-3)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, args.epochs)
        for epoch in range(args.epochs):
            teacher.train()
            order = torch.randperm(len(x))
            total = 0.0
            for i in range(0, len(x), 32):
                idx = order[i:i + 32]
                xb = x[idx]
                flip = torch.rand(len(idx)) < 0.5
                xb[flip] = xb[flip].flip(-1)
                loss = nn.functional.cross_entropy(probe(teacher(xb).flatten(1)), y[idx])
                opt.zero_grad()
                loss.backward()
                opt.step()
                total += loss.item() * len(idx)
            sched.step()
            print(f"epoch {epoch + 1}: loss {total / len(x):.4f}", flush=True)
        report.update(images=len(x), classes=classes, train_accuracy=accuracy(teacher, probe, x, y))
        if args.val:
            xv, yv, _ = load_folder(args.val)
            report.update(val_images=len(xv), val_accuracy=accuracy(teacher, probe, xv, yv))
    teacher.eval()
    with torch.no_grad():
        torch.onnx.export(teacher, torch.zeros(1, 3, 224, 224), str(args.out), input_names=["image"],
                          output_names=["prefix"], opset_version=17, dynamo=False)
    report["onnx"] = str(args.out)
    print(json.dumps(report))
    args.out.with_suffix(".json").write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()

"""Writes tiny files in the reference repositories' preprocessed layouts
(reference-spec §9) with the libraries those repositories use (NumPy, h5py), for the
loader tests in tests/reference_formats.rs. Deterministic; rerun to regenerate:

    python3 scripts/make_reference_format_fixtures.py tests/fixtures/reference_formats
"""
import os
import sys

import h5py
import numpy as np

out = sys.argv[1]
rng = np.random.default_rng(7)

# §9.1 MSR-Action3D: processed_data/aAA_sSS_eEE_sdepth.npz, key point_clouds = object
# array of per-frame (n_t, 3) arrays in millimetres (np.savez_compressed, allow_pickle).
msr = os.path.join(out, "msr")
os.makedirs(msr, exist_ok=True)
for name, frames, dtype in [("a02_s03_e01", 5, np.float64), ("a05_s07_e02", 4, np.float32)]:
    clouds = np.empty(frames, dtype=object)
    for t in range(frames):
        n = 3 + t  # a different point count per frame
        clouds[t] = (rng.uniform(-500, 500, size=(n, 3)) + [0, 0, 2500]).astype(dtype)
    np.savez_compressed(os.path.join(msr, name + "_sdepth.npz"), point_clouds=clouds)

# §9.2 Synthia 4D: sequences/<SEQ>-<frame:06d>.npz with pc (P, 3), rgb (P, 3), semantic
# (P,) raw ids, center (3,); list files and labelweights.npz.
syn = os.path.join(out, "synthia")
os.makedirs(os.path.join(syn, "sequences"), exist_ok=True)
ids = np.array([0, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 15])  # valid raw ids (1, 13, 14 removed)
P = 40
for seq, frames in [("SEQS-01-DAWN", [10, 11, 13]), ("SEQS-02-NIGHT", [4])]:
    for f in frames:
        center = np.array([1.0 * f, 0.0, 5.0])
        pc = center + rng.uniform(-3, 3, size=(P, 3))
        np.savez_compressed(
            os.path.join(syn, "sequences", f"{seq}-{f:06d}.npz"),
            pc=pc.astype(np.float32),
            rgb=rng.uniform(0, 1, size=(P, 3)).astype(np.float32),
            semantic=ids[rng.integers(0, len(ids), size=P)].astype(np.uint8),
            center=center,
        )
with open(os.path.join(syn, "trainval_raw.txt"), "w") as fh:
    for f in [10, 11, 13]:
        fh.write(f"SEQS-01-DAWN/RGBLeft/{f:06d}.png 0\n")
with open(os.path.join(syn, "test_raw.txt"), "w") as fh:
    fh.write("SEQS-02-NIGHT/RGBLeft/000004.png 0\n")
np.savez(os.path.join(syn, "labelweights.npz"), labelweights=np.linspace(0.05, 0.3, 12).astype(np.float32))

# §9.3 HOI4D action segmentation: pcd (n, T, points, 3), center (n, T, 3), label (n, T).
hoi = os.path.join(out, "hoi4d")
os.makedirs(hoi, exist_ok=True)
n, T, pts = 2, 6, 5
with h5py.File(os.path.join(hoi, "train1.h5"), "w") as h:
    h.create_dataset("pcd", data=rng.normal(size=(n, T, pts, 3)).astype(np.float32))
    h.create_dataset("center", data=rng.normal(size=(n, T, 3)).astype(np.float32))
    h.create_dataset("label", data=rng.integers(0, 19, size=(n, T)).astype(np.int64))
# §9.4 HOI4D semantic segmentation: pcd (n, 300, points, 3), semantic (n, 300, points);
# 300 frames make 100 clips of 3. Chunked and deflated, as large h5 files often are.
with h5py.File(os.path.join(hoi, "test1_right.h5"), "w") as h:
    h.create_dataset("pcd", data=rng.normal(size=(1, 300, 4, 3)).astype(np.float32),
                     chunks=(1, 30, 4, 3), compression="gzip")
    h.create_dataset("center", data=np.zeros((1, 300, 3), np.float32))
    h.create_dataset("semantic", data=rng.integers(0, 49, size=(1, 300, 4)).astype(np.int64),
                     chunks=(1, 30, 4), compression="gzip")

# What NumPy and h5py read back, for the tests to compare with.
import json

expected = {"msr": {}, "synthia": {}, "hoi4d": {}}
for name in sorted(os.listdir(msr)):
    clouds = np.load(os.path.join(msr, name), allow_pickle=True)["point_clouds"]
    expected["msr"][name] = [c.astype(np.float64).tolist() for c in clouds]
for name in sorted(os.listdir(os.path.join(syn, "sequences"))):
    d = np.load(os.path.join(syn, "sequences", name))
    expected["synthia"][name] = {k: d[k].tolist() for k in ["pc", "semantic", "center"]}
with h5py.File(os.path.join(hoi, "train1.h5")) as h:
    expected["hoi4d"]["train1.h5"] = {"pcd": h["pcd"][()].tolist(), "label": h["label"][()].tolist()}
with h5py.File(os.path.join(hoi, "test1_right.h5")) as h:
    expected["hoi4d"]["test1_right.h5"] = {"pcd": h["pcd"][()].tolist(), "semantic": h["semantic"][()].tolist()}
with open(os.path.join(out, "expected.json"), "w") as fh:
    json.dump(expected, fh)

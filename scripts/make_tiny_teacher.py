#!/usr/bin/env python3
"""Writes tests/fixtures/teacher/tiny_teacher.onnx: a small, randomly initialised
stand-in for CLIP ViT-B/32 + ClipCap's MLP mapper with the same interface.

    image (batch, 3, 224, 224), CLIP-preprocessed  ->  prefix (batch, 10, 16)

Inside: a 32x32 stride-32 patch convolution (ViT-B/32's patch size) to 8 channels,
ReLU, global average pool, a linear "image embedding" of width 32, then ClipCap's
mapper shape Linear -> Tanh -> Linear, viewed as (10, 16). Deterministic (seed 0).
Needs numpy and onnx: `pip install numpy onnx`.
"""
import pathlib

import numpy as np
import onnx
import onnx.reference
from onnx import TensorProto, helper, numpy_helper

PREFIX_LENGTH, PREFIX_DIM = 10, 16
PATCH, CHANNELS, EMBED, HIDDEN = 32, 8, 32, 64
# Weights are U(−g/√fan_in, g/√fan_in) with this gain, so the prefixes vary across images
# (on edge4d's synthetic objects about 8% of their energy), as an informative teacher's
# do; at gain 1 they would be almost the same for every image.
GAIN = 6.0


def write_safetensors(path, tensors):
    """A minimal safetensors writer (F32 only), so the script needs no torch."""
    import json
    import struct

    header, offset, blobs = {}, 0, []
    for name, value in tensors.items():
        data = np.ascontiguousarray(value, dtype="<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(value.shape),
                        "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
        blobs.append(data)
    text = json.dumps(header).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    path.write_bytes(struct.pack("<Q", len(text)) + text + b"".join(blobs))


def main():
    rng = np.random.default_rng(0)

    def weight(name, *shape, scale=None):
        fan_in = int(np.prod(shape[1:])) if len(shape) > 1 else shape[0]
        s = scale if scale is not None else GAIN / np.sqrt(fan_in)
        return numpy_helper.from_array(rng.uniform(-s, s, shape).astype(np.float32), name)

    inits = [
        weight("patch.weight", CHANNELS, 3, PATCH, PATCH),
        weight("patch.bias", CHANNELS, scale=0.1),
        weight("embed.weight", CHANNELS, EMBED),
        weight("embed.bias", EMBED, scale=0.1),
        weight("clip_project.model.0.weight", EMBED, HIDDEN),
        weight("clip_project.model.0.bias", HIDDEN, scale=0.1),
        weight("clip_project.model.2.weight", HIDDEN, PREFIX_LENGTH * PREFIX_DIM),
        weight("clip_project.model.2.bias", PREFIX_LENGTH * PREFIX_DIM, scale=0.1),
        numpy_helper.from_array(np.array([-1, PREFIX_LENGTH, PREFIX_DIM], np.int64), "prefix_shape"),
    ]
    nodes = [
        helper.make_node("Conv", ["image", "patch.weight", "patch.bias"], ["patches"],
                         kernel_shape=[PATCH, PATCH], strides=[PATCH, PATCH]),
        helper.make_node("Relu", ["patches"], ["patches_relu"]),
        helper.make_node("GlobalAveragePool", ["patches_relu"], ["pooled"]),
        helper.make_node("Flatten", ["pooled"], ["pooled_flat"], axis=1),
        helper.make_node("Gemm", ["pooled_flat", "embed.weight", "embed.bias"], ["image_embedding"]),
        helper.make_node("Gemm", ["image_embedding", "clip_project.model.0.weight",
                                  "clip_project.model.0.bias"], ["hidden"]),
        helper.make_node("Tanh", ["hidden"], ["hidden_tanh"]),
        helper.make_node("Gemm", ["hidden_tanh", "clip_project.model.2.weight",
                                  "clip_project.model.2.bias"], ["prefix_flat"]),
        helper.make_node("Reshape", ["prefix_flat", "prefix_shape"], ["prefix"]),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny_clip_clipcap",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["batch", 3, 224, 224])],
        [helper.make_tensor_value_info("prefix", TensorProto.FLOAT,
                                       ["batch", PREFIX_LENGTH, PREFIX_DIM])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)],
                              producer_name="edge4d make_tiny_teacher.py")
    model.ir_version = 8
    onnx.checker.check_model(model)
    out = pathlib.Path(__file__).resolve().parent.parent / "tests/fixtures/teacher/tiny_teacher.onnx"
    onnx.save(model, out)

    # The expected prefix for an all-zero image, for the loading test.
    # The prefix for a ramp image, computed by ONNX's reference evaluator, for the test.
    ramp = (np.arange(3 * 224 * 224, dtype=np.float32) / (3 * 224 * 224) * 4.0 - 2.0)
    (prefix,) = onnx.reference.ReferenceEvaluator(model).run(
        None, {"image": ramp.reshape(1, 3, 224, 224)})
    write_safetensors(out.with_name("tiny_teacher_expected.safetensors"),
                      {"ramp_prefix": prefix.astype("<f4")})
    print(f"wrote {out} ({out.stat().st_size} bytes)")


if __name__ == "__main__":
    main()

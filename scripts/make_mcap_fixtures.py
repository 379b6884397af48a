#!/usr/bin/env python3
"""Writes the small ROS 2 MCAP recordings under tests/data/mcap/ that edge4d's tests
replay, with the reference implementations: Python's `mcap` and `mcap-ros2-support`
(pip install mcap mcap-ros2-support zstandard numpy).

The scene: a 64 x 48 depth camera (fx = fy = 58) looking at a wall 3 m away while a
ball of radius 0.35 m crosses from left to right 2 m away, 20 frames at 15 Hz.

    python scripts/make_mcap_fixtures.py [--out tests/data/mcap]

Files (each one case the tests check):
  depth_16uc1.mcap         16UC1 depth (mm) + CameraInfo on the sibling camera_info topic
  depth_32fc1.mcap         32FC1 depth (m, NaN = no return), CameraInfo matched by
                           frame_id on another topic; frames 5 and 6 written out of
                           log-time order; no compression
  points_be_padded.mcap    PointCloud2, big-endian data, x y z + a 4-byte pad +
                           intensity + ring (point_step 24), NaN points
  two_depth_topics.mcap    two depth topics: the choice must be made with --depth-topic
  unsupported_encoding.mcap   an rgb8 image on the only Image topic
  truncated.mcap           depth_16uc1 with small chunks, cut after frame ~12
  bad_image_size.mcap      frame 3's data is shorter than height x step
  bad_cdr_length.mcap      frame 2's message ends before its data sequence does
  zero_focal.mcap          a CameraInfo whose K has fx = 0
"""
import argparse
import io
import math
import os

import numpy as np
from mcap.writer import CompressionType
from mcap_ros2.writer import Writer

TIME = """
================================================================================
MSG: std_msgs/Header
builtin_interfaces/Time stamp
string frame_id
================================================================================
MSG: builtin_interfaces/Time
int32 sec
uint32 nanosec"""

IMAGE = """std_msgs/Header header
uint32 height
uint32 width
string encoding
uint8 is_bigendian
uint32 step
uint8[] data""" + TIME

CAMERA_INFO = """std_msgs/Header header
uint32 height
uint32 width
string distortion_model
float64[] d
float64[9] k
float64[9] r
float64[12] p
uint32 binning_x
uint32 binning_y
sensor_msgs/RegionOfInterest roi""" + TIME + """
================================================================================
MSG: sensor_msgs/RegionOfInterest
uint32 x_offset
uint32 y_offset
uint32 height
uint32 width
bool do_rectify"""

POINT_CLOUD2 = """std_msgs/Header header
uint32 height
uint32 width
sensor_msgs/PointField[] fields
bool is_bigendian
uint32 point_step
uint32 row_step
uint8[] data
bool is_dense""" + TIME + """
================================================================================
MSG: sensor_msgs/PointField
uint8 INT8    = 1
uint8 UINT8   = 2
uint8 INT16   = 3
uint8 UINT16  = 4
uint8 INT32   = 5
uint8 UINT32  = 6
uint8 FLOAT32 = 7
uint8 FLOAT64 = 8
string name
uint32 offset
uint8 datatype
uint32 count"""

W, H, F = 64, 48, 58.0
CX, CY = (W - 1) / 2, (H - 1) / 2
FRAMES, HZ = 20, 15
T0 = 1_700_000_000 * 10**9  # log times in nanoseconds


def depth_frame(i):
    """Depth in metres: the wall at 3 m, the ball in front of it."""
    u, v = np.meshgrid(np.arange(W), np.arange(H))
    dx, dy = (u - CX) / F, (v - CY) / F
    depth = np.full((H, W), 3.0)
    centre = np.array([-0.9 + 1.8 * i / (FRAMES - 1), 0.1 * math.sin(i / 3), 2.0])
    d = np.stack([dx, dy, np.ones_like(dx)], -1)
    d /= np.linalg.norm(d, axis=-1, keepdims=True)
    b = d @ centre
    disc = b**2 - (centre @ centre - 0.35**2)
    hit = disc > 0
    t = b - np.sqrt(np.where(hit, disc, 0))
    depth = np.where(hit, t * d[..., 2], depth)
    depth[:4, :6] = 0.0  # a corner with no return
    return depth


def header(i, frame_id):
    ns = T0 + i * 10**9 // HZ
    return {"stamp": {"sec": ns // 10**9, "nanosec": ns % 10**9}, "frame_id": frame_id}, ns


def camera_info(frame_id, fx=F):
    return {
        "header": {"stamp": {"sec": T0 // 10**9, "nanosec": 0}, "frame_id": frame_id},
        "height": H, "width": W, "distortion_model": "plumb_bob", "d": [0.0] * 5,
        "k": [fx, 0, CX, 0, F, CY, 0, 0, 1], "r": [1, 0, 0, 0, 1, 0, 0, 0, 1],
        "p": [fx, 0, CX, 0, 0, F, CY, 0, 0, 0, 1, 0], "binning_x": 0, "binning_y": 0,
        "roi": {"x_offset": 0, "y_offset": 0, "height": 0, "width": 0, "do_rectify": False},
    }


def image_16uc1(i, frame_id):
    h, ns = header(i, frame_id)
    mm = np.round(depth_frame(i) * 1000).astype("<u2")
    return {"header": h, "height": H, "width": W, "encoding": "16UC1", "is_bigendian": 0,
            "step": W * 2, "data": mm.tobytes()}, ns


def write_16uc1(path, chunk_size=1 << 20, compression=CompressionType.ZSTD,
                frames=FRAMES, mutate=None, fx=F):
    f = open(path, "wb") if isinstance(path, str) else path
    with f:
        w = Writer(f, chunk_size=chunk_size, compression=compression)
        img = w.register_msgdef("sensor_msgs/msg/Image", IMAGE)
        info = w.register_msgdef("sensor_msgs/msg/CameraInfo", CAMERA_INFO)
        for i in range(frames):
            msg, ns = image_16uc1(i, "camera_depth_optical_frame")
            if mutate:
                mutate(i, msg)
            w.write_message("/camera/depth/camera_info", info,
                            camera_info("camera_depth_optical_frame", fx), log_time=ns,
                            publish_time=ns)
            w.write_message("/camera/depth/image_raw", img, msg, log_time=ns,
                            publish_time=ns, sequence=i)
        w.finish()


def write_32fc1(path):
    with open(path, "wb") as f:
        w = Writer(f, compression=CompressionType.NONE)
        img = w.register_msgdef("sensor_msgs/msg/Image", IMAGE)
        info = w.register_msgdef("sensor_msgs/msg/CameraInfo", CAMERA_INFO)
        w.write_message("/intrinsics", info, camera_info("depth_cam"), log_time=T0,
                        publish_time=T0)
        order = list(range(FRAMES))
        order[5], order[6] = order[6], order[5]
        for i in order:
            h, ns = header(i, "depth_cam")
            m = depth_frame(i).astype("<f4")
            m[m == 0] = np.nan
            msg = {"header": h, "height": H, "width": W, "encoding": "32FC1",
                   "is_bigendian": 0, "step": W * 4, "data": m.tobytes()}
            w.write_message("/depth", img, msg, log_time=ns, publish_time=ns, sequence=i)
        w.finish()


def write_points(path):
    dt = np.dtype([("x", ">f4"), ("y", ">f4"), ("z", ">f4"), ("pad", "V4"),
                   ("intensity", ">f4"), ("ring", ">u2"), ("pad2", "V2")])
    assert dt.itemsize == 24
    u, v = np.meshgrid(np.arange(W), np.arange(H))
    with open(path, "wb") as f:
        w = Writer(f)
        pc = w.register_msgdef("sensor_msgs/msg/PointCloud2", POINT_CLOUD2)
        for i in range(FRAMES):
            h, ns = header(i, "lidar")
            z = depth_frame(i)
            pts = np.zeros(H * W, dt)
            valid = (z > 0).ravel()
            pts["x"] = np.where(valid, ((u - CX) / F * z).ravel(), np.nan)
            pts["y"] = np.where(valid, ((v - CY) / F * z).ravel(), np.nan)
            pts["z"] = np.where(valid, z.ravel(), np.nan)
            pts["intensity"] = 1.0
            pts["ring"] = v.ravel()
            fields = [{"name": n, "offset": o, "datatype": 7, "count": 1}
                      for n, o in [("x", 0), ("y", 4), ("z", 8), ("intensity", 16)]]
            fields.append({"name": "ring", "offset": 20, "datatype": 4, "count": 1})
            msg = {"header": h, "height": 1, "width": H * W, "fields": fields,
                   "is_bigendian": True, "point_step": 24, "row_step": 24 * H * W,
                   "data": pts.tobytes(), "is_dense": False}
            w.write_message("/lidar/points", pc, msg, log_time=ns, publish_time=ns)
        w.finish()


def write_two_depth_topics(path):
    with open(path, "wb") as f:
        w = Writer(f)
        img = w.register_msgdef("sensor_msgs/msg/Image", IMAGE)
        info = w.register_msgdef("sensor_msgs/msg/CameraInfo", CAMERA_INFO)
        for cam in ["front", "rear"]:
            w.write_message(f"/{cam}/depth/camera_info", info, camera_info(cam),
                            log_time=T0, publish_time=T0)
        for i in range(FRAMES):
            for cam in ["front", "rear"]:
                msg, ns = image_16uc1(i, cam)
                w.write_message(f"/{cam}/depth/image_raw", img, msg, log_time=ns,
                                publish_time=ns)
        w.finish()


def write_unsupported(path):
    with open(path, "wb") as f:
        w = Writer(f)
        img = w.register_msgdef("sensor_msgs/msg/Image", IMAGE)
        info = w.register_msgdef("sensor_msgs/msg/CameraInfo", CAMERA_INFO)
        w.write_message("/camera/camera_info", info, camera_info("cam"), log_time=T0,
                        publish_time=T0)
        for i in range(3):
            h, ns = header(i, "cam")
            msg = {"header": h, "height": H, "width": W, "encoding": "rgb8",
                   "is_bigendian": 0, "step": W * 3, "data": bytes(W * H * 3)}
            w.write_message("/camera/image_raw", img, msg, log_time=ns, publish_time=ns)
        w.finish()


def write_bad_cdr_length(path):
    """Frame 2's serialized message is cut 100 bytes short: its data sequence claims
    more bytes than the message holds. Written through the raw mcap writer."""
    from mcap.writer import Writer as RawWriter
    from mcap_ros2._dynamic import serialize_dynamic

    encoders = serialize_dynamic("sensor_msgs/msg/Image", IMAGE)
    encode = encoders["sensor_msgs/msg/Image"]
    encoders_info = serialize_dynamic("sensor_msgs/msg/CameraInfo", CAMERA_INFO)
    with open(path, "wb") as f:
        w = RawWriter(f)
        w.start("ros2", "make_mcap_fixtures.py")
        img = w.register_schema("sensor_msgs/msg/Image", "ros2msg", IMAGE.encode())
        info = w.register_schema("sensor_msgs/msg/CameraInfo", "ros2msg",
                                 CAMERA_INFO.encode())
        ci = w.register_channel("/camera/depth/camera_info", "cdr", info)
        ch = w.register_channel("/camera/depth/image_raw", "cdr", img)
        w.add_message(ci, T0, encoders_info["sensor_msgs/msg/CameraInfo"](
            camera_info("cam")), T0)
        for i in range(FRAMES):
            msg, ns = image_16uc1(i, "cam")
            data = encode(msg)
            if i == 2:
                data = data[:-100]
            w.add_message(ch, ns, data, ns, sequence=i)
        w.finish()


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "tests",
                                                  "data", "mcap"))
    out = p.parse_args().out
    os.makedirs(out, exist_ok=True)
    path = lambda name: os.path.join(out, name)

    write_16uc1(path("depth_16uc1.mcap"))
    write_32fc1(path("depth_32fc1.mcap"))
    write_points(path("points_be_padded.mcap"))
    write_two_depth_topics(path("two_depth_topics.mcap"))
    write_unsupported(path("unsupported_encoding.mcap"))

    class Keep(io.BytesIO):
        def close(self):  # keep the bytes after the writer's `with` closes it
            self.data = self.getvalue()
            super().close()

    buf = Keep()
    write_16uc1(buf, chunk_size=4096, compression=CompressionType.NONE)
    data = buf.data
    with open(path("truncated.mcap"), "wb") as f:
        f.write(data[: int(len(data) * 0.6)])

    def short_data(i, msg):
        if i == 3:
            msg["data"] = msg["data"][: len(msg["data"]) - W * 2 * 5]

    write_16uc1(path("bad_image_size.mcap"), mutate=short_data)
    write_bad_cdr_length(path("bad_cdr_length.mcap"))
    write_16uc1(path("zero_focal.mcap"), frames=4, fx=0.0)
    for name in sorted(os.listdir(out)):
        print(f"{name:28s} {os.path.getsize(path(name)):7d} bytes")


if __name__ == "__main__":
    main()

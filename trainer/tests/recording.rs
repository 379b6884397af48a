//! ROS 2 recordings in: the MCAP files under tests/data/mcap (written by Python's `mcap`
//! and `mcap-ros2-support`, scripts/make_mcap_fixtures.py) replayed as point frames,
//! and every kind of bad input refused with the topic, message and problem named.

use std::path::PathBuf;

use edge4d_trainer::recording::{FrameSource, RecordedFrame, Replay, TopicChoice};

fn file(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/data/mcap")
        .join(name)
}

fn open(name: &str) -> Replay {
    Replay::open(&file(name), &TopicChoice::default()).unwrap_or_else(|e| panic!("{e}"))
}

fn all_frames(name: &str) -> Vec<RecordedFrame> {
    open(name)
        .frames()
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap_or_else(|e| panic!("{e}"))
}

/// The scene of make_mcap_fixtures.py: 64 × 48 pixels, fx = fy = 58, a wall at 3 m, a
/// ball of radius 0.35 m 2 m away, a 6 × 4 corner without return.
const W: usize = 64;
const H: usize = 48;
const T0: u64 = 1_700_000_000_000_000_000;

fn frame_time(i: u64) -> u64 {
    T0 + i * 1_000_000_000 / 15
}

fn check_scene(f: &RecordedFrame) {
    assert_eq!(
        f.points.len(),
        W * H - 24,
        "every pixel but the dark corner"
    );
    let wall = f
        .points
        .iter()
        .filter(|p| (p[2] - 3.0).abs() < 1e-3)
        .count();
    let ball = f.points.iter().filter(|p| p[2] < 2.0).count();
    assert!(wall > 2000 && ball > 50, "wall {wall} points, ball {ball}");
    // Back-projection: the pixel at the optical centre's column is x = 0.
    for p in &f.points {
        assert!(p[0].abs() <= 31.5 / 58.0 * p[2] + 1e-4 && p[1].abs() <= 23.5 / 58.0 * p[2] + 1e-4);
    }
}

#[test]
fn depth_16uc1_with_sibling_camera_info_replays_every_frame_in_order() {
    let replay = open("depth_16uc1.mcap");
    assert_eq!(
        replay.source(),
        &FrameSource::Depth {
            image_topic: "/camera/depth/image_raw".into(),
            camera_info_topic: "/camera/depth/camera_info".into(),
        }
    );
    let frames = all_frames("depth_16uc1.mcap");
    assert_eq!(frames.len(), 20);
    for (i, f) in frames.iter().enumerate() {
        assert_eq!(f.log_time_ns, frame_time(i as u64));
        assert_eq!(f.index, i);
        assert_eq!(f.frame_id, "camera_depth_optical_frame");
        check_scene(f);
    }
}

#[test]
fn depth_32fc1_matches_16uc1_and_comes_out_in_log_time_order() {
    let replay = open("depth_32fc1.mcap");
    assert_eq!(
        replay.source(),
        &FrameSource::Depth {
            image_topic: "/depth".into(),
            camera_info_topic: "/intrinsics".into(),
        },
        "CameraInfo matched by frame_id"
    );
    let metres = all_frames("depth_32fc1.mcap");
    let millimetres = all_frames("depth_16uc1.mcap");
    assert_eq!(metres.len(), 20);
    let times: Vec<u64> = metres.iter().map(|f| f.log_time_ns).collect();
    let want: Vec<u64> = (0..20).map(frame_time).collect();
    assert_eq!(times, want, "frames 5 and 6 are stored swapped");
    // Frames 5 and 6 were the 7th and 6th messages on the topic.
    assert_eq!((metres[5].index, metres[6].index), (6, 5));
    for (a, b) in metres.iter().zip(&millimetres) {
        check_scene(a);
        for (p, q) in a.points.iter().zip(&b.points) {
            for k in 0..3 {
                // 16UC1 rounds depth to the millimetre.
                assert!((p[k] - q[k]).abs() <= 0.0006, "{p:?} vs {q:?}");
            }
        }
    }
}

#[test]
fn big_endian_point_clouds_with_padding_match_the_depth_images() {
    let replay = open("points_be_padded.mcap");
    assert_eq!(
        replay.source(),
        &FrameSource::Points {
            topic: "/lidar/points".into()
        }
    );
    let clouds = all_frames("points_be_padded.mcap");
    let depth = all_frames("depth_32fc1.mcap");
    assert_eq!(clouds.len(), 20);
    for (a, b) in clouds.iter().zip(&depth) {
        assert_eq!(a.log_time_ns, b.log_time_ns);
        // NaN points (the dark corner) are dropped.
        assert_eq!(a.points.len(), b.points.len());
        for (p, q) in a.points.iter().zip(&b.points) {
            for k in 0..3 {
                assert!((p[k] - q[k]).abs() <= 1e-5 * q[2].abs(), "{p:?} vs {q:?}");
            }
        }
    }
}

fn open_err(name: &str, choice: &TopicChoice) -> String {
    match Replay::open(&file(name), choice) {
        Ok(_) => panic!("{name} opened"),
        Err(e) => e.to_string(),
    }
}

/// Opens `name`, replays it and returns the frames before the error and the error.
fn replay_err(name: &str) -> (usize, String) {
    let replay = open(name);
    let mut n = 0;
    for f in replay.frames().unwrap() {
        match f {
            Ok(_) => n += 1,
            Err(e) => return (n, e.to_string()),
        }
    }
    panic!("{name} replayed without an error");
}

#[test]
fn choosing_among_topics_lists_them() {
    let e = open_err("two_depth_topics.mcap", &TopicChoice::default());
    assert!(
        e.contains("2 depth image topics") && e.contains("--depth-topic"),
        "{e}"
    );
    assert!(
        e.contains("/front/depth/image_raw") && e.contains("/rear/depth/image_raw"),
        "{e}"
    );
    let rear = Replay::open(
        &file("two_depth_topics.mcap"),
        &TopicChoice {
            depth_topic: Some("/rear/depth/image_raw".into()),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(
        rear.source(),
        &FrameSource::Depth {
            image_topic: "/rear/depth/image_raw".into(),
            camera_info_topic: "/rear/depth/camera_info".into(),
        }
    );
    let missing = TopicChoice {
        depth_topic: Some("/kinect/depth".into()),
        ..Default::default()
    };
    let e = open_err("depth_16uc1.mcap", &missing);
    assert!(e.contains("/kinect/depth: no such topic"), "{e}");
    assert!(
        e.contains(
            "/camera/depth/image_raw (sensor_msgs/msg/Image, cdr, 20 messages, encoding 16UC1"
        ),
        "{e}"
    );
    assert!(
        e.contains("/camera/depth/camera_info (sensor_msgs/msg/CameraInfo"),
        "{e}"
    );
    let wrong_type = TopicChoice {
        points_topic: Some("/camera/depth/image_raw".into()),
        ..Default::default()
    };
    let e = open_err("depth_16uc1.mcap", &wrong_type);
    assert!(
        e.contains("carries \"sensor_msgs/msg/Image\", not sensor_msgs/msg/PointCloud2"),
        "{e}"
    );
}

#[test]
fn an_unsupported_image_encoding_is_named() {
    let e = open_err("unsupported_encoding.mcap", &TopicChoice::default());
    assert!(e.contains("/camera/image_raw has encoding \"rgb8\""), "{e}");
    assert!(e.contains("16UC1") && e.contains("32FC1"), "{e}");
    // Asked for by name, it fails on its first message.
    let replay = Replay::open(
        &file("unsupported_encoding.mcap"),
        &TopicChoice {
            depth_topic: Some("/camera/image_raw".into()),
            ..Default::default()
        },
    )
    .unwrap();
    let first = replay
        .frames()
        .unwrap()
        .next()
        .unwrap()
        .unwrap_err()
        .to_string();
    assert!(
        first.contains("topic /camera/image_raw message 0") && first.contains("\"rgb8\""),
        "{first}"
    );
}

#[test]
fn a_truncated_recording_streams_the_frames_before_the_cut_then_fails() {
    let (n, e) = replay_err("truncated.mcap");
    assert!((5..20).contains(&n), "{n} frames before the cut");
    assert!(
        e.contains("breaks off after") && e.contains("truncated.mcap"),
        "{e}"
    );
}

#[test]
fn bad_messages_are_refused_with_topic_index_and_problem() {
    let (n, e) = replay_err("bad_image_size.mcap");
    assert_eq!(n, 3);
    assert!(
        e.contains("topic /camera/depth/image_raw message 3")
            && e.contains("needs 6144 bytes, its data has 5504"),
        "{e}"
    );
    let (n, e) = replay_err("bad_cdr_length.mcap");
    assert_eq!(n, 2);
    assert!(
        e.contains("topic /camera/depth/image_raw message 2")
            && e.contains("not a valid CDR message"),
        "{e}"
    );
    let (n, e) = replay_err("zero_focal.mcap");
    assert_eq!(n, 0);
    assert!(
        e.contains("topic /camera/depth/camera_info message 0") && e.contains("fx = 0"),
        "{e}"
    );
}

#[test]
fn empty_and_foreign_files_are_not_recordings() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.mcap");
    std::fs::write(&empty, b"").unwrap();
    let e = Replay::open(&empty, &TopicChoice::default())
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("empty.mcap") && e.contains("empty file"), "{e}");
    let png = dir.path().join("frame.mcap");
    std::fs::write(&png, b"\x89PNG\r\n\x1a\nnot a recording at all").unwrap();
    let e = Replay::open(&png, &TopicChoice::default())
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains("frame.mcap") && e.contains("not an MCAP file"),
        "{e}"
    );
    let missing = dir.path().join("nope.mcap");
    let e = Replay::open(&missing, &TopicChoice::default())
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("nope.mcap") && e.contains("cannot open"), "{e}");
}

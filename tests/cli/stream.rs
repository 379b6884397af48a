//! `edge4d stream` (the stream_depth job) end to end with the bundled model: a short
//! humanoid performance, and a folder of real-format 16-bit PNG depth frames with
//! intrinsics and labels, rendered to PNG snapshots.

use edge4d_trainer::depth_io::write_depth_png;
use edge4d_trainer::humanoid::generate::{Assets, GenConfig, Split, View};
use edge4d_trainer::humanoid::sequence::perform;
use edge4d_trainer::rng::SplitMix64;

fn edge4d(args: &[&str]) -> (bool, String, String) {
    crate::common::edge4d_split(args, &[], &[])
}

#[test]
fn stream_prints_a_line_per_frame_and_a_summary() {
    let (ok, out, err) = edge4d(&["stream", "--actions", "1", "--frames-per-action", "18"]);
    assert!(ok, "{out}\n{err}");
    assert_eq!(out.matches("(filling the window)").count(), 15, "{out}");
    assert_eq!(out.matches(" pred ").count(), 3, "{out}");
    assert!(out.contains("tube features computed 2/8"), "{out}");
    assert!(out.contains("frames predicted       3"), "{out}");
    assert!(out.contains("latency p50 / p95 / max"), "{out}");
}

#[test]
fn stream_reads_png_depth_frames_with_labels_and_renders_snapshots() {
    let dir = tempfile::tempdir().unwrap();
    let frames = dir.path().join("frames");
    std::fs::create_dir_all(&frames).unwrap();
    let assets = Assets::bundled().unwrap();
    let cfg = GenConfig::default();
    let mut rng = SplitMix64::new(5);
    let view = View::sample(Split::Test, &assets.motions[0], &mut rng);
    let mut labels = String::new();
    perform(&assets, &[2], 17, &view, &cfg, &mut rng, |i, depth, _| {
        let path = frames.join(format!("{i:04}.png"));
        write_depth_png(&path, cfg.intrinsics.width, cfg.intrinsics.height, &depth)?;
        labels.push_str("jump\n");
        Ok(())
    })
    .unwrap();
    std::fs::write(frames.join("labels.txt"), labels).unwrap();
    cfg.intrinsics
        .depth_intrinsics()
        .save(&frames.join("intrinsics.json"))
        .unwrap();
    let render = dir.path().join("render");
    let (ok, out, err) = edge4d(&[
        "stream",
        "--depth-dir",
        frames.to_str().unwrap(),
        "--render",
        render.to_str().unwrap(),
    ]);
    assert!(ok, "{out}\n{err}");
    assert_eq!(out.matches("true jump").count(), 17, "{out}");
    assert!(out.contains("frames predicted       2"), "{out}");
    let pngs = std::fs::read_dir(&render).unwrap().count();
    assert_eq!(pngs, 2, "a snapshot per predicted frame");

    // A label beyond the model's classes, or text that names no action, is refused
    // with its line; so is a folder shorter than the window.
    let good_labels = std::fs::read_to_string(frames.join("labels.txt")).unwrap();
    std::fs::write(
        frames.join("labels.txt"),
        good_labels.replacen("jump", "99", 1),
    )
    .unwrap();
    let (ok, _, err) = edge4d(&["stream", "--depth-dir", frames.to_str().unwrap()]);
    assert!(!ok);
    assert!(
        err.contains("line 1: class 99 is beyond the model's 15 classes"),
        "{err}"
    );
    std::fs::write(
        frames.join("labels.txt"),
        good_labels.replacen("jump", "jumpp", 1),
    )
    .unwrap();
    let (ok, _, err) = edge4d(&["stream", "--depth-dir", frames.to_str().unwrap()]);
    assert!(!ok);
    assert!(err.contains("line 1: \"jumpp\""), "{err}");
    std::fs::write(frames.join("labels.txt"), &good_labels).unwrap();
    let short = dir.path().join("short");
    std::fs::create_dir_all(&short).unwrap();
    for name in ["0000.png", "0001.png", "intrinsics.json"] {
        std::fs::copy(frames.join(name), short.join(name)).unwrap();
    }
    let (ok, out, err) = edge4d(&["stream", "--depth-dir", short.to_str().unwrap()]);
    assert!(!ok, "{out}");
    assert!(
        err.contains("2 depth frames, fewer than the window of 16"),
        "{err}"
    );
    assert!(!out.contains("NaN") && !out.contains("inf"), "{out}");

    // A folder without intrinsics is an error that names the file.
    std::fs::remove_file(frames.join("intrinsics.json")).unwrap();
    let (ok, _, err) = edge4d(&["stream", "--depth-dir", frames.to_str().unwrap()]);
    assert!(!ok);
    assert!(err.contains("intrinsics.json"), "{err}");
}

#[test]
fn a_stream_compiles_its_pipelines_when_it_opens_and_keeps_them_for_the_next_process() {
    let cache = tempfile::tempdir().unwrap();
    let dir = cache.path().to_str().unwrap();
    let (ok, out, err) =
        crate::common::edge4d_split(&["bench", "first-frame"], &[("EDGE4D_CACHE_DIR", dir)], &[]);
    assert!(ok, "{out}\n{err}");
    let report: serde_json::Value = serde_json::from_str(out.lines().last().unwrap()).unwrap();
    let number = |k: &str| {
        report[k]
            .as_f64()
            .unwrap_or_else(|| panic!("{k}: {report}"))
    };
    assert!(number("first_frame_ms") >= number("open_ms"), "{report}");
    if report["backend"] == "cpu" {
        // Native kernels need no compiling: no warm-up, no pipeline cache.
        assert_eq!(number("warm_up_ms"), 0.0, "{report}");
        return;
    }
    // Every pipeline a prediction needs was compiled by the stream's constructor.
    assert!(number("pipelines_compiled_at_open") > 0.0, "{report}");
    assert_eq!(number("pipelines_compiled_by_frames"), 0.0, "{report}");
    let files: Vec<_> = std::fs::read_dir(cache.path().join("pipelines"))
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    if report["backend"] == "vulkan" {
        assert_eq!(
            files.len(),
            1,
            "one pipeline cache file per adapter: {files:?}"
        );
        let name = files[0].to_string_lossy().to_string();
        assert!(name.starts_with("wgpu_pipeline_cache_vulkan_"), "{name}");
    } else {
        assert!(
            files.is_empty(),
            "{} keeps no pipeline cache: {files:?}",
            report["backend"]
        );
    }
}

#[test]
fn a_tum_rgbd_folder_streams_like_the_same_frames_in_a_png_folder() {
    let dir = tempfile::tempdir().unwrap();
    let (plain, tum) = (dir.path().join("plain"), dir.path().join("tum"));
    std::fs::create_dir_all(tum.join("depth")).unwrap();
    std::fs::create_dir_all(&plain).unwrap();
    let assets = Assets::bundled().unwrap();
    let cfg = GenConfig::default();
    let mut rng = SplitMix64::new(9);
    let view = View::sample(Split::Test, &assets.motions[0], &mut rng);
    // TUM stores 5000 units per metre, written in time order in depth.txt (here
    // deliberately not in file-name order).
    let mut list = String::from("# depth maps\n# timestamp filename\n");
    let (w, h) = (cfg.intrinsics.width, cfg.intrinsics.height);
    perform(&assets, &[4], 17, &view, &cfg, &mut rng, |i, depth, _| {
        write_depth_png(&plain.join(format!("{i:04}.png")), w, h, &depth)?;
        let tum_depth: Vec<u16> = depth.iter().map(|&mm| mm * 5).collect();
        let name = format!("depth/{}.png", 900 - i);
        write_depth_png(&tum.join(&name), w, h, &tum_depth)?;
        list.push_str(&format!("{:.6} {name}\n", 1305031102.0 + i as f64 / 30.0));
        Ok(())
    })
    .unwrap();
    std::fs::write(tum.join("depth.txt"), list).unwrap();
    let mm = cfg.intrinsics.depth_intrinsics();
    mm.save(&plain.join("intrinsics.json")).unwrap();
    let mut units = mm.clone();
    units.depth_scale = 1.0 / 5000.0;
    units.save(&tum.join("intrinsics.json")).unwrap();
    let predictions = |folder: &std::path::Path| {
        let (ok, out, err) = edge4d(&["stream", "--depth-dir", folder.to_str().unwrap()]);
        assert!(ok, "{out}\n{err}");
        out.lines()
            .filter(|l| l.contains(" pred "))
            .map(|l| l.split(" p=").next().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    let from_png = predictions(&plain);
    assert_eq!(from_png.len(), 2);
    assert_eq!(predictions(&tum), from_png);

    // The same folder as training data, labelled in absolute times (TUM's stamps):
    // frames 0–7 wave, 8–16 walk; clips of 4 frames every 4.
    let labels = dir.path().join("labels.csv");
    std::fs::write(
        &labels,
        "1305031102.0,1305031102.25,wave\n1305031102.25,1305031103,walk\n",
    )
    .unwrap();
    let out = dir.path().join("tum.safetensors");
    let (ok, stdout, err) = edge4d(&[
        "data",
        "tum",
        "--dir",
        tum.to_str().unwrap(),
        "--labels",
        labels.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--frames",
        "4",
        "--stride",
        "4",
        "--points",
        "32",
    ]);
    assert!(ok, "{stdout}\n{err}");
    assert!(
        stdout.contains("17 frames read (17 labelled, 0 without a valid point); 4 clips"),
        "{stdout}"
    );
    let data = edge4d_trainer::dataset::ClipDataset::load(&out).unwrap();
    assert_eq!(data.clips_shape, [4, 4, 32, 3]);
    assert_eq!(
        data.labels,
        edge4d_trainer::dataset::Labels::PerClip(vec![1, 1, 0, 0])
    );
}

fn recording(name: &str) -> String {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/mcap")
        .join(name)
        .display()
        .to_string()
}

/// The messages of an MCAP file: (topic, schema name, log time, JSON payload).
fn read_mcap(path: &std::path::Path) -> Vec<(String, String, u64, serde_json::Value)> {
    let file = std::io::BufReader::new(std::fs::File::open(path).unwrap());
    mcap::io::MessageReader::new(file)
        .map(|m| {
            let m = m.unwrap();
            let schema = m.channel.schema.as_ref().unwrap().name.clone();
            assert_eq!(m.channel.message_encoding, "json");
            let json = serde_json::from_slice(&m.data).unwrap();
            (m.channel.topic.clone(), schema, m.log_time, json)
        })
        .collect()
}

#[test]
fn a_ros2_recording_replays_and_its_predictions_are_recorded_for_foxglove() {
    let dir = tempfile::tempdir().unwrap();
    let out_path = dir.path().join("seen.mcap");
    let (ok, out, err) = edge4d(&[
        "stream",
        "--mcap",
        &recording("depth_16uc1.mcap"),
        "--record",
        out_path.to_str().unwrap(),
    ]);
    assert!(ok, "{out}\n{err}");
    assert!(
        out.contains(
            "depth images /camera/depth/image_raw with intrinsics from /camera/depth/camera_info"
        ),
        "{out}"
    );
    assert_eq!(out.matches("(filling the window)").count(), 15, "{out}");
    assert_eq!(out.matches(" pred ").count(), 5, "{out}");
    assert!(out.contains("recorded the predictions to"), "{out}");
    let messages = read_mcap(&out_path);
    assert_eq!(
        messages.len(),
        10,
        "a cloud and a prediction per predicted frame"
    );
    let t0 = 1_700_000_000_000_000_000u64;
    for (k, pair) in messages.chunks(2).enumerate() {
        let frame = 15 + k as u64;
        let time = t0 + frame * 1_000_000_000 / 15;
        let (topic, schema, log_time, cloud) = &pair[0];
        assert_eq!(
            (topic.as_str(), schema.as_str()),
            ("/edge4d/points", "foxglove.PointCloud")
        );
        assert_eq!(*log_time, time, "stamped like the input");
        assert_eq!(cloud["timestamp"]["sec"], time / 1_000_000_000);
        assert_eq!(cloud["frame_id"], "camera_depth_optical_frame");
        assert_eq!(cloud["point_stride"], 16);
        use base64::Engine;
        let data = base64::engine::general_purpose::STANDARD
            .decode(cloud["data"].as_str().unwrap())
            .unwrap();
        assert_eq!(
            data.len(),
            (64 * 48 - 24) * 16,
            "every valid pixel, 16 bytes each"
        );
        let z = f32::from_le_bytes(data[8..12].try_into().unwrap());
        assert!((1.6..=3.001).contains(&z), "z of the first point: {z}");
        let (topic, schema, log_time, pred) = &pair[1];
        assert_eq!(
            (topic.as_str(), schema.as_str()),
            ("/edge4d/prediction", "edge4d.Prediction")
        );
        assert_eq!(*log_time, time);
        assert_eq!(pred["frame"], frame);
        let probs: Vec<f64> = pred["probabilities"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p.as_f64().unwrap())
            .collect();
        assert_eq!(probs.len(), 15);
        assert!((probs.iter().sum::<f64>() - 1.0).abs() < 1e-4);
        let class = pred["class"].as_u64().unwrap() as usize;
        assert_eq!(pred["confidence"].as_f64().unwrap(), probs[class]);
        assert!(pred["class_name"].as_str().unwrap().len() > 2);
        // Colour of the predicted class on every point.
        let rgb = edge4d_trainer::render::class_colour(class);
        assert_eq!(&data[12..16], &[rgb[0], rgb[1], rgb[2], 255]);
    }
    python_reads_it_back(&out_path, 5);
}

/// The recording read by Python's reference `mcap` reader: schemas, encodings and
/// message counts. scripts/test.sh provides a Python with `mcap` (EDGE4D_PYTHON) and
/// sets EDGE4D_REQUIRE_PYTHON_MCAP; elsewhere a Python without it skips this check.
fn python_reads_it_back(path: &std::path::Path, predicted: usize) {
    let python = std::env::var("EDGE4D_PYTHON").unwrap_or_else(|_| "python3".into());
    let script = r#"
import sys, collections, json
from mcap.reader import make_reader
with open(sys.argv[1], "rb") as f:
    reader = make_reader(f)
    summary = reader.get_summary()
    counts = collections.Counter()
    for schema, channel, message in reader.iter_messages():
        json.loads(message.data)
        counts[(channel.topic, schema.name, schema.encoding, channel.message_encoding)] += 1
    for k, n in sorted(counts.items()):
        print(*k, n)
    print("summary", summary.statistics.message_count)
"#;
    let out = std::process::Command::new(&python)
        .args(["-c", script, path.to_str().unwrap()])
        .output();
    let required = std::env::var_os("EDGE4D_REQUIRE_PYTHON_MCAP").is_some();
    let out = match out {
        Ok(o) if o.status.success() => String::from_utf8(o.stdout).unwrap(),
        Ok(o) if !required => {
            eprintln!(
                "skipping the Python mcap check: {}",
                String::from_utf8_lossy(&o.stderr)
            );
            return;
        }
        Err(e) if !required => {
            eprintln!("skipping the Python mcap check: {python}: {e}");
            return;
        }
        Ok(o) => panic!("{python}: {}", String::from_utf8_lossy(&o.stderr)),
        Err(e) => panic!("{python}: {e}"),
    };
    assert_eq!(
        out,
        format!(
            "/edge4d/points foxglove.PointCloud jsonschema json {predicted}\n/edge4d/prediction edge4d.Prediction jsonschema json {predicted}\nsummary {}\n",
            2 * predicted
        )
    );
}

#[test]
fn a_cut_recording_streams_up_to_the_cut_and_fails_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let kept = dir.path().join("kept.mcap");
    let (ok, out, err) = edge4d(&[
        "stream",
        "--mcap",
        &recording("truncated.mcap"),
        "--record",
        kept.to_str().unwrap(),
    ]);
    assert!(!ok, "{out}");
    assert!(out.contains("frame   11"), "{out}");
    // 12 frames before the cut fill no 16-frame window: a valid, empty recording.
    let predicted = out.matches(" pred ").count();
    assert_eq!(
        read_mcap(&kept).len(),
        2 * predicted,
        "the frames before the cut are recorded"
    );
    assert!(out.contains("(up to the error)"), "{out}");
    assert!(
        err.contains("truncated.mcap") && err.contains("breaks off after"),
        "{err}"
    );
    let (ok, out, err) = edge4d(&["stream", "--mcap", &recording("bad_image_size.mcap")]);
    assert!(!ok, "{out}");
    assert!(
        err.contains("topic /camera/depth/image_raw message 3") && err.contains("needs 6144 bytes"),
        "{err}"
    );
    let (ok, _, err) = edge4d(&["stream", "--mcap", &recording("two_depth_topics.mcap")]);
    assert!(!ok);
    assert!(
        err.contains("/front/depth/image_raw") && err.contains("--depth-topic"),
        "{err}"
    );
}

#[test]
fn the_virtual_humanoid_is_recorded_too() {
    let dir = tempfile::tempdir().unwrap();
    let out_path = dir.path().join("humanoid.mcap");
    let (ok, out, err) = edge4d(&[
        "stream",
        "--actions",
        "1",
        "--frames-per-action",
        "17",
        "--record",
        out_path.to_str().unwrap(),
    ]);
    assert!(ok, "{out}\n{err}");
    let messages = read_mcap(&out_path);
    assert_eq!(messages.len(), 4);
    assert_eq!(messages[0].2, 15 * 1_000_000_000 / 15);
    assert_eq!(messages[3].3["frame"], 16);
    assert!(messages[3].3["truth_name"].is_string());
}

#[test]
fn a_labelled_recording_becomes_a_training_dataset() {
    let dir = tempfile::tempdir().unwrap();
    let labels = dir.path().join("labels.csv");
    // 20 frames at 15 Hz: frames 0–9 (up to 0.6 s) wave, 10–19 (from 0.67 s) walk.
    std::fs::write(&labels, "start,end,action\n0,0.63,wave\n0.63,2,walk\n").unwrap();
    let out = dir.path().join("recorded.safetensors");
    let args = |per_frame: bool| {
        let mut a = vec![
            "data",
            "mcap",
            "--mcap",
            "",
            "--labels",
            labels.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--frames",
            "4",
            "--stride",
            "2",
            "--points",
            "64",
        ];
        if per_frame {
            a.push("--per-frame");
        }
        a
    };
    let depth = recording("depth_16uc1.mcap");
    let mut a = args(false);
    a[3] = &depth;
    let (ok, stdout, err) = edge4d(&a);
    assert!(ok, "{stdout}\n{err}");
    assert!(
        stdout.contains("20 frames read (20 labelled, 0 without a valid point); 9 clips"),
        "{stdout}"
    );
    let data = edge4d_trainer::dataset::ClipDataset::load(&out).unwrap();
    assert_eq!(data.clips_shape, [9, 4, 64, 3]);
    // Clips start at frames 0, 2, …, 16 and end at 3, 5, …, 19: the last frame's action.
    let want = vec![1, 1, 1, 1, 0, 0, 0, 0, 0];
    assert_eq!(data.labels, edge4d_trainer::dataset::Labels::PerClip(want));
    let classes =
        std::fs::read_to_string(dir.path().join("recorded.safetensors.classes.txt")).unwrap();
    assert_eq!(classes, "walk\nwave\n");
    // Model units: the wall 3 m away is 10 units (millimetres / 300).
    let z_max = data.clips.chunks(3).map(|p| p[2]).fold(0.0f32, f32::max);
    assert!((z_max - 10.0).abs() < 0.01, "{z_max}");

    let mut a = args(true);
    a[3] = &depth;
    let (ok, stdout, err) = edge4d(&a);
    assert!(ok, "{stdout}\n{err}");
    let data = edge4d_trainer::dataset::ClipDataset::load(&out).unwrap();
    let edge4d_trainer::dataset::Labels::PerFrame(per_frame) = data.labels else {
        panic!("per-frame labels")
    };
    // The clip starting at frame 8: frames 8, 9 wave (1), 10, 11 walk (0).
    assert_eq!(&per_frame[4 * 4..5 * 4], &[1, 1, 0, 0]);

    std::fs::write(&labels, "0,0.3,wave\n0.5,x,walk\n").unwrap();
    let mut a = args(false);
    a[3] = &depth;
    let (ok, _, err) = edge4d(&a);
    assert!(!ok);
    assert!(
        err.contains("labels.csv") && err.contains("line 2"),
        "{err}"
    );
}

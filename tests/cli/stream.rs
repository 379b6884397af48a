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
}

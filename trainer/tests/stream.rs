//! Live action streams on the device: depth frames of a humanoid performance in,
//! predictions out; the streamed prediction equals the model's forward on the same
//! resampled window; fine-tuning drops cached features; bad frames are errors.

use edge4d_runtime::models::{P4Transformer, P4TransformerConfig, ParamStore};
use edge4d_runtime::Device;
use edge4d_trainer::depth_io::DepthIntrinsics;
use edge4d_trainer::humanoid::generate::{Assets, GenConfig, Split, View};
use edge4d_trainer::humanoid::sequence::perform;
use edge4d_trainer::rng::SplitMix64;
use edge4d_trainer::stream::{ActionStream, StreamOptions};

const CONFIG: &str = r#"
model = "p4transformer-msr"
radius = 0.7
nsamples = 8
spatial_stride = 16
temporal_kernel_size = 3
temporal_stride = 2
dim = 16
depth = 1
heads = 2
dim_head = 8
mlp_dim = 32
num_classes = 15
"#;

fn dev() -> &'static Device {
    static DEV: std::sync::OnceLock<Device> = std::sync::OnceLock::new();
    DEV.get_or_init(|| Device::from_env().expect("a GPU adapter"))
}

fn stream(reuse: bool) -> ActionStream {
    let model = P4Transformer::new(P4TransformerConfig::parse(CONFIG, "test").unwrap()).unwrap();
    let params = ParamStore::init(dev(), model.spec(), 11).unwrap();
    ActionStream::new(
        dev(),
        model,
        params,
        StreamOptions {
            window: 8,
            points: 128,
            reuse,
            ..StreamOptions::default()
        },
    )
    .unwrap()
}

/// Depth frames (MSR-Action3D's camera) of two actions, 8 frames each.
fn performance() -> (Vec<Vec<u16>>, Vec<usize>, DepthIntrinsics) {
    let assets = Assets::bundled().unwrap();
    let cfg = GenConfig::default();
    let mut rng = SplitMix64::new(3);
    let view = View::sample(Split::Test, &assets.motions[0], &mut rng);
    let (mut frames, mut labels) = (vec![], vec![]);
    perform(&assets, &[1, 4], 8, &view, &cfg, &mut rng, |_, d, a| {
        frames.push(d);
        labels.push(a);
        Ok(())
    })
    .unwrap();
    let k = cfg.intrinsics.depth_intrinsics();
    (frames, labels, k)
}

#[test]
fn reused_and_recomputed_streams_predict_the_same_and_fine_tuning_refreshes_the_cache() {
    let (frames, labels, k) = performance();
    assert_eq!(labels, [vec![1; 8], vec![4; 8]].concat());
    let (mut a, mut b) = (stream(true), stream(false));
    for (t, (d, &l)) in frames.iter().zip(&labels).enumerate() {
        let pa = a.push_depth(d, &k).unwrap().cloned();
        let pb = b.push_depth(d, &k).unwrap().cloned();
        assert_eq!(pa, pb, "frame {t}");
        assert_eq!(pa.is_some(), t >= 7, "frame {t}");
        a.label_latest(l as u32).unwrap();
    }
    assert!(a.tube_features_computed() < a.tube_features_per_window());
    // Only the windows of one action: frames 0–7 and frames 8–15.
    assert_eq!(a.labelled_windows(), 2);
    let before = a.latest().unwrap().probabilities.clone();
    let loss = a.finetune(2, 4).unwrap();
    assert!(loss.is_finite() && loss > 0.0);
    // After the update, the streamed prediction for the next frame must use the new
    // weights everywhere: it equals a fresh stream with those weights.
    let tuned = tempfile::tempdir().unwrap();
    let path = tuned.path().join("w.safetensors");
    a.save(&path).unwrap();
    let model = P4Transformer::new(P4TransformerConfig::parse(CONFIG, "test").unwrap()).unwrap();
    let file = edge4d_runtime::TensorFile::open(&path).unwrap();
    let params = ParamStore::load(dev(), model.spec(), &file, "", false).unwrap();
    let mut fresh = ActionStream::new(
        dev(),
        model,
        params,
        StreamOptions {
            window: 8,
            points: 128,
            ..StreamOptions::default()
        },
    )
    .unwrap();
    // The same resampling stream: replay every frame through the fresh stream.
    for d in &frames {
        fresh.push_depth(d, &k).unwrap();
    }
    let next = &frames[3];
    let pa = a.push_depth(next, &k).unwrap().cloned().unwrap();
    let pf = fresh.push_depth(next, &k).unwrap().cloned().unwrap();
    assert_eq!(pa.probabilities, pf.probabilities);
    assert_ne!(before, pa.probabilities);
}

#[test]
fn bad_frames_and_labels_are_errors() {
    let (frames, _, k) = performance();
    let mut s = stream(true);
    let err = s.push_depth(&frames[0][1..], &k).unwrap_err().to_string();
    assert!(err.contains("19199 pixels"), "{err}");
    let zero = vec![0u16; k.width * k.height];
    let err = s.push_depth(&zero, &k).unwrap_err().to_string();
    assert!(err.contains("all zero"), "{err}");
    let err = s.push_points(&[0.0, 0.0]).unwrap_err().to_string();
    assert!(err.contains("multiple of 3"), "{err}");
    let err = s.label_latest(3).unwrap_err().to_string();
    assert!(err.contains("push a frame first"), "{err}");
    s.push_depth(&frames[0], &k).unwrap();
    let err = s.label_latest(15).unwrap_err().to_string();
    assert!(err.contains("out of range for 15 classes"), "{err}");
    let err = s.finetune(1, 2).unwrap_err().to_string();
    assert!(err.contains("no labelled window"), "{err}");
}

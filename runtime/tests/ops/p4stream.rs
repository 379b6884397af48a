//! Streaming inference: the logits of every window, computed with cached tube features,
//! equal a full forward of the same window bit for bit, and a steady stream computes
//! only the tube features whose frames changed.

use edge4d_runtime::models::{P4Stream, P4Transformer, P4TransformerConfig, ParamStore};

use super::common::{dev, Rng};

fn model(toml: &str) -> (P4Transformer, ParamStore) {
    let cfg = P4TransformerConfig::parse(toml, "test").unwrap();
    let model = P4Transformer::new(cfg).unwrap();
    let params = ParamStore::init(dev(), model.spec(), 5).unwrap();
    (model, params)
}

const COMMON: &str = r#"
radius = 0.5
nsamples = 4
spatial_stride = 4
temporal_kernel_size = 3
temporal_stride = 2
dim = 8
depth = 1
heads = 2
dim_head = 4
mlp_dim = 16
num_classes = 5
"#;

fn stream_matches_full_window(toml: &str, window: usize, expect_computed: usize) {
    let (model, params) = model(toml);
    let points = 16;
    let mut rng = Rng::new(17);
    let frames: Vec<Vec<f32>> = (0..window + 6).map(|_| rng.vec(points * 3)).collect();
    for reuse in [true, false] {
        let mut stream = P4Stream::new(dev(), &model, window, points, reuse).unwrap();
        for (t, frame) in frames.iter().enumerate() {
            stream.push(dev(), frame).unwrap();
            if !stream.ready() {
                continue;
            }
            let streamed = dev()
                .run(|s| stream.forward(s, &model, &params))
                .and_then(|l| dev().read(&l))
                .unwrap();
            let clip: Vec<f32> = frames[t + 1 - window..=t].concat();
            let clip = dev().upload(&clip, &[1, window, points, 3]).unwrap();
            let full = dev()
                .run(|s| Ok(model.forward(s, &params, &clip)?.logits))
                .and_then(|l| dev().read(&l))
                .unwrap();
            assert_eq!(streamed, full, "frame {t}, reuse {reuse}");
            let frames_out = model.tube.frames_out(window).unwrap();
            // With stride 2 a window shares its anchor frames with the window two
            // frames before it, so the first two windows compute everything.
            let expected = if !reuse || t <= window {
                frames_out
            } else {
                expect_computed
            };
            assert_eq!(stream.computed_last(), expected, "frame {t}, reuse {reuse}");
        }
    }
}

#[test]
fn streamed_clip_logits_equal_full_recomputation() {
    // Replicate padding [1, 0], stride 2: per new frame, the new last window and the
    // first window (whose left neighbour became padding) are computed.
    stream_matches_full_window(&format!("model = \"p4transformer-msr\"\n{COMMON}"), 8, 2);
}

#[test]
fn streamed_frame_logits_equal_full_recomputation_with_zero_padding() {
    // Zero padding [1, 1]: the first window (its left neighbour is now the zero frame),
    // the one before the last (its right neighbour is now a real frame) and the new last
    // one are computed.
    let toml = format!(
        "model = \"p4transformer-actionseg\"\ntemporal_padding = [1, 1]\ntemporal_padding_mode = \"zeros\"\n{COMMON}"
    );
    stream_matches_full_window(&toml, 7, 3);
}

#[test]
fn stream_rejects_frames_of_the_wrong_size_and_early_forward() {
    let (model, params) = model(&format!("model = \"p4transformer-msr\"\n{COMMON}"));
    let mut stream = P4Stream::new(dev(), &model, 8, 16, true).unwrap();
    let err = stream.push(dev(), &[0.0; 15]).unwrap_err().to_string();
    assert!(err.contains("16 points"), "{err}");
    let err = dev()
        .run(|s| stream.forward(s, &model, &params))
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("needs 8 frames"), "{err}");
    assert!(P4Stream::new(dev(), &model, 7, 16, true).is_err());
}

/// One model used on two devices: each gets its own cached frame tables and time
/// tensors (a cache keyed by shape alone handed the second device the first's buffers,
/// which a GPU refuses), and both give the same logits.
#[test]
fn one_model_runs_on_two_devices() {
    let cfg =
        P4TransformerConfig::parse(&format!("model = \"p4transformer-msr\"\n{COMMON}"), "test")
            .unwrap();
    let model = P4Transformer::new(cfg).unwrap();
    let mut rng = Rng::new(3);
    let clip = rng.vec(2 * 6 * 16 * 3);
    let mut logits = Vec::new();
    for _ in 0..2 {
        let dev = edge4d_runtime::Device::from_env().unwrap();
        let params = ParamStore::init(&dev, model.spec(), 5).unwrap();
        let x = dev.upload(&clip, &[2, 6, 16, 3]).unwrap();
        let out = dev
            .run(|s| model.forward(s, &params, &x).map(|f| f.logits))
            .unwrap();
        logits.push(dev.read(&out).unwrap());
    }
    assert_eq!(logits[0], logits[1]);
}

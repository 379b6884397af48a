//! Helpers shared by the integration tests: the device, fixtures, tolerances.
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::OnceLock;

use edge4d_runtime::{Device, TensorFile};

pub fn dev() -> &'static Device {
    static DEV: OnceLock<Device> = OnceLock::new();
    DEV.get_or_init(|| {
        Device::from_env().unwrap_or_else(|e| panic!("tests need a GPU adapter: {e}"))
    })
}

pub fn fixture_path(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(rel)
}

pub fn fixture(rel: &str) -> TensorFile {
    TensorFile::open(fixture_path(rel)).unwrap_or_else(|e| panic!("{e}"))
}

/// The fixture's `metadata["config"]` as JSON.
pub fn fixture_config(f: &TensorFile) -> serde_json::Value {
    serde_json::from_str(&f.metadata()["config"]).expect("fixture config is JSON")
}

/// Largest |v| (the scale of the README tolerances).
pub fn max_abs(v: &[f32]) -> f64 {
    v.iter().fold(0.0f64, |m, &x| m.max((x as f64).abs()))
}

/// |got − want| ≤ atol everywhere; names the worst element and returns the worst error.
#[track_caller]
pub fn assert_within(what: &str, got: &[f32], want: &[f32], atol: f64) -> f64 {
    assert_eq!(
        got.len(),
        want.len(),
        "{what}: {} values, expected {}",
        got.len(),
        want.len()
    );
    let (mut worst, mut at) = (0.0f64, 0);
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        let e = if g.is_finite() {
            (*g as f64 - *w as f64).abs()
        } else {
            f64::INFINITY
        };
        if e > worst {
            worst = e;
            at = i;
        }
    }
    assert!(
        worst <= atol,
        "{what}: element {at} is {} but the reference has {} (error {worst:.3e} > {atol:.3e})",
        got[at],
        want[at]
    );
    worst
}

/// Activations and logits: |a − b| ≤ 1e-4·max|ref| + 1e-6.
#[track_caller]
pub fn assert_activation(what: &str, got: &[f32], want: &[f32]) -> f64 {
    assert_within(what, got, want, 1e-4 * max_abs(want) + 1e-6)
}

/// (B, A, C, N) → (B, A, N, C): PyTorch channels-first to edge4d channels-last.
pub fn channels_last(x: &[f32], b: usize, a: usize, c: usize, n: usize) -> Vec<f32> {
    let mut out = vec![0.0; x.len()];
    for i in 0..b * a {
        for ch in 0..c {
            for j in 0..n {
                out[(i * n + j) * c + ch] = x[(i * c + ch) * n + j];
            }
        }
    }
    out
}

/// Writes a fixture's `param.*` tensors as a plain state_dict (the way a user's
/// PyTorch export looks) and returns its path.
pub fn export_weights(f: &TensorFile, dir: &std::path::Path) -> PathBuf {
    use edge4d_runtime::{Stored, TensorFile as _TF};
    let _ = std::marker::PhantomData::<_TF>;
    let mut tensors = Vec::new();
    for name in f.names() {
        if let Some(n) = name.strip_prefix("param.") {
            if n.ends_with("num_batches_tracked") {
                let (v, shape) = f.i64(&name).unwrap();
                tensors.push((n.to_string(), Stored::I64(v, shape)));
            } else {
                tensors.push((n.to_string(), Stored::F32(f.f32(&name).unwrap())));
            }
        }
    }
    let path = dir.join("weights.safetensors");
    edge4d_runtime::tensor_file::write_atomic(&path, &tensors, Default::default()).unwrap();
    path
}

/// A model TOML from a fixture config, with the given `model` kind.
pub fn config_toml(cfg: &serde_json::Value, model: &str, keys: &[&str]) -> String {
    let mut t = format!("model = \"{model}\"\n");
    for k in keys {
        let v = &cfg[*k];
        assert!(!v.is_null(), "fixture config lacks {k}");
        t.push_str(&format!("{k} = {v}\n"));
    }
    t
}

/// Config keys of the P4Transformer fixtures, named as the model constructors' arguments.
pub const P4_KEYS: &[&str] = &[
    "radius",
    "nsamples",
    "spatial_stride",
    "temporal_kernel_size",
    "temporal_stride",
    "emb_relu",
    "dim",
    "depth",
    "heads",
    "dim_head",
    "mlp_dim",
    "num_classes",
];

/// The C2P pre-training fixture's backbone as a TOML config (per-frame model, with the
/// predictor width and temperature; no head, so no `num_classes`).
pub fn c2p_toml(cfg: &serde_json::Value) -> String {
    let keys: Vec<&str> = P4_KEYS
        .iter()
        .copied()
        .filter(|k| *k != "num_classes")
        .chain(["pred_hidden", "tau"])
        .collect();
    config_toml(cfg, "p4transformer-actionseg", &keys)
}

/// The segmentation net's TOML from a Synthia fixture config (its `t_*` keys are the
/// transformer's `dim`, `depth`, ...).
pub fn synthia_toml(c: &serde_json::Value) -> String {
    format!(
        "model = \"p4transformer-synthia\"\nradius = {}\nnsamples = {}\nnum_classes = {}\nwidths = {}\ndeconv = {}\ndim = {}\ndepth = {}\nheads = {}\ndim_head = {}\nmlp_dim = {}\n",
        c["radius"], c["nsamples"], c["num_classes"], c["widths"], c["deconv"], c["t_dim"], c["t_depth"], c["t_heads"], c["t_dim_head"], c["t_mlp"]
    )
}

/// After one SGD step at lr 1 (no momentum, no decay), every weight `trained` stores
/// is the fixture's `param.<name> − grad.<name>`, within 1e-4·G. `grads` are the
/// fixture's gradient names; `stored` maps a fixture name to the saved one.
#[track_caller]
pub fn assert_w_minus_grad(
    f: &TensorFile,
    trained: &TensorFile,
    grads: &[String],
    stored: impl Fn(&str) -> String,
) {
    let g_max = grads
        .iter()
        .map(|n| max_abs(&f.f32(n).unwrap().data))
        .fold(0.0f64, f64::max);
    for g in grads {
        let name = g.strip_prefix("grad.").unwrap();
        let w = f.f32(&format!("param.{name}")).unwrap().data;
        let want: Vec<f32> = w
            .iter()
            .zip(&f.f32(g).unwrap().data)
            .map(|(w, g)| w - g)
            .collect();
        assert_within(
            &format!("{name} after one step"),
            &trained.f32(&stored(name)).unwrap().data,
            &want,
            1e-4 * g_max,
        );
    }
}

/// Runs the `edge4d` binary with `env` set and `unset` removed: the one place the
/// tests start a process.
pub fn run_edge4d(args: &[&str], env: &[(&str, &str)], unset: &[&str]) -> std::process::Output {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_edge4d"));
    cmd.args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    for k in unset {
        cmd.env_remove(k);
    }
    cmd.output()
        .unwrap_or_else(|e| panic!("cannot run edge4d {args:?}: {e}"))
}

/// Runs the `edge4d` binary: (success, stdout + stderr).
pub fn edge4d(args: &[&str]) -> (bool, String) {
    let out = run_edge4d(args, &[], &[]);
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// Runs the `edge4d` binary: (success, stdout, stderr).
pub fn edge4d_split(args: &[&str], env: &[(&str, &str)], unset: &[&str]) -> (bool, String, String) {
    let out = run_edge4d(args, env, unset);
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

/// Every trainable parameter's gradient against the fixture's `grad.<name>` at 1e-4·G
/// (G = the largest |gradient| of any parameter); returns G.
#[track_caller]
pub fn assert_param_grads(
    f: &TensorFile,
    spec: &edge4d_runtime::models::params::Spec,
    grads: &edge4d_runtime::models::Grads,
) -> f64 {
    let trainable: Vec<_> = spec.iter().filter(|p| p.trainable).collect();
    let g_max = trainable
        .iter()
        .map(|p| max_abs(&f.f32(&format!("grad.{}", p.name)).unwrap().data))
        .fold(0.0f64, f64::max);
    for p in trainable {
        let want = f.f32(&format!("grad.{}", p.name)).unwrap();
        assert_within(
            &format!("grad.{}", p.name),
            &dev().read(&grads[&p.name]).unwrap(),
            &want.data,
            1e-4 * g_max,
        );
    }
    g_max
}

/// BatchNorm buffers after a train-mode step against the fixture's `buffer_after.*`:
/// running statistics as activations, counters exactly.
#[track_caller]
pub fn assert_buffers_after(
    f: &TensorFile,
    spec: &edge4d_runtime::models::params::Spec,
    params: &edge4d_runtime::models::ParamStore,
) {
    for p in spec.iter().filter(|p| !p.trainable) {
        let key = format!("buffer_after.{}", p.name);
        if p.name.ends_with("num_batches_tracked") {
            let (want, _) = f.i64(&key).unwrap();
            assert_eq!(params.counter(&p.name), Some(want[0]), "{key}");
        } else {
            assert_activation(
                &key,
                &dev().read(params.get(&p.name).unwrap()).unwrap(),
                &f.f32(&key).unwrap().data,
            );
        }
    }
}

/// Flags of one plain SGD step on a 2-clip batch (lr 1, no momentum, decay, shuffle or
/// augmentation): the trained weights are then exactly `w − grad`.
pub const ONE_PLAIN_SGD_STEP: [&str; 14] = [
    "--epochs",
    "1",
    "--batch-size",
    "2",
    "--optimizer",
    "sgd",
    "--lr",
    "1",
    "--momentum",
    "0",
    "--weight-decay",
    "0",
    "--no-shuffle",
    "--no-augment",
];

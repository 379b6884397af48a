//! The shipped model configs parse and build, and config mistakes are named.

use edge4d_runtime::models::synthia::SegmentationNet;
use edge4d_runtime::models::{ModelKind, P4Transformer, P4TransformerConfig};

#[test]
fn shipped_configs_build_their_models() {
    for (name, model) in [
        ("p4transformer-msr", "p4transformer-msr"),
        ("p4transformer-actionseg", "p4transformer-actionseg"),
        ("p4transformer-synthia", "p4transformer-synthia"),
        ("humanoid-parts", "p4transformer-synthia"),
    ] {
        let path = format!("{}/configs/{name}.toml", env!("CARGO_MANIFEST_DIR"));
        let cfg = P4TransformerConfig::load(&path).unwrap();
        assert_eq!(cfg.model.name(), model);
        let params = if cfg.model == ModelKind::Synthia {
            SegmentationNet::new(cfg).unwrap().spec().len()
        } else {
            P4Transformer::new(cfg).unwrap().spec().len()
        };
        assert!(params > 10, "{name}: {params} tensors");
    }
}

#[test]
fn config_errors_name_the_key() {
    let base = std::fs::read_to_string(format!(
        "{}/configs/p4transformer-msr.toml",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let err = P4TransformerConfig::parse(&base.replace("nsamples = 32", ""), "x.toml")
        .unwrap_err()
        .to_string();
    assert!(err.contains("nsamples"), "{err}");
    let err = P4TransformerConfig::parse(&format!("{base}\nwidth = 3\n"), "x.toml")
        .unwrap_err()
        .to_string();
    assert!(err.contains("width"), "{err}");
    let err = P4TransformerConfig::parse(&base.replace("spatial_stride = 32", ""), "x.toml")
        .unwrap_err()
        .to_string();
    assert!(err.contains("spatial_stride"), "{err}");
    let err = P4TransformerConfig::parse(
        &base.replace("temporal_kernel_size = 3", "temporal_kernel_size = 2"),
        "x.toml",
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("odd"), "{err}");
    for bad in ["0", "-1", "nan"] {
        let err = P4TransformerConfig::parse(&format!("{base}\ntime_scale = {bad}\n"), "x.toml")
            .unwrap_err()
            .to_string();
        assert!(err.contains("time_scale"), "{bad}: {err}");
    }
    let err = P4TransformerConfig::parse(
        &base.replace("p4transformer-msr", "p4transformer-xl"),
        "x.toml",
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("p4transformer-xl"), "{err}");
}

#[test]
fn absurd_sizes_are_refused_by_key_before_anything_is_allocated() {
    let base = std::fs::read_to_string(format!(
        "{}/configs/p4transformer-msr.toml",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let refused = |from: &str, to: &str, keys: &str| {
        assert!(base.contains(from), "{from}");
        let err = P4TransformerConfig::parse(&base.replace(from, to), "big.toml")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("big.toml") && err.contains(keys),
            "{to}: {err}"
        );
    };
    refused(
        "num_classes = 20",
        "num_classes = 1000000000",
        "num_classes",
    );
    refused("dim = 1024", "dim = 9223372036854775807", "dim");
    refused("depth = 5", "depth = 10000", "depth = 10000");
    refused(
        "num_classes = 20",
        "num_classes = 20\npred_hidden = 1000000000",
        "pred_hidden",
    );
    // dim beyond TOML's integers is a parse error that names the key too.
    refused("dim = 1024", "dim = 18446744073709551615", "dim");
}

#[test]
fn a_pretraining_config_needs_no_num_classes_but_a_head_does() {
    let path = format!("{}/configs/humanoid-c2p.toml", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(
        !text.contains("num_classes"),
        "the shipped C2P config has a head"
    );
    let cfg = P4TransformerConfig::load(&path).unwrap();
    assert!(P4Transformer::backbone(cfg.clone()).unwrap().spec().len() > 5);
    let err = P4Transformer::new(cfg).err().unwrap().to_string();
    assert!(
        err.contains("num_classes") && err.contains("pre-training"),
        "{err}"
    );
    let seg_text = std::fs::read_to_string(format!(
        "{}/configs/humanoid-parts.toml",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let seg_cfg = P4TransformerConfig::parse(
        &seg_text
            .lines()
            .filter(|l| !l.starts_with("num_classes"))
            .collect::<Vec<_>>()
            .join("\n"),
        "parts.toml",
    )
    .unwrap();
    let err = SegmentationNet::new(seg_cfg).err().unwrap().to_string();
    assert!(err.contains("num_classes"), "{err}");
}

#[test]
fn absurd_point_mae_sizes_are_refused_by_key() {
    use edge4d_runtime::models::pointmae::PointMaeConfig;
    let base = std::fs::read_to_string(format!(
        "{}/configs/pointmae-concept.toml",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    // The paper's sizes, fc1 (3840 × 12288, 189 MB) above one binding included.
    PointMaeConfig::parse(&base, "concept.toml").unwrap();
    assert!(base.contains("concept_hidden = 3840"));
    for (from, to, keys) in [
        ("trans_dim = 384", "trans_dim = 6000000", "trans_dim"),
        ("depth = 12", "depth = 100000", "depth = 100000"),
        (
            "concept_hidden = 3840",
            "concept_hidden = 1000000000",
            "concept_hidden",
        ),
        // fc1 is held as row blocks, but one row (concepts × trans_dim) must fit.
        ("concepts = 32", "concepts = 100000", "concepts"),
        ("prefix_dim = 768", "prefix_dim = 100000000", "prefix_dim"),
        ("num_classes = 6", "num_classes = 1000000000", "num_classes"),
        ("npoints = 4096", "npoints = 100000000000", "npoints"),
    ] {
        assert!(base.contains(from), "{from}");
        let err = PointMaeConfig::parse(&base.replace(from, to), "big.toml")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("big.toml") && err.contains(keys),
            "{to}: {err}"
        );
    }
}

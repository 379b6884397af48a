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
    let err = P4TransformerConfig::parse(
        &base.replace("p4transformer-msr", "p4transformer-xl"),
        "x.toml",
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("p4transformer-xl"), "{err}");
}

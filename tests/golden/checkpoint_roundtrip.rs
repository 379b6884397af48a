//! Weights round-trip between PyTorch and edge4d: a state_dict saved by PyTorch loads
//! unchanged, and edge4d saves under exactly the same names, shapes and dtypes.

use crate::common::*;
use edge4d_runtime::models::synthia::SegmentationNet;
use edge4d_runtime::models::{P4TransformerConfig, ParamStore};
use edge4d_runtime::TensorFile;

#[test]
fn a_state_dict_round_trips_through_edge4d_unchanged() {
    let f = fixture("p4transformer/synthia_mini_params.safetensors");
    let c = fixture_config(&f);
    let toml = synthia_toml(&c);
    let net = SegmentationNet::new(P4TransformerConfig::parse(&toml, "test").unwrap()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let original = TensorFile::open(export_weights(&f, dir.path())).unwrap();
    let params = ParamStore::load(dev(), net.spec(), &original, "", false).unwrap();
    let saved_path = dir.path().join("edge4d.safetensors");
    params.save(dev(), &saved_path, Default::default()).unwrap();
    let saved = TensorFile::open(&saved_path).unwrap();
    assert_eq!(saved.names(), original.names(), "the same state_dict keys");
    for name in original.names() {
        assert_eq!(
            saved.shape(&name).unwrap(),
            original.shape(&name).unwrap(),
            "{name} shape"
        );
        if name.ends_with("num_batches_tracked") {
            assert_eq!(
                saved.i64(&name).unwrap(),
                original.i64(&name).unwrap(),
                "{name}"
            );
        } else {
            assert_eq!(
                saved.f32(&name).unwrap(),
                original.f32(&name).unwrap(),
                "{name} bitwise"
            );
        }
    }
    // No temporary file is left beside the checkpoint.
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains(".tmp-"))
        .collect();
    assert!(leftovers.is_empty());
}

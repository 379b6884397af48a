//! Every WGSL entry point has a native twin on the CPU backend.

use edge4d_shaders::ALL;

#[test]
fn every_wgsl_entry_point_has_a_native_twin() {
    let mut missing = Vec::new();
    let mut entries = 0;
    for shader in ALL {
        let module = naga::front::wgsl::parse_str(shader.source)
            .unwrap_or_else(|e| panic!("{}: {e}", shader.path));
        for ep in &module.entry_points {
            entries += 1;
            if !edge4d_runtime::cpu::twin_exists(shader.family, shader.name, &ep.name) {
                missing.push(format!("{}::{}", shader.path, ep.name));
            }
        }
    }
    assert!(entries >= 60, "only {entries} entry points found");
    assert!(
        missing.is_empty(),
        "entry points without a native twin in runtime/src/cpu/:\n  {}",
        missing.join("\n  ")
    );
}

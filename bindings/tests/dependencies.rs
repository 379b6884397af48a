//! The C library links the runtime and the training/streaming core only: none of the
//! dataset readers' or the ONNX teacher's dependencies.

use std::process::Command;

#[test]
fn the_c_library_does_not_depend_on_onnx_hdf5_zip_or_image_decoding() {
    let out = Command::new(env!("CARGO"))
        .args([
            "tree",
            "-p",
            "edge4d-ffi",
            "--edges",
            "normal",
            "--prefix",
            "none",
            "--offline",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    let tree = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        tree.contains("edge4d-trainer") && tree.contains("edge4d-runtime"),
        "{tree}"
    );
    for heavy in ["tract-onnx ", "hdf5-pure ", "zip ", "image ", "clap "] {
        assert!(
            !tree.lines().any(|l| l.starts_with(heavy)),
            "the C library depends on {heavy}"
        );
    }
}

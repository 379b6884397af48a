//! The committed C header is what cbindgen makes of the current sources.

use std::path::Path;

#[test]
fn committed_header_is_up_to_date() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let config = cbindgen::Config::from_file(dir.join("cbindgen.toml")).unwrap();
    let mut generated = Vec::new();
    cbindgen::Builder::new()
        .with_config(config)
        .with_src(dir.join("src/lib.rs"))
        .with_src(dir.join("src/status.rs"))
        .generate()
        .expect("cbindgen parses the FFI sources")
        .write(&mut generated);
    let path = dir.join("include/edge4d.h");
    if std::env::var_os("EDGE4D_UPDATE_HEADER").is_some() {
        std::fs::write(&path, &generated).unwrap();
        return;
    }
    let committed = std::fs::read(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "{} is out of date with bindings/src: regenerate it with\n  EDGE4D_UPDATE_HEADER=1 cargo test -p edge4d-ffi --test header",
        path.display()
    );
}

//! The C ABI from C and C++: the examples and a bad-input program are compiled with the
//! system compiler, linked against this crate's shared library and run on the backend
//! EDGE4D_BACKEND names. With cmake on PATH the examples' CMake project is built too.

use std::path::{Path, PathBuf};
use std::process::Command;

use edge4d_runtime::models::{P4Transformer, P4TransformerConfig, ParamStore};
use edge4d_runtime::Device;

fn crate_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The folder holding the libedge4d shared library this test run built. `cargo test`
/// leaves it in target/<profile>/deps beside the test binary; only `cargo build` copies
/// it up to target/<profile>, so that copy may be stale or missing.
fn lib_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let deps = exe.parent().unwrap().to_path_buf();
    let has_lib =
        |dir: &Path| dir.join("libedge4d.so").exists() || dir.join("libedge4d.dylib").exists();
    if has_lib(&deps) {
        return deps;
    }
    let profile = deps.parent().unwrap().to_path_buf();
    assert!(
        has_lib(&profile),
        "no libedge4d shared library in {} or {}",
        deps.display(),
        profile.display()
    );
    profile
}

/// A small action model (the humanoid config, random weights) in `dir`.
fn model_files(dir: &Path) -> (PathBuf, PathBuf) {
    let config = crate_dir().join("../configs/humanoid-small.toml");
    let dev = Device::from_env().expect("a GPU adapter");
    let model = P4Transformer::new(P4TransformerConfig::load(&config).unwrap()).unwrap();
    let params = ParamStore::init(&dev, model.spec(), 3).unwrap();
    let weights = dir.join("weights.safetensors");
    params.save(&dev, &weights, Default::default()).unwrap();
    (config, weights)
}

fn compile(compiler: &str, source: &Path, out: &Path, extra: &[&str]) {
    let lib = lib_dir();
    let status = Command::new(compiler)
        .arg(source)
        .arg("-o")
        .arg(out)
        .arg(format!("-I{}", crate_dir().join("include").display()))
        .args(extra)
        .arg(format!("-L{}", lib.display()))
        .arg(format!("-Wl,-rpath,{}", lib.display()))
        .args(["-ledge4d", "-lpthread", "-lm"])
        .status()
        .unwrap_or_else(|e| panic!("cannot run {compiler}: {e}"));
    assert!(
        status.success(),
        "{compiler} failed on {}",
        source.display()
    );
}

/// Runs an example as on a headless machine (no XDG_RUNTIME_DIR): it must succeed
/// without Mesa's warnings about that variable.
fn run(program: &Path, args: &[&Path]) -> String {
    let out = Command::new(program)
        .args(args)
        .env_remove("XDG_RUNTIME_DIR")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "{} failed:\n{text}\n{err}",
        program.display(),
    );
    assert!(!err.contains("XDG_RUNTIME_DIR"), "{err}");
    text
}

#[test]
fn c_example_streams_depth_frames() {
    let tmp = tempfile::tempdir().unwrap();
    let (config, weights) = model_files(tmp.path());
    let exe = tmp.path().join("stream_depth");
    compile(
        "cc",
        &crate_dir().join("examples/stream_depth.c"),
        &exe,
        &["-std=c99"],
    );
    let out = run(&exe, &[&config, &weights, Path::new("18")]);
    assert!(out.contains("edge4d 0."), "{out}");
    assert_eq!(out.matches("filling the window").count(), 15, "{out}");
    assert_eq!(out.matches(": class ").count(), 3, "{out}");
}

#[test]
fn cpp_example_streams_points_fine_tunes_and_saves() {
    let tmp = tempfile::tempdir().unwrap();
    let (config, weights) = model_files(tmp.path());
    let exe = tmp.path().join("stream_points");
    compile(
        "c++",
        &crate_dir().join("examples/stream_points.cpp"),
        &exe,
        &["-std=c++17"],
    );
    let saved = tmp.path().join("tuned.safetensors");
    let out = run(&exe, &[&config, &weights, &saved]);
    // Fine-tuning on frames labelled 2 makes class 2 more probable on the next frames.
    let line = out
        .lines()
        .find(|l| l.starts_with("p(label 2)"))
        .expect(&out);
    let nums: Vec<f32> = line
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    assert!(nums[1] > nums[0], "{out}");
    let dev = Device::from_env().unwrap();
    let model = P4Transformer::new(P4TransformerConfig::load(&config).unwrap()).unwrap();
    let file = edge4d_runtime::TensorFile::open(&saved).unwrap();
    ParamStore::load(&dev, model.spec(), &file, "", false).expect("the saved weights load back");
}

#[test]
fn bad_input_from_c_gives_status_codes_and_messages() {
    let tmp = tempfile::tempdir().unwrap();
    let (config, weights) = model_files(tmp.path());
    let exe = tmp.path().join("bad_input");
    compile(
        "cc",
        &crate_dir().join("tests/c/bad_input.c"),
        &exe,
        &["-std=c99"],
    );
    let out = run(&exe, &[&config, &weights]);
    assert!(out.ends_with("0 failures\n"), "{out}");
    assert_eq!(
        out.lines().filter(|l| l.starts_with("ok ")).count(),
        23,
        "{out}"
    );
}

#[test]
fn pkg_config_file_compiles_the_c_example() {
    let tmp = tempfile::tempdir().unwrap();
    let prefix = tmp.path().join("prefix");
    std::fs::create_dir_all(prefix.join("lib/pkgconfig")).unwrap();
    std::fs::create_dir_all(prefix.join("include")).unwrap();
    std::fs::copy(
        lib_dir().join("libedge4d.so"),
        prefix.join("lib/libedge4d.so"),
    )
    .unwrap();
    std::fs::copy(
        crate_dir().join("include/edge4d.h"),
        prefix.join("include/edge4d.h"),
    )
    .unwrap();
    let pc = std::fs::read_to_string(crate_dir().join("edge4d.pc.in"))
        .unwrap()
        .replace("@PREFIX@", prefix.to_str().unwrap())
        .replace("@VERSION@", env!("CARGO_PKG_VERSION"));
    std::fs::write(prefix.join("lib/pkgconfig/edge4d.pc"), pc).unwrap();
    let flags = Command::new("pkg-config")
        .args(["--cflags", "--libs", "edge4d"])
        .env("PKG_CONFIG_PATH", prefix.join("lib/pkgconfig"))
        .output()
        .expect("pkg-config is installed");
    assert!(flags.status.success());
    let flags = String::from_utf8(flags.stdout).unwrap();
    let exe = tmp.path().join("stream_depth");
    let status = Command::new("cc")
        .arg(crate_dir().join("examples/stream_depth.c"))
        .arg("-o")
        .arg(&exe)
        .args(flags.split_whitespace())
        .arg("-lm")
        .status()
        .unwrap();
    assert!(status.success(), "cc with pkg-config flags {flags}");
    let (config, weights) = model_files(tmp.path());
    let out = run(&exe, &[&config, &weights, Path::new("16")]);
    assert!(out.contains(": class "), "{out}");
}

#[test]
fn cmake_project_builds_the_examples() {
    assert!(
        Command::new("cmake").arg("--version").output().is_ok(),
        "cmake is not installed: scripts/test.sh installs it (apt-get install cmake)"
    );
    let tmp = tempfile::tempdir().unwrap();
    let build = tmp.path().join("build");
    let lib = lib_dir();
    let ok = Command::new("cmake")
        .arg("-S")
        .arg(crate_dir().join("examples"))
        .arg("-B")
        .arg(&build)
        .arg(format!("-DEDGE4D_LIB_DIR={}", lib.display()))
        .status()
        .unwrap()
        .success();
    assert!(ok, "cmake configure");
    let ok = Command::new("cmake")
        .arg("--build")
        .arg(&build)
        .status()
        .unwrap()
        .success();
    assert!(ok, "cmake build");
    let (config, weights) = model_files(tmp.path());
    let out = run(
        &build.join("stream_depth"),
        &[&config, &weights, Path::new("16")],
    );
    assert!(out.contains(": class "), "{out}");
}

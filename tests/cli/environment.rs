//! Environment variables the CLI reads: EDGE4D_MATMUL (read once, unknown names refused),
//! EDGE4D_THREADS, and no Mesa warning on a headless machine.

fn edge4d(args: &[&str], env: &[(&str, &str)], unset: &[&str]) -> (bool, String, String) {
    crate::common::edge4d_split(args, env, unset)
}

#[test]
fn an_unknown_matmul_kernel_is_refused_by_name() {
    let (ok, out, err) = edge4d(
        &[
            "bench",
            "matmul",
            "--sizes",
            "16",
            "--repeats",
            "1",
            "--warmup",
            "0",
        ],
        &[("EDGE4D_MATMUL", "fastest")],
        &[],
    );
    assert!(!ok, "{out}");
    assert!(
        err.contains("EDGE4D_MATMUL") && err.contains("\"fastest\"") && err.contains("regblock8"),
        "{err}"
    );
    let (ok, out, err) = edge4d(
        &[
            "bench",
            "matmul",
            "--sizes",
            "16",
            "--repeats",
            "1",
            "--warmup",
            "0",
            "--json",
        ],
        &[("EDGE4D_MATMUL", "tiled")],
        &[],
    );
    assert!(ok, "{out}\n{err}");
}

#[test]
fn cpu_threads_come_from_the_flag_or_edge4d_threads_and_bad_counts_are_refused() {
    let (ok, out, err) = edge4d(
        &["--backend", "cpu", "info"],
        &[("EDGE4D_THREADS", "3")],
        &[],
    );
    assert!(ok, "{err}");
    assert!(out.contains("selected: native CPU (3 threads"), "{out}");
    let (ok, out, _) = edge4d(&["--backend", "cpu", "--threads", "1", "info"], &[], &[]);
    assert!(
        ok && out.contains("selected: native CPU (1 threads"),
        "{out}"
    );
    let (ok, _, err) = edge4d(
        &["--backend", "cpu", "info"],
        &[("EDGE4D_THREADS", "0")],
        &[],
    );
    assert!(!ok && err.contains("threads"), "{err}");
}

#[test]
fn a_headless_machine_gets_no_xdg_runtime_dir_warning() {
    let (ok, out, err) = edge4d(&["info"], &[], &["XDG_RUNTIME_DIR"]);
    assert!(ok, "{out}\n{err}");
    assert!(!err.contains("XDG_RUNTIME_DIR"), "{err}");
    assert!(!out.contains("XDG_RUNTIME_DIR"), "{out}");
}

#[test]
#[ignore = "slow: runs several training epochs; scripts/test.sh runs it"]
fn training_benches_report_peak_memory_and_dispatch_counts() {
    let (ok, out, err) = edge4d(
        &[
            "bench",
            "p4transformer",
            "--configs",
            "humanoid-small",
            "--repeats",
            "1",
            "--warmup",
            "0",
            "--json",
        ],
        &[],
        &[],
    );
    assert!(ok, "{out}\n{err}");
    let v: serde_json::Value =
        serde_json::from_str(out.lines().find(|l| l.starts_with('{')).unwrap()).unwrap();
    let (fwd, train) = (
        v["forward_dispatches"].as_u64().unwrap(),
        v["forward_backward_dispatches"].as_u64().unwrap(),
    );
    // The backward adds at least as many dispatches as the forward has.
    assert!(fwd > 10 && train >= 2 * fwd, "{v}");
    assert!(v["peak_bytes"].as_u64().unwrap() > 0, "{v}");
}

//! Flags out of their range are refused by name, not silently replaced.

fn refused(args: &[&str], flag: &str) {
    let out = crate::common::run_edge4d(args, &[], &[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{args:?} was accepted");
    assert!(
        err.contains(flag),
        "{args:?}: the error does not name {flag}:\n{err}"
    );
}

#[test]
fn out_of_range_flags_are_refused() {
    refused(&["finetune", "--batch-size", "0"], "--batch-size");
    refused(&["finetune", "--epochs", "0"], "--epochs");
    refused(&["finetune", "--label-fraction", "2"], "--label-fraction");
    refused(&["finetune", "--label-fraction", "NaN"], "--label-fraction");
    refused(&["finetune", "--label-fraction", "0"], "--label-fraction");
    refused(&["eval", "--batch-size", "0"], "--batch-size");
    refused(&["data", "msr", "--stride", "0"], "--stride");
    refused(&["data", "hoi4d", "--points", "0"], "--points");
    refused(&["stream", "--actions", "0"], "--actions");
    refused(&["stream", "--actions", "99"], "--actions");
}

#[test]
fn each_pretraining_method_takes_its_own_teacher_flag() {
    let common = ["--config", "c.toml", "--data", "d", "--out", "o"];
    let mut concept = vec!["pretrain", "--method", "concept-distill"];
    concept.extend(common);
    refused(&concept, "--teacher-onnx");
    let mut c2p = vec!["pretrain", "--teacher-onnx", "t.onnx"];
    c2p.extend(common);
    refused(&c2p, "--method concept-distill");
    refused(&["pretrain", "--teacher-mode", "onnx"], "--teacher-mode");
}

//! The CPU backend gives bitwise the same results for any thread count: every output
//! element is one sequential loop whichever thread runs it, and gemm's reduction order
//! does not depend on its threads.

use edge4d_runtime::models::{P4Transformer, P4TransformerConfig, ParamStore};
use edge4d_runtime::ops::cross_entropy::{cross_entropy, cross_entropy_backward};
use edge4d_runtime::ops::matmul::matmul;
use edge4d_runtime::Device;

use crate::common::Rng;

/// Logits, loss, every parameter gradient and d clip of one training step of the
/// humanoid model, and a large batched product, on a CPU device with `threads` threads.
fn step_on(threads: usize) -> Vec<Vec<f32>> {
    let dev = Device::cpu(Some(threads)).unwrap();
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../configs/humanoid-small.toml"
    );
    let model =
        P4Transformer::new(P4TransformerConfig::load(std::path::Path::new(path)).unwrap()).unwrap();
    let params = ParamStore::init(&dev, model.spec(), 5).unwrap();
    let (b, l, n) = (2, 16, 256);
    let mut rng = Rng::new(11);
    let clip: Vec<f32> = (0..b * l * n * 3).map(|_| rng.uniform(-1.0, 1.0)).collect();
    let clip = dev.upload(&clip, &[b, l, n, 3]).unwrap();
    let labels = dev.upload_u32(&[1, 3], &[b]).unwrap();
    let one = dev.upload(&[1.0], &[1]).unwrap();
    let a = dev.upload(&rng.vec(3 * 300 * 700), &[3, 300, 700]).unwrap();
    let w = dev.upload(&rng.vec(500 * 700), &[500, 700]).unwrap();
    let (logits, loss, grads, gclip, prod) = dev
        .run(|s| {
            let f = model.forward(s, &params, &clip)?;
            let (loss, _) = cross_entropy(s, &f.logits, &labels)?;
            let g = cross_entropy_backward(s, &f.logits, &labels, &one)?;
            let mut grads = edge4d_runtime::models::Grads::new();
            let gclip = model.backward(s, &params, &f, &g, &mut grads)?;
            let prod = matmul(s, &a, &w, None, false, true)?;
            Ok((f.logits, loss, grads, gclip, prod))
        })
        .unwrap();
    let mut out = vec![dev.read(&logits).unwrap(), dev.read(&loss).unwrap()];
    out.extend(grads.values().map(|g| dev.read(g).unwrap()));
    out.push(dev.read(&gclip).unwrap());
    out.push(dev.read(&prod).unwrap());
    out
}

#[test]
fn cpu_results_are_bitwise_equal_for_one_two_and_three_threads() {
    let one = step_on(1);
    for threads in [2, 3] {
        let other = step_on(threads);
        assert_eq!(one.len(), other.len());
        for (i, (x, y)) in one.iter().zip(&other).enumerate() {
            let same =
                x.len() == y.len() && x.iter().zip(y).all(|(p, q)| p.to_bits() == q.to_bits());
            assert!(same, "output {i} differs between 1 and {threads} threads");
        }
    }
}

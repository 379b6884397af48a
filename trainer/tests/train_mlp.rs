//! End to end: an MLP learns the 3-arm spiral on the GPU with SGD, every step
//! (forward, backward, update) recorded into one submission.

use edge4d_runtime::Device;
use edge4d_trainer::{
    data::spirals,
    mlp::Mlp,
    optim::{Groups, Optimizer, OptimizerConfig, OptimizerKind},
};

/// Loss a trained model must reach; chance level for 3 classes is ln 3 = 1.10.
const TARGET_LOSS: f32 = 0.25;

#[test]
fn mlp_learns_spirals_with_sgd_on_the_gpu() {
    let dev = Device::from_env().unwrap();
    let (xy, labels) = spirals(3, 64, 0.1, 7);
    let n = labels.len();
    let x = dev.upload(&xy, &[n, 2]).unwrap();
    let y = dev.upload_u32(&labels, &[n]).unwrap();
    let one = dev.upload(&[1.0], &[1]).unwrap();
    let model = Mlp::new(&dev, 2, 64, 3, 1).unwrap();
    let mut opt = Optimizer::new(
        &dev,
        &model.named_shapes(),
        OptimizerConfig {
            kind: OptimizerKind::Sgd,
            momentum: 0.9,
            weight_decay: 0.0,
            groups: Groups::AllDecay,
        },
    )
    .unwrap();
    let mut first = None;
    let mut last = f32::NAN;
    for step in 0..600 {
        let mut s = dev.step();
        let loss = model
            .train_step(&mut s, &mut opt, &x, &y, &one, 0.5)
            .unwrap();
        s.submit().unwrap();
        if step == 0 || step % 100 == 99 {
            last = dev.read(&loss).unwrap()[0];
            first.get_or_insert(last);
        }
    }
    let first = first.unwrap();
    assert!(first > 0.9, "initial loss {first} should be near ln 3");
    assert!(
        last < TARGET_LOSS,
        "loss after 600 steps is {last} (started at {first}), target {TARGET_LOSS}"
    );
    let acc = model.accuracy(&dev, &x, &labels).unwrap();
    assert!(acc > 0.9, "training accuracy {acc}");
}

//! Point-MAE's classifier (class token, blocks, `cls_head_finetune`) in eval mode: the
//! GPU gradient of the cross-entropy w.r.t. parameters in every part of the model
//! against central differences of the GPU loss. Its encoder and blocks are checked
//! against PyTorch by the fixtures; this covers the class token's concat, the
//! [class token, max over groups] head input and the head's BatchNorms.

use edge4d_runtime::models::pointmae::PointMaeConfig;
use edge4d_runtime::models::pointmae_cls::PointMaeClassifier;
use edge4d_runtime::models::{Grads, ParamStore};
use edge4d_runtime::ops::cross_entropy::{cross_entropy, cross_entropy_backward};
use edge4d_runtime::Tensor;

use crate::common::*;

const CONFIG: &str = "model = \"point-mae\"\nnpoints = 48\nnum_group = 6\ngroup_size = 8\ntrans_dim = 16\nencoder_dims = 16\ndepth = 1\nnum_heads = 2\nnum_classes = 3\n";

fn loss(model: &PointMaeClassifier, p: &ParamStore, points: &Tensor, labels: &Tensor) -> f64 {
    let l = dev()
        .run(|s| {
            let fwd = model.forward(s, p, points, false, [0, 0])?;
            Ok(cross_entropy(s, &fwd.logits, labels)?.0)
        })
        .unwrap();
    down(&l)[0] as f64
}

#[test]
fn classifier_gradients_match_finite_differences() {
    let model = PointMaeClassifier::new(PointMaeConfig::parse(CONFIG, "test").unwrap()).unwrap();
    // Uniform PyTorch-style weights (larger than Point-MAE's 0.02) so every part matters.
    let spec: Vec<_> = model
        .spec()
        .into_iter()
        .map(|mut p| {
            if p.trainable && p.shape.len() > 1 {
                p.init = edge4d_runtime::models::params::Init::Uniform {
                    fan_in: p.shape[1..].iter().product(),
                };
            }
            p
        })
        .collect();
    let mut params = ParamStore::init(dev(), spec, 5).unwrap();
    let mut rng = Rng::new(6);
    let points = up(&rng.vec(2 * 48 * 3), &[2, 48, 3]);
    let labels = dev().upload_u32(&[2, 0], &[2]).unwrap();
    let one = up(&[1.0], &[1]);
    let grads: Grads = dev()
        .run(|s| {
            let fwd = model.forward(s, &params, &points, false, [0, 0])?;
            let g = cross_entropy_backward(s, &fwd.logits, &labels, &one)?;
            let mut grads = Grads::new();
            model.backward(s, &params, &fwd, &g, &mut grads)?;
            Ok(grads)
        })
        .unwrap();
    // Small steps: the max over groups is piecewise linear, and a step of 1e-2 already
    // crosses its kinks for some parameters.
    let h = 1e-3f32;
    for (name, index) in [
        ("cls_token", 3),
        ("cls_pos", 5),
        ("cls_head_finetune.0.weight", 17),
        ("cls_head_finetune.1.weight", 9),
        ("cls_head_finetune.5.bias", 4),
        ("cls_head_finetune.8.weight", 100),
        ("blocks.blocks.0.attn.qkv.weight", 40),
        ("blocks.blocks.0.mlp.fc2.bias", 2),
        ("pos_embed.0.weight", 7),
        ("encoder.second_conv.3.weight", 300),
        ("encoder.first_conv.0.weight", 11),
        ("norm.weight", 1),
    ] {
        let original = down(params.get(name).unwrap());
        let shape = params.get(name).unwrap().shape().to_vec();
        let mut at = |delta: f32| {
            let mut w = original.clone();
            w[index] += delta;
            params.set(name, up(&w, &shape)).unwrap();
            loss(&model, &params, &points, &labels)
        };
        let numeric = (at(h) - at(-h)) / (2.0 * h as f64);
        at(0.0);
        let analytic = down(&grads[name])[index] as f64;
        // The loss (about 1.1) is f32: one ulp of each of the two losses is 6e-5 of
        // difference quotient at h = 1e-3, a few ulps of forward rounding 1.5e-4.
        let tol = 1.5e-4 + 2e-2 * numeric.abs().max(analytic.abs());
        assert!(
            (numeric - analytic).abs() <= tol,
            "{name}[{index}]: analytic {analytic:.6e} vs numeric {numeric:.6e}"
        );
    }
}

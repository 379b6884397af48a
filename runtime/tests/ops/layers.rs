//! Layers that own their names: a weight above one binding held as row blocks gives
//! the same output, input gradient and weight gradient as the same weight held whole,
//! and files hold the one tensor PyTorch has, both ways.

use std::collections::HashMap;

use edge4d_runtime::models::layers::{Layer, Linear};
use edge4d_runtime::models::params::Spec;
use edge4d_runtime::models::{Grads, ParamStore};
use edge4d_runtime::tensor_file::{write_atomic, Stored};
use edge4d_runtime::{HostTensor, TensorFile};

use crate::common::*;

const OUT: usize = 11;
const IN: usize = 7;

/// (output, d input, d weight (whole, row-major), d bias) of one forward and backward.
fn run(layer: &Linear, p: &ParamStore, x: &[f32], g: &[f32]) -> [Vec<f32>; 4] {
    let (y, gx, grads) = dev()
        .run(|s| {
            let x = dev().upload(x, &[3, 2, IN])?;
            let g = dev().upload(g, &[3, 2, OUT])?;
            let (y, saved) = layer.forward(s, p, &x)?;
            let mut grads = Grads::new();
            let gx = layer.backward(s, p, &saved, &g, &mut grads)?;
            Ok((y, gx, grads))
        })
        .unwrap();
    let mut gw = Vec::new();
    for spec in p.spec().iter().filter(|s| s.name.contains(".weight")) {
        gw.extend(down(&grads[&spec.name]));
    }
    [down(&y), down(&gx), gw, down(&grads["fc.bias"])]
}

#[test]
fn a_weight_in_row_blocks_matches_the_whole_weight_and_saves_as_one_tensor() {
    let whole = Linear::new("fc", OUT, &[IN], true);
    // At most 4 rows of 7 per block: blocks of 4, 4 and 3 rows.
    let blocked = Linear::with_max_block("fc", OUT, &[IN], true, 4 * IN + 3);
    assert!(!whole.is_blocked() && blocked.is_blocked());
    let mut spec = Spec::new();
    blocked.spec(&mut spec);
    let names: Vec<&str> = spec.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "fc.weight[0:4]",
            "fc.weight[4:8]",
            "fc.weight[8:11]",
            "fc.bias"
        ]
    );

    // The same values in a PyTorch-named file load into both layouts.
    let mut rng = Rng::new(3);
    let (w, b) = (rng.vec(OUT * IN), rng.vec(OUT));
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("fc.safetensors");
    let host = |data: &[f32], shape: &[usize]| Stored::F32(HostTensor::new(data.to_vec(), shape));
    write_atomic(
        &file,
        &[
            ("fc.weight".into(), host(&w, &[OUT, IN])),
            ("fc.bias".into(), host(&b, &[OUT])),
        ],
        HashMap::new(),
    )
    .unwrap();
    let f = TensorFile::open(&file).unwrap();
    let load = |layer: &Linear| {
        let mut spec = Spec::new();
        layer.spec(&mut spec);
        ParamStore::load(dev(), spec, &f, "", false).unwrap()
    };
    let (p_whole, p_blocked) = (load(&whole), load(&blocked));
    assert_eq!(
        down(p_blocked.get("fc.weight[4:8]").unwrap()),
        w[4 * IN..8 * IN]
    );

    let (x, g) = (rng.vec(3 * 2 * IN), rng.vec(3 * 2 * OUT));
    let a = run(&whole, &p_whole, &x, &g);
    let c = run(&blocked, &p_blocked, &x, &g);
    for (what, (a, c)) in ["output", "d input", "d weight", "d bias"]
        .iter()
        .zip(a.iter().zip(&c))
    {
        assert_eq!(a.len(), c.len(), "{what}");
        // Each output element and each weight-gradient element is the same dot product;
        // d input sums the blocks' partial products in another order.
        let scale = a.iter().fold(1e-6f32, |m, v| m.max(v.abs()));
        for (i, (u, v)) in a.iter().zip(c).enumerate() {
            assert!((u - v).abs() <= 1e-6 * scale, "{what}[{i}]: {u} vs {v}");
        }
    }

    // Saving joins the blocks into the one tensor PyTorch has.
    let saved = dir.path().join("saved.safetensors");
    p_blocked.save(dev(), &saved, HashMap::new()).unwrap();
    let back = TensorFile::open(&saved).unwrap();
    let mut stored = back.names();
    stored.sort();
    assert_eq!(stored, ["fc.bias", "fc.weight"]);
    let w_back = back.f32("fc.weight").unwrap();
    assert_eq!(w_back.shape, [OUT, IN]);
    assert_eq!(w_back.data, w);
}

#[test]
fn a_file_with_the_wrong_whole_shape_is_refused_once_by_its_name() {
    let blocked = Linear::with_max_block("fc", OUT, &[IN], false, 2 * IN);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.safetensors");
    write_atomic(
        &file,
        &[(
            "fc.weight".into(),
            Stored::F32(HostTensor::new(vec![0.0; 5 * IN], &[5, IN])),
        )],
        HashMap::new(),
    )
    .unwrap();
    let mut spec = Spec::new();
    blocked.spec(&mut spec);
    let err = ParamStore::load(dev(), spec, &TensorFile::open(&file).unwrap(), "", false)
        .err()
        .unwrap()
        .to_string();
    assert_eq!(
        err.matches("fc.weight has shape [5, 7]").count(),
        1,
        "{err}"
    );
    assert!(err.contains("[11, 7]"), "{err}");
}

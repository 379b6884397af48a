//! The concept head (shared cross-attention over every layer's input, LayerNorm, MLP to
//! the teacher prefix, MSE) against the reference implementation of spec §7: alone, and
//! end to end behind Point-MAE blocks. Activations, loss and every gradient.

use crate::common::*;
use edge4d_runtime::models::concept::{ConceptConfig, ConceptForward, ConceptHead};
use edge4d_runtime::models::params::{norm_spec, Spec};
use edge4d_runtime::models::pointmae::{PointMae, PointMaeConfig};
use edge4d_runtime::models::Layer;
use edge4d_runtime::models::{Grads, ParamStore};
use edge4d_runtime::ops::mse::{mse, mse_backward};
use edge4d_runtime::tensor_file::{write_atomic, Stored};
use edge4d_runtime::{Tensor, TensorFile};

fn head_config(c: &serde_json::Value) -> ConceptConfig {
    let u = |k: &str| c[k].as_u64().unwrap() as usize;
    ConceptConfig {
        dim: u("d"),
        heads: u("heads"),
        concepts: u("k_con"),
        prefix_length: u("k_cap"),
        prefix_dim: u("d_cap"),
        hidden: u("hidden"),
    }
}

/// The reference's flat block names → Point-MAE's (`blocks.<l>.qkv` →
/// `blocks.blocks.<l>.attn.qkv`); other names are unchanged.
fn point_mae_name(name: &str) -> String {
    let Some(rest) = name.strip_prefix("blocks.") else {
        return name.to_string();
    };
    let (layer, leaf) = rest.split_once('.').unwrap();
    let leaf = leaf
        .replacen("qkv.", "attn.qkv.", 1)
        .replacen("proj.", "attn.proj.", 1)
        .replacen("fc1.", "mlp.fc1.", 1)
        .replacen("fc2.", "mlp.fc2.", 1);
    format!("blocks.blocks.{layer}.{leaf}")
}

/// The fixture's `param.*` under Point-MAE names, written as a state_dict.
fn export(f: &TensorFile, dir: &std::path::Path) -> std::path::PathBuf {
    let tensors: Vec<_> = f
        .names()
        .into_iter()
        .filter_map(|n| {
            let name = n.strip_prefix("param.")?;
            Some((point_mae_name(name), Stored::F32(f.f32(&n).unwrap())))
        })
        .collect();
    let path = dir.join("weights.safetensors");
    write_atomic(&path, &tensors, Default::default()).unwrap();
    path
}

fn split_layers(t: &Tensor, n: usize) -> Vec<Tensor> {
    let d = dev();
    let host = d.read(t).unwrap();
    let per = host.len() / n;
    let shape = &t.shape()[1..];
    (0..n)
        .map(|l| d.upload(&host[l * per..(l + 1) * per], shape).unwrap())
        .collect()
}

fn check_grads(f: &TensorFile, grads: &Grads, spec: &Spec, extra: &[(&str, Vec<f32>)]) {
    let d = dev();
    let g_max = spec
        .iter()
        .map(|p| {
            max_abs(
                &f.f32(&format!("grad.{}", reference_name(&p.name)))
                    .unwrap()
                    .data,
            )
        })
        .fold(0.0f64, f64::max);
    for p in spec {
        let key = format!("grad.{}", reference_name(&p.name));
        let want = f.f32(&key).unwrap().data;
        match grads.get(&p.name) {
            Some(g) => {
                assert_within(&key, &d.read(g).unwrap(), &want, 1e-4 * g_max);
            }
            // Parameters that do not reach the loss (the final norm) get no gradient;
            // the reference's is exactly zero.
            None => assert!(want.iter().all(|&v| v == 0.0), "{key} is missing"),
        }
    }
    for (key, got) in extra {
        let want = f.f32(key).unwrap().data;
        assert_within(key, got, &want, 1e-4 * g_max.max(max_abs(&want)));
    }
}

/// Concepts after every layer, the prediction and the loss against the fixture.
#[track_caller]
fn assert_concept_outputs(f: &TensorFile, fwd: &ConceptForward, loss: &Tensor) {
    let d = dev();
    let per_layer: Vec<f32> = fwd
        .concepts_per_layer
        .iter()
        .flat_map(|t| d.read(t).unwrap())
        .collect();
    assert_activation(
        "concepts_per_layer",
        &per_layer,
        &f.f32("concepts_per_layer").unwrap().data,
    );
    assert_activation(
        "pred",
        &d.read(&fwd.pred).unwrap(),
        &f.f32("pred").unwrap().data,
    );
    let (got, want) = (d.read(loss).unwrap()[0], f.f32("loss").unwrap().data[0]);
    assert!(((got - want) / want).abs() <= 1e-5, "loss {got} vs {want}");
}

/// Point-MAE names → the reference's flat names.
fn reference_name(name: &str) -> String {
    let Some(rest) = name.strip_prefix("blocks.blocks.") else {
        return name.to_string();
    };
    let leaf = rest.replacen("attn.", "", 1).replacen("mlp.", "", 1);
    format!("blocks.{leaf}")
}

#[test]
fn concept_head_matches_reference() {
    let f = fixture("losses/concept_head.safetensors");
    let cfg = fixture_config(&f);
    let head = ConceptHead::new(head_config(&cfg), "").unwrap();
    let mut spec = Spec::new();
    head.spec(&mut spec);
    let dir = tempfile::tempdir().unwrap();
    let weights = export(&f, dir.path());
    let params = ParamStore::load(
        dev(),
        spec.clone(),
        &TensorFile::open(&weights).unwrap(),
        "",
        false,
    )
    .unwrap();
    let d = dev();
    let depth = cfg["depth"].as_u64().unwrap() as usize;
    let li = f.f32("input.layer_inputs").unwrap();
    let prefix = f.f32("input.prefix").unwrap();
    let inputs = split_layers(&d.upload(&li.data, &li.shape).unwrap(), depth);
    let tp = d.upload(&prefix.data, &prefix.shape).unwrap();
    let one = d.upload(&[1.0], &[1]).unwrap();
    let (fwd, loss, grads, g_inputs) = d
        .run(|s| {
            let fwd = head.forward(s, &params, &inputs)?;
            let loss = mse(s, &fwd.pred, &tp)?;
            let g = mse_backward(s, &fwd.pred, &tp, &one)?;
            let mut grads = Grads::new();
            let gi = head.backward(s, &params, &fwd, &g, &mut grads)?;
            Ok((fwd, loss, grads, gi))
        })
        .unwrap();
    assert_concept_outputs(&f, &fwd, &loss);
    let g_li: Vec<f32> = g_inputs.iter().flat_map(|t| d.read(t).unwrap()).collect();
    check_grads(&f, &grads, &spec, &[("grad.input.layer_inputs", g_li)]);
}

#[test]
fn encoder_with_concepts_matches_reference() {
    let f = fixture("losses/concept_encoder.safetensors");
    let cfg = fixture_config(&f);
    let (dim, heads, depth) = (cfg["d"].clone(), cfg["heads"].clone(), cfg["depth"].clone());
    let toml = format!(
        "model = \"point-mae\"\nnum_group = {}\ngroup_size = 8\ntrans_dim = {dim}\nencoder_dims = {dim}\ndepth = {depth}\nnum_heads = {heads}\n",
        cfg["G"]
    );
    let net = PointMae::new(PointMaeConfig::parse(&toml, "fixture").unwrap()).unwrap();
    let head = ConceptHead::new(head_config(&cfg), "head.").unwrap();
    let mut spec = Spec::new();
    net.blocks().spec(&mut spec);
    norm_spec(&mut spec, "norm", net.cfg.trans_dim);
    head.spec(&mut spec);
    let dir = tempfile::tempdir().unwrap();
    let weights = export(&f, dir.path());
    let params = ParamStore::load(
        dev(),
        spec.clone(),
        &TensorFile::open(&weights).unwrap(),
        "",
        false,
    )
    .unwrap();
    let d = dev();
    let up = |name: &str| {
        let t = f.f32(name).unwrap();
        d.upload(&t.data, &t.shape).unwrap()
    };
    let (tokens, pos, prefix) = (up("input.tokens"), up("input.pos"), up("input.prefix"));
    let one = d.upload(&[1.0], &[1]).unwrap();
    let (blocks, fwd, loss, grads, g_tokens, g_pos) = d
        .run(|s| {
            let blocks = net.blocks_forward(s, &params, &tokens, &pos)?;
            let fwd = head.forward(s, &params, &blocks.layer_inputs)?;
            let loss = mse(s, &fwd.pred, &prefix)?;
            let g = mse_backward(s, &fwd.pred, &prefix, &one)?;
            let mut grads = Grads::new();
            let g_inputs = head.backward(s, &params, &fwd, &g, &mut grads)?;
            let (gt, gp) = net.blocks_backward(s, &params, &blocks, None, &g_inputs, &mut grads)?;
            Ok((blocks, fwd, loss, grads, gt, gp))
        })
        .unwrap();
    assert_activation(
        "features",
        &d.read(&blocks.features).unwrap(),
        &f.f32("features").unwrap().data,
    );
    assert_concept_outputs(&f, &fwd, &loss);
    check_grads(
        &f,
        &grads,
        &spec,
        &[
            ("grad.input.tokens", d.read(&g_tokens).unwrap()),
            ("grad.input.pos", d.read(&g_pos).unwrap()),
        ],
    );
}

//! Point-MAE's classification model (`PointTransformer` in models/Point_MAE.py): the
//! encoder with a prepended class token, and `cls_head_finetune` on
//! [class-token output, max over the group outputs]:
//! Linear(2C, 256) → BN → ReLU → Dropout(0.5) → Linear(256, 256) → BN → ReLU →
//! Dropout(0.5) → Linear(256, classes). State-dict names: the encoder's (no
//! `MAE_encoder.` prefix), `cls_token`, `cls_pos`, `cls_head_finetune.{0,1,4,5,8}`.

use super::layers::{BatchNormRelu, BatchNormReluSaved, Layer, Linear, LinearSaved};
use super::params::{Grads, Init, ParamSpec, ParamStore, Spec};
use super::pointmae::{point_mae_init, BlocksForward, PointMae, PointMaeConfig, PointMaeTokens};
use crate::ops::dropout::{dropout, dropout_backward};
use crate::ops::elementwise::{add, add_backward};
use crate::ops::layout::{concat, slice};
use crate::ops::reduce::{max, max_backward};
use crate::ops::util::zeros;
use crate::{Error, Result, Step, Tensor};

const HIDDEN: usize = 256;
const DROPOUT: f32 = 0.5;

pub struct PointMaeClassifier {
    pub encoder: PointMae,
    pub classes: usize,
    head: ClassHead,
}

/// `cls_head_finetune`: Linear → BN → ReLU → Dropout → Linear → BN → ReLU → Dropout →
/// Linear.
struct ClassHead {
    fc1: Linear,
    bn1: BatchNormRelu,
    fc2: Linear,
    bn2: BatchNormRelu,
    fc3: Linear,
}

pub struct ClassifierForward {
    /// (B, classes).
    pub logits: Tensor,
    tokens: PointMaeTokens,
    blocks: BlocksForward,
    groups: usize,
    pooled_arg: Tensor,
    fc1: LinearSaved,
    bn1: BatchNormReluSaved,
    fc2: LinearSaved,
    bn2: BatchNormReluSaved,
    fc3: LinearSaved,
    seeds: Option<[u32; 2]>,
}

impl PointMaeClassifier {
    pub fn new(cfg: PointMaeConfig) -> Result<Self> {
        if cfg.num_classes == 0 {
            return Err(Error::Config {
                path: "point-mae config".into(),
                detail: "classification needs num_classes > 0".into(),
            });
        }
        let classes = cfg.num_classes;
        let c = cfg.trans_dim;
        let n = |i: usize| format!("cls_head_finetune.{i}");
        Ok(Self {
            encoder: PointMae::new(cfg)?,
            classes,
            head: ClassHead {
                fc1: Linear::new(&n(0), HIDDEN, &[2 * c], true),
                bn1: BatchNormRelu::new(&n(1), HIDDEN),
                fc2: Linear::new(&n(4), HIDDEN, &[HIDDEN], true),
                bn2: BatchNormRelu::new(&n(5), HIDDEN),
                fc3: Linear::new(&n(8), classes, &[HIDDEN], true),
            },
        })
    }

    pub fn spec(&self) -> Spec {
        let c = self.encoder.cfg.trans_dim;
        let mut spec = self.encoder.spec();
        let mut own = Spec::new();
        own.push(ParamSpec {
            name: "cls_token".into(),
            shape: vec![1, 1, c],
            init: Init::Zeros,
            trainable: true,
            block: None,
        });
        own.push(ParamSpec {
            name: "cls_pos".into(),
            shape: vec![1, 1, c],
            init: Init::TruncNormal { std: 0.02 },
            trainable: true,
            block: None,
        });
        let h = &self.head;
        h.fc1.spec(&mut own);
        h.bn1.spec(&mut own);
        h.fc2.spec(&mut own);
        h.bn2.spec(&mut own);
        h.fc3.spec(&mut own);
        point_mae_init(&mut own);
        spec.extend(own);
        spec
    }

    /// points (B, N, 3) → logits. `dropout_seeds` (train mode) seed the two dropouts.
    pub fn forward(
        &self,
        s: &mut Step<'_>,
        p: &ParamStore,
        points: &Tensor,
        train: bool,
        dropout_seeds: [u32; 2],
    ) -> Result<ClassifierForward> {
        let c = self.encoder.cfg.trans_dim;
        let tokens = self.encoder.tokenize(s, p, points, train)?;
        let (b, g) = (tokens.tokens.shape()[0], tokens.tokens.shape()[1]);
        let prepend = |s: &mut Step<'_>, name: &str, rest: &Tensor| -> Result<Tensor> {
            let z = zeros(s, &[b, 1, c])?;
            let first = add(s, &z, &p.get(name)?.reshape(&[1, c])?)?;
            concat(s, &[&first, rest], 1)
        };
        let x = prepend(s, "cls_token", &tokens.tokens)?;
        let pos = prepend(s, "cls_pos", &tokens.pos)?;
        let blocks = self.encoder.blocks_forward(s, p, &x, &pos)?;
        let f = &blocks.features;
        let cls = slice(s, f, 1, 0, 1)?.reshape(&[b, c])?;
        let rest = slice(s, f, 1, 1, g)?;
        let (pooled, pooled_arg) = max(s, &rest, 1)?;
        let head_in = concat(s, &[&cls, &pooled], 1)?;
        let seeds = train.then_some(dropout_seeds);
        let drop = |s: &mut Step<'_>, x: &Tensor, i: usize| match seeds {
            Some(sd) => dropout(s, x, DROPOUT, sd[i]),
            None => Ok(x.clone()),
        };
        let h = &self.head;
        let (a1, fc1) = h.fc1.forward(s, p, &head_in)?;
        let (r1, bn1) = h.bn1.forward(s, p, &a1, train)?;
        let d1 = drop(s, &r1, 0)?;
        let (a2, fc2) = h.fc2.forward(s, p, &d1)?;
        let (r2, bn2) = h.bn2.forward(s, p, &a2, train)?;
        let d2 = drop(s, &r2, 1)?;
        let (logits, fc3) = h.fc3.forward(s, p, &d2)?;
        Ok(ClassifierForward {
            logits,
            tokens,
            blocks,
            groups: g,
            pooled_arg,
            fc1,
            bn1,
            fc2,
            bn2,
            fc3,
            seeds,
        })
    }

    /// Accumulates every parameter's gradient given d logits; returns d points.
    pub fn backward(
        &self,
        s: &mut Step<'_>,
        p: &ParamStore,
        fwd: &ClassifierForward,
        grad_logits: &Tensor,
        grads: &mut Grads,
    ) -> Result<Tensor> {
        let c = self.encoder.cfg.trans_dim;
        let (b, g) = (grad_logits.shape()[0], fwd.groups);
        let undrop = |s: &mut Step<'_>, x: &Tensor, i: usize| match fwd.seeds {
            Some(sd) => dropout_backward(s, x, DROPOUT, sd[i]),
            None => Ok(x.clone()),
        };
        let h = &self.head;
        let g_d2 = h.fc3.backward(s, p, &fwd.fc3, grad_logits, grads)?;
        let g_r2 = undrop(s, &g_d2, 1)?;
        let g_a2 = h.bn2.backward(s, p, &fwd.bn2, &g_r2, grads)?;
        let g_d1 = h.fc2.backward(s, p, &fwd.fc2, &g_a2, grads)?;
        let g_r1 = undrop(s, &g_d1, 0)?;
        let g_a1 = h.bn1.backward(s, p, &fwd.bn1, &g_r1, grads)?;
        let g_in = h.fc1.backward(s, p, &fwd.fc1, &g_a1, grads)?;
        let g_cls = slice(s, &g_in, 1, 0, c)?.reshape(&[b, 1, c])?;
        let g_pooled = slice(s, &g_in, 1, c, c)?;
        let g_rest = max_backward(s, &g_pooled, &fwd.pooled_arg, &[b, g, c], 1)?;
        let g_features = concat(s, &[&g_cls, &g_rest], 1)?;
        let (g_x, g_pos) =
            self.encoder
                .blocks_backward(s, p, &fwd.blocks, Some(&g_features), &[], grads)?;
        for (name, gt) in [("cls_token", &g_x), ("cls_pos", &g_pos)] {
            let first = slice(s, gt, 1, 0, 1)?;
            let (_, summed) = add_backward(s, &first, &[1, c])?;
            super::params::accumulate(s, grads, name, summed.reshape(&[1, 1, c])?)?;
        }
        let g_tokens = slice(s, &g_x, 1, 1, g)?;
        let g_pos_tokens = slice(s, &g_pos, 1, 1, g)?;
        self.encoder
            .tokenize_backward(s, p, &fwd.tokens, &g_tokens, &g_pos_tokens, grads)
    }
}

//! Point-MAE's classification model (`PointTransformer` in models/Point_MAE.py): the
//! encoder with a prepended class token, and `cls_head_finetune` on
//! [class-token output, max over the group outputs]:
//! Linear(2C, 256) → BN → ReLU → Dropout(0.5) → Linear(256, 256) → BN → ReLU →
//! Dropout(0.5) → Linear(256, classes). State-dict names: the encoder's (no
//! `MAE_encoder.` prefix), `cls_token`, `cls_pos`, `cls_head_finetune.{0,1,4,5,8}`.

use super::linear::{linear_param, linear_param_backward};
use super::params::{batchnorm_spec, linear_spec, Grads, Init, ParamSpec, ParamStore, Spec};
use super::pointmae::{point_mae_init, BlocksForward, PointMae, PointMaeConfig, PointMaeTokens};
use super::synthia::{bn_relu, bn_relu_backward, BnRelu};
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
}

pub struct ClassifierForward {
    /// (B, classes).
    pub logits: Tensor,
    tokens: PointMaeTokens,
    blocks: BlocksForward,
    groups: usize,
    pooled_arg: Tensor,
    head_in: Tensor,
    bn1: BnRelu,
    d1: Tensor,
    bn2: BnRelu,
    d2: Tensor,
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
        Ok(Self {
            encoder: PointMae::new(cfg)?,
            classes,
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
        });
        own.push(ParamSpec {
            name: "cls_pos".into(),
            shape: vec![1, 1, c],
            init: Init::TruncNormal { std: 0.02 },
            trainable: true,
        });
        linear_spec(&mut own, "cls_head_finetune.0", HIDDEN, &[2 * c], true);
        batchnorm_spec(&mut own, "cls_head_finetune.1", HIDDEN);
        linear_spec(&mut own, "cls_head_finetune.4", HIDDEN, &[HIDDEN], true);
        batchnorm_spec(&mut own, "cls_head_finetune.5", HIDDEN);
        linear_spec(
            &mut own,
            "cls_head_finetune.8",
            self.classes,
            &[HIDDEN],
            true,
        );
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
        let a1 = linear_param(s, p, &head_in, "cls_head_finetune.0")?;
        let (r1, bn1) = bn_relu(s, p, &a1, "cls_head_finetune.1", train)?;
        let d1 = drop(s, &r1, 0)?;
        let a2 = linear_param(s, p, &d1, "cls_head_finetune.4")?;
        let (r2, bn2) = bn_relu(s, p, &a2, "cls_head_finetune.5", train)?;
        let d2 = drop(s, &r2, 1)?;
        let logits = linear_param(s, p, &d2, "cls_head_finetune.8")?;
        Ok(ClassifierForward {
            logits,
            tokens,
            blocks,
            groups: g,
            pooled_arg,
            head_in,
            bn1,
            d1,
            bn2,
            d2,
            seeds,
        })
    }

    /// Accumulates every parameter's gradient given d logits.
    pub fn backward(
        &self,
        s: &mut Step<'_>,
        p: &ParamStore,
        fwd: &ClassifierForward,
        grad_logits: &Tensor,
        grads: &mut Grads,
    ) -> Result<()> {
        let c = self.encoder.cfg.trans_dim;
        let (b, g) = (grad_logits.shape()[0], fwd.groups);
        let undrop = |s: &mut Step<'_>, x: &Tensor, i: usize| match fwd.seeds {
            Some(sd) => dropout_backward(s, x, DROPOUT, sd[i]),
            None => Ok(x.clone()),
        };
        let g_d2 = linear_param_backward(
            s,
            p,
            grads,
            &fwd.d2,
            "cls_head_finetune.8",
            grad_logits,
            true,
        )?;
        let g_r2 = undrop(s, &g_d2, 1)?;
        let g_a2 = bn_relu_backward(s, p, &fwd.bn2, &g_r2, grads)?;
        let g_d1 = linear_param_backward(s, p, grads, &fwd.d1, "cls_head_finetune.4", &g_a2, true)?;
        let g_r1 = undrop(s, &g_d1, 0)?;
        let g_a1 = bn_relu_backward(s, p, &fwd.bn1, &g_r1, grads)?;
        let g_in = linear_param_backward(
            s,
            p,
            grads,
            &fwd.head_in,
            "cls_head_finetune.0",
            &g_a1,
            true,
        )?;
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
            .tokenize_backward(s, p, &fwd.tokens, &g_tokens, &g_pos_tokens, grads)?;
        Ok(())
    }
}

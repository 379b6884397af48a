//! Layers that own their parameter names. Each is built once from its PyTorch prefix
//! (`mlp_head.1`, `transformer.layers.0.0.fn.norm`), gives its parameter spec, has a
//! forward that returns what its backward needs, and a backward — the same signature
//! for every layer — that adds its parameters' gradients (in their stored shapes) into
//! `&mut Grads` and returns the gradient of its input. Models compose layers; no
//! parameter name is written anywhere else.

use super::linear::{linear, linear_backward_epilogue, linear_epilogue};
use super::params::{
    accumulate, batchnorm_spec, blocked_weight_spec, linear_spec, norm_spec, Grads, ParamStore,
    Spec,
};
use crate::ops::activation::{gelu, gelu_backward, relu, relu_backward};
use crate::ops::batchnorm::{batchnorm, batchnorm_backward, BatchNormSaved, BatchNormState};
use crate::ops::elementwise::{add, add_backward};
use crate::ops::layernorm::{layernorm, layernorm_backward, LayerNormSaved};
use crate::ops::layout::{concat, concat_backward};
use crate::ops::matmul::Epilogue;
use crate::{Result, Step, Tensor};

/// What every layer has: its parameters and its backward pass.
pub trait Layer {
    /// What the forward pass keeps for the backward pass.
    type Saved;
    /// Appends the layer's parameters (PyTorch names, shapes, initialisation).
    fn spec(&self, spec: &mut Spec);
    /// d input from d output; parameter gradients accumulate into `grads`.
    fn backward(
        &self,
        s: &mut Step<'_>,
        p: &ParamStore,
        saved: &Self::Saved,
        grad: &Tensor,
        grads: &mut Grads,
    ) -> Result<Tensor>;
}

/// The most values one weight tensor holds: WebGPU's default 128 MiB binding limit,
/// which every backend keeps. Larger weights are held as row blocks.
pub const MAX_BINDING_FLOATS: usize = (128 << 20) / 4;

/// `nn.Linear`, or a 1×1 convolution stored with trailing unit dims (`input` is the
/// weight's shape after the output dim, e.g. `[4, 1]` for a Conv1d(4, C, 1)): y = x Wᵀ
/// + b over the last axis of x.
///
/// A weight above one binding is held as row blocks (`prefix.weight[a:b]`, each an
/// independent parameter): each block makes its slice of the output features, the
/// slices are concatenated and the bias added. Files still hold the one
/// `prefix.weight` PyTorch has ([`ParamStore`] joins and splits the rows).
#[derive(Debug, Clone)]
pub struct Linear {
    weight: String,
    /// The parameters holding the weight's rows, in order, with their row counts (one
    /// entry, the weight itself, when it fits one binding).
    blocks: Vec<(String, usize)>,
    bias: Option<String>,
    out: usize,
    spec: Spec,
}

/// The input of a [`Linear`].
pub struct LinearSaved {
    x: Tensor,
}

impl Linear {
    pub fn new(prefix: &str, out: usize, input: &[usize], bias: bool) -> Self {
        Self::with_max_block(prefix, out, input, bias, MAX_BINDING_FLOATS)
    }

    /// A linear layer whose weight is split into row blocks of at most `max_floats`
    /// values (tests use small blocks to exercise the path).
    pub fn with_max_block(
        prefix: &str,
        out: usize,
        input: &[usize],
        bias: bool,
        max_floats: usize,
    ) -> Self {
        let mut spec = Spec::new();
        let names = blocked_weight_spec(&mut spec, prefix, out, input, max_floats);
        let blocks = names
            .into_iter()
            .zip(spec.iter().map(|p| p.shape[0]))
            .collect();
        if bias {
            let mut with_bias = Spec::new();
            linear_spec(&mut with_bias, prefix, out, input, true);
            spec.extend(with_bias.into_iter().skip(1));
        }
        Self {
            weight: format!("{prefix}.weight"),
            blocks,
            bias: bias.then(|| format!("{prefix}.bias")),
            out,
            spec,
        }
    }

    pub fn forward(
        &self,
        s: &mut Step<'_>,
        p: &ParamStore,
        x: &Tensor,
    ) -> Result<(Tensor, LinearSaved)> {
        let (y, _, saved) = self.forward_epilogue(s, p, x, Epilogue::None)?;
        Ok((y, saved))
    }

    /// `forward` then a GELU (+ `residual`) in the product's epilogue: (pre-activation,
    /// activation, saved); the backward of the GELU needs the pre-activation.
    pub fn forward_gelu(
        &self,
        s: &mut Step<'_>,
        p: &ParamStore,
        x: &Tensor,
        residual: Option<&Tensor>,
    ) -> Result<(Tensor, Tensor, LinearSaved)> {
        let (pre, act, saved) = self.forward_epilogue(s, p, x, Epilogue::Gelu { residual })?;
        let act = act.ok_or_else(|| crate::Error::InvalidArgument {
            op: "linear forward",
            detail: format!("{}: a GELU epilogue returned no activation", self.weight),
        })?;
        Ok((pre, act, saved))
    }

    /// `forward` finished by `epilogue` (operands shaped like the output): inside the
    /// product for a single weight, as separate ops after the blocks are joined. The
    /// second output is the GELU's, with [`Epilogue::Gelu`].
    pub fn forward_epilogue(
        &self,
        s: &mut Step<'_>,
        p: &ParamStore,
        x: &Tensor,
        epilogue: Epilogue<'_>,
    ) -> Result<(Tensor, Option<Tensor>, LinearSaved)> {
        let bias = self.bias.as_ref().map(|b| p.get(b)).transpose()?;
        let saved = LinearSaved { x: x.clone() };
        let y = match &self.blocks[..] {
            [(single, _)] => {
                let (y, act) = linear_epilogue(s, x, &p.matrix(single)?, bias, epilogue)?;
                return Ok((y, act, saved));
            }
            blocks => {
                let parts = blocks
                    .iter()
                    .map(|(name, _)| linear(s, x, &p.matrix(name)?, None))
                    .collect::<Result<Vec<_>>>()?;
                let refs: Vec<&Tensor> = parts.iter().collect();
                let y = concat(s, &refs, -1)?;
                match bias {
                    Some(b) => add(s, &y, b)?,
                    None => y,
                }
            }
        };
        match epilogue {
            Epilogue::None => Ok((y, None, saved)),
            Epilogue::Gelu { residual } => {
                let act = gelu(s, &y)?;
                let act = match residual {
                    Some(r) => add(s, &act, r)?,
                    None => act,
                };
                Ok((y, Some(act), saved))
            }
            Epilogue::Residual(r) => Ok((add(s, &y, r)?, None, saved)),
            Epilogue::GeluGrad(x) => Ok((gelu_backward(s, x, &y)?, None, saved)),
        }
    }

    /// Whether the weight is held as row blocks.
    pub fn is_blocked(&self) -> bool {
        self.blocks.len() > 1
    }

    /// The output width.
    pub fn out(&self) -> usize {
        self.out
    }

    /// The weight's name (for callers that apply the matrix in parts; the layer must
    /// not be blocked).
    pub fn weight_name(&self) -> &str {
        &self.weight
    }

    /// The bias's name, when the layer has one.
    pub fn bias_name(&self) -> Option<&str> {
        self.bias.as_deref()
    }
}

impl Layer for Linear {
    type Saved = LinearSaved;

    fn spec(&self, spec: &mut Spec) {
        spec.extend(self.spec.iter().cloned());
    }

    fn backward(
        &self,
        s: &mut Step<'_>,
        p: &ParamStore,
        saved: &LinearSaved,
        grad: &Tensor,
        grads: &mut Grads,
    ) -> Result<Tensor> {
        self.backward_epilogue(s, p, saved, grad, grads, Epilogue::None)
    }
}

impl Linear {
    /// `backward` whose input gradient is finished by `dx_epilogue` (operands shaped
    /// like the input), e.g. [`Epilogue::GeluGrad`] to step back through the GELU that
    /// made the input.
    pub fn backward_epilogue(
        &self,
        s: &mut Step<'_>,
        p: &ParamStore,
        saved: &LinearSaved,
        grad: &Tensor,
        grads: &mut Grads,
        dx_epilogue: Epilogue<'_>,
    ) -> Result<Tensor> {
        if let [(single, _)] = &self.blocks[..] {
            let (gx, gw, gb) = linear_backward_epilogue(
                s,
                &saved.x,
                &p.matrix(single)?,
                grad,
                self.bias.is_some(),
                dx_epilogue,
            )?;
            let stored = p.get(single)?.shape().to_vec();
            accumulate(s, grads, single, gw.reshape(&stored)?)?;
            if let (Some(name), Some(gb)) = (&self.bias, gb) {
                accumulate(s, grads, name, gb)?;
            }
            return Ok(gx);
        }
        let rows: Vec<usize> = self.blocks.iter().map(|b| b.1).collect();
        let parts = concat_backward(s, grad, &rows, -1)?;
        let mut gx: Option<Tensor> = None;
        for ((name, _), g) in self.blocks.iter().zip(&parts) {
            let (gx_part, gw, _) =
                linear_backward_epilogue(s, &saved.x, &p.matrix(name)?, g, false, Epilogue::None)?;
            let stored = p.get(name)?.shape().to_vec();
            accumulate(s, grads, name, gw.reshape(&stored)?)?;
            gx = Some(match gx {
                Some(acc) => add(s, &acc, &gx_part)?,
                None => gx_part,
            });
        }
        if let Some(name) = &self.bias {
            let (_, gb) = add_backward(s, grad, &[self.out])?;
            accumulate(s, grads, name, gb)?;
        }
        let gx = gx.ok_or_else(|| crate::Error::InvalidArgument {
            op: "linear backward",
            detail: format!("{} has no weight blocks", self.weight),
        })?;
        match dx_epilogue {
            Epilogue::None => Ok(gx),
            Epilogue::GeluGrad(x) => gelu_backward(s, x, &gx),
            Epilogue::Residual(r) => add(s, &gx, r),
            Epilogue::Gelu { .. } => Err(crate::Error::InvalidArgument {
                op: "linear backward",
                detail: "a GELU epilogue on an input gradient".into(),
            }),
        }
    }
}

/// `nn.LayerNorm(dim)` over the last axis (eps 1e-5, PyTorch's default).
#[derive(Debug, Clone)]
pub struct LayerNorm {
    weight: String,
    bias: String,
    dim: usize,
}

/// The input of a [`LayerNorm`] and its statistics.
pub struct LayerNormLayerSaved {
    x: Tensor,
    stats: LayerNormSaved,
}

/// PyTorch's default LayerNorm eps.
pub const LN_EPS: f32 = 1e-5;

impl LayerNorm {
    pub fn new(prefix: &str, dim: usize) -> Self {
        Self {
            weight: format!("{prefix}.weight"),
            bias: format!("{prefix}.bias"),
            dim,
        }
    }

    pub fn forward(
        &self,
        s: &mut Step<'_>,
        p: &ParamStore,
        x: &Tensor,
    ) -> Result<(Tensor, LayerNormLayerSaved)> {
        let (y, stats) = layernorm(s, x, p.get(&self.weight)?, p.get(&self.bias)?, LN_EPS)?;
        Ok((
            y,
            LayerNormLayerSaved {
                x: x.clone(),
                stats,
            },
        ))
    }
}

impl Layer for LayerNorm {
    type Saved = LayerNormLayerSaved;

    fn spec(&self, spec: &mut Spec) {
        let prefix = &self.weight[..self.weight.len() - ".weight".len()];
        norm_spec(spec, prefix, self.dim);
    }

    fn backward(
        &self,
        s: &mut Step<'_>,
        p: &ParamStore,
        saved: &LayerNormLayerSaved,
        grad: &Tensor,
        grads: &mut Grads,
    ) -> Result<Tensor> {
        let (gx, gg, gb) =
            layernorm_backward(s, &saved.x, p.get(&self.weight)?, &saved.stats, grad)?;
        accumulate(s, grads, &self.weight, gg)?;
        accumulate(s, grads, &self.bias, gb)?;
        Ok(gx)
    }
}

/// `nn.BatchNorm1d/2d(dim)` (eps 1e-5, momentum 0.1) followed by ReLU, over rows of
/// `dim` channels. Train mode normalises by the batch and updates the running
/// statistics and `num_batches_tracked`; eval mode uses the running statistics.
#[derive(Debug, Clone)]
pub struct BatchNormRelu {
    prefix: String,
    dim: usize,
}

/// The input, the pre-ReLU output and the batch statistics of a [`BatchNormRelu`].
pub struct BatchNormReluSaved {
    x: Tensor,
    z: Tensor,
    stats: BatchNormSaved,
}

/// PyTorch's BatchNorm defaults.
pub const BN_EPS: f32 = 1e-5;
pub const BN_MOMENTUM: f32 = 0.1;

impl BatchNormRelu {
    pub fn new(prefix: &str, dim: usize) -> Self {
        Self {
            prefix: prefix.to_string(),
            dim,
        }
    }

    fn n(&self, leaf: &str) -> String {
        format!("{}.{leaf}", self.prefix)
    }

    pub fn forward(
        &self,
        s: &mut Step<'_>,
        p: &ParamStore,
        x: &Tensor,
        train: bool,
    ) -> Result<(Tensor, BatchNormReluSaved)> {
        let state = BatchNormState {
            running_mean: p.get(&self.n("running_mean"))?,
            running_var: p.get(&self.n("running_var"))?,
            eps: BN_EPS,
            momentum: BN_MOMENTUM,
            train,
        };
        let (z, stats) = batchnorm(
            s,
            x,
            p.get(&self.n("weight"))?,
            p.get(&self.n("bias"))?,
            &state,
        )?;
        if train {
            p.bump(&self.n("num_batches_tracked"), 1);
        }
        let y = relu(s, &z)?;
        Ok((
            y,
            BatchNormReluSaved {
                x: x.clone(),
                z,
                stats,
            },
        ))
    }
}

impl Layer for BatchNormRelu {
    type Saved = BatchNormReluSaved;

    fn spec(&self, spec: &mut Spec) {
        batchnorm_spec(spec, &self.prefix, self.dim);
    }

    fn backward(
        &self,
        s: &mut Step<'_>,
        p: &ParamStore,
        saved: &BatchNormReluSaved,
        grad: &Tensor,
        grads: &mut Grads,
    ) -> Result<Tensor> {
        let g_z = relu_backward(s, &saved.z, grad)?;
        let weight = self.n("weight");
        let (gx, gg, gb) = batchnorm_backward(s, &saved.x, p.get(&weight)?, &saved.stats, &g_z)?;
        accumulate(s, grads, &weight, gg)?;
        accumulate(s, grads, &self.n("bias"), gb)?;
        Ok(gx)
    }
}

/// A 1×1 convolution without bias (stored with trailing unit dims) followed by
/// BatchNorm and ReLU: `conv.0`, `conv.1` of the reference's `nn.Sequential`s.
#[derive(Debug, Clone)]
pub struct ConvBnRelu {
    pub conv: Linear,
    pub bn: BatchNormRelu,
}

/// What a [`ConvBnRelu`]'s backward needs.
pub struct ConvBnReluSaved {
    conv: LinearSaved,
    bn: BatchNormReluSaved,
}

impl ConvBnRelu {
    /// `conv` (out, input…) without bias, then `bn` over `out` channels.
    pub fn new(conv: &str, bn: &str, out: usize, input: &[usize]) -> Self {
        Self {
            conv: Linear::new(conv, out, input, false),
            bn: BatchNormRelu::new(bn, out),
        }
    }

    pub fn forward(
        &self,
        s: &mut Step<'_>,
        p: &ParamStore,
        x: &Tensor,
        train: bool,
    ) -> Result<(Tensor, ConvBnReluSaved)> {
        let (h, conv) = self.conv.forward(s, p, x)?;
        let (y, bn) = self.bn.forward(s, p, &h, train)?;
        Ok((y, ConvBnReluSaved { conv, bn }))
    }
}

impl Layer for ConvBnRelu {
    type Saved = ConvBnReluSaved;

    fn spec(&self, spec: &mut Spec) {
        self.conv.spec(spec);
        self.bn.spec(spec);
    }

    fn backward(
        &self,
        s: &mut Step<'_>,
        p: &ParamStore,
        saved: &ConvBnReluSaved,
        grad: &Tensor,
        grads: &mut Grads,
    ) -> Result<Tensor> {
        let g_h = self.bn.backward(s, p, &saved.bn, grad, grads)?;
        self.conv.backward(s, p, &saved.conv, &g_h, grads)
    }
}

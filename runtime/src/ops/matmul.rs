//! Batched matmul with transposed operands and fused bias, forward and backward.
//!
//! `a` is (m, k) — or (k, m) with `trans_a` — optionally with a leading batch axis;
//! `b` is (k, n) — or (n, k) with `trans_b` — likewise. A rank-2 operand broadcasts
//! over the other's batch. `bias` (n) is added to every row. torch.nn.Linear is
//! `matmul(x, weight, Some(bias), false, true)`. An [`Epilogue`] finishes each element
//! in the same kernel: a GELU, a residual add, or the gradient through a GELU.

use edge4d_shaders::{dense, Shader};

use super::{f32_input, u, util::colsum};
use crate::step::{read, write, MAX_GROUPS};
use crate::{DType, Error, Result, Step, Tensor};

/// The rungs of the matmul ladder: `shaders/wgsl/dense/matmul_naive.wgsl`,
/// `matmul_tiled.wgsl`, `matmul_regblock.wgsl` and `matmul_regblock8.wgsl`, all with
/// the same bindings, declared once in `matmul_common.wgsl`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatmulKernel {
    Naive,
    Tiled,
    RegisterBlocked,
    /// 8x8 accumulators per invocation.
    RegisterBlocked8,
}

impl MatmulKernel {
    pub const ALL: [MatmulKernel; 4] = [
        Self::Naive,
        Self::Tiled,
        Self::RegisterBlocked,
        Self::RegisterBlocked8,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Self::Naive => "naive",
            Self::Tiled => "tiled",
            Self::RegisterBlocked => "regblock",
            Self::RegisterBlocked8 => "regblock8",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.name() == s)
    }

    /// The kernel and its output tile: (columns, rows) per workgroup.
    fn shader(self) -> (&'static Shader, usize, usize) {
        match self {
            Self::Naive => (&dense::MATMUL_NAIVE, 16, 16),
            Self::Tiled => (&dense::MATMUL_TILED, 16, 16),
            Self::RegisterBlocked => (&dense::MATMUL_REGBLOCK, 64, 64),
            Self::RegisterBlocked8 => (&dense::MATMUL_REGBLOCK8, 64, 64),
        }
    }

    /// The rung measured fastest for this kind of adapter, unless `EDGE4D_MATMUL` named
    /// one when the device opened (read once, see [`MatmulKernel::from_env`]).
    pub fn for_device(dev: &crate::Device) -> Self {
        // Measured fastest on lavapipe/llvmpipe (1.6 GFLOP/s at 1024 against 0.84 for
        // regblock); 8x8 register tiles in 64-invocation workgroups suit GPUs as well.
        // The CPU backend runs every rung as the same native product.
        dev.matmul_override.unwrap_or(Self::RegisterBlocked8)
    }

    /// The rung `EDGE4D_MATMUL` names (None when unset or empty); an unknown name is an
    /// error that lists the rungs.
    pub fn from_env() -> Result<Option<Self>> {
        match std::env::var("EDGE4D_MATMUL") {
            Ok(v) if !v.trim().is_empty() => {
                Self::parse(v.trim())
                    .map(Some)
                    .ok_or_else(|| Error::InvalidArgument {
                        op: "EDGE4D_MATMUL",
                        detail: format!(
                        "{v:?} is not a matmul kernel: expected naive, tiled, regblock or regblock8"
                    ),
                    })
            }
            _ => Ok(None),
        }
    }
}

/// What a product does to each element after the bias, in the same dispatch
/// (`matmul_common.wgsl`'s store_c). `pre` is the product with its bias.
#[derive(Debug, Clone, Copy, Default)]
pub enum Epilogue<'t> {
    #[default]
    None,
    /// C = pre, plus a second output gelu(pre) (+ `residual`, shaped like C).
    Gelu { residual: Option<&'t Tensor> },
    /// C = pre + residual (shaped like C).
    Residual(&'t Tensor),
    /// C = pre · gelu'(x): the gradient through a GELU whose input was x (shaped like C).
    GeluGrad(&'t Tensor),
}

impl<'t> Epilogue<'t> {
    /// The kernel's epilogue bits and its elementwise operand.
    fn bits(self) -> (u32, Option<&'t Tensor>) {
        const GELU: u32 = 1;
        const ADD_AUX: u32 = 2;
        const GELU_GRAD: u32 = 4;
        match self {
            Self::None => (0, None),
            Self::Gelu { residual: None } => (GELU, None),
            Self::Gelu { residual: Some(r) } => (GELU | ADD_AUX, Some(r)),
            Self::Residual(r) => (ADD_AUX, Some(r)),
            Self::GeluGrad(x) => (GELU_GRAD, Some(x)),
        }
    }

    fn check(self, op: &'static str, out_shape: &[usize]) -> Result<()> {
        if let (_, Some(t)) = self.bits() {
            f32_input(op, "epilogue operand", t)?;
            if t.numel() != out_shape.iter().product::<usize>() {
                return Err(Error::Shape {
                    op,
                    detail: format!(
                        "epilogue operand {:?} should hold the output's {out_shape:?}",
                        t.shape()
                    ),
                });
            }
        }
        Ok(())
    }
}

/// Matrix dimensions of one operand: (batch, rows, cols) as stored.
fn dims3(op: &'static str, what: &'static str, t: &Tensor) -> Result<(usize, usize, usize)> {
    f32_input(op, what, t)?;
    match *t.shape() {
        [r, c] => Ok((1, r, c)),
        [b, r, c] => Ok((b, r, c)),
        ref s => Err(Error::Shape {
            op,
            detail: format!("{what} must be rank 2 or 3, got {s:?}"),
        }),
    }
}

/// The geometry of one product C = op(A) op(B).
#[derive(Debug, Clone, Copy)]
struct Geometry {
    batch: usize,
    m: usize,
    n: usize,
    k: usize,
    a_batched: bool,
    b_batched: bool,
}

fn geometry(
    op: &'static str,
    a: &Tensor,
    b: &Tensor,
    trans_a: bool,
    trans_b: bool,
) -> Result<Geometry> {
    let (ba, ra, ca) = dims3(op, "a", a)?;
    let (bb, rb, cb) = dims3(op, "b", b)?;
    let (m, ka) = if trans_a { (ca, ra) } else { (ra, ca) };
    let (kb, n) = if trans_b { (cb, rb) } else { (rb, cb) };
    if ka != kb {
        return Err(Error::Shape {
            op,
            detail: format!(
                "inner dimensions differ: a {:?} (trans {trans_a}) vs b {:?} (trans {trans_b})",
                a.shape(),
                b.shape()
            ),
        });
    }
    let a_batched = a.shape().len() == 3;
    let b_batched = b.shape().len() == 3;
    if a_batched && b_batched && ba != bb {
        return Err(Error::Shape {
            op,
            detail: format!("batch sizes differ: a {:?} vs b {:?}", a.shape(), b.shape()),
        });
    }
    Ok(Geometry {
        batch: ba.max(bb),
        m,
        n,
        k: ka,
        a_batched,
        b_batched,
    })
}

/// Records C = op(A) op(B) (+ bias) for raw operands with explicit batch strides.
#[allow(clippy::too_many_arguments)]
fn record(
    s: &mut Step<'_>,
    kernel: MatmulKernel,
    a: &Tensor,
    b: &Tensor,
    bias: Option<&Tensor>,
    g: Geometry,
    trans_a: bool,
    trans_b: bool,
    out_shape: &[usize],
    epilogue: Epilogue<'_>,
) -> Result<(Tensor, Option<Tensor>)> {
    let (shader, col_tile, row_tile) = kernel.shader();
    // A batch-broadcast B with a plain A is one tall product: fold the batch into m.
    let (batch, m, a_stride) = if g.a_batched && !g.b_batched && !trans_a {
        (1, g.batch * g.m, 0)
    } else {
        (g.batch, g.m, if g.a_batched { g.m * g.k } else { 0 })
    };
    let b_stride = if g.b_batched { g.k * g.n } else { 0 };
    if batch > MAX_GROUPS as usize
        || m.div_ceil(row_tile) > MAX_GROUPS as usize
        || g.n.div_ceil(col_tile) > MAX_GROUPS as usize
    {
        return Err(Error::InvalidArgument {
            op: "matmul",
            detail: format!("grid too large for {batch} x {m} x {}", g.n),
        });
    }
    let c = s.alloc(out_shape, DType::F32);
    let (bits, aux) = epilogue.bits();
    // Unused epilogue slots still need bindings: the act slot a one-float placeholder
    // (it is read-write, so it may alias nothing), the aux slot `a`.
    let act = match epilogue {
        Epilogue::Gelu { .. } => s.alloc(out_shape, DType::F32),
        _ => s.alloc(&[1], DType::F32),
    };
    let params = crate::params::dense::Matmul {
        batch: u(batch),
        m: u(m),
        n: u(g.n),
        k: u(g.k),
        trans_a: trans_a as u32,
        trans_b: trans_b as u32,
        a_batch_stride: u(a_stride),
        b_batch_stride: u(b_stride),
        has_bias: bias.is_some() as u32,
        epilogue: bits,
        ..Default::default()
    };
    let binds = [
        read(0, a),
        read(1, b),
        read(2, bias.unwrap_or(a)),
        write(3, &c),
        write(5, &act),
        read(6, aux.unwrap_or(a)),
    ];
    s.dispatch(
        shader,
        "main",
        &binds,
        4,
        &params,
        [u(g.n.div_ceil(col_tile)), u(m.div_ceil(row_tile)), u(batch)],
    );
    let act = matches!(epilogue, Epilogue::Gelu { .. }).then_some(act);
    Ok((c, act))
}

fn out_shape(g: Geometry) -> Vec<usize> {
    if g.a_batched || g.b_batched {
        vec![g.batch, g.m, g.n]
    } else {
        vec![g.m, g.n]
    }
}

/// C = op(A) op(B) + bias.
pub fn matmul(
    s: &mut Step<'_>,
    a: &Tensor,
    b: &Tensor,
    bias: Option<&Tensor>,
    trans_a: bool,
    trans_b: bool,
) -> Result<Tensor> {
    matmul_epilogue(s, a, b, bias, trans_a, trans_b, Epilogue::None).map(|(c, _)| c)
}

/// C = op(A) op(B) + bias finished by `epilogue`, and the GELU's output when the
/// epilogue is [`Epilogue::Gelu`].
pub fn matmul_epilogue(
    s: &mut Step<'_>,
    a: &Tensor,
    b: &Tensor,
    bias: Option<&Tensor>,
    trans_a: bool,
    trans_b: bool,
    epilogue: Epilogue<'_>,
) -> Result<(Tensor, Option<Tensor>)> {
    let g = geometry("matmul", a, b, trans_a, trans_b)?;
    epilogue.check("matmul", &out_shape(g))?;
    if let Some(bias) = bias {
        f32_input("matmul", "bias", bias)?;
        if bias.numel() != g.n {
            return Err(Error::Shape {
                op: "matmul",
                detail: format!("bias {:?} should have {} elements", bias.shape(), g.n),
            });
        }
    }
    record(
        s,
        MatmulKernel::for_device(s.device()),
        a,
        b,
        bias,
        g,
        trans_a,
        trans_b,
        &out_shape(g),
        epilogue,
    )
}

/// Gradients of `matmul`.
pub struct MatmulGrads {
    pub a: Tensor,
    pub b: Tensor,
    pub bias: Option<Tensor>,
}

/// Gradients (dA, dB, dbias) given dC. A broadcast operand's gradient is summed over
/// the batch (in a fixed order, without atomics).
pub fn matmul_backward(
    s: &mut Step<'_>,
    a: &Tensor,
    b: &Tensor,
    grad: &Tensor,
    trans_a: bool,
    trans_b: bool,
    with_bias: bool,
) -> Result<MatmulGrads> {
    matmul_backward_epilogue(s, a, b, grad, trans_a, trans_b, with_bias, Epilogue::None)
}

/// `matmul_backward` whose dA is finished by `grad_a_epilogue` (e.g. the gradient
/// through the GELU that made A: [`Epilogue::GeluGrad`]); A must be stored untransposed
/// and not broadcast over the batch.
#[allow(clippy::too_many_arguments)]
pub fn matmul_backward_epilogue(
    s: &mut Step<'_>,
    a: &Tensor,
    b: &Tensor,
    grad: &Tensor,
    trans_a: bool,
    trans_b: bool,
    with_bias: bool,
    grad_a_epilogue: Epilogue<'_>,
) -> Result<MatmulGrads> {
    let g = geometry("matmul_backward", a, b, trans_a, trans_b)?;
    if !matches!(grad_a_epilogue, Epilogue::None) {
        if trans_a || (!g.a_batched && g.batch > 1) {
            return Err(Error::InvalidArgument {
                op: "matmul_backward",
                detail: format!(
                    "an epilogue on dA needs A stored untransposed and unbroadcast, got a {:?} (trans {trans_a}) against a batch of {}",
                    a.shape(),
                    g.batch
                ),
            });
        }
        grad_a_epilogue.check("matmul_backward", a.shape())?;
    }
    f32_input("matmul_backward", "grad", grad)?;
    if grad.shape() != out_shape(g).as_slice() {
        return Err(Error::Shape {
            op: "matmul_backward",
            detail: format!("grad {:?} should be {:?}", grad.shape(), out_shape(g)),
        });
    }
    let kernel = MatmulKernel::for_device(s.device());
    let gc = grad.reshape(&[g.batch, g.m, g.n])?;
    // Rank-2 operands stay rank 2 so they broadcast over dC's batch.
    let (a3, b3) = (a.clone(), b.clone());
    // Per-batch gradient of each operand (as stored), then summed when broadcast.
    // With C = A' B' (A' = op(A), B' = op(B)): dA' = dC B'^T and dB' = A'^T dC.
    let ga = if !trans_a {
        let gg = geometry("matmul_backward", &gc, &b3, false, !trans_b)?;
        record(
            s,
            kernel,
            &gc,
            &b3,
            None,
            gg,
            false,
            !trans_b,
            &[g.batch, g.m, g.k],
            grad_a_epilogue,
        )?
        .0
    } else {
        let gg = geometry("matmul_backward", &b3, &gc, trans_b, true)?;
        record(
            s,
            kernel,
            &b3,
            &gc,
            None,
            gg,
            trans_b,
            true,
            &[g.batch, g.k, g.m],
            Epilogue::None,
        )?
        .0
    };
    let (_, col_tile, row_tile) = kernel.shader();
    let parts = if !trans_a && g.batch == 1 {
        split_k(
            g.m,
            g.k.div_ceil(row_tile) * g.n.div_ceil(col_tile),
            g.k * g.n,
        )
    } else {
        1
    };
    let gb = if parts > 1 {
        // The weight gradient of a long, narrow product (e.g. a per-neighbour MLP over
        // B·L·n·k rows): one workgroup per output tile would walk every row alone, so
        // the rows are cut into `parts` chunks whose partial products are summed in a
        // fixed order.
        let chunk = g.m / parts;
        let a_parts = a.reshape(&[parts, chunk, g.k])?;
        let g_parts = grad.reshape(&[parts, chunk, g.n])?;
        let partial = if trans_b {
            let gg = geometry("matmul_backward", &g_parts, &a_parts, true, false)?;
            record(
                s,
                kernel,
                &g_parts,
                &a_parts,
                None,
                gg,
                true,
                false,
                &[parts, g.n, g.k],
                Epilogue::None,
            )?
            .0
        } else {
            let gg = geometry("matmul_backward", &a_parts, &g_parts, true, false)?;
            record(
                s,
                kernel,
                &a_parts,
                &g_parts,
                None,
                gg,
                true,
                false,
                &[parts, g.k, g.n],
                Epilogue::None,
            )?
            .0
        };
        colsum(s, &partial, parts, g.k * g.n)?
    } else if !trans_b {
        let gg = geometry("matmul_backward", &a3, &gc, !trans_a, false)?;
        record(
            s,
            kernel,
            &a3,
            &gc,
            None,
            gg,
            !trans_a,
            false,
            &[g.batch, g.k, g.n],
            Epilogue::None,
        )?
        .0
    } else {
        let gg = geometry("matmul_backward", &gc, &a3, true, trans_a)?;
        record(
            s,
            kernel,
            &gc,
            &a3,
            None,
            gg,
            true,
            trans_a,
            &[g.batch, g.n, g.k],
            Epilogue::None,
        )?
        .0
    };
    let reduce = |s: &mut Step<'_>, t: Tensor, batched: bool, shape: &[usize]| -> Result<Tensor> {
        if batched || g.batch == 1 {
            t.reshape(shape)
        } else {
            colsum(s, &t, g.batch, t.numel() / g.batch)?.reshape(shape)
        }
    };
    let ga = reduce(s, ga, g.a_batched, a.shape())?;
    let gb = reduce(s, gb, g.b_batched, b.shape())?;
    let gbias = if with_bias {
        Some(colsum(s, grad, g.batch * g.m, g.n)?)
    } else {
        None
    };
    Ok(MatmulGrads {
        a: ga,
        b: gb,
        bias: gbias,
    })
}

/// How many chunks to cut a weight gradient's reduction of `m` rows into: more than
/// one only when the output has few tiles (`tiles`) to spread over workgroups and the
/// reduction is long; chunks of at least 512 rows, at most 64 of them, and partial
/// products of at most 16 MiB (`out_elems` floats each).
fn split_k(m: usize, tiles: usize, out_elems: usize) -> usize {
    if tiles >= 32 || m < 2048 {
        return 1;
    }
    let most = (m / 512).min(64).min((4 << 20) / out_elems.max(1));
    (2..=most).rev().find(|p| m % p == 0).unwrap_or(1)
}

/// Records one product with a chosen rung (for the benchmark ladder and its tests).
pub fn matmul_with(
    s: &mut Step<'_>,
    kernel: MatmulKernel,
    a: &Tensor,
    b: &Tensor,
    trans_a: bool,
    trans_b: bool,
) -> Result<Tensor> {
    matmul_with_epilogue(s, kernel, a, b, None, trans_a, trans_b, Epilogue::None).map(|(c, _)| c)
}

/// `matmul_epilogue` with a chosen rung (tests run every epilogue on every rung).
#[allow(clippy::too_many_arguments)]
pub fn matmul_with_epilogue(
    s: &mut Step<'_>,
    kernel: MatmulKernel,
    a: &Tensor,
    b: &Tensor,
    bias: Option<&Tensor>,
    trans_a: bool,
    trans_b: bool,
    epilogue: Epilogue<'_>,
) -> Result<(Tensor, Option<Tensor>)> {
    let g = geometry("matmul", a, b, trans_a, trans_b)?;
    let out = out_shape(g);
    epilogue.check("matmul", &out)?;
    record(s, kernel, a, b, bias, g, trans_a, trans_b, &out, epilogue)
}

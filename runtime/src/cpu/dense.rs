//! Twin of `shaders/wgsl/dense/`: every rung of the matmul ladder has the same bindings
//! and `Params` (`matmul_common.wgsl`), so one native product serves them all, through
//! the `gemm` crate (packed, SIMD micro-kernels, multithreaded on rayon). Operand
//! transposes and batch broadcasts become strides; the bias is the destination's
//! starting value, so each element is dot + bias as on the GPU. The epilogue
//! (`matmul_common.wgsl`'s store_c) follows over the same output rows.

use gemm::Parallelism;
use rayon::prelude::*;

use crate::params::dense;

use super::activation::{gelu, gelu_grad};
use super::{par_chunks, par_rows2, Args, KernelFn, ELEMENTS};

const EPI_GELU: u32 = 1;
const EPI_ADD_AUX: u32 = 2;
const EPI_GELU_GRAD: u32 = 4;

pub(super) fn twin(name: &str, entry: &str) -> Option<KernelFn> {
    match (name, entry) {
        ("matmul_naive" | "matmul_tiled" | "matmul_regblock" | "matmul_regblock8", "main") => {
            Some(matmul)
        }
        _ => None,
    }
}

fn matmul(args: &Args<'_>) {
    let p: dense::Matmul = args.params();
    let [batch, m, n, k, a_stride, b_stride] =
        [p.batch, p.m, p.n, p.k, p.a_batch_stride, p.b_batch_stride].map(|v| v as usize);
    let (a, b, bias) = (args.f32(0), args.f32(1), args.f32(2));
    let c = &mut args.f32_mut(3)[..batch * m * n];
    let has_bias = p.has_bias != 0;
    // gemm reads through raw pointers: every operand must cover what it will read.
    assert!(
        a.len() >= (batch - 1) * a_stride + m * k
            && b.len() >= (batch - 1) * b_stride + k * n
            && (!has_bias || bias.len() >= n),
        "matmul operands shorter than their geometry"
    );
    // op(A)[row, kk] and op(B)[kk, col] as (row stride, column stride).
    let (a_rs, a_cs) = if p.trans_a != 0 { (1, m) } else { (k, 1) };
    let (b_rs, b_cs) = if p.trans_b != 0 { (1, k) } else { (n, 1) };
    let one = |bt: usize, out: &mut [f32], parallelism: Parallelism| {
        if has_bias {
            for row in out.chunks_mut(n) {
                row.copy_from_slice(&bias[..n]);
            }
        } else if k == 0 {
            out.fill(0.0);
        }
        if k == 0 {
            return;
        }
        unsafe {
            gemm::gemm(
                m,
                n,
                k,
                out.as_mut_ptr(),
                1,
                n as isize,
                has_bias,
                a.as_ptr().add(bt * a_stride),
                a_cs as isize,
                a_rs as isize,
                b.as_ptr().add(bt * b_stride),
                b_cs as isize,
                b_rs as isize,
                1.0f32,
                1.0f32,
                false,
                false,
                false,
                parallelism,
            );
        }
    };
    if batch == 1 || batch < rayon::current_num_threads() {
        for (bt, out) in c.chunks_mut(m * n).enumerate() {
            one(bt, out, Parallelism::Rayon(0));
        }
    } else {
        c.par_chunks_mut(m * n)
            .enumerate()
            .for_each(|(bt, out)| one(bt, out, Parallelism::None));
    }
    if p.epilogue != 0 {
        epilogue(args, p.epilogue, c);
    }
}

/// store_c's epilogue over the finished products `c`, in parallel; one plain loop per
/// kind, so each vectorises as the separate elementwise kernels did.
fn epilogue(args: &Args<'_>, bits: u32, c: &mut [f32]) {
    let n = c.len();
    let aux = args.f32(6);
    if bits & (EPI_ADD_AUX | EPI_GELU_GRAD) != 0 {
        assert!(aux.len() >= n, "matmul epilogue operand shorter than C");
    }
    let aux = &aux[..if bits & (EPI_ADD_AUX | EPI_GELU_GRAD) != 0 {
        n
    } else {
        0
    }];
    if bits & EPI_GELU_GRAD != 0 {
        par_chunks(c, ELEMENTS, |start, out| {
            for (v, x) in out.iter_mut().zip(&aux[start..]) {
                *v *= gelu_grad(*x);
            }
        });
    }
    if bits & EPI_GELU != 0 {
        let act = args.f32_mut(5);
        assert!(act.len() >= n, "matmul activation output shorter than C");
        let with_residual = bits & EPI_ADD_AUX != 0;
        par_rows2(c, 1, &mut act[..n], 1, |start, pre, act| {
            for (y, v) in act.iter_mut().zip(pre.iter()) {
                *y = gelu(*v);
            }
            if with_residual {
                for (y, r) in act.iter_mut().zip(&aux[start..]) {
                    *y += r;
                }
            }
        });
    } else if bits & EPI_ADD_AUX != 0 {
        par_chunks(c, ELEMENTS, |start, out| {
            for (v, r) in out.iter_mut().zip(&aux[start..]) {
                *v += r;
            }
        });
    }
}

//! The `Params` uniform of every WGSL kernel as a `#[repr(C)]` Pod struct, one module
//! per kernel family (`shaders/wgsl/<family>/`). The op wrappers fill them, the GPU
//! receives their bytes as the uniform, and the CPU twins read them back; a test checks
//! each one's size against the WGSL struct by naga reflection. Padding fields keep each
//! struct a multiple of 16 bytes, as WGSL lays out a uniform struct.

/// A kernel's `Params` uniform: only the structs of this module are.
pub trait Uniform: bytemuck::Pod {}

macro_rules! params {
    ($(#[$doc:meta])* $name:ident { $($field:ident : $ty:ty),* $(,)? }) => {
        $(#[$doc])*
        #[repr(C)]
        #[derive(Clone, Copy, Debug, Default, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
        pub struct $name {
            $(pub $field: $ty),*
        }

        impl $crate::params::Uniform for $name {}
    };
}

/// `dense/matmul_common.wgsl` (every rung of the ladder).
pub mod dense {
    params!(
        /// C[b] = op(A[b]) op(B[b]) (+ bias), then the epilogue's bits
        /// (`ops::matmul::Epilogue`); a batch stride of 0 broadcasts.
        Matmul {
            batch: u32,
            m: u32,
            n: u32,
            k: u32,
            trans_a: u32,
            trans_b: u32,
            a_batch_stride: u32,
            b_batch_stride: u32,
            has_bias: u32,
            epilogue: u32,
            _pad: [u32; 2],
        }
    );
}

/// `attention/`.
pub mod attention {
    params!(
        /// Heads folded into bh; q (bh, tq, dh), k and v (bh, tk, dh); scale = dh^-½.
        Flash {
            bh: u32,
            tq: u32,
            tk: u32,
            dh: u32,
            scale: f32,
            _pad: [u32; 3],
        }
    );
}

/// `elementwise/`.
pub mod elementwise {
    params!(
        /// add, mul: b[i % nb] pairs with a[i].
        Binary { n: u32, nb: u32, _pad: [u32; 2] }
    );
    params!(
        /// y = alpha x.
        Scale { n: u32, alpha: f32, _pad: [u32; 2] }
    );
}

/// `activation/`.
pub mod activation {
    params!(
        /// ReLU and GELU, forward and backward.
        Elementwise { n: u32, _pad: [u32; 3] }
    );
}

/// `norm/`.
pub mod norm {
    params!(
        /// LayerNorm, softmax and L2 normalisation over rows of length d.
        Rows { rows: u32, d: u32, eps: f32, _pad: u32 }
    );
    params!(
        /// BatchNorm over (n, c, l) per channel.
        BatchNorm {
            n: u32,
            c: u32,
            l: u32,
            eps: f32,
            momentum: f32,
            train: u32,
            _pad: [u32; 2],
        }
    );
}

/// `reduce/`.
pub mod reduce {
    params!(
        /// Reductions over the middle axis of (outer, len, inner).
        Axis { outer: u32, len: u32, inner: u32, _pad: u32 }
    );
    params!(
        /// Column sums of (rows, cols) in chunks of rows.
        Colsum { rows: u32, cols: u32, chunk_rows: u32, chunks: u32 }
    );
}

/// `layout/`.
pub mod layout {
    params!(
        /// src (outer, src_len, inner)[.., src_start + a, ..] -> dst (outer, dst_len, inner).
        CopyAxis {
            outer: u32,
            inner: u32,
            len: u32,
            src_len: u32,
            src_start: u32,
            dst_len: u32,
            dst_start: u32,
            _pad: u32,
        }
    );
    params!(
        /// Permutation of a tensor of rank <= 8: output dimensions and the source
        /// stride of each output axis (WGSL: two array<vec4<u32>, 2>).
        Permute {
            n: u32,
            rank: u32,
            _pad: [u32; 2],
            out_dims: [u32; 8],
            src_strides: [u32; 8],
        }
    );
}

/// `loss/`.
pub mod loss {
    params!(
        /// Softmax cross-entropy over (batch, classes).
        CrossEntropy { batch: u32, classes: u32, _pad: [u32; 2] }
    );
}

/// `optim/`.
pub mod optim {
    params!(
        /// torch.optim.SGD.
        Sgd {
            n: u32,
            lr: f32,
            momentum: f32,
            weight_decay: f32,
            nesterov: u32,
            _pad: [u32; 3],
        }
    );
    params!(
        /// torch.optim.AdamW.
        Adamw {
            n: u32,
            lr: f32,
            beta1: f32,
            beta2: f32,
            eps: f32,
            weight_decay: f32,
            step_size: f32,
            bias2_sqrt: f32,
        }
    );
    params!(
        /// Clipping by the global norm: n elements (or slots), this tensor's slot.
        Clip { n: u32, slot: u32, max_norm: f32, _pad: u32 }
    );
}

/// `util/`.
pub mod util {
    params!(
        /// Fill with one value.
        Fill { n: u32, value: f32, _pad: [u32; 2] }
    );
    params!(
        /// Dropout with a seeded, stateless mask.
        Dropout { n: u32, seed: u32, keep_threshold: u32, inv_keep: f32 }
    );
}

/// `point/`.
pub mod point {
    params!(
        /// Farthest point sampling, one cloud per (clip, output frame).
        Fps {
            clouds: u32,
            n: u32,
            m: u32,
            log2_bs: u32,
            frames_out: u32,
            clip_frames: u32,
            _pad: [u32; 2],
        }
    );
    params!(
        /// Ball query over every temporal offset of every output frame.
        BallQuery {
            queries: u32,
            n: u32,
            points: u32,
            nsample: u32,
            radius2: f32,
            offsets: u32,
            frames_out: u32,
            clip_frames: u32,
        }
    );
    params!(
        /// k nearest neighbours (k <= 64).
        Knn { queries: u32, m: u32, points: u32, k: u32 }
    );
    params!(
        /// three_nn and its inverse-distance weights.
        ThreeNn { queries: u32, n: u32, m: u32, _pad: u32 }
    );
    params!(
        /// Row gathers and their scatter backward.
        Gather {
            out_rows: u32,
            channels: u32,
            group: u32,
            weighted: u32,
            x_stride: u32,
            _pad: [u32; 3],
        }
    );
    params!(
        /// P4DConv's displacements and the anchors' gradient.
        Displacement {
            entries: u32,
            n: u32,
            k: u32,
            offsets: u32,
            dt_shift: f32,
            _pad: [u32; 3],
        }
    );
    params!(
        /// The inverse of an index map.
        InverseIndex { entries: u32, targets: u32, _pad: [u32; 2] }
    );
    params!(
        /// C2P partial views.
        PartialView {
            frames: u32,
            n: u32,
            m: u32,
            width: u32,
            height: u32,
            focal: f32,
            threshold: f32,
            seed: u32,
        }
    );
}

/// `p4dconv/`.
pub mod p4dconv {
    params!(
        /// conv_d fused with the max over k neighbours.
        ConvMax { rows: u32, k: u32, c: u32, _pad: u32 }
    );
}

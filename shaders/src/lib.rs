//! Every WGSL compute kernel of edge4d, one `.wgsl` file per op family member,
//! grouped by family under `wgsl/<family>/`. Sources are embedded at compile time;
//! `tests/validate.rs` parses and validates each with naga and names the file and
//! line of any error.

/// One WGSL source file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Shader {
    /// Family folder, e.g. `"dense"`.
    pub family: &'static str,
    /// File stem, e.g. `"matmul_tiled"`.
    pub name: &'static str,
    /// Path relative to this crate, for error messages.
    pub path: &'static str,
    /// The WGSL text (with its preludes, if any, in front).
    pub source: &'static str,
    /// Shared files prepended to this one in order (WGSL has no includes), each with
    /// its line count, so errors can be reported against the right file and line.
    pub preludes: &'static [(&'static str, usize)],
}

/// Lines in a text (newlines), at compile time.
pub const fn line_count(text: &str) -> usize {
    let b = text.as_bytes();
    let (mut i, mut n) = (0, 0);
    while i < b.len() {
        if b[i] == b'\n' {
            n += 1;
        }
        i += 1;
    }
    n
}

macro_rules! shader {
    ($family:literal, $name:literal) => {
        Shader {
            family: $family,
            name: $name,
            path: concat!("shaders/wgsl/", $family, "/", $name, ".wgsl"),
            source: include_str!(concat!("../wgsl/", $family, "/", $name, ".wgsl")),
            preludes: &[],
        }
    };
    // Preludes are named "family/stem".
    ($family:literal, $name:literal, preludes $($pre:literal),+) => {
        Shader {
            family: $family,
            name: $name,
            path: concat!("shaders/wgsl/", $family, "/", $name, ".wgsl"),
            source: concat!(
                $(include_str!(concat!("../wgsl/", $pre, ".wgsl")),)+
                include_str!(concat!("../wgsl/", $family, "/", $name, ".wgsl"))
            ),
            preludes: &[$((
                concat!("shaders/wgsl/", $pre, ".wgsl"),
                $crate::line_count(include_str!(concat!("../wgsl/", $pre, ".wgsl"))),
            )),+],
        }
    };
}

/// Matrix products (the matmul ladder).
pub mod dense {
    use super::Shader;
    pub const MATMUL_NAIVE: Shader =
        shader!("dense", "matmul_naive", preludes "activation/gelu_math", "dense/matmul_common");
    pub const MATMUL_TILED: Shader =
        shader!("dense", "matmul_tiled", preludes "activation/gelu_math", "dense/matmul_common");
    pub const MATMUL_REGBLOCK: Shader =
        shader!("dense", "matmul_regblock", preludes "activation/gelu_math", "dense/matmul_common");
    pub const MATMUL_REGBLOCK8: Shader = shader!("dense", "matmul_regblock8", preludes "activation/gelu_math", "dense/matmul_common");

    /// Shared text of the matmul rungs (not a kernel on its own).
    pub const MATMUL_COMMON: &str = "dense/matmul_common";
}

/// Elementwise arithmetic.
pub mod elementwise {
    use super::Shader;
    pub const BINARY: Shader = shader!("elementwise", "binary");
    pub const SCALE: Shader = shader!("elementwise", "scale");
}

/// Activation functions.
pub mod activation {
    use super::Shader;
    pub const RELU: Shader = shader!("activation", "relu");
    pub const GELU: Shader = shader!("activation", "gelu", preludes "activation/gelu_math");

    /// Shared GELU math (not a kernel on its own).
    pub const GELU_MATH: &str = "activation/gelu_math";
}

/// Fused attention (flash-style: no score matrix stored).
pub mod attention {
    use super::Shader;
    pub const FLASH: Shader = shader!("attention", "flash");
}

/// Normalisations and softmax.
pub mod norm {
    use super::Shader;
    pub const LAYERNORM: Shader = shader!("norm", "layernorm");
    pub const BATCHNORM: Shader = shader!("norm", "batchnorm");
    pub const SOFTMAX: Shader = shader!("norm", "softmax");
    pub const L2NORMALIZE: Shader = shader!("norm", "l2normalize");
}

/// Reductions.
pub mod reduce {
    use super::Shader;
    pub const AXIS: Shader = shader!("reduce", "axis");
    pub const COLSUM: Shader = shader!("reduce", "colsum");
}

/// Data movement: slices, concatenation, permutations.
pub mod layout {
    use super::Shader;
    pub const COPY_AXIS: Shader = shader!("layout", "copy_axis");
    pub const PERMUTE: Shader = shader!("layout", "permute");
}

/// Losses.
pub mod loss {
    use super::Shader;
    pub const CROSS_ENTROPY: Shader = shader!("loss", "cross_entropy");
}

/// Optimizer update rules.
pub mod optim {
    use super::Shader;
    pub const SGD: Shader = shader!("optim", "sgd");
    pub const ADAMW: Shader = shader!("optim", "adamw");
    pub const CLIP: Shader = shader!("optim", "clip");
}

/// Small utilities.
pub mod util {
    use super::Shader;
    pub const FILL: Shader = shader!("util", "fill");
    pub const DROPOUT: Shader = shader!("util", "dropout");
}

/// Point-cloud ops: sampling, neighbour search, gathers and their inverse index.
pub mod point {
    use super::Shader;
    pub const FPS: Shader = shader!("point", "fps");
    pub const BALL_QUERY: Shader = shader!("point", "ball_query");
    pub const PARTIAL_VIEW: Shader = shader!("point", "partial_view");
    pub const KNN: Shader = shader!("point", "knn");
    pub const THREE_NN: Shader = shader!("point", "three_nn");
    pub const GATHER: Shader = shader!("point", "gather");
    pub const INVERSE_INDEX: Shader = shader!("point", "inverse_index");
    pub const DISPLACEMENT: Shader = shader!("point", "displacement");
}

/// P4DConv-specific fused kernels.
pub mod p4dconv {
    use super::Shader;
    pub const CONV_MAX: Shader = shader!("p4dconv", "conv_max");
}

/// Every kernel source, for validation and tooling.
pub const ALL: &[Shader] = &[
    dense::MATMUL_NAIVE,
    dense::MATMUL_TILED,
    dense::MATMUL_REGBLOCK,
    dense::MATMUL_REGBLOCK8,
    elementwise::BINARY,
    elementwise::SCALE,
    activation::RELU,
    activation::GELU,
    attention::FLASH,
    norm::LAYERNORM,
    norm::BATCHNORM,
    norm::SOFTMAX,
    norm::L2NORMALIZE,
    reduce::AXIS,
    reduce::COLSUM,
    layout::COPY_AXIS,
    layout::PERMUTE,
    loss::CROSS_ENTROPY,
    optim::SGD,
    optim::ADAMW,
    optim::CLIP,
    util::FILL,
    util::DROPOUT,
    point::FPS,
    point::BALL_QUERY,
    point::PARTIAL_VIEW,
    point::KNN,
    point::THREE_NN,
    point::GATHER,
    point::INVERSE_INDEX,
    point::DISPLACEMENT,
    p4dconv::CONV_MAX,
];

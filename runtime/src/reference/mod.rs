//! Plain CPU references for every op: the specification in code, computed in f64,
//! slow and obvious. Tests compare GPU results to these and check each backward
//! here against finite differences. Not for production use.

pub mod activation;
pub mod attention;
pub mod batchnorm;
pub mod cross_entropy;
pub mod dropout;
pub mod elementwise;
pub mod layernorm;
pub mod layout;
pub mod matmul;
pub mod mse;
pub mod optim;
pub mod p4;
pub mod partial_view;
pub mod point;
pub mod reduce;
pub mod softmax;

/// (outer, len, inner) view of `shape` around `axis`.
pub fn split_axis(shape: &[usize], axis: usize) -> (usize, usize, usize) {
    (
        shape[..axis].iter().product(),
        shape[axis],
        shape[axis + 1..].iter().product(),
    )
}

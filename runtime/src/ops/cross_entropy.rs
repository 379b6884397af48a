//! Softmax cross-entropy with mean reduction (torch.nn.functional.cross_entropy).

use edge4d_shaders::loss::CROSS_ENTROPY;

use super::{f32_input, u};
use crate::step::{groups_1d, read, write};
use crate::{DType, Error, Result, Step, Tensor};

fn check(op: &'static str, logits: &Tensor, labels: &Tensor) -> Result<(usize, usize)> {
    f32_input(op, "logits", logits)?;
    if logits.shape().len() != 2 {
        return Err(Error::Shape {
            op,
            detail: format!("logits must be (batch, classes), got {:?}", logits.shape()),
        });
    }
    if labels.dtype() != DType::U32 {
        return Err(Error::DType {
            op,
            what: "labels",
            expected: DType::U32,
            got: labels.dtype(),
        });
    }
    let (b, c) = (logits.shape()[0], logits.shape()[1]);
    if labels.shape() != [b] {
        return Err(Error::Shape {
            op,
            detail: format!(
                "labels {:?} should be [{b}] for logits {:?}",
                labels.shape(),
                logits.shape()
            ),
        });
    }
    Ok((b, c))
}

/// Mean loss (shape [1]) and per-row losses (shape [batch]). A label outside
/// [0, classes) yields NaN for its row.
pub fn cross_entropy(
    s: &mut Step<'_>,
    logits: &Tensor,
    labels: &Tensor,
) -> Result<(Tensor, Tensor)> {
    let (b, c) = check("cross_entropy", logits, labels)?;
    let rows = s.alloc(&[b], DType::F32);
    let loss = s.alloc(&[1], DType::F32);
    s.dispatch(
        &CROSS_ENTROPY,
        "rows_loss",
        &[read(0, logits), read(1, labels), write(2, &rows)],
        5,
        &crate::params::loss::CrossEntropy {
            batch: u(b),
            classes: u(c),
            ..Default::default()
        },
        [u(b.div_ceil(64)), 1, 1],
    );
    s.dispatch(
        &CROSS_ENTROPY,
        "mean",
        &[write(2, &loss), read(4, &rows)],
        5,
        &crate::params::loss::CrossEntropy {
            batch: u(b),
            classes: u(c),
            ..Default::default()
        },
        [1, 1, 1],
    );
    Ok((loss, rows))
}

/// Gradient w.r.t. the logits: grad_loss * (softmax - onehot) / batch.
pub fn cross_entropy_backward(
    s: &mut Step<'_>,
    logits: &Tensor,
    labels: &Tensor,
    grad_loss: &Tensor,
) -> Result<Tensor> {
    let (b, c) = check("cross_entropy_backward", logits, labels)?;
    if grad_loss.numel() != 1 {
        return Err(Error::Shape {
            op: "cross_entropy_backward",
            detail: format!("grad_loss must hold one value, got {:?}", grad_loss.shape()),
        });
    }
    let g = s.alloc(logits.shape(), DType::F32);
    s.dispatch(
        &CROSS_ENTROPY,
        "backward",
        &[
            read(0, logits),
            read(1, labels),
            write(2, &g),
            read(3, grad_loss),
        ],
        5,
        &crate::params::loss::CrossEntropy {
            batch: u(b),
            classes: u(c),
            ..Default::default()
        },
        groups_1d(b * c),
    );
    Ok(g)
}

//! Sum, mean, max over one axis of x viewed as (outer, len, inner).

pub fn sum(x: &[f64], (outer, len, inner): (usize, usize, usize)) -> Vec<f64> {
    let mut y = vec![0.0; outer * inner];
    for o in 0..outer {
        for a in 0..len {
            for i in 0..inner {
                y[o * inner + i] += x[(o * len + a) * inner + i];
            }
        }
    }
    y
}

pub fn mean(x: &[f64], dims: (usize, usize, usize)) -> Vec<f64> {
    sum(x, dims)
        .into_iter()
        .map(|v| v / dims.1 as f64)
        .collect()
}

/// (max, argmax) with the lowest index winning ties.
pub fn max(x: &[f64], (outer, len, inner): (usize, usize, usize)) -> (Vec<f64>, Vec<u32>) {
    let mut y = vec![f64::NEG_INFINITY; outer * inner];
    let mut arg = vec![0u32; outer * inner];
    for o in 0..outer {
        for i in 0..inner {
            for a in 0..len {
                let v = x[(o * len + a) * inner + i];
                if a == 0 || v > y[o * inner + i] {
                    y[o * inner + i] = v;
                    arg[o * inner + i] = a as u32;
                }
            }
        }
    }
    (y, arg)
}

/// Gradient of sum (divide by len for mean): g broadcast along the axis.
pub fn sum_backward(grad: &[f64], (outer, len, inner): (usize, usize, usize)) -> Vec<f64> {
    let mut gx = vec![0.0; outer * len * inner];
    for o in 0..outer {
        for a in 0..len {
            for i in 0..inner {
                gx[(o * len + a) * inner + i] = grad[o * inner + i];
            }
        }
    }
    gx
}

pub fn max_backward(
    grad: &[f64],
    arg: &[u32],
    (outer, len, inner): (usize, usize, usize),
) -> Vec<f64> {
    let mut gx = vec![0.0; outer * len * inner];
    for o in 0..outer {
        for i in 0..inner {
            let a = arg[o * inner + i] as usize;
            gx[(o * len + a) * inner + i] = grad[o * inner + i];
        }
    }
    gx
}

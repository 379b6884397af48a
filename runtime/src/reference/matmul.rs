//! C[b] = op(A[b]) op(B[b]) + bias. A batch of 1 broadcasts.

/// Operand layout: `batch` matrices stored (rows, cols); `trans` reads them transposed.
#[derive(Debug, Clone, Copy)]
pub struct Operand {
    pub batch: usize,
    pub rows: usize,
    pub cols: usize,
    pub trans: bool,
}

impl Operand {
    fn logical(&self) -> (usize, usize) {
        if self.trans {
            (self.cols, self.rows)
        } else {
            (self.rows, self.cols)
        }
    }

    /// Element (i, j) of op(X) for batch `bt`.
    fn at(&self, x: &[f64], bt: usize, i: usize, j: usize) -> f64 {
        let bt = if self.batch == 1 { 0 } else { bt };
        let (r, c) = if self.trans { (j, i) } else { (i, j) };
        x[bt * self.rows * self.cols + r * self.cols + c]
    }
}

/// Returns C with shape (batch, m, n).
pub fn forward(a: &[f64], sa: Operand, b: &[f64], sb: Operand, bias: Option<&[f64]>) -> Vec<f64> {
    let (m, k) = sa.logical();
    let (_, n) = sb.logical();
    let batch = sa.batch.max(sb.batch);
    let mut c = vec![0.0; batch * m * n];
    for bt in 0..batch {
        for i in 0..m {
            for j in 0..n {
                let mut acc = bias.map_or(0.0, |bias| bias[j]);
                for kk in 0..k {
                    acc += sa.at(a, bt, i, kk) * sb.at(b, bt, kk, j);
                }
                c[(bt * m + i) * n + j] = acc;
            }
        }
    }
    c
}

/// Returns (dA, dB, dbias), each in its operand's stored layout.
pub fn backward(
    a: &[f64],
    sa: Operand,
    b: &[f64],
    sb: Operand,
    grad: &[f64],
) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let (m, k) = sa.logical();
    let (_, n) = sb.logical();
    let batch = sa.batch.max(sb.batch);
    let mut ga = vec![0.0; a.len()];
    let mut gb = vec![0.0; b.len()];
    let mut gbias = vec![0.0; n];
    let index = |s: Operand, bt: usize, i: usize, j: usize| {
        let bt = if s.batch == 1 { 0 } else { bt };
        let (r, c) = if s.trans { (j, i) } else { (i, j) };
        bt * s.rows * s.cols + r * s.cols + c
    };
    for bt in 0..batch {
        for i in 0..m {
            for j in 0..n {
                let g = grad[(bt * m + i) * n + j];
                gbias[j] += g;
                for kk in 0..k {
                    ga[index(sa, bt, i, kk)] += g * sb.at(b, bt, kk, j);
                    gb[index(sb, bt, kk, j)] += g * sa.at(a, bt, i, kk);
                }
            }
        }
    }
    (ga, gb, gbias)
}

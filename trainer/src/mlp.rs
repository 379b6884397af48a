//! A two-layer perceptron classifier (Linear -> ReLU -> Linear, cross-entropy):
//! the smallest complete training loop, forward, backward and update in one step.

use edge4d_runtime::ops::{activation, cross_entropy, matmul};
use edge4d_runtime::{Device, Result, Step, Tensor};

use crate::optim::Optimizer;
use crate::rng::SplitMix64;

/// Parameters named as PyTorch's `nn.Sequential(Linear, ReLU, Linear)` state_dict.
pub struct Mlp {
    pub fc1_weight: Tensor,
    pub fc1_bias: Tensor,
    pub fc2_weight: Tensor,
    pub fc2_bias: Tensor,
}

/// torch.nn.Linear's default initialisation: U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
fn linear_init(
    dev: &Device,
    rng: &mut SplitMix64,
    out_dim: usize,
    in_dim: usize,
) -> Result<(Tensor, Tensor)> {
    let bound = 1.0 / (in_dim as f32).sqrt();
    let w: Vec<f32> = (0..out_dim * in_dim)
        .map(|_| rng.uniform(-bound, bound))
        .collect();
    let b: Vec<f32> = (0..out_dim).map(|_| rng.uniform(-bound, bound)).collect();
    Ok((
        dev.upload(&w, &[out_dim, in_dim])?,
        dev.upload(&b, &[out_dim])?,
    ))
}

impl Mlp {
    pub fn new(
        dev: &Device,
        inputs: usize,
        hidden: usize,
        classes: usize,
        seed: u64,
    ) -> Result<Self> {
        let mut rng = SplitMix64::new(seed);
        let (fc1_weight, fc1_bias) = linear_init(dev, &mut rng, hidden, inputs)?;
        let (fc2_weight, fc2_bias) = linear_init(dev, &mut rng, classes, hidden)?;
        Ok(Self {
            fc1_weight,
            fc1_bias,
            fc2_weight,
            fc2_bias,
        })
    }

    pub fn params(&self) -> [&Tensor; 4] {
        [
            &self.fc1_weight,
            &self.fc1_bias,
            &self.fc2_weight,
            &self.fc2_bias,
        ]
    }

    /// The parameters' PyTorch names and shapes, in [`params`](Self::params) order (for
    /// an [`Optimizer`]).
    pub fn named_shapes(&self) -> Vec<(String, Vec<usize>)> {
        ["0.weight", "0.bias", "2.weight", "2.bias"]
            .iter()
            .zip(self.params())
            .map(|(n, t)| (n.to_string(), t.shape().to_vec()))
            .collect()
    }

    /// Logits (batch, classes).
    pub fn forward(&self, s: &mut Step<'_>, x: &Tensor) -> Result<Tensor> {
        let h = matmul::matmul(s, x, &self.fc1_weight, Some(&self.fc1_bias), false, true)?;
        let a = activation::relu(s, &h)?;
        matmul::matmul(s, &a, &self.fc2_weight, Some(&self.fc2_bias), false, true)
    }

    /// Records forward, backward and an update at learning rate `lr`; returns the loss
    /// tensor ([1]), which stays on the device until the caller reads it.
    pub fn train_step(
        &self,
        s: &mut Step<'_>,
        opt: &mut Optimizer,
        x: &Tensor,
        labels: &Tensor,
        one: &Tensor,
        lr: f32,
    ) -> Result<Tensor> {
        let h = matmul::matmul(s, x, &self.fc1_weight, Some(&self.fc1_bias), false, true)?;
        let a = activation::relu(s, &h)?;
        let logits = matmul::matmul(s, &a, &self.fc2_weight, Some(&self.fc2_bias), false, true)?;
        let (loss, _) = cross_entropy::cross_entropy(s, &logits, labels)?;
        let g_logits = cross_entropy::cross_entropy_backward(s, &logits, labels, one)?;
        let g2 = matmul::matmul_backward(s, &a, &self.fc2_weight, &g_logits, false, true, true)?;
        let g_h = activation::relu_backward(s, &h, &g2.a)?;
        let g1 = matmul::matmul_backward(s, x, &self.fc1_weight, &g_h, false, true, true)?;
        let (Some(g1_bias), Some(g2_bias)) = (g1.bias.as_ref(), g2.bias.as_ref()) else {
            unreachable!("bias gradients were requested");
        };
        opt.step(
            s,
            &self.params(),
            &[Some(&g1.b), Some(g1_bias), Some(&g2.b), Some(g2_bias)],
            lr,
        )?;
        Ok(loss)
    }

    /// Fraction of rows whose arg-max logit equals the label (reads back).
    pub fn accuracy(&self, dev: &Device, x: &Tensor, labels: &[u32]) -> Result<f32> {
        let logits = dev.run(|s| self.forward(s, x))?;
        let classes = logits.shape()[1];
        let values = dev.read(&logits)?;
        let correct = values
            .chunks(classes)
            .zip(labels)
            .filter(|(row, &l)| {
                let best = row
                    .iter()
                    .enumerate()
                    .fold(0, |b, (i, v)| if *v > row[b] { i } else { b });
                best == l as usize
            })
            .count();
        Ok(correct as f32 / labels.len() as f32)
    }
}

//! Learning-rate schedules, stepped once per optimizer step (per iteration), as the
//! reference training scripts step them.

/// `WarmupMultiStepLR` of P4Transformer / C2P (`scheduler.py`, reference-spec §5.8):
/// `lr(it) = base · w(it) · γ^#{m ∈ milestones : m ≤ it}` with a linear warm-up
/// `w(it) = 1e-5·(1 − α) + α`, `α = it / warmup_iters` while `it < warmup_iters`.
/// Milestones and warm-up are given in iterations (epochs × iterations per epoch).
#[derive(Debug, Clone, PartialEq)]
pub struct WarmupMultiStep {
    pub base_lr: f64,
    pub milestones: Vec<u64>,
    pub gamma: f64,
    pub warmup_iters: u64,
    /// The reference's `warmup_factor`.
    pub warmup_factor: f64,
}

impl WarmupMultiStep {
    /// From epoch-based settings, as train-msr.py builds it.
    pub fn from_epochs(
        base_lr: f64,
        milestone_epochs: &[u64],
        gamma: f64,
        warmup_epochs: u64,
        iters_per_epoch: u64,
    ) -> Self {
        Self {
            base_lr,
            milestones: milestone_epochs
                .iter()
                .map(|m| m * iters_per_epoch)
                .collect(),
            gamma,
            warmup_iters: warmup_epochs * iters_per_epoch,
            warmup_factor: 1e-5,
        }
    }

    /// The learning rate for iteration `it` (0-based: the first step uses `lr(0)`).
    pub fn lr(&self, it: u64) -> f64 {
        let warm = if it < self.warmup_iters {
            let alpha = it as f64 / self.warmup_iters as f64;
            self.warmup_factor * (1.0 - alpha) + alpha
        } else {
            1.0
        };
        let decays = self.milestones.iter().filter(|&&m| m <= it).count() as i32;
        self.base_lr * warm * self.gamma.powi(decays)
    }
}

/// Cosine decay with linear warm-up (Point-MAE / concept distillation, per iteration):
/// linear from `warmup_start` to `base` over `warmup_iters`, then
/// `min + (base − min)·(1 + cos(π·t/T))/2` over the remaining iterations.
#[derive(Debug, Clone, PartialEq)]
pub struct WarmupCosine {
    pub base_lr: f64,
    pub min_lr: f64,
    pub warmup_start_lr: f64,
    pub warmup_iters: u64,
    pub total_iters: u64,
}

impl WarmupCosine {
    pub fn lr(&self, it: u64) -> f64 {
        if it < self.warmup_iters {
            let a = it as f64 / self.warmup_iters as f64;
            return self.warmup_start_lr + (self.base_lr - self.warmup_start_lr) * a;
        }
        let span = self.total_iters.saturating_sub(self.warmup_iters).max(1) as f64;
        let t = ((it - self.warmup_iters) as f64).min(span);
        self.min_lr
            + (self.base_lr - self.min_lr) * 0.5 * (1.0 + (std::f64::consts::PI * t / span).cos())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warmup_multistep_matches_the_reference_formula() {
        // train-msr.py: lr 0.01, warm-up 10 epochs, milestones [20, 30], γ 0.1; 5 iters/epoch.
        let s = WarmupMultiStep::from_epochs(0.01, &[20, 30], 0.1, 10, 5);
        assert_eq!(s.warmup_iters, 50);
        assert_eq!(s.milestones, vec![100, 150]);
        assert!((s.lr(0) - 0.01 * 1e-5).abs() < 1e-18);
        // it = 25: α = 0.5, w = 1e-5·0.5 + 0.5.
        assert!((s.lr(25) - 0.01 * (0.5e-5 + 0.5)).abs() < 1e-15);
        assert_eq!(s.lr(50), 0.01);
        assert_eq!(s.lr(99), 0.01);
        assert!((s.lr(100) - 0.001).abs() < 1e-15);
        assert!((s.lr(150) - 0.0001).abs() < 1e-15);
    }

    #[test]
    fn cosine_warms_up_then_decays_to_the_minimum() {
        let s = WarmupCosine {
            base_lr: 1e-3,
            min_lr: 1e-6,
            warmup_start_lr: 0.0,
            warmup_iters: 10,
            total_iters: 110,
        };
        assert_eq!(s.lr(0), 0.0);
        assert!((s.lr(5) - 5e-4).abs() < 1e-15);
        assert!((s.lr(10) - 1e-3).abs() < 1e-15);
        assert!((s.lr(60) - (1e-6 + (1e-3 - 1e-6) * 0.5)).abs() < 1e-15);
        assert!((s.lr(110) - 1e-6).abs() < 1e-15);
        assert!((s.lr(500) - 1e-6).abs() < 1e-15);
    }
}

/// Either schedule, as a training run picks it.
#[derive(Debug, Clone, PartialEq)]
pub enum Schedule {
    MultiStep(WarmupMultiStep),
    Cosine(WarmupCosine),
}

impl Schedule {
    /// The same learning rate at every step (benchmarks, tests).
    pub fn constant(lr: f64) -> Self {
        Self::MultiStep(WarmupMultiStep::from_epochs(lr, &[], 1.0, 0, 1))
    }

    pub fn lr(&self, it: u64) -> f64 {
        match self {
            Self::MultiStep(s) => s.lr(it),
            Self::Cosine(s) => s.lr(it),
        }
    }
}

//! `edge4d demo`: the smallest complete training loop, run on the GPU.

use std::time::Instant;

use clap::Args;
use edge4d_runtime::Device;
use edge4d_trainer::{
    data::spirals,
    mlp::Mlp,
    optim::{Groups, Optimizer, OptimizerConfig, OptimizerKind},
};
use indicatif::{ProgressBar, ProgressStyle};

#[derive(Args)]
pub struct DemoArgs {
    /// SGD steps (full batch).
    #[arg(long, default_value_t = 600)]
    steps: usize,
    /// Hidden width of the MLP.
    #[arg(long, default_value_t = 64)]
    hidden: usize,
    /// Learning rate.
    #[arg(long, default_value_t = 0.5)]
    lr: f32,
}

pub fn run(dev: &Device, args: &DemoArgs) -> Result<(), Box<dyn std::error::Error>> {
    println!("adapter: {}", dev.adapter());
    let (xy, labels) = spirals(3, 64, 0.1, 7);
    let n = labels.len();
    let x = dev.upload(&xy, &[n, 2])?;
    let y = dev.upload_u32(&labels, &[n])?;
    let one = dev.upload(&[1.0], &[1])?;
    let model = Mlp::new(dev, 2, args.hidden, 3, 1)?;
    let mut opt = Optimizer::new(
        dev,
        &model.named_shapes(),
        OptimizerConfig {
            kind: OptimizerKind::Sgd,
            momentum: 0.9,
            weight_decay: 0.0,
            groups: Groups::AllDecay,
        },
    )?;
    println!(
        "training a 2-{}-3 MLP on {n} spiral points, {} SGD steps",
        args.hidden, args.steps
    );
    let bar = ProgressBar::new(args.steps as u64);
    bar.set_style(ProgressStyle::with_template(
        "{bar:40} {pos}/{len} steps  loss {msg}  [{elapsed_precise}]",
    )?);
    let start = Instant::now();
    for step in 0..args.steps {
        let mut s = dev.step();
        let loss = model.train_step(&mut s, &mut opt, &x, &y, &one, args.lr)?;
        s.submit()?;
        // Reading the loss waits for the GPU, so do it only now and then.
        if step % 50 == 0 || step + 1 == args.steps {
            bar.set_message(format!("{:.4}", dev.read(&loss)?[0]));
        }
        bar.inc(1);
    }
    bar.finish();
    let elapsed = start.elapsed().as_secs_f64();
    let acc = model.accuracy(dev, &x, &labels)?;
    println!(
        "done in {elapsed:.2} s ({:.2} ms/step); training accuracy {:.1}%",
        elapsed * 1e3 / args.steps as f64,
        acc * 100.0
    );
    Ok(())
}

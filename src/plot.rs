//! `edge4d plot`: a run's metrics.jsonl drawn as a PNG of loss and score curves.

use std::path::PathBuf;

use clap::Args;

#[derive(Args)]
pub struct PlotArgs {
    /// metrics.jsonl written by `finetune` or `pretrain`.
    metrics: PathBuf,
    /// PNG to write.
    png: PathBuf,
}

pub fn run(args: &PlotArgs) -> Result<(), Box<dyn std::error::Error>> {
    edge4d_trainer::run_dir::plot_metrics(&args.metrics, &args.png)?;
    println!("wrote {}", args.png.display());
    Ok(())
}

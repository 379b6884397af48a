//! `edge4d stream`: depth frames (the virtual humanoid, or a folder of 16-bit PNGs)
//! through an action model, frame by frame; the streaming itself lives in the trainer
//! library (`edge4d_trainer::live`), shared with the `stream_depth` example.

use edge4d_runtime::Device;

pub use edge4d_trainer::live::LiveArgs as StreamArgs;

pub fn run(dev: &Device, args: &StreamArgs) -> Result<(), Box<dyn std::error::Error>> {
    edge4d_trainer::live::run(dev, args)?;
    Ok(())
}

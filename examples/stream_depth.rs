//! The main job: streams depth frames into an action model and prints, per frame, the
//! predicted and true action and the latency; ends with accuracy and latency
//! p50/p95/max.
//!
//! By default a virtual depth camera (MSR-Action3D's, 160×120) watches the humanoid
//! perform a sequence of actions from an unseen viewpoint, and the bundled model
//! (`models/humanoid-action.safetensors`, trained by `edge4d finetune`; see
//! `models/README.md`) predicts the action from the last 16 frames, reusing the tube
//! features of frames already seen. Nothing is downloaded and no GPU is needed.
//!
//! ```sh
//! cargo run --release --example stream_depth
//! cargo run --release --example stream_depth -- --finetune          # adapt on the device
//! cargo run --release --example stream_depth -- --render frames/    # PNG per frame
//! cargo run --release --example stream_depth -- --depth-dir DIR     # real 16-bit PNG depth
//! cargo run --release --example stream_depth -- --mcap run.mcap      # a ROS 2 recording
//! cargo run --release --example stream_depth -- --record seen.mcap   # predictions, for Foxglove
//! ```

use clap::Parser;
use edge4d_runtime::{BackendChoice, Device, DeviceOptions};
use edge4d_trainer::live::{run, LiveArgs};

#[derive(Parser, Debug)]
#[command(
    about = "Stream depth frames into an action model: prediction and latency per frame",
    long_about = "Stream depth frames into an action model and print, per frame, the predicted and true action and the latency, then accuracy and latency p50/p95/max.\n\nBy default a virtual depth camera watches the humanoid perform a sequence of actions from a viewpoint the model never saw, with the bundled model. --depth-dir streams real 16-bit PNG depth frames instead, --mcap a ROS 2 recording (depth images or point clouds); --record writes what the model saw and predicted as MCAP for Foxglove."
)]
struct Args {
    /// Backend: auto (a real GPU, else cpu), vulkan, metal, dx12, gl or cpu
    #[arg(long, env = "EDGE4D_BACKEND", default_value = "auto")]
    backend: String,
    /// Threads of the cpu backend (default: every core)
    #[arg(long, env = "EDGE4D_THREADS")]
    threads: Option<usize>,
    #[command(flatten)]
    live: LiveArgs,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    edge4d_runtime::prepare_headless_env();
    let args = Args::parse();
    let dev = Device::new(&DeviceOptions {
        backend: BackendChoice::parse(&args.backend)?,
        threads: args.threads,
    })?;
    run(&dev, &args.live)?;
    Ok(())
}

//! Renders a few depth frames of each action to PNG (8-bit, near = bright) so the body,
//! the camera and the motion can be checked by eye: `cargo run -p edge4d-trainer
//! --example render_humanoid -- OUT_DIR`.

use edge4d_trainer::humanoid::body::Body;
use edge4d_trainer::humanoid::camera::{DepthCamera, DepthNoise, Intrinsics};
use edge4d_trainer::humanoid::generate::{Assets, ACTIONS};
use edge4d_trainer::rng::SplitMix64;
use glam::Vec3;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "humanoid-frames".into());
    std::fs::create_dir_all(&out)?;
    let assets = Assets::bundled()?;
    let intr = Intrinsics {
        width: 160,
        height: 120,
        focal: 140.0,
    };
    let mut rng = SplitMix64::new(1);
    for (a, motion) in assets.motions.iter().enumerate() {
        // One strip of 6 frames over the clip, camera 3 m in front (+Z) of the start.
        let first = motion.pose_at(0.0);
        let target = Vec3::new(first.root_pos.x, first.root_pos.y * 0.9, first.root_pos.z);
        let cam = DepthCamera {
            intrinsics: intr,
            eye: target + Vec3::new(0.0, 0.3, 3.0),
            target,
            noise: DepthNoise::NONE,
        };
        let mut strip = vec![0u8; 6 * intr.width * intr.height];
        for f in 0..6 {
            let pose = motion.pose_at(motion.duration() * f as f32 / 6.0);
            let depth = cam.render(&Body::posed_shapes(&assets.body, &pose, 1.0), &mut rng);
            for v in 0..intr.height {
                for u in 0..intr.width {
                    let z = depth[v * intr.width + u] as f32;
                    let g = if z > 0.0 {
                        (255.0 - (z - 2000.0).clamp(0.0, 2000.0) / 2000.0 * 200.0) as u8
                    } else {
                        0
                    };
                    strip[v * 6 * intr.width + f * intr.width + u] = g;
                }
            }
        }
        let file = std::fs::File::create(format!("{out}/{:02}_{}.png", a, ACTIONS[a]))?;
        let mut enc = png::Encoder::new(
            std::io::BufWriter::new(file),
            (6 * intr.width) as u32,
            intr.height as u32,
        );
        enc.set_color(png::ColorType::Grayscale);
        enc.set_depth(png::BitDepth::Eight);
        enc.write_header()?.write_image_data(&strip)?;
    }
    println!("wrote {} strips to {out}", ACTIONS.len());
    Ok(())
}

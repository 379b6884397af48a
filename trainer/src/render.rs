//! Point-cloud snapshots for people to look at: a frame's points projected through a
//! pinhole camera (camera frame: x right, y down, z forward), each drawn as a small
//! square in a colour per class and shaded by depth, under a strip showing the true
//! class (left) and the predicted class (right).

use std::path::Path;

use edge4d_runtime::tensor_file::write_bytes_atomic;
use edge4d_runtime::{Error, Result};

/// A distinct colour per class (cycled past 20).
pub fn class_colour(class: usize) -> [u8; 3] {
    const PALETTE: [[u8; 3]; 20] = [
        [230, 25, 75],
        [60, 180, 75],
        [255, 225, 25],
        [0, 130, 200],
        [245, 130, 48],
        [145, 30, 180],
        [70, 240, 240],
        [240, 50, 230],
        [210, 245, 60],
        [250, 190, 212],
        [0, 128, 128],
        [220, 190, 255],
        [170, 110, 40],
        [128, 0, 0],
        [170, 255, 195],
        [128, 128, 0],
        [255, 215, 180],
        [0, 0, 128],
        [128, 128, 128],
        [0, 0, 0],
    ];
    PALETTE[class % PALETTE.len()]
}

/// Writes a `width × height` PNG of `xyz` (interleaved, any positive-z units) coloured
/// by `predicted`, with the strip of `truth` (None: grey) and `predicted` on top.
pub fn cloud_png(
    path: &Path,
    xyz: &[f32],
    width: usize,
    height: usize,
    truth: Option<usize>,
    predicted: usize,
) -> Result<()> {
    let strip = (height / 12).max(4);
    let mut px = vec![255u8; width * height * 3];
    let mut put = |x: usize, y: usize, c: [u8; 3]| {
        let i = (y * width + x) * 3;
        px[i..i + 3].copy_from_slice(&c);
    };
    for y in 0..strip {
        for x in 0..width {
            let c = if x < width / 2 {
                truth.map(class_colour).unwrap_or([160, 160, 160])
            } else {
                class_colour(predicted)
            };
            put(x, y, c);
        }
    }
    // Fit the cloud's angular extent into the image below the strip.
    let pts: Vec<[f32; 3]> = xyz
        .chunks_exact(3)
        .filter(|p| p[2] > 0.0)
        .map(|p| [p[0] / p[2], p[1] / p[2], p[2]])
        .collect();
    if !pts.is_empty() {
        let (mut lo, mut hi) = ([f32::MAX; 3], [f32::MIN; 3]);
        for p in &pts {
            for a in 0..3 {
                lo[a] = lo[a].min(p[a]);
                hi[a] = hi[a].max(p[a]);
            }
        }
        let area = (height - strip) as f32;
        let span = (hi[0] - lo[0]).max(hi[1] - lo[1]).max(1e-6) * 1.1;
        let scale = area.min(width as f32) / span;
        let (cx, cy) = ((lo[0] + hi[0]) / 2.0, (lo[1] + hi[1]) / 2.0);
        let base = class_colour(predicted);
        for p in &pts {
            // Nearer points are drawn brighter.
            let shade = 1.0 - 0.6 * (p[2] - lo[2]) / (hi[2] - lo[2]).max(1e-6);
            let c = base.map(|v| (v as f32 * shade) as u8);
            let x = width as f32 / 2.0 + (p[0] - cx) * scale;
            let y = strip as f32 + area / 2.0 + (p[1] - cy) * scale;
            for dy in 0..2 {
                for dx in 0..2 {
                    let (xi, yi) = (x as i64 + dx, y as i64 + dy);
                    if xi >= 0
                        && (xi as usize) < width
                        && yi >= strip as i64
                        && (yi as usize) < height
                    {
                        put(xi as usize, yi as usize, c);
                    }
                }
            }
        }
    }
    let mut bytes = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut bytes, width as u32, height as u32);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        enc.write_header()
            .and_then(|mut w| w.write_image_data(&px))
            .map_err(|e| Error::TensorFile {
                path: path.display().to_string(),
                detail: e.to_string(),
            })?;
    }
    write_bytes_atomic(path, &bytes)
}

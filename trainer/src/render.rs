//! Point-cloud snapshots for people to look at: a frame's points projected through a
//! pinhole camera (camera frame: x right, y down, z forward), each drawn as a small
//! square in the predicted class's colour and shaded by depth, under a caption: the
//! frame number, the true action and the predicted one with its confidence, each beside
//! its colour (the legend). Without the trainer's `plots` feature the caption is two
//! colour bars (true left, predicted right) without words.

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

/// What a snapshot's caption says.
pub struct Caption<'a> {
    pub frame: u64,
    /// The true class and its name, when known.
    pub truth: Option<(usize, &'a str)>,
    pub predicted: (usize, &'a str),
    /// The predicted class's probability.
    pub confidence: f32,
}

/// Writes a `width × height` PNG of `xyz` (interleaved, any positive-z units) coloured
/// by the predicted class, under `caption`.
pub fn cloud_png(
    path: &Path,
    xyz: &[f32],
    width: usize,
    height: usize,
    caption: &Caption<'_>,
) -> Result<()> {
    let (truth, predicted) = (caption.truth.map(|t| t.0), caption.predicted.0);
    let strip = if cfg!(feature = "plots") {
        46.min(height / 3)
    } else {
        (height / 12).max(4)
    };
    let mut px = vec![255u8; width * height * 3];
    let mut put = |x: usize, y: usize, c: [u8; 3]| {
        let i = (y * width + x) * 3;
        px[i..i + 3].copy_from_slice(&c);
    };
    for y in 0..strip {
        for x in 0..width {
            let c = if cfg!(feature = "plots") {
                [32, 32, 36]
            } else if x < width / 2 {
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
    #[cfg(feature = "plots")]
    write_caption(&mut px, width, height, caption).map_err(|e| Error::TensorFile {
        path: path.display().to_string(),
        detail: e,
    })?;
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

/// Draws `caption` on the dark strip at the top of the RGB buffer `px`.
#[cfg(feature = "plots")]
fn write_caption(
    px: &mut [u8],
    width: usize,
    height: usize,
    caption: &Caption<'_>,
) -> std::result::Result<(), String> {
    use plotters::prelude::*;
    let font = crate::plot::font_family()?;
    let e = |e: DrawingAreaErrorKind<_>| e.to_string();
    let root = BitMapBackend::with_buffer(px, (width as u32, height as u32)).into_drawing_area();
    let white = RGBColor(240, 240, 240);
    let text = |s: &str, x: i32, y: i32, size: u32| {
        Text::new(
            s.to_string(),
            (x, y),
            (font, size).into_font().color(&white),
        )
    };
    let swatch = |class: usize, x: i32, y: i32| {
        let [r, g, b] = class_colour(class);
        Rectangle::new([(x, y), (x + 11, y + 11)], RGBColor(r, g, b).filled())
    };
    root.draw(&text(&format!("frame {}", caption.frame), 6, 4, 15))
        .map_err(e)?;
    let second = 24;
    match caption.truth {
        Some((class, name)) => {
            root.draw(&swatch(class, 6, second + 2)).map_err(e)?;
            root.draw(&text(&format!("true: {name}"), 22, second, 15))
                .map_err(e)?;
        }
        None => root.draw(&text("true: ?", 6, second, 15)).map_err(e)?,
    }
    let x = width as i32 / 2;
    let (class, name) = caption.predicted;
    root.draw(&swatch(class, x, second + 2)).map_err(e)?;
    root.draw(&text(
        &format!("predicted: {name} ({:.0}%)", caption.confidence * 100.0),
        x + 16,
        second,
        15,
    ))
    .map_err(e)?;
    root.present().map_err(e)
}

#[cfg(all(test, feature = "plots"))]
mod tests {
    use super::*;

    #[test]
    fn a_snapshot_is_captioned_with_words_and_colour_swatches() {
        let dir = std::env::temp_dir().join(format!("edge4d-render-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("frame.png");
        let xyz: Vec<f32> = (0..300)
            .flat_map(|i| [i as f32 * 0.001, (i % 17) as f32 * 0.01, 2.0])
            .collect();
        let caption = Caption {
            frame: 42,
            truth: Some((3, "jump")),
            predicted: (5, "run"),
            confidence: 0.87,
        };
        cloud_png(&path, &xyz, 480, 360, &caption).unwrap();
        let mut dec =
            png::Decoder::new(std::io::BufReader::new(std::fs::File::open(&path).unwrap()))
                .read_info()
                .unwrap();
        let mut px = vec![0; dec.output_buffer_size().unwrap()];
        dec.next_frame(&mut px).unwrap();
        let at = |x: usize, y: usize| {
            [
                px[(y * 480 + x) * 3],
                px[(y * 480 + x) * 3 + 1],
                px[(y * 480 + x) * 3 + 2],
            ]
        };
        // The swatches hold the classes' colours (true at the left, predicted at the
        // middle), and the dark strip carries light text.
        assert_eq!(at(10, 30), class_colour(3));
        assert_eq!(at(244, 30), class_colour(5));
        let light = (0..46)
            .flat_map(|y| (0..480).map(move |x| (x, y)))
            .filter(|&(x, y)| at(x, y).iter().all(|&v| v > 150) && at(x, y) != class_colour(3))
            .count();
        assert!(light > 200, "{light} light caption pixels");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

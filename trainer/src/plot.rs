//! Training curves as a PNG: the loss per logged step (left panel) and accuracy per
//! epoch (right panel), with axis ticks labelled by a built-in 3×5 pixel font, so a run
//! can be judged at a glance without plotting tools.

use std::path::Path;

use edge4d_runtime::{Error, Result};

const W: usize = 640;
const H: usize = 300;
const SCALE: usize = 2; // font pixel size

/// 3×5 glyphs, rows top to bottom, 3 bits each (MSB = left).
fn glyph(c: char) -> [u8; 5] {
    match c {
        '0' => [7, 5, 5, 5, 7],
        '1' => [2, 6, 2, 2, 7],
        '2' => [7, 1, 7, 4, 7],
        '3' => [7, 1, 7, 1, 7],
        '4' => [5, 5, 7, 1, 1],
        '5' => [7, 4, 7, 1, 7],
        '6' => [7, 4, 7, 5, 7],
        '7' => [7, 1, 1, 1, 1],
        '8' => [7, 5, 7, 5, 7],
        '9' => [7, 5, 7, 1, 7],
        '.' => [0, 0, 0, 0, 2],
        '%' => [5, 1, 2, 4, 5],
        '-' => [0, 0, 7, 0, 0],
        'a' => [0, 7, 1, 7, 7],
        'c' => [0, 7, 4, 4, 7],
        'e' => [7, 5, 7, 4, 7],
        'h' => [4, 4, 7, 5, 5],
        'l' => [4, 4, 4, 4, 7],
        'o' => [0, 7, 5, 5, 7],
        'p' => [7, 5, 7, 4, 4],
        's' => [7, 4, 7, 1, 7],
        't' => [4, 7, 4, 4, 7],
        'v' => [0, 5, 5, 5, 2],
        'r' => [0, 7, 4, 4, 4],
        'i' => [2, 0, 2, 2, 2],
        'n' => [0, 7, 5, 5, 5],
        'm' => [0, 7, 7, 5, 5],
        'u' => [0, 5, 5, 5, 7],
        _ => [0; 5],
    }
}

struct Canvas {
    px: Vec<u8>, // RGB
}

impl Canvas {
    fn set(&mut self, x: i64, y: i64, c: [u8; 3]) {
        if x >= 0 && y >= 0 && (x as usize) < W && (y as usize) < H {
            let i = (y as usize * W + x as usize) * 3;
            self.px[i..i + 3].copy_from_slice(&c);
        }
    }

    fn line(&mut self, (x0, y0): (f64, f64), (x1, y1): (f64, f64), c: [u8; 3]) {
        let n = ((x1 - x0).abs().max((y1 - y0).abs()).ceil() as usize).max(1);
        for i in 0..=n {
            let t = i as f64 / n as f64;
            self.set(
                (x0 + (x1 - x0) * t).round() as i64,
                (y0 + (y1 - y0) * t).round() as i64,
                c,
            );
        }
    }

    fn text(&mut self, x: i64, y: i64, s: &str, c: [u8; 3]) {
        for (k, ch) in s.chars().enumerate() {
            let g = glyph(ch);
            for (row, bits) in g.iter().enumerate() {
                for col in 0..3 {
                    if bits >> (2 - col) & 1 == 1 {
                        for dy in 0..SCALE {
                            for dx in 0..SCALE {
                                self.set(
                                    x + ((k * 4 + col) * SCALE + dx) as i64,
                                    y + (row * SCALE + dy) as i64,
                                    c,
                                );
                            }
                        }
                    }
                }
            }
        }
    }
}

fn label(v: f64) -> String {
    if v.fract() == 0.0 {
        format!("{v:.0}")
    } else if v.abs() >= 100.0 {
        format!("{v:.0}")
    } else if v.abs() >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}

/// One panel: series of (x, y) points in a box, with min/max ticks on both axes.
fn panel(
    cv: &mut Canvas,
    left: f64,
    title: &str,
    series: &[(&[(f64, f64)], [u8; 3])],
    y_range: Option<(f64, f64)>,
) {
    let (top, bottom, width) = (30.0, H as f64 - 30.0, W as f64 / 2.0 - 70.0);
    let pts: Vec<(f64, f64)> = series.iter().flat_map(|(s, _)| s.iter().copied()).collect();
    let black = [30, 30, 30];
    cv.text(left as i64, 8, title, black);
    cv.line((left, top), (left, bottom), black);
    cv.line((left, bottom), (left + width, bottom), black);
    if pts.is_empty() {
        return;
    }
    let (x0, x1) = pts
        .iter()
        .fold((f64::MAX, f64::MIN), |(a, b), p| (a.min(p.0), b.max(p.0)));
    let (y0, y1) = y_range.unwrap_or_else(|| {
        pts.iter()
            .fold((f64::MAX, f64::MIN), |(a, b), p| (a.min(p.1), b.max(p.1)))
    });
    let sx = |x: f64| left + (x - x0) / (x1 - x0).max(1e-12) * width;
    let sy = |y: f64| bottom - (y - y0) / (y1 - y0).max(1e-12) * (bottom - top);
    for (s, c) in series {
        for w in s.windows(2) {
            cv.line((sx(w[0].0), sy(w[0].1)), (sx(w[1].0), sy(w[1].1)), *c);
        }
        if s.len() == 1 {
            cv.line(
                (sx(s[0].0) - 2.0, sy(s[0].1)),
                (sx(s[0].0) + 2.0, sy(s[0].1)),
                *c,
            );
        }
    }
    cv.text((left - 52.0) as i64, top as i64, &label(y1), black);
    cv.text(
        (left - 52.0) as i64,
        (bottom - 10.0) as i64,
        &label(y0),
        black,
    );
    cv.text(left as i64, (bottom + 6.0) as i64, &label(x0), black);
    let x1_label = label(x1);
    cv.text(
        (left + width - 8.0 * x1_label.len() as f64) as i64,
        (bottom + 6.0) as i64,
        &x1_label,
        black,
    );
}

/// Writes `losses` (step, loss) and accuracies (epoch, train, val) as a PNG.
pub fn training_curves(
    path: &Path,
    losses: &[(f64, f64)],
    train_acc: &[(f64, f64)],
    val_acc: &[(f64, f64)],
) -> Result<()> {
    training_curves_of(path, losses, train_acc, val_acc, "acc")
}

/// [`training_curves`] with the per-epoch score named `score` (e.g. "miou").
pub fn training_curves_of(
    path: &Path,
    losses: &[(f64, f64)],
    train_acc: &[(f64, f64)],
    val_acc: &[(f64, f64)],
    score: &str,
) -> Result<()> {
    let mut cv = Canvas {
        px: vec![255; W * H * 3],
    };
    panel(
        &mut cv,
        70.0,
        "loss - step",
        &[(losses, [200, 40, 40])],
        None,
    );
    let pct = |v: &[(f64, f64)]| v.iter().map(|&(e, a)| (e, a * 100.0)).collect::<Vec<_>>();
    let (tr, va) = (pct(train_acc), pct(val_acc));
    panel(
        &mut cv,
        W as f64 / 2.0 + 60.0,
        &format!("{score} % - epoch"),
        &[(&va, [40, 80, 200]), (&tr, [40, 160, 60])],
        Some((0.0, 100.0)),
    );
    // Legend: val in blue, train in green.
    cv.text(W as i64 - 120, 8, "val", [40, 80, 200]);
    cv.text(W as i64 - 80, 8, "train", [40, 160, 60]);
    let err = |e: String| Error::TensorFile {
        path: path.display().to_string(),
        detail: e,
    };
    let tmp = path.with_extension("png.tmp");
    let file = std::fs::File::create(&tmp).map_err(|e| err(e.to_string()))?;
    let mut enc = png::Encoder::new(std::io::BufWriter::new(file), W as u32, H as u32);
    enc.set_color(png::ColorType::Rgb);
    enc.set_depth(png::BitDepth::Eight);
    enc.write_header()
        .and_then(|mut w| w.write_image_data(&cv.px))
        .map_err(|e| err(e.to_string()))?;
    std::fs::rename(&tmp, path).map_err(|e| err(e.to_string()))
}

#[cfg(test)]
mod tests {
    #[test]
    fn writes_a_png_of_the_curves() {
        let dir = std::env::temp_dir().join(format!("edge4d-plot-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("curves.png");
        let losses: Vec<(f64, f64)> = (0..50)
            .map(|i| (i as f64, 2.7 * (-(i as f64) / 20.0).exp()))
            .collect();
        let val: Vec<(f64, f64)> = (1..=5).map(|e| (e as f64, e as f64 * 0.15)).collect();
        super::training_curves(&path, &losses, &[(5.0, 0.9)], &val).unwrap();
        let dec = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(&path).unwrap()));
        let reader = dec.read_info().unwrap();
        assert_eq!(
            (reader.info().width, reader.info().height),
            (super::W as u32, super::H as u32)
        );
        if let Ok(keep) = std::env::var("EDGE4D_KEEP_PLOT") {
            std::fs::copy(&path, keep).unwrap();
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

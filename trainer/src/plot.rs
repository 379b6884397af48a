//! Training curves as a PNG drawn with plotters: the loss per logged step (left) and the
//! per-epoch score of the training and validation sets (right), each with a title, axis
//! titles, a grid and a legend, in the bundled DejaVu Sans (its licence is beside it in
//! `trainer/assets/fonts`).

use std::path::Path;

use edge4d_runtime::{Error, Result};
use plotters::prelude::*;

const W: usize = 960;
const H: usize = 400;
const FONT: &str = "sans-serif";

static DEJAVU_SANS: &[u8] = include_bytes!("../assets/fonts/DejaVuSans.ttf");

/// The bundled font's family name, registered with plotters.
pub(crate) fn font_family() -> std::result::Result<&'static str, String> {
    font().map(|_| FONT)
}

/// Registers the bundled font with plotters once per process.
fn font() -> std::result::Result<(), String> {
    static REGISTERED: std::sync::OnceLock<std::result::Result<(), String>> =
        std::sync::OnceLock::new();
    REGISTERED
        .get_or_init(|| {
            plotters::style::register_font(FONT, FontStyle::Normal, DEJAVU_SANS)
                .map_err(|_| "the bundled DejaVu Sans font cannot be read".to_string())
        })
        .clone()
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

/// The range of `values` with a margin, or `fallback` when there are none.
fn span(values: impl Iterator<Item = f64>, fallback: (f64, f64)) -> (f64, f64) {
    let (lo, hi) = values
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
    if lo > hi {
        return fallback;
    }
    let pad = ((hi - lo) * 0.05).max(1e-6);
    (lo - pad, hi + pad)
}

/// [`training_curves`] with the per-epoch score named `score` (e.g. "mIoU").
pub fn training_curves_of(
    path: &Path,
    losses: &[(f64, f64)],
    train_acc: &[(f64, f64)],
    val_acc: &[(f64, f64)],
    score: &str,
) -> Result<()> {
    let err = |e: String| Error::TensorFile {
        path: path.display().to_string(),
        detail: e,
    };
    font().map_err(err)?;
    let mut px = vec![255u8; W * H * 3];
    draw(&mut px, losses, train_acc, val_acc, score).map_err(err)?;
    let tmp = path.with_extension("png.tmp");
    let file = std::fs::File::create(&tmp).map_err(|e| err(e.to_string()))?;
    let mut enc = png::Encoder::new(std::io::BufWriter::new(file), W as u32, H as u32);
    enc.set_color(png::ColorType::Rgb);
    enc.set_depth(png::BitDepth::Eight);
    enc.write_header()
        .and_then(|mut w| w.write_image_data(&px))
        .map_err(|e| err(e.to_string()))?;
    std::fs::rename(&tmp, path).map_err(|e| err(e.to_string()))
}

fn draw(
    px: &mut [u8],
    losses: &[(f64, f64)],
    train_acc: &[(f64, f64)],
    val_acc: &[(f64, f64)],
    score: &str,
) -> std::result::Result<(), String> {
    let e = |e: DrawingAreaErrorKind<_>| e.to_string();
    let root = BitMapBackend::with_buffer(px, (W as u32, H as u32)).into_drawing_area();
    root.fill(&WHITE).map_err(e)?;
    let (left, right) = root.split_horizontally(W as u32 / 2);
    let (loss_colour, train_colour, val_colour) = (
        RGBColor(200, 40, 40),
        RGBColor(40, 150, 60),
        RGBColor(40, 80, 200),
    );

    let (x0, x1) = span(losses.iter().map(|p| p.0), (0.0, 1.0));
    let (y0, y1) = span(losses.iter().map(|p| p.1), (0.0, 1.0));
    let mut chart = ChartBuilder::on(&left)
        .caption("Training loss", (FONT, 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(x0..x1, y0.min(0.0).max(y0 - (y1 - y0))..y1)
        .map_err(e)?;
    chart
        .configure_mesh()
        .x_desc("optimizer step")
        .y_desc("loss")
        .x_label_formatter(&|x| format!("{x:.0}"))
        .axis_desc_style((FONT, 15))
        .label_style((FONT, 13))
        .light_line_style(RGBColor(235, 235, 235))
        .draw()
        .map_err(e)?;
    chart
        .draw_series(LineSeries::new(
            losses.iter().copied(),
            loss_colour.stroke_width(2),
        ))
        .map_err(e)?
        .label("loss read back")
        .legend(move |(x, y)| PathElement::new([(x, y), (x + 18, y)], loss_colour.stroke_width(2)));
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .label_font((FONT, 13))
        .border_style(RGBColor(180, 180, 180))
        .background_style(WHITE.mix(0.9))
        .draw()
        .map_err(e)?;

    let last_epoch = train_acc
        .iter()
        .chain(val_acc)
        .map(|p| p.0)
        .fold(1.0f64, f64::max);
    let mut chart = ChartBuilder::on(&right)
        .caption(format!("{score} per epoch"), (FONT, 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(50)
        .build_cartesian_2d(0.5..last_epoch + 0.5, 0.0..100.0)
        .map_err(e)?;
    chart
        .configure_mesh()
        .x_desc("epoch")
        .y_desc(format!("{score} (%)"))
        .x_labels((last_epoch as usize).clamp(2, 12))
        .x_label_formatter(&|x| format!("{x:.0}"))
        .y_label_formatter(&|y| format!("{y:.0}"))
        .axis_desc_style((FONT, 15))
        .label_style((FONT, 13))
        .light_line_style(RGBColor(235, 235, 235))
        .draw()
        .map_err(e)?;
    for (name, points, colour) in [
        ("validation", val_acc, val_colour),
        ("training", train_acc, train_colour),
    ] {
        if points.is_empty() {
            continue;
        }
        let pct: Vec<(f64, f64)> = points.iter().map(|&(x, a)| (x, a * 100.0)).collect();
        chart
            .draw_series(LineSeries::new(pct.iter().copied(), colour.stroke_width(2)))
            .map_err(e)?;
        // Markers, so a series measured once (training, at the last epoch) shows.
        chart
            .draw_series(pct.iter().map(|&p| Circle::new(p, 4, colour.filled())))
            .map_err(e)?
            .label(name)
            .legend(move |(x, y)| Circle::new((x + 9, y), 4, colour.filled()));
    }
    if !(train_acc.is_empty() && val_acc.is_empty()) {
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerRight)
            .label_font((FONT, 13))
            .border_style(RGBColor(180, 180, 180))
            .background_style(WHITE.mix(0.9))
            .draw()
            .map_err(e)?;
    }
    root.present().map_err(e)?;
    Ok(())
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

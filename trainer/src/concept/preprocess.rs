//! CLIP's image preprocessing (OpenAI `clip.load(...)[1]`, ViT-B/32): bicubic resize of
//! the short side to 224, centre crop 224×224, RGB in [0, 1], per-channel normalisation.
//! Output is CHW float32, ready for a teacher's `image` input.

use std::path::Path;

use edge4d_runtime::{Error, Result};
use image::imageops::FilterType;
use image::RgbImage;

/// The teacher's input side (CLIP ViT-B/32: 224).
pub const CLIP_SIZE: u32 = 224;
pub const CLIP_MEAN: [f32; 3] = [0.481_454_66, 0.457_827_5, 0.408_210_73];
pub const CLIP_STD: [f32; 3] = [0.268_629_54, 0.261_302_58, 0.275_777_11];

/// Decodes a PNG or JPEG held in memory; `origin` names it in errors.
pub fn decode_image(bytes: &[u8], origin: &str) -> Result<RgbImage> {
    let img = image::load_from_memory(bytes).map_err(|e| Error::TensorFile {
        path: origin.to_string(),
        detail: format!("not a readable PNG or JPEG image: {e}"),
    })?;
    if img.width() == 0 || img.height() == 0 {
        return Err(Error::TensorFile {
            path: origin.to_string(),
            detail: "the image is empty".into(),
        });
    }
    Ok(img.to_rgb8())
}

/// Reads and decodes an image file.
pub fn read_image(path: &Path) -> Result<(Vec<u8>, RgbImage)> {
    let bytes = std::fs::read(path).map_err(|e| Error::TensorFile {
        path: path.display().to_string(),
        detail: format!("cannot read: {e}"),
    })?;
    let img = decode_image(&bytes, &path.display().to_string())?;
    Ok((bytes, img))
}

/// torchvision's `Resize(224)` size: the short side becomes 224, the long side
/// `int(224 · long / short)`.
pub fn resized_size(width: u32, height: u32) -> (u32, u32) {
    let scaled = |long: u32, short: u32| {
        ((CLIP_SIZE as u64 * long as u64) / short as u64).max(CLIP_SIZE as u64) as u32
    };
    if width <= height {
        (CLIP_SIZE, scaled(height, width))
    } else {
        (scaled(width, height), CLIP_SIZE)
    }
}

/// (3, 224, 224) CHW floats, normalised with CLIP's mean and std.
pub fn clip_preprocess(img: &RgbImage) -> Vec<f32> {
    let (w, h) = resized_size(img.width(), img.height());
    // Catmull–Rom is PIL's bicubic kernel (a = −0.5); both widen it when shrinking.
    let resized = image::imageops::resize(img, w, h, FilterType::CatmullRom);
    // CenterCrop: offsets round((size − 224) / 2), Python's round (ties to even).
    let top = ((h - CLIP_SIZE) as f64 / 2.0).round_ties_even() as u32;
    let left = ((w - CLIP_SIZE) as f64 / 2.0).round_ties_even() as u32;
    let side = CLIP_SIZE as usize;
    let mut out = vec![0.0f32; 3 * side * side];
    for y in 0..side {
        for x in 0..side {
            let px = resized.get_pixel(left + x as u32, top + y as u32);
            for c in 0..3 {
                let v = px[c] as f32 / 255.0;
                out[(c * side + y) * side + x] = (v - CLIP_MEAN[c]) / CLIP_STD[c];
            }
        }
    }
    out
}

//! Paired image + point data for concept distillation, as a folder of RGB-D frames:
//!
//! ```text
//! DIR/<name>.color.png | <name>.color.jpg   colour image (what the teacher sees)
//! DIR/<name>.depth.png                      16-bit depth, back-projected with
//! DIR/intrinsics.json                       the camera intrinsics (depth_io)
//!   or DIR/<name>.ply | <name>.pcd          a point cloud instead of depth
//! DIR/labels.txt      (optional)            "<name> <class>" per line
//! DIR/classes.txt     (optional)            class names in label order
//! ```
//!
//! Each cloud is resampled to a fixed number of points and normalised as Point-MAE's
//! `pc_norm` does (centroid at the origin, farthest point at distance 1).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use edge4d_runtime::tensor_file::write_bytes_atomic;
use edge4d_runtime::Result;

use super::objects::{self, CLASSES};
use crate::cloud_io::{read_pcd, read_ply};
use crate::depth_io::{read_depth_png, write_depth_png, DepthIntrinsics};
use crate::humanoid::generate::resample;
use crate::rng::SplitMix64;

/// One frame: its colour image file and its normalised cloud.
pub struct PairedSample {
    pub name: String,
    pub image: PathBuf,
    /// (points, 3) interleaved.
    pub points: Vec<f32>,
    pub label: Option<usize>,
}

pub struct PairedDataset {
    pub samples: Vec<PairedSample>,
    /// Class names in label order (empty without labels).
    pub classes: Vec<String>,
    pub points_per_cloud: usize,
}

/// Point-MAE's `pc_norm`: centroid to the origin, then scale the farthest point to 1.
pub fn pc_norm(points: &mut [f32]) {
    let n = (points.len() / 3).max(1) as f32;
    let mut c = [0.0f32; 3];
    for p in points.chunks_exact(3) {
        for k in 0..3 {
            c[k] += p[k] / n;
        }
    }
    let mut far = 0.0f32;
    for p in points.chunks_exact_mut(3) {
        for k in 0..3 {
            p[k] -= c[k];
        }
        far = far.max((p[0] * p[0] + p[1] * p[1] + p[2] * p[2]).sqrt());
    }
    if far > 0.0 {
        points.iter_mut().for_each(|v| *v /= far);
    }
}

impl PairedDataset {
    /// Loads every frame of `dir` that has a colour image and depth or a cloud.
    pub fn load(dir: &Path, points_per_cloud: usize, seed: u64) -> Result<Self> {
        let entries = std::fs::read_dir(dir).map_err(|e| err(dir, format!("cannot list: {e}")))?;
        let mut images: BTreeMap<String, PathBuf> = BTreeMap::new();
        for e in entries.flatten() {
            let file = e.file_name().to_string_lossy().to_string();
            for ext in [".color.png", ".color.jpg", ".color.jpeg"] {
                if let Some(name) = file.strip_suffix(ext) {
                    images.insert(name.to_string(), e.path());
                }
            }
        }
        if images.is_empty() {
            return Err(err(
                dir,
                "no <name>.color.png or <name>.color.jpg images".into(),
            ));
        }
        let intrinsics_path = dir.join("intrinsics.json");
        let intrinsics = if intrinsics_path.exists() {
            Some(DepthIntrinsics::load(&intrinsics_path)?)
        } else {
            None
        };
        let (labels, classes) = read_labels(dir)?;
        let mut rng = SplitMix64::new(seed);
        let mut samples = Vec::with_capacity(images.len());
        for (name, image) in images {
            let depth = dir.join(format!("{name}.depth.png"));
            let raw = if depth.exists() {
                let k = intrinsics.ok_or_else(|| {
                    err(
                        &depth,
                        format!("depth frames need {}", intrinsics_path.display()),
                    )
                })?;
                let (w, h, d) = read_depth_png(&depth)?;
                if (w, h) != (k.width, k.height) {
                    return Err(err(
                        &depth,
                        format!(
                            "is {w}x{h}, but intrinsics.json says {}x{}",
                            k.width, k.height
                        ),
                    ));
                }
                k.back_project(&d)
            } else if dir.join(format!("{name}.ply")).exists() {
                read_ply(&dir.join(format!("{name}.ply")))?
            } else if dir.join(format!("{name}.pcd")).exists() {
                read_pcd(&dir.join(format!("{name}.pcd")))?
            } else {
                return Err(err(
                    &image,
                    format!("has no {name}.depth.png, {name}.ply or {name}.pcd beside it"),
                ));
            };
            if raw.is_empty() {
                return Err(err(&image, "its depth or cloud holds no points".into()));
            }
            let mut points = resample(&raw, points_per_cloud, 1.0, &mut rng);
            pc_norm(&mut points);
            let label = match &labels {
                Some(l) => Some(*l.get(&name).ok_or_else(|| {
                    err(&dir.join("labels.txt"), format!("has no label for {name}"))
                })?),
                None => None,
            };
            samples.push(PairedSample {
                name,
                image,
                points,
                label,
            });
        }
        Ok(Self {
            samples,
            classes,
            points_per_cloud,
        })
    }

    pub fn len(&self) -> usize {
        self.samples.len()
    }

    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }
}

/// labels.txt → (name → label, class names). Classes come from classes.txt when present,
/// else from the labels in sorted order.
fn read_labels(dir: &Path) -> Result<(Option<BTreeMap<String, usize>>, Vec<String>)> {
    let path = dir.join("labels.txt");
    if !path.exists() {
        return Ok((None, Vec::new()));
    }
    let text =
        std::fs::read_to_string(&path).map_err(|e| err(&path, format!("cannot read: {e}")))?;
    let mut pairs = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut it = line.split_whitespace();
        match (it.next(), it.next(), it.next()) {
            (Some(n), Some(c), None) => pairs.push((n.to_string(), c.to_string())),
            _ => {
                return Err(err(
                    &path,
                    format!("line {}: expected \"<name> <class>\"", i + 1),
                ))
            }
        }
    }
    let classes_path = dir.join("classes.txt");
    let classes: Vec<String> = if classes_path.exists() {
        std::fs::read_to_string(&classes_path)
            .map_err(|e| err(&classes_path, format!("cannot read: {e}")))?
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .collect()
    } else {
        let mut c: Vec<String> = pairs.iter().map(|(_, c)| c.clone()).collect();
        c.sort();
        c.dedup();
        c
    };
    let mut labels = BTreeMap::new();
    for (name, class) in pairs {
        let idx = classes.iter().position(|c| *c == class).ok_or_else(|| {
            err(
                &path,
                format!(
                    "{name}: class {class:?} is not in {}",
                    classes_path.display()
                ),
            )
        })?;
        labels.insert(name, idx);
    }
    Ok((Some(labels), classes))
}

/// Writes `per_class` random objects of each of the first `classes` classes, each seen
/// from `views` viewpoints, as colour + depth PNGs with intrinsics.json, labels.txt
/// ("name class" per frame) and classes.txt; returns the number of frames. Frame names
/// are `class_0007` (one view) or `class_0007_v2`.
pub fn write_objects(
    dir: &Path,
    per_class: usize,
    classes: usize,
    views: usize,
    side: usize,
    seed: u64,
) -> Result<usize> {
    if classes == 0 || classes > CLASSES.len() {
        return Err(err(
            dir,
            format!(
                "{classes} object classes asked for; there are 1 to {}",
                CLASSES.len()
            ),
        ));
    }
    std::fs::create_dir_all(dir).map_err(|e| err(dir, format!("cannot create: {e}")))?;
    let mut rng = SplitMix64::new(seed);
    let mut labels = String::new();
    let mut count = 0;
    for i in 0..per_class {
        for (class, class_name) in CLASSES.iter().enumerate().take(classes) {
            let frames = objects::render_views(class, side, views, &mut rng);
            for (view, frame) in frames.iter().enumerate() {
                let name = if views > 1 {
                    format!("{class_name}_{i:04}_v{view}")
                } else {
                    format!("{class_name}_{i:04}")
                };
                let colour = dir.join(format!("{name}.color.png"));
                let mut png_bytes = Vec::new();
                image::codecs::png::PngEncoder::new(&mut png_bytes)
                    .write_image(
                        &frame.rgb,
                        side as u32,
                        side as u32,
                        image::ExtendedColorType::Rgb8,
                    )
                    .map_err(|e| err(&colour, e.to_string()))?;
                write_bytes_atomic(&colour, &png_bytes)?;
                write_depth_png(
                    &dir.join(format!("{name}.depth.png")),
                    side,
                    side,
                    &frame.depth,
                )?;
                if count == 0 {
                    frame.intrinsics.save(&dir.join("intrinsics.json"))?;
                }
                labels.push_str(&format!("{name} {class_name}\n"));
                count += 1;
            }
        }
    }
    write_bytes_atomic(&dir.join("labels.txt"), labels.as_bytes())?;
    write_bytes_atomic(
        &dir.join("classes.txt"),
        (CLASSES[..classes].join("\n") + "\n").as_bytes(),
    )?;
    Ok(count)
}

use crate::file_error as err;
use image::ImageEncoder as _;

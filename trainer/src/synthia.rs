//! Synthia 4D from MeteorNet's preprocessed frames (reference-spec §9.2), read as
//! P4Transformer's `datasets/synthia.py` reads them: one `<SEQ>-<frame:06d>.npz` per
//! frame (`pc` (P, 3), `rgb` (P, 3), `semantic` (P,) raw Synthia ids, `center` (3,)),
//! a list file naming the split's frames, and `labelweights.npz`.
//!
//! The clip of frame f is [f, f−1, f−2] (reverse time order; a frame outside the
//! split repeats the most recent one read). Each clip becomes two half-crops along z
//! with 1 m of context (`z > c_z − 1` and `z < c_z + 1`, c = frame f's camera), whose
//! loss mask is the own half without void points; each half is resampled to N points
//! per frame. Augmentation happens at training time, not here.

use std::collections::BTreeMap;
use std::path::Path;

use edge4d_runtime::{Error, Result};

use crate::dataset::{ClipDataset, Labels};
use crate::file_error as err;
use crate::npy::Npz;
use crate::rng::SplitMix64;

/// Raw Synthia id → class (12 = void; −1 = ids the preprocessing removed).
pub const INDEX_TO_LABEL: [i32; 16] = [12, -1, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, -1, -1, 11];
/// The 12 classes, in label order.
pub const CLASSES: [&str; 12] = [
    "Building",
    "Road",
    "Sidewalk",
    "Fence",
    "Vegetation",
    "Pole",
    "Car",
    "Traffic Sign",
    "Pedestrian",
    "Bicycle",
    "Lanemarking",
    "Traffic Light",
];
const VOID: i32 = 12;

/// What to build.
#[derive(Debug, Clone)]
pub struct SynthiaConfig {
    /// Frames per clip (the reference: 3).
    pub frames: usize,
    /// Points per frame after resampling (the reference: 16384).
    pub points: usize,
    /// Half-crop context in metres (the reference: 1).
    pub context: f32,
    /// Read at most this many listed frames (in sorted order).
    pub limit: Option<usize>,
    pub seed: u64,
}

impl Default for SynthiaConfig {
    fn default() -> Self {
        Self {
            frames: 3,
            points: 16384,
            context: 1.0,
            limit: None,
            seed: 0,
        }
    }
}

struct Frame {
    pc: Vec<[f32; 3]>,
    rgb: Vec<[f32; 3]>,
    label: Vec<i32>,
    center: [f32; 3],
}

fn triples(path: &Path, name: &str, v: Option<Vec<f32>>, shape: &[usize]) -> Result<Vec<[f32; 3]>> {
    let v = v
        .filter(|_| shape.len() == 2 && shape[1] == 3)
        .ok_or_else(|| {
            err(
                path,
                format!("`{name}` is {shape:?}, expected (P, 3) numbers"),
            )
        })?;
    if let Some(bad) = v.iter().find(|x| !x.is_finite()) {
        return Err(err(
            path,
            format!("`{name}` holds a non-finite value {bad}"),
        ));
    }
    Ok(v.chunks_exact(3).map(|p| [p[0], p[1], p[2]]).collect())
}

fn read_frame(path: &Path) -> Result<Frame> {
    let mut z = Npz::open(path)?;
    let pc = z.array("pc")?;
    let rgb = z.array("rgb")?;
    let semantic = z.array("semantic")?;
    let center = z.array("center")?;
    let pc_pts = triples(path, "pc", pc.to_f32(), &pc.shape)?;
    let rgb_pts = triples(path, "rgb", rgb.to_f32(), &rgb.shape)?;
    let ids = semantic
        .to_i64()
        .filter(|v| v.len() == pc_pts.len())
        .ok_or_else(|| {
            err(
                path,
                format!(
                    "`semantic` is {:?}, expected ({},) integers",
                    semantic.shape,
                    pc_pts.len()
                ),
            )
        })?;
    if rgb_pts.len() != pc_pts.len() {
        return Err(err(
            path,
            format!("`rgb` has {} points, `pc` {}", rgb_pts.len(), pc_pts.len()),
        ));
    }
    let label = ids
        .iter()
        .map(|&id| match INDEX_TO_LABEL.get(id as usize) {
            Some(&l) if l >= 0 && id >= 0 => Ok(l),
            _ => Err(err(path, format!("`semantic` holds id {id}, which has no class (ids 1, 13 and 14 are removed in preprocessing)"))),
        })
        .collect::<Result<Vec<_>>>()?;
    let c = center
        .to_f32()
        .filter(|c| c.len() == 3)
        .ok_or_else(|| err(path, "`center` is not 3 numbers".into()))?;
    Ok(Frame {
        pc: pc_pts,
        rgb: rgb_pts,
        label,
        center: [c[0], c[1], c[2]],
    })
}

/// The split's (sequence, frame) pairs from a list file, as the reference parses it:
/// the first space-separated field, its first path part the sequence, its last part's
/// stem the frame number.
pub fn read_list(list: &Path) -> Result<Vec<(String, i64)>> {
    let text =
        std::fs::read_to_string(list).map_err(|e| err(list, format!("cannot be read: {e}")))?;
    let mut out = Vec::new();
    for (i, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let first = line.split(' ').next().unwrap_or("");
        let parts: Vec<&str> = first.split('/').collect();
        let frame = parts
            .last()
            .and_then(|p| p.split('.').next())
            .and_then(|s| s.parse::<i64>().ok())
            .filter(|_| parts.len() > 1);
        let Some(frame) = frame else {
            return Err(err(
                list,
                format!("line {} ({line:?}) is not `SEQ/.../FRAME.ext`", i + 1),
            ));
        };
        out.push((parts[0].to_string(), frame));
    }
    out.sort();
    Ok(out)
}

/// The loss's class weights from `labelweights.npz`: `1 / ln(1.2 + w)` normalised by
/// its minimum for training, ones for testing (as the reference dataset does).
pub fn class_weights(path: &Path, train: bool) -> Result<Vec<f32>> {
    let w = Npz::open(path)?.array("labelweights")?;
    let w = w
        .to_f32()
        .filter(|v| v.len() == CLASSES.len())
        .ok_or_else(|| {
            err(
                path,
                format!(
                    "`labelweights` is {:?}, expected {} numbers",
                    w.shape,
                    CLASSES.len()
                ),
            )
        })?;
    if !train {
        return Ok(vec![1.0; w.len()]);
    }
    let inv: Vec<f32> = w.iter().map(|&x| 1.0 / (1.2 + x).ln()).collect();
    let min = inv.iter().cloned().fold(f32::INFINITY, f32::min);
    Ok(inv.iter().map(|&x| x / min).collect())
}

/// Builds the half-crop clips of the frames `list` names under `root`.
pub fn load(
    root: &Path,
    list: &Path,
    labelweights: Option<&Path>,
    train: bool,
    cfg: &SynthiaConfig,
) -> Result<ClipDataset> {
    if cfg.frames == 0 || cfg.points == 0 {
        return Err(Error::InvalidArgument {
            op: "synthia",
            detail: format!(
                "clips need at least one frame and one point (got {} frames of {} points)",
                cfg.frames, cfg.points
            ),
        });
    }
    let mut meta = read_list(list)?;
    if let Some(limit) = cfg.limit {
        meta.truncate(limit);
    }
    if meta.is_empty() {
        return Err(err(list, "names no frame".into()));
    }
    let mut frames: BTreeMap<(String, i64), Frame> = BTreeMap::new();
    for (seq, f) in &meta {
        let path = root.join(format!("{seq}-{f:06}.npz"));
        frames.insert((seq.clone(), *f), read_frame(&path)?);
    }
    let (l, n) = (cfg.frames, cfg.points);
    let mut rng = SplitMix64::new(cfg.seed);
    let mut out = ClipDataset {
        clips_shape: [0, l, n, 3],
        ..Default::default()
    };
    let (mut rgb, mut labels, mut mask) = (Vec::new(), Vec::new(), Vec::new());
    for (seq, f) in &meta {
        // (source frame number, frame) per clip frame.
        let mut clip: Vec<(i64, &Frame)> = Vec::with_capacity(l);
        let mut recent = *f;
        for diff in 0..l as i64 {
            if frames.contains_key(&(seq.clone(), f - diff)) {
                recent = f - diff;
            }
            clip.push((recent, &frames[&(seq.clone(), recent)]));
        }
        let cz = clip[0].1.center[2];
        for half in 0..2 {
            for &(source, frame) in &clip {
                let keep: Vec<usize> = (0..frame.pc.len())
                    .filter(|&i| {
                        let z = frame.pc[i][2];
                        if half == 0 {
                            z > cz - cfg.context
                        } else {
                            z < cz + cfg.context
                        }
                    })
                    .collect();
                if keep.is_empty() {
                    return Err(err(
                        &root.join(format!("{seq}-{source:06}.npz")),
                        format!("has no point in half-crop {half} of the clip of frame {f}"),
                    ));
                }
                for i in choose(keep.len(), n, &mut rng) {
                    let p = keep[i];
                    let own = if half == 0 {
                        frame.pc[p][2] > cz
                    } else {
                        frame.pc[p][2] < cz
                    };
                    let y = frame.label[p];
                    out.clips.extend(frame.pc[p]);
                    rgb.extend(frame.rgb[p]);
                    labels.push(if y == VOID { 0 } else { y as u32 });
                    mask.push((own && y != VOID) as u8 as f32);
                }
            }
            out.clips_shape[0] += 1;
        }
    }
    out.labels = Labels::PerPoint(labels);
    out.rgb = Some(rgb);
    out.mask = Some(mask);
    out.class_weight = labelweights.map(|p| class_weights(p, train)).transpose()?;
    Ok(out)
}

/// `points` indices into `n` as `choice_to_num_points` draws them: without replacement
/// when there are more, otherwise `points − n` drawn with replacement followed by all.
fn choose(n: usize, points: usize, rng: &mut SplitMix64) -> Vec<usize> {
    if n > points {
        return crate::msr::resample_indices(n, points, rng);
    }
    let mut idx: Vec<usize> = (0..points - n)
        .map(|_| (rng.next_u64() % n as u64) as usize)
        .collect();
    idx.extend(0..n);
    idx
}

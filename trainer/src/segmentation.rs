//! 4D semantic segmentation batches: points, their input features (colours, or the
//! coordinates themselves when a dataset has none, as HOI4D's `seg_base.py` does),
//! per-point labels and loss masks, the loss's per-point weights, and mIoU.

use edge4d_runtime::models::synthia::{segmentation_row_weights, SegmentationNet};
use edge4d_runtime::models::ParamStore;
use edge4d_runtime::{Device, Error, Result, Tensor};

use crate::augment;
use crate::dataset::{ClipDataset, Labels};
use crate::metrics::{argmax, hoi4d_seg_prediction, IoU};
use crate::rng::SplitMix64;

/// One batch in the layouts the segmentation net takes.
#[derive(Debug, Clone, PartialEq)]
pub struct SegBatch {
    /// (B, L, N, 3).
    pub xyz: Vec<f32>,
    /// (B, L, 3, N): channels first per frame, as `models/synthia.py` takes `rgbs`.
    pub features: Vec<f32>,
    /// (B·L·N).
    pub labels: Vec<u32>,
    /// (B·L·N), 1 where the point counts.
    pub mask: Vec<f32>,
}

/// The clips `indices` of a per-point-labelled dataset. With `rng`, each clip's points
/// are augmented as the Synthia reference intends (x-flip, scale U(0.8, 1.2), rotation
/// about y, all about the first frame's centre) before they become the features.
pub fn batch(
    data: &ClipDataset,
    indices: &[usize],
    rng: Option<&mut SplitMix64>,
) -> Result<SegBatch> {
    let Labels::PerPoint(all_labels) = &data.labels else {
        return Err(Error::InvalidArgument {
            op: "segmentation",
            detail: "the dataset needs one label per point (`label` of shape (B, L, N))".into(),
        });
    };
    let [_, l, n, _] = data.clips_shape;
    let (per, points) = (l * n * 3, l * n);
    let mut out = SegBatch {
        xyz: Vec::with_capacity(indices.len() * per),
        features: Vec::with_capacity(indices.len() * per),
        labels: Vec::with_capacity(indices.len() * points),
        mask: Vec::with_capacity(indices.len() * points),
    };
    let mut rng = rng;
    for &i in indices {
        let mut clip = data.clips[i * per..(i + 1) * per].to_vec();
        if let Some(r) = rng.as_deref_mut() {
            augment::flip_x(&mut clip, n, r);
            augment::scale_about_centre(&mut clip, n, r, 0.8, 1.2);
            augment::rotate_y(&mut clip, n, r);
        }
        let feats = data
            .rgb
            .as_ref()
            .map_or(&clip[..], |c| &c[i * per..(i + 1) * per]);
        for frame in 0..l {
            for ch in 0..3 {
                out.features
                    .extend((0..n).map(|p| feats[(frame * n + p) * 3 + ch]));
            }
        }
        out.xyz.extend_from_slice(&clip);
        out.labels
            .extend_from_slice(&all_labels[i * points..(i + 1) * points]);
        match &data.mask {
            Some(m) => out.mask.extend_from_slice(&m[i * points..(i + 1) * points]),
            None => out.mask.extend(std::iter::repeat_n(1.0, points)),
        }
    }
    Ok(out)
}

/// Each point's loss weight, `class_weight[label]·mask / (Σmask + 1)` (train-syn.py);
/// uniform class weights when the dataset has none.
pub fn row_weights(
    batch: &SegBatch,
    class_weight: Option<&[f32]>,
    classes: usize,
) -> Result<Vec<f32>> {
    let ones = vec![1.0; classes];
    segmentation_row_weights(&batch.labels, &batch.mask, class_weight.unwrap_or(&ones))
}

/// How predictions become mIoU.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MiouProtocol {
    /// Synthia 4D (§10.2): argmax over all classes, mean IoU over all classes.
    Synthia,
    /// HOI4D (§10.3): argmax over classes 2.., mean over classes with ground truth
    /// except 0 and 1.
    Hoi4d,
}

/// Adds one batch's logits ((B·L·N) rows of `classes`) to `iou`, masked points only;
/// returns the predicted classes.
pub fn accumulate(
    iou: &mut IoU,
    logits: &[f32],
    classes: usize,
    batch: &SegBatch,
    protocol: MiouProtocol,
) -> Vec<usize> {
    let pred: Vec<usize> = logits
        .chunks(classes)
        .map(|row| {
            let row: Vec<f64> = row.iter().map(|&v| v as f64).collect();
            match protocol {
                MiouProtocol::Synthia => argmax(&row),
                MiouProtocol::Hoi4d => hoi4d_seg_prediction(&row),
            }
        })
        .collect();
    let label: Vec<usize> = batch.labels.iter().map(|&y| y as usize).collect();
    let mask: Vec<bool> = batch.mask.iter().map(|&m| m > 0.5).collect();
    iou.add(&pred, &label, Some(&mask));
    pred
}

/// The protocol's mIoU of an accumulated `iou`.
pub fn miou(iou: &IoU, protocol: MiouProtocol) -> f64 {
    match protocol {
        MiouProtocol::Synthia => iou.miou(),
        MiouProtocol::Hoi4d => iou.miou_present(&[0, 1]),
    }
}

/// Checks that `data` suits a segmentation net with `classes` outputs.
pub fn check_data(
    data: &ClipDataset,
    path: &std::path::Path,
    classes: usize,
) -> std::result::Result<(), String> {
    if !matches!(data.labels, Labels::PerPoint(_)) {
        return Err(format!(
            "{}: semantic segmentation needs one label per point (`label` (B, L, N))",
            path.display()
        ));
    }
    if data.classes_seen() > classes {
        return Err(format!(
            "{}: label {} is out of range for num_classes = {classes}",
            path.display(),
            data.classes_seen() - 1
        ));
    }
    if let Some(w) = &data.class_weight {
        if w.len() != classes {
            return Err(format!(
                "{}: `class_weight` has {} entries for num_classes = {classes}",
                path.display(),
                w.len()
            ));
        }
    }
    Ok(())
}

/// Uploads a batch's points and features: (xyz (B, L, N, 3), features (B, L, 3, N)).
pub fn upload(dev: &Device, b: &SegBatch, shape: [usize; 3]) -> Result<(Tensor, Tensor)> {
    let [clips, l, n] = shape;
    Ok((
        dev.upload(&b.xyz, &[clips, l, n, 3])?,
        dev.upload(&b.features, &[clips, l, 3, n])?,
    ))
}

/// The model's IoU counts on `data` (eval mode, masked points only) and its predicted
/// class of every point (B·L·N).
pub fn evaluate(
    dev: &Device,
    model: &SegmentationNet,
    params: &ParamStore,
    data: &ClipDataset,
    batch_size: usize,
    classes: usize,
    protocol: MiouProtocol,
) -> Result<(IoU, Vec<usize>)> {
    let [b, l, n, _] = data.clips_shape;
    let mut iou = IoU::new(classes);
    let mut predictions = Vec::with_capacity(b * l * n);
    let all: Vec<usize> = (0..b).collect();
    for chunk in all.chunks(batch_size.max(1)) {
        let sb = batch(data, chunk, None)?;
        let (xyz, feats) = upload(dev, &sb, [chunk.len(), l, n])?;
        let logits = dev.run(|s| Ok(model.forward(s, params, &xyz, &feats, false)?.logits))?;
        predictions.extend(accumulate(
            &mut iou,
            &dev.read(&logits)?,
            classes,
            &sb,
            protocol,
        ));
    }
    Ok((iou, predictions))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny() -> ClipDataset {
        // 1 clip, 2 frames, 2 points.
        ClipDataset {
            clips: (0..12).map(|v| v as f32).collect(),
            clips_shape: [1, 2, 2, 3],
            labels: Labels::PerPoint(vec![0, 1, 1, 2]),
            mask: Some(vec![1.0, 0.0, 1.0, 1.0]),
            ..Default::default()
        }
    }

    #[test]
    fn features_are_channels_first_and_default_to_the_coordinates() {
        let d = tiny();
        let b = batch(&d, &[0], None).unwrap();
        // Frame 0 points (0,1,2), (3,4,5) → channels [0,3], [1,4], [2,5].
        assert_eq!(&b.features[..6], &[0.0, 3.0, 1.0, 4.0, 2.0, 5.0]);
        assert_eq!(b.xyz, d.clips);
        let mut with_rgb = d.clone();
        with_rgb.rgb = Some((0..12).map(|v| v as f32 / 12.0).collect());
        let b = batch(&with_rgb, &[0], None).unwrap();
        assert_eq!(b.features[1], 3.0 / 12.0);
        // Masked points weigh 0; the rest w[y] / (Σmask + 1) = w[y] / 4.
        let w = row_weights(&b, Some(&[1.0, 2.0, 4.0]), 3).unwrap();
        assert_eq!(w, vec![0.25, 0.0, 0.5, 1.0]);
        let mut iou = IoU::new(3);
        // Predictions: point 0 → 0 (right), 1 → 2 (masked), 2 → 1 (right), 3 → 0 (wrong).
        let logits = [9.0, 0.0, 0.0, 0.0, 0.0, 9.0, 0.0, 9.0, 0.0, 9.0, 0.0, 0.0];
        accumulate(&mut iou, &logits, 3, &b, MiouProtocol::Synthia);
        // IoU_0 = 1/2, IoU_1 = 1/1, IoU_2 = 0/1.
        assert!((miou(&iou, MiouProtocol::Synthia) - 0.5).abs() < 1e-12);
        assert!(batch(&ClipDataset::default(), &[], None).is_err());
    }
}

//! Evaluation metrics exactly as the reference code computes them (reference-spec §10).

/// Video-level accuracy of MSR-Action3D (train-msr.py `evaluate`, §10.1): the softmax
/// probabilities of all clips of a video are summed, the argmax is compared with the
/// video's label, and the result is averaged over videos. Returns (clip accuracy,
/// video accuracy, per-class video accuracy (None for classes without videos)).
pub fn video_accuracy(
    clip_probs: &[Vec<f64>],
    clip_video: &[usize],
    video_labels: &[usize],
) -> (f64, f64, Vec<Option<f64>>) {
    let classes = clip_probs.first().map_or(0, Vec::len);
    let mut sums = vec![vec![0.0; classes]; video_labels.len()];
    let mut clip_hits = 0usize;
    for (p, &v) in clip_probs.iter().zip(clip_video) {
        for (s, x) in sums[v].iter_mut().zip(p) {
            *s += x;
        }
        if argmax(p) == video_labels[v] {
            clip_hits += 1;
        }
    }
    let mut per_class = vec![(0usize, 0usize); classes];
    let mut hits = 0usize;
    for (s, &y) in sums.iter().zip(video_labels) {
        let ok = argmax(s) == y;
        hits += ok as usize;
        if y < classes {
            per_class[y].0 += ok as usize;
            per_class[y].1 += 1;
        }
    }
    let n_clips = clip_probs.len().max(1) as f64;
    let n_videos = video_labels.len().max(1) as f64;
    (
        clip_hits as f64 / n_clips,
        hits as f64 / n_videos,
        per_class
            .iter()
            .map(|&(h, n)| (n > 0).then(|| h as f64 / n as f64))
            .collect(),
    )
}

/// Index of the largest value (the first on ties, as numpy/torch argmax).
pub fn argmax(v: &[f64]) -> usize {
    let mut best = 0;
    for (i, &x) in v.iter().enumerate() {
        if x > v[best] {
            best = i;
        }
    }
    best
}

/// Per-class IoU and mIoU accumulated over a test set (§10.2): `IoU_c = TP_c /
/// #((pred == c) | (label == c))`, 0 when the denominator is 0. Only points with
/// `mask` set count.
#[derive(Debug, Clone)]
pub struct IoU {
    tp: Vec<u64>,
    union: Vec<u64>,
    present: Vec<u64>,
}

impl IoU {
    pub fn new(classes: usize) -> Self {
        Self {
            tp: vec![0; classes],
            union: vec![0; classes],
            present: vec![0; classes],
        }
    }

    pub fn add(&mut self, pred: &[usize], label: &[usize], mask: Option<&[bool]>) {
        for i in 0..pred.len() {
            if mask.is_some_and(|m| !m[i]) {
                continue;
            }
            let (p, y) = (pred[i], label[i]);
            if p == y {
                self.tp[p] += 1;
                self.union[p] += 1;
            } else {
                self.union[p] += 1;
                self.union[y] += 1;
            }
            self.present[y] += 1;
        }
    }

    pub fn per_class(&self) -> Vec<f64> {
        self.tp
            .iter()
            .zip(&self.union)
            .map(|(&t, &u)| if u == 0 { 0.0 } else { t as f64 / u as f64 })
            .collect()
    }

    /// Synthia's mIoU: the mean over all classes.
    pub fn miou(&self) -> f64 {
        let pc = self.per_class();
        pc.iter().sum::<f64>() / pc.len().max(1) as f64
    }

    /// HOI4D segmentation's mIoU (§10.3): the mean over classes with ground-truth points,
    /// skipping the classes in `skip` (0 and 1 there).
    pub fn miou_present(&self, skip: &[usize]) -> f64 {
        let pc = self.per_class();
        let kept: Vec<f64> = (0..pc.len())
            .filter(|c| !skip.contains(c) && self.present[*c] > 0)
            .map(|c| pc[c])
            .collect();
        kept.iter().sum::<f64>() / kept.len().max(1) as f64
    }
}

/// HOI4D segmentation's prediction rule (§10.3): the argmax over classes 2.. plus 2.
pub fn hoi4d_seg_prediction(logits: &[f64]) -> usize {
    argmax(&logits[2.min(logits.len())..]) + 2
}

/// A labelled segment: (label, start, end) as MS-TCN's `get_labels_start_end_time`
/// makes them — the last segment ends at `len − 1`, the others at the next start.
pub fn segments(frames: &[usize]) -> Vec<(usize, usize, usize)> {
    let mut out: Vec<(usize, usize, usize)> = Vec::new();
    for (i, &l) in frames.iter().enumerate() {
        if i == 0 || l != frames[i - 1] {
            if let Some(last) = out.last_mut() {
                last.2 = i;
            }
            out.push((l, i, 0));
        }
    }
    if let Some(last) = out.last_mut() {
        last.2 = frames.len() - 1;
    }
    out
}

fn levenshtein(p: &[usize], y: &[usize]) -> f64 {
    let mut d = vec![vec![0.0f64; y.len() + 1]; p.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i as f64;
    }
    for j in 0..=y.len() {
        d[0][j] = j as f64;
    }
    for i in 1..=p.len() {
        for j in 1..=y.len() {
            let sub = if p[i - 1] == y[j - 1] { 0.0 } else { 1.0 };
            d[i][j] = (d[i - 1][j] + 1.0)
                .min(d[i][j - 1] + 1.0)
                .min(d[i - 1][j - 1] + sub);
        }
    }
    d[p.len()][y.len()]
}

/// Segmental edit score (×100) of one sequence.
pub fn edit_score(pred: &[usize], truth: &[usize]) -> f64 {
    let p: Vec<usize> = segments(pred).iter().map(|s| s.0).collect();
    let y: Vec<usize> = segments(truth).iter().map(|s| s.0).collect();
    let m = p.len().max(y.len()).max(1) as f64;
    (1.0 - levenshtein(&p, &y) / m) * 100.0
}

/// (TP, FP, FN) of one sequence at IoU threshold `tau` (MS-TCN `f_score`).
pub fn f_score_counts(pred: &[usize], truth: &[usize], tau: f64) -> (u64, u64, u64) {
    let p = segments(pred);
    let y = segments(truth);
    let mut hit = vec![false; y.len()];
    let (mut tp, mut fp) = (0u64, 0u64);
    for &(pl, ps, pe) in &p {
        let mut best = (f64::NEG_INFINITY, 0usize);
        for (x, &(yl, ys, ye)) in y.iter().enumerate() {
            let inter = pe.min(ye) as f64 - ps.max(ys) as f64;
            let union = pe.max(ye) as f64 - ps.min(ys) as f64;
            let iou = if pl == yl { inter / union } else { 0.0 };
            // numpy's argmax: the first maximum.
            if iou > best.0 {
                best = (iou, x);
            }
        }
        if best.0 >= tau && !hit[best.1] {
            tp += 1;
            hit[best.1] = true;
        } else {
            fp += 1;
        }
    }
    let fn_ = y.len() as u64 - hit.iter().filter(|&&h| h).count() as u64;
    (tp, fp, fn_)
}

/// F1 (×100) from TP/FP/FN summed over all test sequences (NaN → 0).
pub fn f1_from_counts(tp: u64, fp: u64, fn_: u64) -> f64 {
    let precision = tp as f64 / (tp + fp) as f64;
    let recall = tp as f64 / (tp + fn_) as f64;
    let f1 = 2.0 * precision * recall / (precision + recall) * 100.0;
    if f1.is_nan() {
        0.0
    } else {
        f1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn video_accuracy_sums_clip_probabilities_per_video() {
        // Video 0 (label 1): clips say 0 (0.6) and 1 (0.9) → summed argmax 1 (right).
        // Video 1 (label 0): one clip saying 1 → wrong.
        let probs = vec![vec![0.6, 0.4], vec![0.1, 0.9], vec![0.3, 0.7]];
        let (clip, video, per_class) = video_accuracy(&probs, &[0, 0, 1], &[1, 0]);
        assert!((clip - 1.0 / 3.0).abs() < 1e-12);
        assert_eq!(video, 0.5);
        assert_eq!(per_class, vec![Some(0.0), Some(1.0)]);
    }

    #[test]
    fn iou_by_hand() {
        let mut m = IoU::new(3);
        // pred 0 0 1 1 2, label 0 1 1 1 1, last point masked out.
        m.add(
            &[0, 0, 1, 1, 2],
            &[0, 1, 1, 1, 1],
            Some(&[true, true, true, true, false]),
        );
        // class 0: TP 1, union {0,1} = 2 → 0.5; class 1: TP 2, union {1,2,3} = 3; class 2: 0/0 → 0.
        assert_eq!(m.per_class(), vec![0.5, 2.0 / 3.0, 0.0]);
        assert!((m.miou() - (0.5 + 2.0 / 3.0) / 3.0).abs() < 1e-12);
        // Skipping class 0 and absent class 2 leaves class 1.
        assert!((m.miou_present(&[0]) - 2.0 / 3.0).abs() < 1e-12);
        assert_eq!(hoi4d_seg_prediction(&[9.0, 9.0, 1.0, 3.0]), 3);
    }

    #[test]
    fn segments_end_at_the_last_index_as_ms_tcn() {
        assert_eq!(
            segments(&[0, 0, 1, 1, 1, 2]),
            vec![(0, 0, 2), (1, 2, 5), (2, 5, 5)]
        );
        assert_eq!(segments(&[4, 4, 4]), vec![(4, 0, 2)]);
    }

    #[test]
    fn edit_and_f1_by_hand() {
        let truth = [0, 0, 0, 1, 1, 1, 2, 2];
        assert_eq!(edit_score(&truth, &truth), 100.0);
        // Predicted segments 0,1 vs 0,1,2: one deletion over 3 → 66.67.
        let pred = [0, 0, 0, 1, 1, 1, 1, 1];
        assert!((edit_score(&pred, &truth) - 200.0 / 3.0).abs() < 1e-9);
        // Segments: truth (0,0,3) (1,3,6) (2,6,7); pred (0,0,3) (1,3,7).
        // pred 0 vs truth 0: IoU 1 → TP. pred 1 vs truth 1: (6-3)/(7-3) = 0.75 → TP at 0.5.
        assert_eq!(f_score_counts(&pred, &truth, 0.5), (2, 0, 1));
        // At τ = 0.8 the second is a false positive.
        assert_eq!(f_score_counts(&pred, &truth, 0.8), (1, 1, 2));
        let f1 = f1_from_counts(2, 0, 1);
        assert!((f1 - 80.0).abs() < 1e-9);
        assert_eq!(f1_from_counts(0, 0, 0), 0.0);
    }
}

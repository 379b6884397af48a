//! Batches of Point-MAE training: sample orders, fixed-size batches and the clouds of
//! a batch, augmented as Point-MAE does.

use crate::rng::SplitMix64;

use super::distill::scale_and_translate;
use super::pairs::PairedDataset;

/// Batches of exactly `batch` sample indices, wrapping round at the end of the order.
pub fn batches(order: &[usize], batch: usize) -> Vec<Vec<usize>> {
    (0..order.len().div_ceil(batch))
        .map(|b| {
            (0..batch)
                .map(|i| order[(b * batch + i) % order.len()])
                .collect()
        })
        .collect()
}

/// An epoch's sample order: shuffled, or in file order.
pub fn epoch_order(n: usize, shuffle: bool, rng: &mut SplitMix64) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    if shuffle {
        rng.shuffle(&mut order);
    }
    order
}

/// The clouds of `chunk`, concatenated, each scaled and translated when `augment`.
pub fn batch_clouds(
    data: &PairedDataset,
    chunk: &[usize],
    augment: bool,
    rng: &mut SplitMix64,
) -> Vec<f32> {
    let mut clouds = Vec::with_capacity(chunk.len() * data.points_per_cloud * 3);
    for &i in chunk {
        let mut c = data.samples[i].points.clone();
        if augment {
            scale_and_translate(&mut c, rng);
        }
        clouds.extend(c);
    }
    clouds
}

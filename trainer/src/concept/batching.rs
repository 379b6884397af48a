//! The clouds of a Point-MAE training batch, augmented as Point-MAE does.

use crate::rng::SplitMix64;

use super::distill::scale_and_translate;
use super::pairs::PairedDataset;

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

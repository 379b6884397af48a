//! Reuses GPU buffers across steps: a freed buffer returns to a free list keyed by
//! its size class and usage, so a training loop allocates only on its first step.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// What a pooled buffer is used for (its wgpu usage flags).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum BufferKind {
    Storage,
    Uniform,
    Readback,
}

impl BufferKind {
    fn usage(self) -> wgpu::BufferUsages {
        match self {
            Self::Storage => {
                wgpu::BufferUsages::STORAGE
                    | wgpu::BufferUsages::COPY_SRC
                    | wgpu::BufferUsages::COPY_DST
            }
            Self::Uniform => wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            Self::Readback => wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
        }
    }
}

/// Rounds a byte size up to a size class: quarter-octave steps above 256 bytes, so
/// at most 25% of a buffer is slack while similar sizes share free lists.
pub(crate) fn size_class(bytes: u64) -> u64 {
    let bytes = bytes.max(16);
    if bytes <= 256 {
        return bytes.next_multiple_of(16);
    }
    let octave = 63 - (bytes - 1).leading_zeros() as u64; // 2^octave < bytes <= 2^(octave+1)
    let step = 1u64 << (octave - 2);
    bytes.next_multiple_of(step)
}

pub(crate) struct BufferPool {
    device: wgpu::Device,
    serial: Option<Arc<parking_lot::ReentrantMutex<()>>>,
    free: Mutex<HashMap<(u64, BufferKind), Vec<wgpu::Buffer>>>,
    created: Mutex<u64>,
}

impl BufferPool {
    pub(crate) fn new(
        device: wgpu::Device,
        serial: Option<Arc<parking_lot::ReentrantMutex<()>>>,
    ) -> Self {
        Self {
            device,
            serial,
            free: Mutex::new(HashMap::new()),
            created: Mutex::new(0),
        }
    }

    /// A buffer of at least `bytes` bytes, reused when one of its class is free.
    pub(crate) fn acquire(self: &Arc<Self>, bytes: u64, kind: BufferKind) -> Arc<PooledBuffer> {
        let class = size_class(bytes);
        let reused = self
            .free
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get_mut(&(class, kind))
            .and_then(Vec::pop);
        let buffer = reused.unwrap_or_else(|| {
            let _serial = self.serial.as_ref().map(|m| m.lock());
            *self.created.lock().unwrap_or_else(|p| p.into_inner()) += 1;
            self.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("edge4d pooled"),
                size: class,
                usage: kind.usage(),
                mapped_at_creation: false,
            })
        });
        Arc::new(PooledBuffer {
            buffer: Some(buffer),
            class,
            kind,
            pool: self.clone(),
        })
    }

    /// How many buffers were ever created (a steady training loop stops growing this).
    pub(crate) fn created(&self) -> u64 {
        *self.created.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A buffer on loan from the pool; it goes back when the last handle drops.
pub(crate) struct PooledBuffer {
    buffer: Option<wgpu::Buffer>,
    class: u64,
    kind: BufferKind,
    pool: Arc<BufferPool>,
}

impl PooledBuffer {
    pub(crate) fn buffer(&self) -> &wgpu::Buffer {
        self.buffer
            .as_ref()
            .expect("pooled buffer is present until drop")
    }
}

impl Drop for PooledBuffer {
    fn drop(&mut self) {
        if let Some(buffer) = self.buffer.take() {
            self.pool
                .free
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .entry((self.class, self.kind))
                .or_default()
                .push(buffer);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::size_class;

    #[test]
    fn size_classes_cover_the_request_with_bounded_slack() {
        for bytes in [
            1u64,
            4,
            17,
            255,
            256,
            257,
            1000,
            4096,
            4097,
            1 << 20,
            (1 << 20) + 1,
            123_456_789,
        ] {
            let c = size_class(bytes);
            assert!(c >= bytes && c % 4 == 0, "{bytes} -> {c}");
            assert!(
                bytes < 64 || (c as f64) <= bytes as f64 * 1.25 + 16.0,
                "{bytes} -> {c}"
            );
        }
        assert_eq!(size_class(1000), size_class(1001));
    }
}

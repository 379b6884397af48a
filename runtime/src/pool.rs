//! Reuses buffers across steps: a freed buffer returns to a free list keyed by its size
//! class and usage, so a training loop or a stream allocates only on its first step.
//! GPU devices pool wgpu buffers; the native CPU backend pools host memory the same way.

use std::collections::HashMap;
use std::ptr::NonNull;
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

/// Host memory of the CPU backend: 32-bit words, zeroed on creation. Kernels reach it
/// through raw pointers while the device's execution lock is held (see `cpu::exec`).
pub(crate) struct HostBuffer {
    ptr: NonNull<u32>,
    words: usize,
}

// The words are only touched under the owning device's execution lock.
unsafe impl Send for HostBuffer {}
unsafe impl Sync for HostBuffer {}

impl HostBuffer {
    fn new(words: usize) -> Self {
        let boxed: Box<[u32]> = vec![0u32; words.max(1)].into_boxed_slice();
        let words = boxed.len();
        let ptr = NonNull::new(Box::into_raw(boxed) as *mut u32).expect("box is non-null");
        Self { ptr, words }
    }

    /// The first word; valid for `words()` words while the buffer lives.
    pub(crate) fn ptr(&self) -> *mut u32 {
        self.ptr.as_ptr()
    }

    pub(crate) fn words(&self) -> usize {
        self.words
    }
}

impl Drop for HostBuffer {
    fn drop(&mut self) {
        // Rebuilds the box made in `new`.
        unsafe {
            drop(Box::from_raw(std::ptr::slice_from_raw_parts_mut(
                self.ptr.as_ptr(),
                self.words,
            )));
        }
    }
}

/// Where a pool's buffers live.
enum Memory {
    Gpu {
        device: wgpu::Device,
        serial: Option<Arc<parking_lot::ReentrantMutex<()>>>,
    },
    Host,
}

enum Buffer {
    Gpu(wgpu::Buffer),
    Host(HostBuffer),
}

pub(crate) struct BufferPool {
    memory: Memory,
    free: Mutex<HashMap<(u64, BufferKind), Vec<Buffer>>>,
    created: Mutex<u64>,
    /// Bytes of every live (loaned) buffer by size class, and the most ever live.
    in_use: Mutex<(u64, u64)>,
}

impl BufferPool {
    pub(crate) fn gpu(
        device: wgpu::Device,
        serial: Option<Arc<parking_lot::ReentrantMutex<()>>>,
    ) -> Self {
        Self::with(Memory::Gpu { device, serial })
    }

    pub(crate) fn host() -> Self {
        Self::with(Memory::Host)
    }

    fn with(memory: Memory) -> Self {
        Self {
            memory,
            free: Mutex::new(HashMap::new()),
            created: Mutex::new(0),
            in_use: Mutex::new((0, 0)),
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
            *self.created.lock().unwrap_or_else(|p| p.into_inner()) += 1;
            match &self.memory {
                Memory::Gpu { device, serial } => {
                    let _serial = serial.as_ref().map(|m| m.lock());
                    Buffer::Gpu(device.create_buffer(&wgpu::BufferDescriptor {
                        label: Some("edge4d pooled"),
                        size: class,
                        usage: kind.usage(),
                        mapped_at_creation: false,
                    }))
                }
                Memory::Host => Buffer::Host(HostBuffer::new((class / 4) as usize)),
            }
        });
        {
            let mut use_ = self.in_use.lock().unwrap_or_else(|p| p.into_inner());
            use_.0 += class;
            use_.1 = use_.1.max(use_.0);
        }
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

    /// (bytes of buffers on loan now, the most ever on loan at once).
    pub(crate) fn usage(&self) -> (u64, u64) {
        *self.in_use.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Restarts the peak at the current use.
    pub(crate) fn reset_peak(&self) {
        let mut use_ = self.in_use.lock().unwrap_or_else(|p| p.into_inner());
        use_.1 = use_.0;
    }
}

/// A buffer on loan from the pool; it goes back when the last handle drops.
pub(crate) struct PooledBuffer {
    buffer: Option<Buffer>,
    class: u64,
    kind: BufferKind,
    pool: Arc<BufferPool>,
}

impl PooledBuffer {
    /// The size class this buffer was made for.
    pub(crate) fn class(&self) -> u64 {
        self.class
    }

    /// Whether it holds tensor data (not a uniform or readback buffer).
    pub(crate) fn is_storage(&self) -> bool {
        self.kind == BufferKind::Storage
    }

    /// The wgpu buffer; only called on GPU devices, whose pools hold nothing else.
    pub(crate) fn buffer(&self) -> &wgpu::Buffer {
        match self.buffer.as_ref() {
            Some(Buffer::Gpu(b)) => b,
            _ => unreachable!("a GPU device's pool holds only wgpu buffers"),
        }
    }

    /// The host memory; only called on the CPU backend, whose pool holds nothing else.
    pub(crate) fn host(&self) -> &HostBuffer {
        match self.buffer.as_ref() {
            Some(Buffer::Host(b)) => b,
            _ => unreachable!("the CPU backend's pool holds only host buffers"),
        }
    }
}

impl Drop for PooledBuffer {
    fn drop(&mut self) {
        if let Some(buffer) = self.buffer.take() {
            {
                let mut use_ = self.pool.in_use.lock().unwrap_or_else(|p| p.into_inner());
                use_.0 = use_.0.saturating_sub(self.class);
            }
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

//! The native CPU backend: every WGSL entry point has a Rust twin with the same
//! bindings and `Params`, in one file per kernel family mirroring `shaders/wgsl/`.
//! A step runs its twins in order at submit, each parallel over a fixed split of its
//! output (rayon), so results are bitwise identical run to run and for any thread count:
//! every output element is computed by one sequential loop, whatever thread runs it.
//! Matrix products go through the `gemm` crate (AVX2/AVX-512/NEON, multithreaded).
//!
//! Tensors live in pooled host memory (`pool.rs`); an upload or a read is one copy.

mod activation;
mod attention;
mod dense;
mod elementwise;
mod layout;
mod loss;
mod norm;
mod optim;
mod p4dconv;
mod partial_view;
mod point;
mod reduce;
mod util;

use std::collections::HashSet;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex};

use edge4d_shaders::Shader;
use rayon::prelude::*;

use crate::backend::AdapterSummary;
use crate::device::ProfileTable;
use crate::pool::{HostBuffer, PooledBuffer};
use crate::{Error, Result};

/// A native twin of one WGSL entry point.
pub(crate) type KernelFn = fn(&Args<'_>);

/// The twin of `family/name.wgsl`'s `entry`, if there is one.
pub fn twin_exists(family: &str, name: &str, entry: &str) -> bool {
    twin(family, name, entry).is_some()
}

fn twin(family: &str, name: &str, entry: &str) -> Option<KernelFn> {
    match family {
        "activation" => activation::twin(name, entry),
        "attention" => attention::twin(name, entry),
        "dense" => dense::twin(name, entry),
        "elementwise" => elementwise::twin(name, entry),
        "layout" => layout::twin(name, entry),
        "loss" => loss::twin(name, entry),
        "norm" => norm::twin(name, entry),
        "optim" => optim::twin(name, entry),
        "p4dconv" => p4dconv::twin(name, entry),
        "point" if name == "partial_view" => partial_view::twin(entry),
        "point" => point::twin(name, entry),
        "reduce" => reduce::twin(name, entry),
        "util" => util::twin(name, entry),
        _ => None,
    }
}

/// One storage binding as a twin sees it.
#[derive(Clone, Copy)]
struct View {
    ptr: *mut u32,
    words: usize,
    writable: bool,
}

/// One dispatch as the CPU backend runs it (the GPU's twin is `gpu::GpuDispatch`).
pub(crate) struct CpuDispatch<'a> {
    pub(crate) kernel: (&'static str, &'static str),
    pub(crate) run: KernelFn,
    /// (slot, buffer, bound bytes) and whether each is bound read-write.
    pub(crate) buffers: &'a [(u32, Arc<PooledBuffer>, u64)],
    pub(crate) writable: &'a [bool],
    pub(crate) uniform_offset: u64,
    pub(crate) uniform_size: u64,
}

/// The largest `Params` struct of any kernel, in 32-bit words.
const PARAM_WORDS: usize = 32;

/// What a twin gets: the uniform's words and the storage bindings by slot. (A twin
/// covers its whole output itself, so the GPU grid is not needed.)
pub(crate) struct Args<'a> {
    params: [u32; PARAM_WORDS],
    _uniforms: std::marker::PhantomData<&'a [u8]>,
    views: [Option<View>; 16],
}

// The views point into host buffers held alive by the dispatch; a writable view aliases
// no other view of the same dispatch (checked in `run`).
unsafe impl Sync for Args<'_> {}
unsafe impl Send for Args<'_> {}

impl Args<'_> {
    /// The uniform as the kernel's `Params` struct (missing trailing words read as 0).
    pub(crate) fn params<P: bytemuck::Pod>(&self) -> P {
        let mut p = P::zeroed();
        let dst = bytemuck::bytes_of_mut(&mut p);
        let src: &[u8] = bytemuck::cast_slice(&self.params);
        let n = dst.len().min(src.len());
        dst[..n].copy_from_slice(&src[..n]);
        p
    }

    fn view(&self, slot: u32) -> View {
        self.views
            .get(slot as usize)
            .copied()
            .flatten()
            .unwrap_or(View {
                ptr: std::ptr::NonNull::<u32>::dangling().as_ptr(),
                words: 0,
                writable: false,
            })
    }

    /// A read binding as f32 (empty when the slot is unbound).
    pub(crate) fn f32(&self, slot: u32) -> &[f32] {
        let v = self.view(slot);
        unsafe { std::slice::from_raw_parts(v.ptr as *const f32, v.words) }
    }

    /// A read binding as u32.
    pub(crate) fn u32(&self, slot: u32) -> &[u32] {
        let v = self.view(slot);
        unsafe { std::slice::from_raw_parts(v.ptr as *const u32, v.words) }
    }

    /// A read-write binding as f32. Each twin takes a writable slot once (two live
    /// mutable views of one slot would alias).
    #[allow(clippy::mut_from_ref)]
    pub(crate) fn f32_mut(&self, slot: u32) -> &mut [f32] {
        let v = self.view(slot);
        assert!(
            v.writable || v.words == 0,
            "slot {slot} is not bound read-write"
        );
        unsafe { std::slice::from_raw_parts_mut(v.ptr as *mut f32, v.words) }
    }

    /// A read-write binding as u32.
    #[allow(clippy::mut_from_ref)]
    pub(crate) fn u32_mut(&self, slot: u32) -> &mut [u32] {
        let v = self.view(slot);
        assert!(
            v.writable || v.words == 0,
            "slot {slot} is not bound read-write"
        );
        unsafe { std::slice::from_raw_parts_mut(v.ptr, v.words) }
    }
}

/// Outputs at most this long run on the calling thread (splitting costs more).
const SERIAL_BELOW: usize = 4096;

/// Runs `f(start, chunk)` over `out` cut into fixed chunks of `chunk` elements, in
/// parallel; `start` is the chunk's first index. The split depends only on the sizes.
pub(crate) fn par_chunks<T: Send>(
    out: &mut [T],
    chunk: usize,
    f: impl Fn(usize, &mut [T]) + Sync + Send,
) {
    let chunk = chunk.max(1);
    if out.len() <= chunk || out.len() <= SERIAL_BELOW {
        f(0, out);
        return;
    }
    out.par_chunks_mut(chunk)
        .enumerate()
        .for_each(|(c, o)| f(c * chunk, o));
}

/// Elements per parallel chunk for elementwise work.
pub(crate) const ELEMENTS: usize = 16384;

/// `par_chunks` over whole rows of `row` elements, about `ELEMENTS` per chunk;
/// `f(first_row, rows)`.
pub(crate) fn par_rows<T: Send>(
    out: &mut [T],
    row: usize,
    f: impl Fn(usize, &mut [T]) + Sync + Send,
) {
    let row = row.max(1);
    let rows_per = (ELEMENTS / row).max(1);
    par_chunks(out, rows_per * row, |start, o| f(start / row, o));
}

/// A raw pointer shared by tasks that each touch their own disjoint elements.
#[derive(Clone, Copy)]
pub(crate) struct SendPtr<T>(pub(crate) *mut T);

unsafe impl<T> Send for SendPtr<T> {}
unsafe impl<T> Sync for SendPtr<T> {}

impl<T> SendPtr<T> {
    /// Elements `start..start + len` as a slice.
    ///
    /// # Safety
    /// The range is inside the allocation and no other live slice overlaps it.
    #[allow(clippy::mut_from_ref)]
    pub(crate) unsafe fn slice(&self, start: usize, len: usize) -> &mut [T] {
        std::slice::from_raw_parts_mut(self.0.add(start), len)
    }

    /// Writes element `i`.
    ///
    /// # Safety
    /// `i` is inside the allocation and no other task touches it.
    pub(crate) unsafe fn write(&self, i: usize, v: T) {
        self.0.add(i).write(v)
    }
}

/// `par_chunks` over two outputs split by the same rows: `a` has `ra` elements per row,
/// `b` has `rb`; `f(first_row, a_rows, b_rows)`.
pub(crate) fn par_rows2<A: Send, B: Send>(
    a: &mut [A],
    ra: usize,
    b: &mut [B],
    rb: usize,
    f: impl Fn(usize, &mut [A], &mut [B]) + Sync + Send,
) {
    par_row_blocks2(a, ra, b, rb, ELEMENTS / ra.max(1), f);
}

/// `par_rows2` with `rows_per` rows in each parallel chunk.
pub(crate) fn par_row_blocks2<A: Send, B: Send>(
    a: &mut [A],
    ra: usize,
    b: &mut [B],
    rb: usize,
    rows_per: usize,
    f: impl Fn(usize, &mut [A], &mut [B]) + Sync + Send,
) {
    let (ra, rb) = (ra.max(1), rb.max(1));
    let rows = (a.len() / ra).min(b.len() / rb);
    let (a, b) = (&mut a[..rows * ra], &mut b[..rows * rb]);
    let rows_per = rows_per.max(1);
    if rows <= rows_per || a.len() <= SERIAL_BELOW {
        f(0, a, b);
        return;
    }
    a.par_chunks_mut(rows_per * ra)
        .zip(b.par_chunks_mut(rows_per * rb))
        .enumerate()
        .for_each(|(c, (a, b))| f(c * rows_per, a, b));
}

// Sums in the GPU row and channel kernels' order: lane l adds elements l, l + 64, ...,
// then the 64 lanes meet in a halving tree. The same order keeps long rows accurate.

/// sum f(x) with the row kernels' order: lane l sums elements l, l + 64, ...; then the
/// 64 lanes are added by a halving tree.
pub(crate) fn tree_sum(x: &[f32], f: impl Fn(f32) -> f32) -> f32 {
    let mut lanes = [0.0f32; 64];
    for chunk in x.chunks(64) {
        for (l, &v) in lanes.iter_mut().zip(chunk) {
            *l += f(v);
        }
    }
    tree(&mut lanes)
}

/// The halving tree of 64 lanes: lane l += lane l + s for s = 32, 16, ..., 1.
pub(crate) fn tree(lanes: &mut [f32; 64]) -> f32 {
    let mut s = 32;
    while s > 0 {
        for l in 0..s {
            lanes[l] += lanes[l + s];
        }
        s >>= 1;
    }
    lanes[0]
}

/// sum of f(a[j], b[j]) over a row, in the kernels' lane order.
pub(crate) fn tree_sum2(a: &[f32], b: &[f32], f: impl Fn(f32, f32) -> f32) -> f32 {
    let mut lanes = [0.0f32; 64];
    for (ca, cb) in a.chunks(64).zip(b.chunks(64)) {
        for ((l, &x), &y) in lanes.iter_mut().zip(ca).zip(cb) {
            *l += f(x, y);
        }
    }
    tree(&mut lanes)
}

/// sum over j < m of f(j), in the kernel's lane order.
pub(crate) fn lane_sum(m: usize, f: impl Fn(usize) -> f32) -> f32 {
    let mut lanes = [0.0f32; 64];
    for j in 0..m {
        lanes[j % 64] += f(j);
    }
    tree(&mut lanes)
}

/// The SIMD level the matmul and loops can use on this CPU.
pub fn simd_level() -> &'static str {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            return "AVX-512";
        }
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            return "AVX2+FMA";
        }
        if std::arch::is_x86_feature_detected!("avx") {
            return "AVX";
        }
        "SSE2"
    }
    #[cfg(target_arch = "aarch64")]
    {
        "NEON"
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    {
        "scalar"
    }
}

/// Threads from `EDGE4D_THREADS`, else every core.
pub(crate) fn threads_from_env() -> Result<usize> {
    match std::env::var("EDGE4D_THREADS") {
        Ok(v) if !v.trim().is_empty() => match v.trim().parse::<usize>() {
            Ok(t) if (1..=1024).contains(&t) => Ok(t),
            _ => Err(Error::InvalidArgument {
                op: "EDGE4D_THREADS",
                detail: format!("{v:?} is not a thread count from 1 to 1024"),
            }),
        },
        _ => Ok(std::thread::available_parallelism().map_or(1, |n| n.get())),
    }
}

/// The CPU backend's limits: WebGPU's defaults, so every backend refuses the same sizes.
pub(crate) fn limits() -> wgpu::Limits {
    wgpu::Limits::default()
}

/// How `edge4d info` and logs name the CPU backend.
pub(crate) fn summary(threads: usize) -> AdapterSummary {
    AdapterSummary {
        name: format!("native CPU ({threads} threads, {})", simd_level()),
        backend: "cpu".into(),
        device_type: "Cpu".into(),
        driver: format!(
            "edge4d {} {}",
            std::env::consts::ARCH,
            env!("CARGO_PKG_VERSION")
        ),
        is_cpu: true,
    }
}

/// The CPU backend: its thread pool and the lock that orders steps, writes and reads.
pub(crate) struct Cpu {
    threads: usize,
    pool: rayon::ThreadPool,
    /// Held while a step runs or host memory is copied: tensors are shared handles, so
    /// this is what keeps one thread's step from racing another's read.
    exec: Mutex<()>,
    used: Mutex<HashSet<(&'static str, &'static str)>>,
}

impl Cpu {
    pub(crate) fn new(threads: usize) -> Result<Self> {
        let threads = threads.max(1);
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(|i| format!("edge4d-cpu-{i}"))
            .build()
            .map_err(|e| {
                Error::Device(format!("CPU backend: cannot start {threads} threads: {e}"))
            })?;
        Ok(Self {
            threads,
            pool,
            exec: Mutex::new(()),
            used: Mutex::new(HashSet::new()),
        })
    }

    pub(crate) fn summary(&self) -> AdapterSummary {
        summary(self.threads)
    }

    /// The twin of `shader`'s `entry`, or an error naming the missing kernel.
    pub(crate) fn kernel(&self, shader: &Shader, entry: &'static str) -> Result<KernelFn> {
        let f = twin(shader.family, shader.name, entry).ok_or_else(|| {
            Error::Device(format!(
                "the CPU backend has no native twin of {}::{entry}",
                shader.path
            ))
        })?;
        self.used
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert((shader.path, entry));
        Ok(f)
    }

    pub(crate) fn kernels_used(&self) -> usize {
        self.used.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ()> {
        self.exec.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Copies `bytes` into host memory at byte `offset`.
    pub(crate) fn write(&self, buf: &HostBuffer, offset: u64, bytes: &[u8]) {
        let _guard = self.lock();
        let start = offset as usize;
        assert!(start.is_multiple_of(4) && start + bytes.len() <= buf.words() * 4);
        unsafe {
            std::ptr::copy_nonoverlapping(
                bytes.as_ptr(),
                (buf.ptr() as *mut u8).add(start),
                bytes.len(),
            );
        }
    }

    /// The first `words` words of host memory.
    pub(crate) fn read(&self, buf: &HostBuffer, words: usize) -> Vec<u32> {
        let _guard = self.lock();
        let words = words.min(buf.words());
        unsafe { std::slice::from_raw_parts(buf.ptr(), words) }.to_vec()
    }

    /// Runs a step's twins in order on the thread pool: one hand-over to the pool per
    /// step (a wake-up costs more than most small kernels), each twin parallel inside.
    pub(crate) fn run(
        &self,
        uniforms: &[u8],
        work: &[CpuDispatch<'_>],
        profile: Option<&ProfileTable>,
    ) -> Result<()> {
        let _guard = self.lock();
        self.pool.install(|| {
            for d in work {
                let args = args(uniforms, d)?;
                let started = std::time::Instant::now();
                let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| (d.run)(&args)));
                if let Err(payload) = outcome {
                    let msg = payload
                        .downcast_ref::<String>()
                        .map(String::as_str)
                        .or_else(|| payload.downcast_ref::<&str>().copied())
                        .unwrap_or("panic");
                    return Err(Error::Device(format!(
                        "native kernel {}:{} failed: {msg}",
                        d.kernel.0, d.kernel.1
                    )));
                }
                if let Some(profile) = profile {
                    let mut table = profile.lock().unwrap_or_else(|e| e.into_inner());
                    let entry = table.entry(d.kernel).or_insert((0, 0.0));
                    entry.0 += 1;
                    entry.1 += started.elapsed().as_secs_f64();
                }
            }
            Ok(())
        })
    }
}

/// The twin's view of one dispatch; refuses a writable binding that aliases another.
fn args<'a>(uniforms: &'a [u8], d: &CpuDispatch<'_>) -> Result<Args<'a>> {
    let start = d.uniform_offset as usize;
    let bytes = &uniforms[start..start + d.uniform_size as usize];
    let mut params = [0u32; PARAM_WORDS];
    if bytes.len() > PARAM_WORDS * 4 {
        return Err(Error::Device(format!(
            "{}:{}: {} uniform bytes, more than the CPU backend's {}",
            d.kernel.0,
            d.kernel.1,
            bytes.len(),
            PARAM_WORDS * 4
        )));
    }
    bytemuck::cast_slice_mut::<u32, u8>(&mut params)[..bytes.len()].copy_from_slice(bytes);
    let mut views: [Option<View>; 16] = [None; 16];
    for (&(slot, ref buf, size), &writable) in d.buffers.iter().zip(d.writable) {
        let host = buf.host();
        let view = View {
            ptr: host.ptr(),
            words: ((size / 4) as usize).min(host.words()),
            writable,
        };
        let Some(place) = views.get_mut(slot as usize) else {
            return Err(Error::Device(format!(
                "{}:{}: binding slot {slot} out of range",
                d.kernel.0, d.kernel.1
            )));
        };
        *place = Some(view);
    }
    for (i, a) in views.iter().enumerate() {
        for b in views.iter().skip(i + 1) {
            if let (Some(a), Some(b)) = (a, b) {
                if a.ptr == b.ptr && (a.writable || b.writable) {
                    return Err(Error::Device(format!(
                        "{}:{}: a buffer bound read-write is bound twice",
                        d.kernel.0, d.kernel.1
                    )));
                }
            }
        }
    }
    Ok(Args {
        params,
        _uniforms: std::marker::PhantomData,
        views,
    })
}

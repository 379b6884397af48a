// Copies a range along one axis: src viewed as (outer, src_len, inner), dst as
// (outer, dst_len, inner); src[o, src_start + a, i] -> dst[o, dst_start + a, i] for a < len.
// Slice forward, concat forward (one dispatch per input), slice backward (after a
// fill with zeros) and concat backward (a slice per input) are all this kernel.

struct Params {
    outer: u32,
    inner: u32,
    len: u32,
    src_len: u32,
    src_start: u32,
    dst_len: u32,
    dst_start: u32,
    _pad0: u32,
}

@group(0) @binding(0) var<storage, read> src: array<f32>;
@group(0) @binding(1) var<storage, read_write> dst: array<f32>;
@group(0) @binding(2) var<uniform> p: Params;

@compute @workgroup_size(256)
fn copy_axis(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let t = gid.x + gid.y * nwg.x * 256u;
    if (t >= p.outer * p.len * p.inner) { return; }
    let i = t % p.inner;
    let a = (t / p.inner) % p.len;
    let o = t / (p.inner * p.len);
    dst[(o * p.dst_len + p.dst_start + a) * p.inner + i] = src[(o * p.src_len + p.src_start + a) * p.inner + i];
}

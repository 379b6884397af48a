// Reductions over one axis of a tensor viewed as (outer, len, inner):
//   sum, mean, and max with the argmax (lowest index wins ties) its backward needs.
// One invocation per (outer, inner) output walks the axis in index order, so the
// summation order is fixed and results are bitwise reproducible.
// Backward kernels are gathers (each input element reads its one output gradient):
//   sum:  gx[o, a, i] = g[o, i];  mean: g[o, i] / len;  max: g[o, i] if a == argmax[o, i] else 0.

struct Params {
    outer: u32,
    len: u32,
    inner: u32,
    _pad0: u32,
}

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> y: array<f32>;
@group(0) @binding(2) var<storage, read_write> arg: array<u32>;
@group(0) @binding(3) var<storage, read> grad_y: array<f32>;
@group(0) @binding(4) var<storage, read> arg_in: array<u32>;
@group(0) @binding(5) var<uniform> p: Params;

fn out_id(gid: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return gid.x + gid.y * nwg.x * 256u;
}

@compute @workgroup_size(256)
fn sum(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let o = out_id(gid, nwg);
    if (o >= p.outer * p.inner) { return; }
    let base = (o / p.inner) * p.len * p.inner + o % p.inner;
    var s = 0.0;
    for (var a = 0u; a < p.len; a++) { s += x[base + a * p.inner]; }
    y[o] = s;
}

@compute @workgroup_size(256)
fn mean(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let o = out_id(gid, nwg);
    if (o >= p.outer * p.inner) { return; }
    let base = (o / p.inner) * p.len * p.inner + o % p.inner;
    var s = 0.0;
    for (var a = 0u; a < p.len; a++) { s += x[base + a * p.inner]; }
    y[o] = s / f32(p.len);
}

@compute @workgroup_size(256)
fn max_arg(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let o = out_id(gid, nwg);
    if (o >= p.outer * p.inner) { return; }
    let base = (o / p.inner) * p.len * p.inner + o % p.inner;
    var best = x[base];
    var best_a = 0u;
    for (var a = 1u; a < p.len; a++) {
        let v = x[base + a * p.inner];
        if (v > best) { best = v; best_a = a; }
    }
    y[o] = best;
    arg[o] = best_a;
}

fn in_coords(i: u32) -> vec3<u32> {
    let inner_i = i % p.inner;
    let a = (i / p.inner) % p.len;
    let o = i / (p.inner * p.len);
    return vec3<u32>(o, a, inner_i);
}

@compute @workgroup_size(256)
fn sum_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = out_id(gid, nwg);
    if (i >= p.outer * p.len * p.inner) { return; }
    let c = in_coords(i);
    y[i] = grad_y[c.x * p.inner + c.z];
}

@compute @workgroup_size(256)
fn mean_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = out_id(gid, nwg);
    if (i >= p.outer * p.len * p.inner) { return; }
    let c = in_coords(i);
    y[i] = grad_y[c.x * p.inner + c.z] / f32(p.len);
}

@compute @workgroup_size(256)
fn max_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = out_id(gid, nwg);
    if (i >= p.outer * p.len * p.inner) { return; }
    let c = in_coords(i);
    let o = c.x * p.inner + c.z;
    y[i] = select(0.0, grad_y[o], arg_in[o] == c.y);
}

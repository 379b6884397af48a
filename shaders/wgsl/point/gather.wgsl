// Row gathers and their deterministic backward.
//
// gather:   out[j, c] = sum_{s < group} w[j*group + s] * x[rows[j*group + s], c]
//           (group 1 without weights is a plain gather: grouping, anchor coordinates;
//           group 3 with weights is three_interpolate, summed ((a + b) + c) as PyTorch).
// scatter:  the backward, gx[r, c] = sum over entries e with rows[e] == r, in ascending e,
//           of w[e] * g[(e / group) * g_stride + c]. It walks the inverse index built by
//           inverse_index.wgsl, so there are no float atomics and results are bitwise
//           reproducible.

struct Params {
    out_rows: u32,   // gather: entries / group; scatter: rows of gx
    channels: u32,
    group: u32,
    weighted: u32,   // 1 when `w` holds weights
    x_stride: u32,   // gather: row stride of x; scatter: row stride of g
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> rows: array<u32>;
@group(0) @binding(2) var<storage, read> w: array<f32>;
@group(0) @binding(3) var<storage, read> offsets: array<u32>;  // inverse index: (out_rows + 1,)
@group(0) @binding(4) var<storage, read> entries: array<u32>;  // inverse index: entry ids by row
@group(0) @binding(5) var<storage, read_write> out: array<f32>;
@group(0) @binding(6) var<uniform> p: Params;

fn weight(e: u32) -> f32 {
    if (p.weighted == 1u) { return w[e]; }
    return 1.0;
}

@compute @workgroup_size(256)
fn gather(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * 256u;
    if (i >= p.out_rows * p.channels) { return; }
    let j = i / p.channels;
    let c = i % p.channels;
    var acc = 0.0;
    for (var s = 0u; s < p.group; s++) {
        let e = j * p.group + s;
        let v = x[rows[e] * p.x_stride + c];
        if (p.weighted == 1u) { acc += w[e] * v; } else { acc += v; }
    }
    out[i] = acc;
}

@compute @workgroup_size(256)
fn scatter(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * 256u;
    if (i >= p.out_rows * p.channels) { return; }
    let r = i / p.channels;
    let c = i % p.channels;
    var acc = 0.0;
    for (var q = offsets[r]; q < offsets[r + 1u]; q++) {
        let e = entries[q];
        acc += weight(e) * x[(e / p.group) * p.x_stride + c];
    }
    out[i] = acc;
}

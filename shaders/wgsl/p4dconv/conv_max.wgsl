// The tube embedding's conv_d followed by max over the k neighbours, fused so the
// (anchors·k, C) pre-pooling tensor is never stored (for the paper's MSR configuration
// it would be 300 MB):
//   y[r, c] = max_s sum_j W[c, j] * disp[r*k + s, j]      (j over dx, dy, dz, dt)
// with arg[r, c] = the first s reaching the max (PyTorch's max sends the gradient to one
// slot; tied slots repeat the same point, reference-spec §2.8).
// Backward, each output written by one invocation in a fixed order (no atomics):
//   grad_w[c, j]       = sum_r g[r, c] * disp[r*k + arg[r, c], j]
//   grad_disp[r*k+s, j] = sum_{c: arg[r, c] == s} g[r, c] * W[c, j]

struct Params {
    rows: u32,   // anchors x offsets (pooled rows)
    k: u32,
    c: u32,
    _pad0: u32,
}

@group(0) @binding(0) var<storage, read> disp: array<f32>;    // (rows*k, 4)
@group(0) @binding(1) var<storage, read> w: array<f32>;       // (c, 4)
@group(0) @binding(2) var<storage, read_write> y: array<f32>; // forward: (rows, c); backward: the gradient out
@group(0) @binding(3) var<storage, read_write> arg: array<u32>;
@group(0) @binding(4) var<storage, read> g: array<f32>;       // (rows, c)
@group(0) @binding(5) var<storage, read> arg_in: array<u32>;
@group(0) @binding(6) var<uniform> p: Params;

fn linear_id(gid: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return gid.x + gid.y * nwg.x * 256u;
}

@compute @workgroup_size(256)
fn forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = linear_id(gid, nwg);
    if (i >= p.rows * p.c) { return; }
    let r = i / p.c;
    let c = i % p.c;
    let wc = vec4<f32>(w[c * 4u], w[c * 4u + 1u], w[c * 4u + 2u], w[c * 4u + 3u]);
    var best = 0.0;
    var best_s = 0u;
    for (var s = 0u; s < p.k; s++) {
        let e = (r * p.k + s) * 4u;
        let h = ((wc.x * disp[e] + wc.y * disp[e + 1u]) + wc.z * disp[e + 2u]) + wc.w * disp[e + 3u];
        if (s == 0u || h > best) { best = h; best_s = s; }
    }
    y[i] = best;
    arg[i] = best_s;
}

// One invocation per (c, j): out (c, 4).
@compute @workgroup_size(256)
fn grad_weight(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = linear_id(gid, nwg);
    if (i >= p.c * 4u) { return; }
    let c = i / 4u;
    let j = i % 4u;
    var acc = 0.0;
    for (var r = 0u; r < p.rows; r++) {
        let o = r * p.c + c;
        acc += g[o] * disp[(r * p.k + arg_in[o]) * 4u + j];
    }
    y[i] = acc;
}

// One invocation per (r, s): out (rows*k, 4).
@compute @workgroup_size(256)
fn grad_disp(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = linear_id(gid, nwg);
    if (i >= p.rows * p.k) { return; }
    let r = i / p.k;
    let s = i % p.k;
    var acc = vec4<f32>(0.0);
    for (var c = 0u; c < p.c; c++) {
        let o = r * p.c + c;
        if (arg_in[o] == s) {
            acc += g[o] * vec4<f32>(w[c * 4u], w[c * 4u + 1u], w[c * 4u + 2u], w[c * 4u + 3u]);
        }
    }
    y[i * 4u] = acc.x;
    y[i * 4u + 1u] = acc.y;
    y[i * 4u + 2u] = acc.z;
    y[i * 4u + 3u] = acc.w;
}

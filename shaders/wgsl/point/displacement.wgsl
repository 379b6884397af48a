// P4DConv's displacement input (reference-spec §3): for neighbour entry
// e = (((bt * offsets + o) * n + a) * k + s) of anchor a of output frame bt,
//   disp[e] = (xyz[rows[e]] - anchor[bt, a], dt)  with dt = o - offsets / 2 + dt_shift
// (dt_shift lets a caller that issues one temporal offset at a time give its dt)
// (channel order dx, dy, dz, dt; dt is the padded-frame difference, not scaled).
// Backward: the neighbour side is a scatter through the inverse index (gather.wgsl);
// the anchor side is anchor_grad: -sum over offsets and neighbours, in that order.

struct Params {
    entries: u32,   // bt_count * offsets * n * k
    n: u32,
    k: u32,
    offsets: u32,
    dt_shift: f32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<storage, read> xyz: array<f32>;
@group(0) @binding(1) var<storage, read> anchors: array<f32>;   // (bt_count * n, 3)
@group(0) @binding(2) var<storage, read> rows: array<u32>;      // (entries,)
@group(0) @binding(3) var<storage, read> grad_disp: array<f32>; // (entries, 4)
@group(0) @binding(4) var<storage, read_write> out: array<f32>;
@group(0) @binding(5) var<uniform> p: Params;

@compute @workgroup_size(256)
fn displacement(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let e = gid.x + gid.y * nwg.x * 256u;
    if (e >= p.entries) { return; }
    let a = (e / p.k) % p.n;
    let o = (e / (p.k * p.n)) % p.offsets;
    let bt = e / (p.k * p.n * p.offsets);
    let r = rows[e] * 3u;
    let q = (bt * p.n + a) * 3u;
    out[e * 4u] = xyz[r] - anchors[q];
    out[e * 4u + 1u] = xyz[r + 1u] - anchors[q + 1u];
    out[e * 4u + 2u] = xyz[r + 2u] - anchors[q + 2u];
    out[e * 4u + 3u] = f32(o) - f32(p.offsets / 2u) + p.dt_shift;
}

// One invocation per (bt, a, c): out (bt_count * n, 3).
@compute @workgroup_size(256)
fn anchor_grad(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * 256u;
    let anchors_total = p.entries / (p.offsets * p.k);
    if (i >= anchors_total * 3u) { return; }
    let c = i % 3u;
    let a = (i / 3u) % p.n;
    let bt = i / (3u * p.n);
    var acc = 0.0;
    for (var o = 0u; o < p.offsets; o++) {
        let base = ((bt * p.offsets + o) * p.n + a) * p.k;
        for (var s = 0u; s < p.k; s++) { acc += grad_disp[(base + s) * 4u + c]; }
    }
    out[i] = -acc;
}

// Softmax over the last axis (length d) of `rows` rows, numerically stable (max shift).
// Backward from the forward output y: gx = y * (g - sum(g * y)).
// One workgroup per row with a fixed reduction tree (bitwise reproducible).

struct Params {
    rows: u32,
    d: u32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<storage, read> x: array<f32>;      // forward: input; backward: y
@group(0) @binding(1) var<storage, read> grad_y: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
@group(0) @binding(3) var<uniform> p: Params;

const WG: u32 = 64u;
var<workgroup> red: array<f32, 64>;

fn reduce_max(lid: u32) {
    for (var s = WG / 2u; s > 0u; s = s >> 1u) {
        workgroupBarrier();
        if (lid < s) { red[lid] = max(red[lid], red[lid + s]); }
    }
    workgroupBarrier();
}

fn reduce_sum(lid: u32) {
    for (var s = WG / 2u; s > 0u; s = s >> 1u) {
        workgroupBarrier();
        if (lid < s) { red[lid] = red[lid] + red[lid + s]; }
    }
    workgroupBarrier();
}

@compute @workgroup_size(64)
fn forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid3: vec3<u32>,
           @builtin(num_workgroups) nwg: vec3<u32>) {
    let row = wid.x + wid.y * nwg.x;
    let lid = lid3.x;
    if (row >= p.rows) { return; }
    let base = row * p.d;
    var mx = -3.402823e38;
    for (var j = lid; j < p.d; j += WG) { mx = max(mx, x[base + j]); }
    red[lid] = mx;
    reduce_max(lid);
    mx = red[0];
    workgroupBarrier();
    var s = 0.0;
    for (var j = lid; j < p.d; j += WG) { s += exp(x[base + j] - mx); }
    red[lid] = s;
    reduce_sum(lid);
    let inv = 1.0 / red[0];
    for (var j = lid; j < p.d; j += WG) { out[base + j] = exp(x[base + j] - mx) * inv; }
}

@compute @workgroup_size(64)
fn backward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid3: vec3<u32>,
            @builtin(num_workgroups) nwg: vec3<u32>) {
    let row = wid.x + wid.y * nwg.x;
    let lid = lid3.x;
    if (row >= p.rows) { return; }
    let base = row * p.d;
    var s = 0.0;
    for (var j = lid; j < p.d; j += WG) { s += grad_y[base + j] * x[base + j]; }
    red[lid] = s;
    reduce_sum(lid);
    let dot = red[0];
    for (var j = lid; j < p.d; j += WG) { out[base + j] = x[base + j] * (grad_y[base + j] - dot); }
}

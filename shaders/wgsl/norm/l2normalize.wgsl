// Row-wise L2 normalisation as torch.nn.functional.normalize(x, dim=-1, eps):
//   n = max(||x||_2, eps),  y = x / n
// Backward (n = ||x|| > eps):  gx = (g - y * (y . g)) / n;  (clamped, n = eps):  gx = g / eps.
// One workgroup per row; partial sums are combined by a fixed tree, so results are
// bitwise reproducible. Forward saves n per row.

struct Params {
    rows: u32,
    d: u32,
    eps: f32,
    _pad0: u32,
}

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> y: array<f32>;
@group(0) @binding(2) var<storage, read_write> norms: array<f32>;
@group(0) @binding(3) var<storage, read> grad_y: array<f32>;
@group(0) @binding(4) var<storage, read_write> grad_x: array<f32>;
@group(0) @binding(5) var<uniform> p: Params;

const WG: u32 = 64u;
var<workgroup> red: array<f32, 64>;

fn tree_reduce(lid: u32) {
    for (var s = WG / 2u; s > 0u; s = s >> 1u) {
        workgroupBarrier();
        if (lid < s) {
            red[lid] = red[lid] + red[lid + s];
        }
    }
    workgroupBarrier();
}

fn row_of(wid: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return wid.x + wid.y * nwg.x;
}

@compute @workgroup_size(64)
fn forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid3: vec3<u32>,
           @builtin(num_workgroups) nwg: vec3<u32>) {
    let row = row_of(wid, nwg);
    let lid = lid3.x;
    if (row >= p.rows) { return; } // uniform per workgroup: barriers stay in uniform control flow
    let base = row * p.d;
    var sq = 0.0;
    for (var j = lid; j < p.d; j += WG) { let v = x[base + j]; sq += v * v; }
    red[lid] = sq;
    tree_reduce(lid);
    let n = max(sqrt(red[0]), p.eps);
    for (var j = lid; j < p.d; j += WG) { y[base + j] = x[base + j] / n; }
    if (lid == 0u) { norms[row] = n; }
}

@compute @workgroup_size(64)
fn backward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid3: vec3<u32>,
            @builtin(num_workgroups) nwg: vec3<u32>) {
    let row = row_of(wid, nwg);
    let lid = lid3.x;
    if (row >= p.rows) { return; }
    let base = row * p.d;
    var dot = 0.0;
    for (var j = lid; j < p.d; j += WG) { dot += y[base + j] * grad_y[base + j]; }
    red[lid] = dot;
    tree_reduce(lid);
    let n = norms[row];
    // Where the clamp is active, y = x / eps is linear in x: no projection.
    let yg = select(red[0], 0.0, n <= p.eps);
    for (var j = lid; j < p.d; j += WG) {
        grad_x[base + j] = (grad_y[base + j] - y[base + j] * yg) / n;
    }
}

// LayerNorm over the last axis (length d) of `rows` rows, as torch.nn.LayerNorm:
//   mean = sum(x) / d, var = sum((x - mean)^2) / d (biased), rstd = 1 / sqrt(var + eps)
//   y = (x - mean) * rstd * gamma + beta
// One workgroup per row; partial sums are combined by a fixed tree, so results are
// bitwise reproducible. Forward saves mean and rstd for the backward pass:
//   gx = rstd * (g*gamma - mean(g*gamma) - xhat * mean(g*gamma*xhat))
// gamma/beta gradients are column sums of g*xhat and g (reduce/colsum.wgsl does g;
// `xhat_grad` writes g*xhat per element so the same column sum gives dgamma).

struct Params {
    rows: u32,
    d: u32,
    eps: f32,
    _pad0: u32,
}

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> gamma: array<f32>;
@group(0) @binding(2) var<storage, read> beta: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;
@group(0) @binding(4) var<storage, read_write> stats: array<f32>; // [mean, rstd] per row
@group(0) @binding(5) var<storage, read> grad_y: array<f32>;
@group(0) @binding(6) var<uniform> p: Params;

const WG: u32 = 64u;
var<workgroup> red_a: array<f32, 64>;
var<workgroup> red_b: array<f32, 64>;

fn tree_reduce_two(lid: u32) {
    for (var s = WG / 2u; s > 0u; s = s >> 1u) {
        workgroupBarrier();
        if (lid < s) {
            red_a[lid] = red_a[lid] + red_a[lid + s];
            red_b[lid] = red_b[lid] + red_b[lid + s];
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
    var s = 0.0;
    for (var j = lid; j < p.d; j += WG) { s += x[base + j]; }
    red_a[lid] = s;
    red_b[lid] = 0.0;
    tree_reduce_two(lid);
    let mean = red_a[0] / f32(p.d);
    workgroupBarrier();
    var sq = 0.0;
    for (var j = lid; j < p.d; j += WG) { let c = x[base + j] - mean; sq += c * c; }
    red_a[lid] = sq;
    tree_reduce_two(lid);
    let rstd = 1.0 / sqrt(red_a[0] / f32(p.d) + p.eps);
    for (var j = lid; j < p.d; j += WG) {
        y[base + j] = (x[base + j] - mean) * rstd * gamma[j] + beta[j];
    }
    if (lid == 0u) {
        stats[2u * row] = mean;
        stats[2u * row + 1u] = rstd;
    }
}

// grad_x into `y`'s binding (the caller binds the gradient output there).
@compute @workgroup_size(64)
fn backward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid3: vec3<u32>,
            @builtin(num_workgroups) nwg: vec3<u32>) {
    let row = row_of(wid, nwg);
    let lid = lid3.x;
    if (row >= p.rows) { return; }
    let base = row * p.d;
    let mean = stats[2u * row];
    let rstd = stats[2u * row + 1u];
    var s_g = 0.0;
    var s_gx = 0.0;
    for (var j = lid; j < p.d; j += WG) {
        let gg = grad_y[base + j] * gamma[j];
        let xhat = (x[base + j] - mean) * rstd;
        s_g += gg;
        s_gx += gg * xhat;
    }
    red_a[lid] = s_g;
    red_b[lid] = s_gx;
    tree_reduce_two(lid);
    let mean_g = red_a[0] / f32(p.d);
    let mean_gx = red_b[0] / f32(p.d);
    for (var j = lid; j < p.d; j += WG) {
        let gg = grad_y[base + j] * gamma[j];
        let xhat = (x[base + j] - mean) * rstd;
        y[base + j] = rstd * (gg - mean_g - xhat * mean_gx);
    }
}

// Per element g * xhat, so a column sum gives dgamma.
@compute @workgroup_size(64)
fn xhat_grad(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid3: vec3<u32>,
             @builtin(num_workgroups) nwg: vec3<u32>) {
    let row = row_of(wid, nwg);
    if (row >= p.rows) { return; }
    let base = row * p.d;
    let mean = stats[2u * row];
    let rstd = stats[2u * row + 1u];
    for (var j = lid3.x; j < p.d; j += WG) {
        y[base + j] = grad_y[base + j] * (x[base + j] - mean) * rstd;
    }
}

// BatchNorm over input (n, c, l) with statistics per channel c, as torch.nn.BatchNorm1d
// (l = 1 for (n, c) input) and BatchNorm2d (l = h*w).
// Train: mean and biased variance over the m = n*l values of each channel normalise x;
// running_mean/var become (1 - momentum) * running + momentum * batch, with the
// unbiased variance (m / (m - 1)) for running_var, exactly as PyTorch.
// Eval: normalise with the running statistics.
// One workgroup per channel; a fixed reduction tree keeps results bitwise reproducible.

struct Params {
    n: u32,
    c: u32,
    l: u32,
    eps: f32,
    momentum: f32,
    train: u32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> gamma: array<f32>;
@group(0) @binding(2) var<storage, read> beta: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;       // output (or grad_x)
@group(0) @binding(4) var<storage, read_write> stats: array<f32>;   // [mean, rstd] per channel used for normalising
@group(0) @binding(5) var<storage, read_write> running_mean: array<f32>;
@group(0) @binding(6) var<storage, read_write> running_var: array<f32>;
@group(0) @binding(7) var<storage, read> grad_y: array<f32>;
@group(0) @binding(8) var<storage, read_write> grad_gamma: array<f32>;
@group(0) @binding(9) var<storage, read_write> grad_beta: array<f32>;
@group(0) @binding(10) var<uniform> p: Params;

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

// Flat index of the j-th value (0 <= j < n*l) of channel ch.
fn at(ch: u32, j: u32) -> u32 {
    let b = j / p.l;
    let s = j % p.l;
    return (b * p.c + ch) * p.l + s;
}

@compute @workgroup_size(64)
fn forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid3: vec3<u32>) {
    let ch = wid.x;
    let lid = lid3.x;
    let m = p.n * p.l;
    var mean: f32;
    var rstd: f32;
    if (p.train != 0u) {
        var s = 0.0;
        for (var j = lid; j < m; j += WG) { s += x[at(ch, j)]; }
        red_a[lid] = s;
        red_b[lid] = 0.0;
        tree_reduce_two(lid);
        mean = red_a[0] / f32(m);
        workgroupBarrier();
        var sq = 0.0;
        for (var j = lid; j < m; j += WG) { let d = x[at(ch, j)] - mean; sq += d * d; }
        red_a[lid] = sq;
        tree_reduce_two(lid);
        let var_biased = red_a[0] / f32(m);
        rstd = 1.0 / sqrt(var_biased + p.eps);
        if (lid == 0u) {
            let var_unbiased = red_a[0] / f32(max(m, 2u) - 1u);
            running_mean[ch] = (1.0 - p.momentum) * running_mean[ch] + p.momentum * mean;
            running_var[ch] = (1.0 - p.momentum) * running_var[ch] + p.momentum * var_unbiased;
        }
    } else {
        mean = running_mean[ch];
        rstd = 1.0 / sqrt(running_var[ch] + p.eps);
    }
    for (var j = lid; j < m; j += WG) {
        let i = at(ch, j);
        y[i] = (x[i] - mean) * rstd * gamma[ch] + beta[ch];
    }
    if (lid == 0u) {
        stats[2u * ch] = mean;
        stats[2u * ch + 1u] = rstd;
    }
}

// Train: gx = gamma * rstd / m * (m * g - sum(g) - xhat * sum(g * xhat)).
// Eval (statistics are constants): gx = g * gamma * rstd.
// Both: dgamma = sum(g * xhat), dbeta = sum(g).
@compute @workgroup_size(64)
fn backward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid3: vec3<u32>) {
    let ch = wid.x;
    let lid = lid3.x;
    let m = p.n * p.l;
    let mean = stats[2u * ch];
    let rstd = stats[2u * ch + 1u];
    var s_g = 0.0;
    var s_gx = 0.0;
    for (var j = lid; j < m; j += WG) {
        let i = at(ch, j);
        let g = grad_y[i];
        s_g += g;
        s_gx += g * (x[i] - mean) * rstd;
    }
    red_a[lid] = s_g;
    red_b[lid] = s_gx;
    tree_reduce_two(lid);
    let sum_g = red_a[0];
    let sum_gx = red_b[0];
    let k = gamma[ch] * rstd;
    for (var j = lid; j < m; j += WG) {
        let i = at(ch, j);
        if (p.train != 0u) {
            let xhat = (x[i] - mean) * rstd;
            y[i] = k / f32(m) * (f32(m) * grad_y[i] - sum_g - xhat * sum_gx);
        } else {
            y[i] = k * grad_y[i];
        }
    }
    if (lid == 0u) {
        grad_gamma[ch] = sum_gx;
        grad_beta[ch] = sum_g;
    }
}

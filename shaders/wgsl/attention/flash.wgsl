// Fused scaled dot-product attention, flash-style: softmax(q kᵀ · scale) v without ever
// storing the Tq × Tk score matrix. Heads are folded into the batch: q and grad_o are
// (BH, Tq, dh), k and v (BH, Tk, dh); lse and delta are (BH, Tq).
//
//   forward  o_i = Σ_j p_ij v_j and lse_i = m_i + log Σ_j exp(s_ij − m_i), with
//            s_ij = scale · q_i·k_j, over key tiles of 64 with a running max
//            (one workgroup per query row).
//   delta    delta_i = dO_i · o_i (one invocation per query row).
//   grad_q   dq_i = scale Σ_j p_ij (dO_i·v_j − delta_i) k_j, p_ij = exp(s_ij − lse_i)
//            (one workgroup per query row).
//   grad_kv  dv_j = Σ_i p_ij dO_i and dk_j = scale Σ_i p_ij (dO_i·v_j − delta_i) q_i
//            (one workgroup per key row).
//
// The backward recomputes p from lse instead of reading it back. Every output element
// is summed by one thread in a fixed order and the tile reductions are fixed trees: no
// atomics, bitwise reproducible. dh ≤ 256 (four output lanes per thread).

struct Params {
    bh: u32,
    tq: u32,
    tk: u32,
    dh: u32,
    scale: f32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<storage, read> q: array<f32>;
@group(0) @binding(1) var<storage, read> k: array<f32>;
@group(0) @binding(2) var<storage, read> v: array<f32>;
@group(0) @binding(3) var<storage, read> o: array<f32>;
@group(0) @binding(4) var<storage, read> grad_o: array<f32>;
@group(0) @binding(5) var<storage, read> lse: array<f32>;
@group(0) @binding(6) var<storage, read> delta: array<f32>;
@group(0) @binding(7) var<storage, read_write> out_a: array<f32>;
@group(0) @binding(8) var<storage, read_write> out_b: array<f32>;
@group(0) @binding(9) var<uniform> p: Params;

const WG: u32 = 64u;
const LANES: u32 = 4u;
const NEG_MAX: f32 = -3.402823e38;

// This workgroup's own rows (q_i and dO_i, or k_j and v_j) and one tile of 64 weights.
var<workgroup> row_a: array<f32, 256>;
var<workgroup> row_b: array<f32, 256>;
var<workgroup> tile_a: array<f32, 64>;
var<workgroup> tile_b: array<f32, 64>;
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
    if (row >= p.bh * p.tq) { return; }
    let dh = p.dh;
    let kv = (row / p.tq) * p.tk * dh;
    for (var d = lid; d < dh; d += WG) { row_a[d] = q[row * dh + d]; }
    var m = NEG_MAX;
    var l = 0.0;
    var acc = array<f32, 4>(0.0, 0.0, 0.0, 0.0);
    for (var j0 = 0u; j0 < p.tk; j0 += WG) {
        workgroupBarrier();
        let j = j0 + lid;
        var s = NEG_MAX;
        if (j < p.tk) {
            var dot = 0.0;
            for (var d = 0u; d < dh; d++) { dot += row_a[d] * k[kv + j * dh + d]; }
            s = dot * p.scale;
        }
        red[lid] = s;
        reduce_max(lid);
        let m_new = max(m, red[0]);
        workgroupBarrier();
        var pj = 0.0;
        if (j < p.tk) { pj = exp(s - m_new); }
        tile_a[lid] = pj;
        red[lid] = pj;
        reduce_sum(lid);
        let corr = exp(m - m_new);
        l = l * corr + red[0];
        m = m_new;
        let n = min(WG, p.tk - j0);
        for (var c = 0u; c < LANES; c++) {
            let d = lid + c * WG;
            if (d < dh) {
                var a = acc[c] * corr;
                for (var jj = 0u; jj < n; jj++) { a += tile_a[jj] * v[kv + (j0 + jj) * dh + d]; }
                acc[c] = a;
            }
        }
    }
    let inv = 1.0 / l;
    for (var c = 0u; c < LANES; c++) {
        let d = lid + c * WG;
        if (d < dh) { out_a[row * dh + d] = acc[c] * inv; }
    }
    if (lid == 0u) { out_b[row] = m + log(l); }
}

@compute @workgroup_size(256)
fn delta_rows(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let row = gid.x + gid.y * nwg.x * 256u;
    if (row >= p.bh * p.tq) { return; }
    var s = 0.0;
    for (var d = 0u; d < p.dh; d++) { s += grad_o[row * p.dh + d] * o[row * p.dh + d]; }
    out_a[row] = s;
}

@compute @workgroup_size(64)
fn grad_q(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid3: vec3<u32>,
          @builtin(num_workgroups) nwg: vec3<u32>) {
    let row = wid.x + wid.y * nwg.x;
    let lid = lid3.x;
    if (row >= p.bh * p.tq) { return; }
    let dh = p.dh;
    let kv = (row / p.tq) * p.tk * dh;
    for (var d = lid; d < dh; d += WG) {
        row_a[d] = q[row * dh + d];
        row_b[d] = grad_o[row * dh + d];
    }
    let lse_i = lse[row];
    let delta_i = delta[row];
    var acc = array<f32, 4>(0.0, 0.0, 0.0, 0.0);
    for (var j0 = 0u; j0 < p.tk; j0 += WG) {
        workgroupBarrier();
        let j = j0 + lid;
        var ds = 0.0;
        if (j < p.tk) {
            var s = 0.0;
            var dp = 0.0;
            for (var d = 0u; d < dh; d++) {
                s += row_a[d] * k[kv + j * dh + d];
                dp += row_b[d] * v[kv + j * dh + d];
            }
            ds = exp(s * p.scale - lse_i) * (dp - delta_i) * p.scale;
        }
        tile_a[lid] = ds;
        workgroupBarrier();
        let n = min(WG, p.tk - j0);
        for (var c = 0u; c < LANES; c++) {
            let d = lid + c * WG;
            if (d < dh) {
                var a = acc[c];
                for (var jj = 0u; jj < n; jj++) { a += tile_a[jj] * k[kv + (j0 + jj) * dh + d]; }
                acc[c] = a;
            }
        }
    }
    for (var c = 0u; c < LANES; c++) {
        let d = lid + c * WG;
        if (d < dh) { out_a[row * dh + d] = acc[c]; }
    }
}

@compute @workgroup_size(64)
fn grad_kv(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid3: vec3<u32>,
           @builtin(num_workgroups) nwg: vec3<u32>) {
    let row = wid.x + wid.y * nwg.x;
    let lid = lid3.x;
    if (row >= p.bh * p.tk) { return; }
    let dh = p.dh;
    let bh = row / p.tk;
    let qo = bh * p.tq * dh;
    let stats = bh * p.tq;
    for (var d = lid; d < dh; d += WG) {
        row_a[d] = k[row * dh + d];
        row_b[d] = v[row * dh + d];
    }
    var acc_k = array<f32, 4>(0.0, 0.0, 0.0, 0.0);
    var acc_v = array<f32, 4>(0.0, 0.0, 0.0, 0.0);
    for (var i0 = 0u; i0 < p.tq; i0 += WG) {
        workgroupBarrier();
        let i = i0 + lid;
        var pi = 0.0;
        var ds = 0.0;
        if (i < p.tq) {
            var s = 0.0;
            var dp = 0.0;
            for (var d = 0u; d < dh; d++) {
                s += q[qo + i * dh + d] * row_a[d];
                dp += grad_o[qo + i * dh + d] * row_b[d];
            }
            pi = exp(s * p.scale - lse[stats + i]);
            ds = pi * (dp - delta[stats + i]) * p.scale;
        }
        tile_a[lid] = pi;
        tile_b[lid] = ds;
        workgroupBarrier();
        let n = min(WG, p.tq - i0);
        for (var c = 0u; c < LANES; c++) {
            let d = lid + c * WG;
            if (d < dh) {
                var a_k = acc_k[c];
                var a_v = acc_v[c];
                for (var ii = 0u; ii < n; ii++) {
                    let at = qo + (i0 + ii) * dh + d;
                    a_v += tile_a[ii] * grad_o[at];
                    a_k += tile_b[ii] * q[at];
                }
                acc_k[c] = a_k;
                acc_v[c] = a_v;
            }
        }
    }
    for (var c = 0u; c < LANES; c++) {
        let d = lid + c * WG;
        if (d < dh) {
            out_a[row * dh + d] = acc_k[c];
            out_b[row * dh + d] = acc_v[c];
        }
    }
}

// Fused scaled dot-product attention, flash-style: softmax(q kᵀ · scale) v without ever
// storing the Tq × Tk score matrix. Heads are folded into the batch: q and grad_o are
// (BH, Tq, dh), k and v (BH, Tk, dh); lse and delta are (BH, Tq).
//
//   forward  o_i = Σ_j p_ij v_j and lse_i = m_i + log Σ_j exp(s_ij − m_i), with
//            s_ij = scale · q_i·k_j, over key tiles of 64 with a running max
//            (one workgroup per 8 query rows).
//   delta    delta_i = dO_i · o_i (one invocation per query row).
//   grad_q   dq_i = scale Σ_j p_ij (dO_i·v_j − delta_i) k_j, p_ij = exp(s_ij − lse_i)
//            (one workgroup per 8 query rows).
//   grad_kv  dv_j = Σ_i p_ij dO_i and dk_j = scale Σ_i p_ij (dO_i·v_j − delta_i) q_i
//            (one workgroup per 4 key rows).
//
// A workgroup's rows share every key (or query) tile: the tile's rows are staged in
// workgroup memory a head-dim chunk at a time with coalesced loads, and each thread
// computes one tile row's dot products with all the workgroup's rows. The other
// operand of the accumulation is read once per workgroup, in order along dh.
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
// Rows per workgroup: query rows in forward and grad_q, key rows in grad_kv.
const RQ: u32 = 8u;
const RK: u32 = 4u;
// Head-dim chunk staged per step, and the padded stride of a staged tile row (odd, so
// the 64 threads reading one column each hit different banks).
const DC: u32 = 16u;
const TP: u32 = 17u;

var<workgroup> rows_a: array<f32, 128>;    // the workgroup's rows (RQ × DC): q, or k
var<workgroup> rows_b: array<f32, 128>;    // dO, or v
var<workgroup> tile_a: array<f32, 1088>;   // a tile of 64 rows (64 × TP): k, or q
var<workgroup> tile_b: array<f32, 1088>;   // v, or dO
var<workgroup> weights_a: array<f32, 512>; // per (row, tile column): p or dS
var<workgroup> weights_b: array<f32, 512>;
var<workgroup> red: array<f32, 512>;       // one reduction lane per (row, thread)

// Tree reductions over the 64 threads, for `rows` rows at once; red[r · 64] holds the
// result. Each starts and ends with a barrier.
fn reduce_max(lid: u32, rows: u32) {
    for (var s = WG / 2u; s > 0u; s = s >> 1u) {
        workgroupBarrier();
        if (lid < s) {
            for (var r = 0u; r < rows; r++) { red[r * WG + lid] = max(red[r * WG + lid], red[r * WG + lid + s]); }
        }
    }
    workgroupBarrier();
}

fn reduce_sum(lid: u32, rows: u32) {
    for (var s = WG / 2u; s > 0u; s = s >> 1u) {
        workgroupBarrier();
        if (lid < s) {
            for (var r = 0u; r < rows; r++) { red[r * WG + lid] = red[r * WG + lid] + red[r * WG + lid + s]; }
        }
    }
    workgroupBarrier();
}

// The rows a workgroup owns: `per` consecutive rows of one head's `t`, as (head, first
// row within the head, how many, first row overall). Workgroups past the last block get
// rows = 0 and return.
struct RowBlock {
    head: u32,
    start: u32,
    rows: u32,
    first: u32,
}

fn row_block(wid: vec3<u32>, nwg: vec3<u32>, t: u32, per: u32) -> RowBlock {
    let blocks = (t + per - 1u) / per;
    let block = wid.x + wid.y * nwg.x;
    if (block >= p.bh * blocks) { return RowBlock(0u, 0u, 0u, 0u); }
    let head = block / blocks;
    let start = (block % blocks) * per;
    return RowBlock(head, start, min(per, t - start), head * t + start);
}

// Stages query rows [first, first + count) (count ≤ RQ), columns [d0, d0 + DC), of q
// into rows_a, zeros past the edges.
fn stage_q_rows(first: u32, count: u32, d0: u32, lid: u32) {
    for (var e = lid; e < RQ * DC; e += WG) {
        let r = e / DC;
        let d = d0 + e % DC;
        var a = 0.0;
        if (r < count && d < p.dh) { a = q[(first + r) * p.dh + d]; }
        rows_a[e] = a;
    }
}

// The same rows of q and of dO, into rows_a and rows_b.
fn stage_q_do_rows(first: u32, count: u32, d0: u32, lid: u32) {
    for (var e = lid; e < RQ * DC; e += WG) {
        let r = e / DC;
        let d = d0 + e % DC;
        var a = 0.0;
        var b = 0.0;
        if (r < count && d < p.dh) {
            a = q[(first + r) * p.dh + d];
            b = grad_o[(first + r) * p.dh + d];
        }
        rows_a[e] = a;
        rows_b[e] = b;
    }
}

// A tile of `valid` ≤ 64 key rows from `first`, columns [d0, d0 + DC), of k into
// tile_a, zeros past the edges.
fn stage_k_tile(first: u32, valid: u32, d0: u32, lid: u32) {
    for (var e = lid; e < WG * DC; e += WG) {
        let j = e / DC;
        let d = d0 + e % DC;
        var a = 0.0;
        if (j < valid && d < p.dh) { a = k[(first + j) * p.dh + d]; }
        tile_a[j * TP + e % DC] = a;
    }
}

// The same tile of k and of v, into tile_a and tile_b.
fn stage_kv_tile(first: u32, valid: u32, d0: u32, lid: u32) {
    for (var e = lid; e < WG * DC; e += WG) {
        let j = e / DC;
        let d = d0 + e % DC;
        var a = 0.0;
        var b = 0.0;
        if (j < valid && d < p.dh) {
            a = k[(first + j) * p.dh + d];
            b = v[(first + j) * p.dh + d];
        }
        tile_a[j * TP + e % DC] = a;
        tile_b[j * TP + e % DC] = b;
    }
}

@compute @workgroup_size(64)
fn forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid3: vec3<u32>,
           @builtin(num_workgroups) nwg: vec3<u32>) {
    let rb = row_block(wid, nwg, p.tq, RQ);
    if (rb.rows == 0u) { return; }
    let lid = lid3.x;
    let dh = p.dh;
    let rows = rb.rows;
    let first = rb.first;
    let kv = rb.head * p.tk;
    var m = array<f32, 8>(NEG_MAX, NEG_MAX, NEG_MAX, NEG_MAX, NEG_MAX, NEG_MAX, NEG_MAX, NEG_MAX);
    var l = array<f32, 8>(0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0);
    var acc: array<f32, 32>;
    for (var j0 = 0u; j0 < p.tk; j0 += WG) {
        let valid = min(WG, p.tk - j0);
        var s: array<f32, 8>;
        for (var d0 = 0u; d0 < dh; d0 += DC) {
            workgroupBarrier();
            stage_q_rows(first, rows, d0, lid);
            stage_k_tile(kv + j0, valid, d0, lid);
            workgroupBarrier();
            for (var dd = 0u; dd < DC; dd++) {
                let kd = tile_a[lid * TP + dd];
                for (var r = 0u; r < RQ; r++) { s[r] += rows_a[r * DC + dd] * kd; }
            }
        }
        for (var r = 0u; r < RQ; r++) {
            s[r] = select(NEG_MAX, s[r] * p.scale, lid < valid);
            red[r * WG + lid] = s[r];
        }
        reduce_max(lid, RQ);
        var m_new: array<f32, 8>;
        for (var r = 0u; r < RQ; r++) { m_new[r] = max(m[r], red[r * WG]); }
        workgroupBarrier();
        for (var r = 0u; r < RQ; r++) {
            let pj = select(0.0, exp(s[r] - m_new[r]), lid < valid);
            weights_a[r * WG + lid] = pj;
            red[r * WG + lid] = pj;
        }
        reduce_sum(lid, RQ);
        for (var r = 0u; r < RQ; r++) {
            let corr = exp(m[r] - m_new[r]);
            l[r] = l[r] * corr + red[r * WG];
            m[r] = m_new[r];
            for (var c = 0u; c < LANES; c++) { acc[r * LANES + c] *= corr; }
        }
        for (var c = 0u; c < LANES; c++) {
            let d = lid + c * WG;
            if (d < dh) {
                for (var jj = 0u; jj < valid; jj++) {
                    let vd = v[(kv + j0 + jj) * dh + d];
                    for (var r = 0u; r < RQ; r++) { acc[r * LANES + c] += weights_a[r * WG + jj] * vd; }
                }
            }
        }
    }
    for (var r = 0u; r < rows; r++) {
        let inv = 1.0 / l[r];
        for (var c = 0u; c < LANES; c++) {
            let d = lid + c * WG;
            if (d < dh) { out_a[(first + r) * dh + d] = acc[r * LANES + c] * inv; }
        }
        if (lid == 0u) { out_b[first + r] = m[r] + log(l[r]); }
    }
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
    let rb = row_block(wid, nwg, p.tq, RQ);
    if (rb.rows == 0u) { return; }
    let lid = lid3.x;
    let dh = p.dh;
    let rows = rb.rows;
    let first = rb.first;
    let kv = rb.head * p.tk;
    var lse_r: array<f32, 8>;
    var delta_r: array<f32, 8>;
    for (var r = 0u; r < rows; r++) {
        lse_r[r] = lse[first + r];
        delta_r[r] = delta[first + r];
    }
    var acc: array<f32, 32>;
    for (var j0 = 0u; j0 < p.tk; j0 += WG) {
        let valid = min(WG, p.tk - j0);
        var s: array<f32, 8>;
        var dp: array<f32, 8>;
        for (var d0 = 0u; d0 < dh; d0 += DC) {
            workgroupBarrier();
            stage_q_do_rows(first, rows, d0, lid);
            stage_kv_tile(kv + j0, valid, d0, lid);
            workgroupBarrier();
            for (var dd = 0u; dd < DC; dd++) {
                let kd = tile_a[lid * TP + dd];
                let vd = tile_b[lid * TP + dd];
                for (var r = 0u; r < RQ; r++) {
                    s[r] += rows_a[r * DC + dd] * kd;
                    dp[r] += rows_b[r * DC + dd] * vd;
                }
            }
        }
        for (var r = 0u; r < RQ; r++) {
            let ds = exp(s[r] * p.scale - lse_r[r]) * (dp[r] - delta_r[r]) * p.scale;
            weights_a[r * WG + lid] = select(0.0, ds, lid < valid && r < rows);
        }
        workgroupBarrier();
        for (var c = 0u; c < LANES; c++) {
            let d = lid + c * WG;
            if (d < dh) {
                for (var jj = 0u; jj < valid; jj++) {
                    let kd = k[(kv + j0 + jj) * dh + d];
                    for (var r = 0u; r < RQ; r++) { acc[r * LANES + c] += weights_a[r * WG + jj] * kd; }
                }
            }
        }
    }
    for (var r = 0u; r < rows; r++) {
        for (var c = 0u; c < LANES; c++) {
            let d = lid + c * WG;
            if (d < dh) { out_a[(first + r) * dh + d] = acc[r * LANES + c]; }
        }
    }
}

@compute @workgroup_size(64)
fn grad_kv(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid3: vec3<u32>,
           @builtin(num_workgroups) nwg: vec3<u32>) {
    let rb = row_block(wid, nwg, p.tk, RK);
    if (rb.rows == 0u) { return; }
    let lid = lid3.x;
    let dh = p.dh;
    let rows = rb.rows;
    let first = rb.first;
    let qo = rb.head * p.tq;
    var acc_k: array<f32, 16>;
    var acc_v: array<f32, 16>;
    for (var i0 = 0u; i0 < p.tq; i0 += WG) {
        let valid = min(WG, p.tq - i0);
        var s: array<f32, 4>;
        var dp: array<f32, 4>;
        for (var d0 = 0u; d0 < dh; d0 += DC) {
            workgroupBarrier();
            // This workgroup's k and v rows, and a tile of 64 q and dO rows.
            for (var e = lid; e < RK * DC; e += WG) {
                let r = e / DC;
                let d = d0 + e % DC;
                var a = 0.0;
                var b = 0.0;
                if (r < rows && d < dh) {
                    a = k[(first + r) * dh + d];
                    b = v[(first + r) * dh + d];
                }
                rows_a[e] = a;
                rows_b[e] = b;
            }
            for (var e = lid; e < WG * DC; e += WG) {
                let i = e / DC;
                let d = d0 + e % DC;
                var a = 0.0;
                var b = 0.0;
                if (i < valid && d < dh) {
                    a = q[(qo + i0 + i) * dh + d];
                    b = grad_o[(qo + i0 + i) * dh + d];
                }
                tile_a[i * TP + e % DC] = a;
                tile_b[i * TP + e % DC] = b;
            }
            workgroupBarrier();
            for (var dd = 0u; dd < DC; dd++) {
                let qd = tile_a[lid * TP + dd];
                let gd = tile_b[lid * TP + dd];
                for (var r = 0u; r < RK; r++) {
                    s[r] += qd * rows_a[r * DC + dd];
                    dp[r] += gd * rows_b[r * DC + dd];
                }
            }
        }
        var lse_i = 0.0;
        var delta_i = 0.0;
        if (lid < valid) {
            lse_i = lse[qo + i0 + lid];
            delta_i = delta[qo + i0 + lid];
        }
        for (var r = 0u; r < RK; r++) {
            let pi = exp(s[r] * p.scale - lse_i);
            let ok = lid < valid && r < rows;
            weights_a[r * WG + lid] = select(0.0, pi, ok);
            weights_b[r * WG + lid] = select(0.0, pi * (dp[r] - delta_i) * p.scale, ok);
        }
        workgroupBarrier();
        for (var c = 0u; c < LANES; c++) {
            let d = lid + c * WG;
            if (d < dh) {
                for (var ii = 0u; ii < valid; ii++) {
                    let at = (qo + i0 + ii) * dh + d;
                    let gd = grad_o[at];
                    let qd = q[at];
                    for (var r = 0u; r < RK; r++) {
                        acc_v[r * LANES + c] += weights_a[r * WG + ii] * gd;
                        acc_k[r * LANES + c] += weights_b[r * WG + ii] * qd;
                    }
                }
            }
        }
    }
    for (var r = 0u; r < rows; r++) {
        for (var c = 0u; c < LANES; c++) {
            let d = lid + c * WG;
            if (d < dh) {
                out_a[(first + r) * dh + d] = acc_k[r * LANES + c];
                out_b[(first + r) * dh + d] = acc_v[r * LANES + c];
            }
        }
    }
}

// k nearest neighbours as KNN_CUDA (reference-spec §2.7): squared distance
// ((r0-q0)^2 + (r1-q1)^2) + (r2-q2)^2, the k smallest in ascending distance with ties to
// the lower reference index (insertion with strict <), distances returned as sqrt.
// One invocation per query; ref (clouds, N, 3), query (clouds, M, 3).

struct Params {
    queries: u32,  // clouds * M
    m: u32,
    points: u32,   // N
    k: u32,        // <= MAX_K
}

const MAX_K: u32 = 64u;

@group(0) @binding(0) var<storage, read> refs: array<f32>;
@group(0) @binding(1) var<storage, read> query: array<f32>;
@group(0) @binding(2) var<storage, read_write> idx: array<u32>;   // (queries, k)
@group(0) @binding(3) var<storage, read_write> rows: array<u32>;  // (queries, k) rows of (clouds*N, 3)
@group(0) @binding(4) var<storage, read_write> dist: array<f32>;  // (queries, k)
@group(0) @binding(5) var<uniform> p: Params;

@compute @workgroup_size(64)
fn knn(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let g = gid.x + gid.y * nwg.x * 64u;
    if (g >= p.queries) { return; }
    let base = (g / p.m) * p.points;
    let qx = query[g * 3u];
    let qy = query[g * 3u + 1u];
    let qz = query[g * 3u + 2u];
    var bd: array<f32, MAX_K>;
    var bi: array<u32, MAX_K>;
    var cnt = 0u;
    for (var r = 0u; r < p.points; r++) {
        let o = (base + r) * 3u;
        let d0 = refs[o] - qx;
        let d1 = refs[o + 1u] - qy;
        let d2 = refs[o + 2u] - qz;
        let d = (d0 * d0 + d1 * d1) + d2 * d2;
        if (cnt == p.k && !(d < bd[p.k - 1u])) { continue; }
        var j = min(cnt, p.k - 1u);
        while (j > 0u && d < bd[j - 1u]) {
            bd[j] = bd[j - 1u];
            bi[j] = bi[j - 1u];
            j -= 1u;
        }
        bd[j] = d;
        bi[j] = r;
        cnt = min(cnt + 1u, p.k);
    }
    let out = g * p.k;
    for (var s = 0u; s < p.k; s++) {
        idx[out + s] = bi[s];
        rows[out + s] = base + bi[s];
        dist[out + s] = sqrt(bd[s]);
    }
}

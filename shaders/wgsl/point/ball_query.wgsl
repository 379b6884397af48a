// Ball query as the pointnet2 CUDA kernel (reference-spec §2.4): the first `nsample`
// points with d^2 < r^2 (strict) in index order, padded with the first hit; an empty
// ball gives all zeros. d^2 is summed as ((dx^2 + dy^2) + dz^2) without fma.
//
// One invocation per query. Queries are anchors (B, frames_out, n, 3); query (b, t', o, a)
// searches source frame frame_of[t' * offsets + o] of xyz (B, L, N, 3), so the balls of
// every temporal offset of every output frame are found in one dispatch.

struct Params {
    queries: u32,     // B * frames_out * offsets * n
    n: u32,           // anchors per output frame
    points: u32,      // N
    nsample: u32,
    radius2: f32,
    offsets: u32,
    frames_out: u32,
    clip_frames: u32,
}

@group(0) @binding(0) var<storage, read> xyz: array<f32>;
@group(0) @binding(1) var<storage, read> anchors: array<f32>;
@group(0) @binding(2) var<storage, read> frame_of: array<u32>;
@group(0) @binding(3) var<storage, read_write> idx: array<u32>;    // (queries, nsample)
@group(0) @binding(4) var<storage, read_write> rows: array<u32>;   // (queries, nsample) rows of (B*L*N, 3)
@group(0) @binding(5) var<storage, read_write> count: array<u32>;  // (queries,) genuine hits
@group(0) @binding(6) var<uniform> p: Params;

@compute @workgroup_size(64)
fn ball_query(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let g = gid.x + gid.y * nwg.x * 64u;
    if (g >= p.queries) { return; }
    let a = g % p.n;
    let c = g / p.n;
    let o = c % p.offsets;
    let bt = c / p.offsets;
    let t = bt % p.frames_out;
    let b = bt / p.frames_out;
    let base = (b * p.clip_frames + frame_of[t * p.offsets + o]) * p.points;
    let q = (bt * p.n + a) * 3u;
    let qx = anchors[q];
    let qy = anchors[q + 1u];
    let qz = anchors[q + 2u];
    let out = g * p.nsample;
    var cnt = 0u;
    for (var k = 0u; k < p.points && cnt < p.nsample; k++) {
        let r = (base + k) * 3u;
        let dx = qx - xyz[r];
        let dy = qy - xyz[r + 1u];
        let dz = qz - xyz[r + 2u];
        let d2 = (dx * dx + dy * dy) + dz * dz;
        if (d2 < p.radius2) {
            if (cnt == 0u) {
                for (var s = 0u; s < p.nsample; s++) { idx[out + s] = k; }
            }
            idx[out + cnt] = k;
            cnt += 1u;
        }
    }
    if (cnt == 0u) {
        for (var s = 0u; s < p.nsample; s++) { idx[out + s] = 0u; }
    }
    for (var s = 0u; s < p.nsample; s++) { rows[out + s] = base + idx[out + s]; }
    count[g] = cnt;
}

// three_nn and the inverse-distance weights of P4DTransConv (reference-spec §2.6):
// the three smallest d^2 = (dx^2 + dy^2) + dz^2 with strict < (earlier index kept on
// ties); missing slots (m < 3) hold d^2 = inf and index 0. Weights are
// (1 / (d + 1e-8)) / sum(1 / (d + 1e-8)) with d = sqrt(d^2), as the PyTorch module.
// One invocation per unknown point; unknown (clouds, n, 3), known (clouds, m, 3).

struct Params {
    queries: u32,  // clouds * n
    n: u32,
    m: u32,
    _pad0: u32,
}

@group(0) @binding(0) var<storage, read> unknown: array<f32>;
@group(0) @binding(1) var<storage, read> known: array<f32>;
@group(0) @binding(2) var<storage, read_write> idx: array<u32>;     // (queries, 3)
@group(0) @binding(3) var<storage, read_write> rows: array<u32>;    // (queries, 3) rows of (clouds*m, .)
@group(0) @binding(4) var<storage, read_write> dist: array<f32>;    // (queries, 3) sqrt(d^2)
@group(0) @binding(5) var<storage, read_write> weight: array<f32>;  // (queries, 3)
@group(0) @binding(6) var<uniform> p: Params;

@compute @workgroup_size(64)
fn three_nn(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let g = gid.x + gid.y * nwg.x * 64u;
    if (g >= p.queries) { return; }
    let base = (g / p.n) * p.m;
    let ux = unknown[g * 3u];
    let uy = unknown[g * 3u + 1u];
    let uz = unknown[g * 3u + 2u];
    let inf = bitcast<f32>(0x7f800000u);
    var b1 = inf; var b2 = inf; var b3 = inf;
    var i1 = 0u; var i2 = 0u; var i3 = 0u;
    for (var k = 0u; k < p.m; k++) {
        let o = (base + k) * 3u;
        let dx = ux - known[o];
        let dy = uy - known[o + 1u];
        let dz = uz - known[o + 2u];
        let d = (dx * dx + dy * dy) + dz * dz;
        if (d < b1) {
            b3 = b2; i3 = i2; b2 = b1; i2 = i1; b1 = d; i1 = k;
        } else if (d < b2) {
            b3 = b2; i3 = i2; b2 = d; i2 = k;
        } else if (d < b3) {
            b3 = d; i3 = k;
        }
    }
    let o = g * 3u;
    let d = vec3<f32>(sqrt(b1), sqrt(b2), sqrt(b3));
    let r = vec3<f32>(1.0) / (d + vec3<f32>(1e-8));
    let norm = (r.x + r.y) + r.z;
    idx[o] = i1; idx[o + 1u] = i2; idx[o + 2u] = i3;
    rows[o] = base + i1; rows[o + 1u] = base + i2; rows[o + 2u] = base + i3;
    dist[o] = d.x; dist[o + 1u] = d.y; dist[o + 2u] = d.z;
    weight[o] = r.x / norm; weight[o + 1u] = r.y / norm; weight[o + 2u] = r.z / norm;
}

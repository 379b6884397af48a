// C2P partial views (reference-spec §5.4): per frame, a virtual camera at angles (θ, φ)
// around the frame's centre, at `zoom` times the official distance (the paper's zoom;
// 1 as in the code); a z-buffer over a w × h screen keeps, per pixel, the
// nearest point and any point within `threshold` of it; then the kept points, in input
// order, are resampled to m points.
//
// Race-free and deterministic without float atomics: depths are positive f32, whose bit
// patterns order like the values, so the z-buffer is atomicMin over u32. Points at or
// behind the camera (z ≤ 0) are dropped (the official code's behaviour there depends on
// the point order).
//
// Entry points, in order: setup (per frame), clear, project, keep (per point), scan (one
// workgroup per frame), compact (per point), resample (per output point).

struct Params {
    frames: u32,
    n: u32,          // points per frame
    m: u32,          // output points per frame
    width: u32,
    height: u32,
    focal: f32,
    threshold: f32,
    seed: u32,
}

@group(0) @binding(0) var<storage, read> points: array<f32>;            // (frames, n, 3)
@group(0) @binding(1) var<storage, read> angles: array<f32>;            // (frames, 3): θ, φ degrees, zoom
@group(0) @binding(2) var<storage, read_write> cams: array<f32>;        // (frames, 12)
@group(0) @binding(3) var<storage, read_write> zbuf: array<atomic<u32>>; // (frames, w·h)
@group(0) @binding(4) var<storage, read_write> rank: array<u32>;        // (frames, n)
@group(0) @binding(5) var<storage, read_write> counts: array<u32>;      // (frames,)
@group(0) @binding(6) var<storage, read_write> out: array<f32>;         // (frames, m, 3)
@group(0) @binding(7) var<storage, read_write> compact: array<u32>;     // (frames, n)
@group(0) @binding(8) var<uniform> p: Params;

const DROPPED: u32 = 0xffffffffu;
const EMPTY: u32 = 0xffffffffu;

fn linear(gid: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return gid.x + gid.y * nwg.x * 256u;
}

fn point(i: u32) -> vec3<f32> {
    return vec3<f32>(points[3u * i], points[3u * i + 1u], points[3u * i + 2u]);
}

@compute @workgroup_size(256)
fn setup(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let f = linear(gid, nwg);
    if (f >= p.frames) { return; }
    var centre = vec3<f32>(0.0);
    for (var i = 0u; i < p.n; i++) { centre += point(f * p.n + i); }
    centre /= f32(p.n);
    let theta = radians(angles[3u * f]);
    let phi = radians(angles[3u * f + 1u]);
    let zoom = angles[3u * f + 2u]; // 1 = the official distance ‖centre‖
    let dir = -normalize(vec3<f32>(cos(theta), sin(phi), sin(theta)));
    let cam = zoom * length(centre) * dir + centre;
    let z = normalize(centre - cam);
    let x = normalize(cross(vec3<f32>(0.0, 1.0, 0.0), z));
    let y = cross(z, x);
    // The axes are orthonormal: the inverse of [x y z] (columns) has them as rows.
    let b = 12u * f;
    cams[b] = cam.x; cams[b + 1u] = cam.y; cams[b + 2u] = cam.z;
    cams[b + 3u] = x.x; cams[b + 4u] = x.y; cams[b + 5u] = x.z;
    cams[b + 6u] = y.x; cams[b + 7u] = y.y; cams[b + 8u] = y.z;
    cams[b + 9u] = z.x; cams[b + 10u] = z.y; cams[b + 11u] = z.z;
}

@compute @workgroup_size(256)
fn clear(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = linear(gid, nwg);
    if (i >= p.frames * p.width * p.height) { return; }
    atomicStore(&zbuf[i], EMPTY);
}

// The pixel (index into the frame's z-buffer) and depth of point i, or pixel DROPPED.
fn project_point(i: u32) -> vec2<u32> {
    let f = i / p.n;
    let b = 12u * f;
    let d = point(i) - vec3<f32>(cams[b], cams[b + 1u], cams[b + 2u]);
    let xc = dot(vec3<f32>(cams[b + 3u], cams[b + 4u], cams[b + 5u]), d);
    let yc = dot(vec3<f32>(cams[b + 6u], cams[b + 7u], cams[b + 8u]), d);
    let zc = dot(vec3<f32>(cams[b + 9u], cams[b + 10u], cams[b + 11u]), d);
    if (!(zc > 0.0)) { return vec2<u32>(DROPPED, 0u); }
    let sx = xc * p.focal / zc;
    let sy = yc * p.focal / zc;
    // As the official code: only an upper bound, then truncation toward zero.
    if (!(sx < 1e6 && sy < 1e6)) { return vec2<u32>(DROPPED, 0u); }
    let px = i32(trunc(sx + f32(p.width) / 2.0));
    let py = i32(trunc(sy + f32(p.height) / 2.0));
    if (px < 0 || py < 0 || px >= i32(p.width) || py >= i32(p.height)) {
        return vec2<u32>(DROPPED, 0u);
    }
    return vec2<u32>(u32(px) * p.height + u32(py), bitcast<u32>(zc));
}

@compute @workgroup_size(256)
fn project(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = linear(gid, nwg);
    if (i >= p.frames * p.n) { return; }
    let pz = project_point(i);
    if (pz.x == DROPPED) { return; }
    atomicMin(&zbuf[(i / p.n) * p.width * p.height + pz.x], pz.y);
}

// rank[i] = 1 if point i is kept, else 0 (scan turns it into the rank).
@compute @workgroup_size(256)
fn keep(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = linear(gid, nwg);
    if (i >= p.frames * p.n) { return; }
    let pz = project_point(i);
    var kept = 0u;
    if (pz.x != DROPPED) {
        let nearest = bitcast<f32>(atomicLoad(&zbuf[(i / p.n) * p.width * p.height + pz.x]));
        kept = select(0u, 1u, bitcast<f32>(pz.y) - nearest < p.threshold);
    }
    rank[i] = kept;
}

var<workgroup> partial: array<u32, 64>;

// Per frame: rank of each kept point among the kept (input order), DROPPED otherwise;
// counts[f] = kept points. Each thread scans one contiguous chunk.
@compute @workgroup_size(64)
fn scan(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>) {
    let f = wid.x + wid.y * nwg.x;
    let valid = f < p.frames; // uniform per workgroup
    let chunk = (p.n + 63u) / 64u;
    let lo = min(lid.x * chunk, p.n);
    let hi = min(lo + chunk, p.n);
    var s = 0u;
    if (valid) {
        for (var j = lo; j < hi; j++) { s += rank[f * p.n + j]; }
    }
    partial[lid.x] = s;
    workgroupBarrier();
    for (var d = 1u; d < 64u; d <<= 1u) {
        var v = 0u;
        if (lid.x >= d) { v = partial[lid.x - d]; }
        workgroupBarrier();
        partial[lid.x] += v;
        workgroupBarrier();
    }
    if (!valid) { return; }
    var run = partial[lid.x] - s;
    for (var j = lo; j < hi; j++) {
        let i = f * p.n + j;
        if (rank[i] == 1u) {
            rank[i] = run;
            run += 1u;
        } else {
            rank[i] = DROPPED;
        }
    }
    if (lid.x == 63u) { counts[f] = partial[63]; }
}

@compute @workgroup_size(256)
fn compact_kept(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = linear(gid, nwg);
    if (i >= p.frames * p.n) { return; }
    let r = rank[i];
    if (r != DROPPED) { compact[(i / p.n) * p.n + r] = i % p.n; }
}

fn hash(x: u32) -> u32 {
    var h = x;
    h ^= h >> 16u; h *= 0x7feb352du;
    h ^= h >> 15u; h *= 0x846ca68bu;
    h ^= h >> 16u;
    return h;
}

// A pseudo-random permutation of [0, c) evaluated at j < c: a 4-round Feistel network on
// the smallest even bit width covering c, cycle-walking until the value lands below c.
fn permute(j: u32, c: u32, key: u32) -> u32 {
    var bits = 2u;
    while ((1u << bits) < c) { bits += 2u; }
    let half = bits / 2u;
    let mask = (1u << half) - 1u;
    var v = j;
    loop {
        var l = v >> half;
        var r = v & mask;
        for (var round = 0u; round < 4u; round++) {
            let t = l ^ (hash(r ^ key ^ (round * 0x9e3779b9u)) & mask);
            l = r;
            r = t;
        }
        v = (l << half) | r;
        if (v < c) { break; }
    }
    return v;
}

// Output point j of frame f: with c kept points, c ≥ m → a random subset of m (no
// repeats); c < m → every kept point ⌊m/c⌋ times, then a random subset for the rest
// (the official resampling's rule). A frame the camera does not see (c = 0) keeps its
// complete points, resampled the same way.
@compute @workgroup_size(256)
fn resample(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let o = linear(gid, nwg);
    if (o >= p.frames * p.m) { return; }
    let f = o / p.m;
    let j = o % p.m;
    let seen = counts[f];
    let c = select(p.n, seen, seen > 0u);
    let key = hash(p.seed ^ hash(f + 0x51ed270bu));
    var r: u32;
    if (c >= p.m) {
        r = permute(j, c, key);
    } else {
        let whole = (p.m / c) * c;
        if (j < whole) {
            r = j % c;
        } else {
            r = permute(j - whole, c, key);
        }
    }
    let src = select(r, compact[f * p.n + r], seen > 0u);
    let q = point(f * p.n + src);
    out[3u * o] = q.x;
    out[3u * o + 1u] = q.y;
    out[3u * o + 2u] = q.z;
}

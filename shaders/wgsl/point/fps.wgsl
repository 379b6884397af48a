// Farthest point sampling with the pointnet2 CUDA kernel's exact choices
// (reference-spec §2.2): start at index 0, distances initialised to 1e10, points with
// |p|^2 <= 1e-3 never visited, and ties broken as the CUDA block reduction breaks them:
// the point whose CUDA thread id (k mod bs) has the smallest bit-reversed value over
// log2(bs) bits wins, then the smallest k. That rule is a total order, so this kernel
// may use any number of threads and still picks exactly the CUDA kernel's points.
//
// One workgroup per cloud. A cloud is output frame t' of clip b: it reads source frame
// frame_of[t'] of xyz (B, L, N, 3), so every frame of a batch is sampled in one dispatch.

struct Params {
    clouds: u32,      // B * frames_out
    n: u32,           // points per frame
    m: u32,           // samples per cloud
    log2_bs: u32,     // log2 of the CUDA block size opt_n_threads(n)
    frames_out: u32,
    clip_frames: u32, // L
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<storage, read> xyz: array<f32>;
@group(0) @binding(1) var<storage, read> frame_of: array<u32>;
@group(0) @binding(2) var<storage, read_write> idx: array<u32>;   // (clouds, m) index in the frame
@group(0) @binding(3) var<storage, read_write> rows: array<u32>;  // (clouds, m) row of xyz viewed as (B*L*N, 3)
@group(0) @binding(4) var<storage, read_write> temp: array<f32>;  // (clouds, n) scratch
@group(0) @binding(5) var<uniform> p: Params;

const WG: u32 = 64u;
// The largest f32 not above 1e-3: the CUDA test is `(double)mag <= 1e-3`.
const MAG_SKIP: f32 = 0.00099999993;

var<workgroup> best_d: array<f32, 64>;
var<workgroup> best_k: array<u32, 64>;

fn tie_rank(k: u32) -> u32 {
    if (p.log2_bs == 0u) { return 0u; }
    return reverseBits(k & ((1u << p.log2_bs) - 1u)) >> (32u - p.log2_bs);
}

// True when candidate (d1, k1) beats (d2, k2).
fn better(d1: f32, k1: u32, d2: f32, k2: u32) -> bool {
    if (d1 != d2) { return d1 > d2; }
    let r1 = tie_rank(k1);
    let r2 = tie_rank(k2);
    if (r1 != r2) { return r1 < r2; }
    return k1 < k2;
}

// Tree reduction of the per-thread candidates; every thread returns the winner.
fn reduce_best(lid: u32, bd: f32, bk: u32) -> u32 {
    best_d[lid] = bd;
    best_k[lid] = bk;
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s >>= 1u) {
        if (lid < s && better(best_d[lid + s], best_k[lid + s], best_d[lid], best_k[lid])) {
            best_d[lid] = best_d[lid + s];
            best_k[lid] = best_k[lid + s];
        }
        workgroupBarrier();
    }
    let winner = best_k[0];
    workgroupBarrier();
    return winner;
}

// Points per thread the cached variant keeps in registers (clouds of up to WG * CACHED).
const CACHED: u32 = 32u;

// The same algorithm with each thread's points and distances held in private memory,
// for clouds of at most WG * CACHED points: the hot loop touches no storage buffer.
@compute @workgroup_size(64)
fn fps_cached(@builtin(local_invocation_id) lid: vec3<u32>,
              @builtin(workgroup_id) wid: vec3<u32>,
              @builtin(num_workgroups) nwg: vec3<u32>) {
    let linear = wid.x + wid.y * nwg.x;
    let in_range = linear < p.clouds;
    let cloud = min(linear, p.clouds - 1u);
    let b = cloud / p.frames_out;
    let f = frame_of[cloud % p.frames_out];
    let base = (b * p.clip_frames + f) * p.n;
    let out = cloud * p.m;
    var px: array<f32, CACHED>;
    var py: array<f32, CACHED>;
    var pz: array<f32, CACHED>;
    var temp_reg: array<f32, CACHED>;
    var count = 0u;
    for (var k = lid.x; k < p.n; k += WG) {
        let q = (base + k) * 3u;
        px[count] = xyz[q];
        py[count] = xyz[q + 1u];
        pz[count] = xyz[q + 2u];
        let mag = (px[count] * px[count] + py[count] * py[count]) + pz[count] * pz[count];
        // Skipped points get a negative distance so they never win.
        temp_reg[count] = select(1e10, -2.0, mag <= MAG_SKIP);
        count += 1u;
    }
    if (in_range && lid.x == 0u && p.m > 0u) { idx[out] = 0u; rows[out] = base; }
    var old = 0u;
    for (var j = 1u; j < p.m; j++) {
        let o = (base + old) * 3u;
        let ox = xyz[o];
        let oy = xyz[o + 1u];
        let oz = xyz[o + 2u];
        var bd = -1.0;
        var bk = 0u;
        for (var c = 0u; c < count; c++) {
            if (temp_reg[c] < -1.0) { continue; }
            let dx = px[c] - ox;
            let dy = py[c] - oy;
            let dz = pz[c] - oz;
            let t = min((dx * dx + dy * dy) + dz * dz, temp_reg[c]);
            temp_reg[c] = t;
            let k = lid.x + c * WG;
            if (better(t, k, bd, bk)) { bd = t; bk = k; }
        }
        old = reduce_best(lid.x, bd, bk);
        if (in_range && lid.x == 0u) {
            idx[out + j] = old;
            rows[out + j] = base + old;
        }
    }
}

@compute @workgroup_size(64)
fn fps(@builtin(local_invocation_id) lid: vec3<u32>,
       @builtin(workgroup_id) wid: vec3<u32>,
       @builtin(num_workgroups) nwg: vec3<u32>) {
    let linear = wid.x + wid.y * nwg.x;
    let in_range = linear < p.clouds;
    let cloud = min(linear, p.clouds - 1u);
    let b = cloud / p.frames_out;
    let f = frame_of[cloud % p.frames_out];
    let base = (b * p.clip_frames + f) * p.n;
    let tbase = cloud * p.n;
    let out = cloud * p.m;
    if (in_range) {
        for (var k = lid.x; k < p.n; k += WG) { temp[tbase + k] = 1e10; }
        if (lid.x == 0u && p.m > 0u) { idx[out] = 0u; rows[out] = base; }
    }
    var old = 0u;
    for (var j = 1u; j < p.m; j++) {
        let o = (base + old) * 3u;
        let ox = xyz[o];
        let oy = xyz[o + 1u];
        let oz = xyz[o + 2u];
        var bd = -1.0;
        var bk = 0u;
        if (in_range) {
            for (var k = lid.x; k < p.n; k += WG) {
                let q = (base + k) * 3u;
                let x = xyz[q];
                let y = xyz[q + 1u];
                let z = xyz[q + 2u];
                let mag = (x * x + y * y) + z * z;
                if (mag <= MAG_SKIP) { continue; }
                let dx = x - ox;
                let dy = y - oy;
                let dz = z - oz;
                let d = (dx * dx + dy * dy) + dz * dz;
                let t = min(d, temp[tbase + k]);
                temp[tbase + k] = t;
                if (better(t, k, bd, bk)) { bd = t; bk = k; }
            }
        }
        old = reduce_best(lid.x, bd, bk);
        if (in_range && lid.x == 0u) {
            idx[out + j] = old;
            rows[out + j] = base + old;
        }
    }
}

// Inverse of an index map: for each target row r, the entries e with rows[e] == r in
// ascending e (a CSR table: offsets (targets + 1), entries (E)). Scatter-style backward
// passes gather through it instead of using float atomics.
// Steps: count (integer atomics), exclusive scan (one workgroup), fill (integer
// atomics, arbitrary order within a row), then sort each row so the order is fixed.

struct Params {
    entries: u32,
    targets: u32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<storage, read> rows: array<u32>;
@group(0) @binding(1) var<storage, read_write> counts: array<atomic<u32>>;  // (targets,)
@group(0) @binding(2) var<storage, read_write> offsets: array<u32>;         // (targets + 1,)
@group(0) @binding(3) var<storage, read_write> entries: array<u32>;         // (E,)
@group(0) @binding(4) var<uniform> p: Params;

fn linear(gid: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return gid.x + gid.y * nwg.x * 256u;
}

@compute @workgroup_size(256)
fn clear(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let t = linear(gid, nwg);
    if (t >= p.targets) { return; }
    atomicStore(&counts[t], 0u);
}

@compute @workgroup_size(256)
fn count(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let e = linear(gid, nwg);
    if (e >= p.entries) { return; }
    atomicAdd(&counts[rows[e]], 1u);
}

var<workgroup> partial: array<u32, 256>;

// Exclusive scan of counts into offsets; one workgroup, each thread one contiguous chunk.
@compute @workgroup_size(256)
fn scan(@builtin(local_invocation_id) lid: vec3<u32>) {
    let chunk = (p.targets + 255u) / 256u;
    let lo = min(lid.x * chunk, p.targets);
    let hi = min(lo + chunk, p.targets);
    var s = 0u;
    for (var t = lo; t < hi; t++) { s += atomicLoad(&counts[t]); }
    partial[lid.x] = s;
    workgroupBarrier();
    // Hillis-Steele inclusive scan of the 256 chunk sums.
    for (var d = 1u; d < 256u; d <<= 1u) {
        var v = 0u;
        if (lid.x >= d) { v = partial[lid.x - d]; }
        workgroupBarrier();
        partial[lid.x] += v;
        workgroupBarrier();
    }
    var run = partial[lid.x] - s;
    for (var t = lo; t < hi; t++) {
        offsets[t] = run;
        run += atomicLoad(&counts[t]);
    }
    if (lid.x == 255u) { offsets[p.targets] = partial[255]; }
}

@compute @workgroup_size(256)
fn fill(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let e = linear(gid, nwg);
    if (e >= p.entries) { return; }
    let r = rows[e];
    entries[offsets[r] + atomicAdd(&counts[r], 1u)] = e;
}

// Insertion sort of each row's entries (rows are short: a point's uses).
@compute @workgroup_size(256)
fn sort(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let t = linear(gid, nwg);
    if (t >= p.targets) { return; }
    let lo = offsets[t];
    let hi = offsets[t + 1u];
    for (var i = lo + 1u; i < hi; i++) {
        let v = entries[i];
        var j = i;
        while (j > lo && entries[j - 1u] > v) {
            entries[j] = entries[j - 1u];
            j -= 1u;
        }
        entries[j] = v;
    }
}

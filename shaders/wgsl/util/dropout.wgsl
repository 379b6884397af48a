// Dropout with a seeded, stateless mask: element i is kept when
// hash(i, seed) < keep_threshold (= floor((1 - p) * 2^32)). The backward pass
// recomputes the same mask from the same seed, so nothing is stored, and the CPU
// reference reproduces the mask bit for bit.

struct Params {
    n: u32,
    seed: u32,
    keep_threshold: u32,
    inv_keep: f32,
}

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<uniform> p: Params;

// PCG-RXS-M-XS 32-bit hash (Jarzynski & Olano, "Hash Functions for GPU Rendering").
fn pcg_hash(v: u32) -> u32 {
    let state = v * 747796405u + 2891336453u;
    let word = ((state >> ((state >> 28u) + 4u)) ^ state) * 277803737u;
    return (word >> 22u) ^ word;
}

// Same kernel for forward (x = input) and backward (x = upstream gradient).
@compute @workgroup_size(256)
fn apply_mask(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * 256u;
    if (i >= p.n) { return; }
    let keep = pcg_hash(i ^ pcg_hash(p.seed)) < p.keep_threshold;
    out[i] = select(0.0, x[i] * p.inv_keep, keep);
}

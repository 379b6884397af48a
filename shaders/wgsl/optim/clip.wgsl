// Gradient clipping by the global 2-norm, as torch.nn.utils.clip_grad_norm_:
//   norm = sqrt(sum over tensors of sum g^2);  coef = min(1, max_norm / (norm + 1e-6));
//   every g *= coef.
// sumsq reduces one tensor into its slot of `partials` (one workgroup, fixed tree);
// coef sums the slots in order; scale multiplies in place. No atomics: bitwise stable.

struct Params {
    n: u32,          // sumsq / scale: elements of this tensor; coef: number of slots
    slot: u32,
    max_norm: f32,
    _pad0: u32,
}

@group(0) @binding(0) var<storage, read_write> g: array<f32>;
@group(0) @binding(1) var<storage, read_write> partials: array<f32>;
@group(0) @binding(2) var<storage, read_write> coef: array<f32>;   // [coef, norm]
@group(0) @binding(3) var<uniform> p: Params;

var<workgroup> red: array<f32, 64>;

@compute @workgroup_size(64)
fn sumsq(@builtin(local_invocation_id) lid: vec3<u32>) {
    var s = 0.0;
    for (var i = lid.x; i < p.n; i += 64u) { s += g[i] * g[i]; }
    red[lid.x] = s;
    for (var w = 32u; w > 0u; w >>= 1u) {
        workgroupBarrier();
        if (lid.x < w) { red[lid.x] += red[lid.x + w]; }
    }
    workgroupBarrier();
    if (lid.x == 0u) { partials[p.slot] = red[0]; }
}

@compute @workgroup_size(1)
fn coefficient() {
    var total = 0.0;
    for (var i = 0u; i < p.n; i++) { total += partials[i]; }
    let norm = sqrt(total);
    coef[0] = min(1.0, p.max_norm / (norm + 1e-6));
    coef[1] = norm;
}

@compute @workgroup_size(256)
fn scale(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * 256u;
    if (i >= p.n) { return; }
    g[i] = g[i] * coef[0];
}

// Axis permutation of a tensor of rank <= 6 (transpose is the rank-2 case).
// One invocation per output element; out_dims are the output's dimensions and
// src_strides[k] is the input stride of the axis that becomes output axis k.
// The backward pass is the inverse permutation, run by the same kernel.

struct Params {
    n: u32,
    rank: u32,
    _pad0: u32,
    _pad1: u32,
    out_dims: array<vec4<u32>, 2>,
    src_strides: array<vec4<u32>, 2>,
}

@group(0) @binding(0) var<storage, read> src: array<f32>;
@group(0) @binding(1) var<storage, read_write> dst: array<f32>;
@group(0) @binding(2) var<uniform> p: Params;

fn dim(k: u32) -> u32 { return p.out_dims[k / 4u][k % 4u]; }
fn stride(k: u32) -> u32 { return p.src_strides[k / 4u][k % 4u]; }

@compute @workgroup_size(256)
fn permute(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let t = gid.x + gid.y * nwg.x * 256u;
    if (t >= p.n) { return; }
    var rem = t;
    var s = 0u;
    for (var k = i32(p.rank) - 1; k >= 0; k--) {
        let d = dim(u32(k));
        s += (rem % d) * stride(u32(k));
        rem = rem / d;
    }
    dst[t] = src[s];
}

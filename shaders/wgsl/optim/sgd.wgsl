// torch.optim.SGD (dampening 0), one parameter tensor per dispatch:
//   g = grad + weight_decay * w
//   momentum != 0:  buf = momentum * buf + g  (buf starts at 0, equal to torch's clone on step 1)
//                   g = nesterov ? g + momentum * buf : buf
//   w = w - lr * g

struct Params {
    n: u32,
    lr: f32,
    momentum: f32,
    weight_decay: f32,
    nesterov: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<storage, read_write> w: array<f32>;
@group(0) @binding(1) var<storage, read> grad: array<f32>;
@group(0) @binding(2) var<storage, read_write> buf: array<f32>;
@group(0) @binding(3) var<uniform> p: Params;

@compute @workgroup_size(256)
fn step(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * 256u;
    if (i >= p.n) { return; }
    var g = grad[i];
    if (p.weight_decay != 0.0) { g = g + p.weight_decay * w[i]; }
    if (p.momentum != 0.0) {
        let b = p.momentum * buf[i] + g;
        buf[i] = b;
        if (p.nesterov != 0u) { g = g + p.momentum * b; } else { g = b; }
    }
    w[i] = w[i] - p.lr * g;
}

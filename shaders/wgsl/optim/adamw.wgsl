// torch.optim.AdamW (amsgrad off), one parameter tensor per dispatch, in torch's order:
//   w = w * (1 - lr * weight_decay)
//   m = m + (1 - beta1) * (g - m)  (torch's lerp_);  v = beta2 * v + (1 - beta2) * g^2
//   w = w - step_size * m / (sqrt(v) / bias2_sqrt + eps)
// step_size = lr / (1 - beta1^t) and bias2_sqrt = sqrt(1 - beta2^t) come from the host,
// computed in double precision as torch does with its Python-float step.

struct Params {
    n: u32,
    lr: f32,
    beta1: f32,
    beta2: f32,
    eps: f32,
    weight_decay: f32,
    step_size: f32,
    bias2_sqrt: f32,
}

@group(0) @binding(0) var<storage, read_write> w: array<f32>;
@group(0) @binding(1) var<storage, read> grad: array<f32>;
@group(0) @binding(2) var<storage, read_write> m: array<f32>;
@group(0) @binding(3) var<storage, read_write> v: array<f32>;
@group(0) @binding(4) var<uniform> p: Params;

@compute @workgroup_size(256)
fn step(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * 256u;
    if (i >= p.n) { return; }
    let g = grad[i];
    let wd = w[i] * (1.0 - p.lr * p.weight_decay);
    let m1 = m[i] + (1.0 - p.beta1) * (g - m[i]);
    let v1 = v[i] * p.beta2 + (1.0 - p.beta2) * (g * g);
    m[i] = m1;
    v[i] = v1;
    w[i] = wd - p.step_size * m1 / (sqrt(v1) / p.bias2_sqrt + p.eps);
}

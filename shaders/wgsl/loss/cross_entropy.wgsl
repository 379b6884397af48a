// Softmax cross-entropy, as torch.nn.functional.cross_entropy with mean reduction:
//   loss_b = logsumexp(z_b) - z_b[label_b],   loss = mean_b loss_b
//   dz_b   = grad_loss * (softmax(z_b) - onehot(label_b)) / batch
// A label outside [0, classes) makes that row's loss NaN (visible, never a silent read).
// `rows_loss` writes per-row losses; `mean` sums them in row order into out[0].

struct Params {
    batch: u32,
    classes: u32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<storage, read> logits: array<f32>;
@group(0) @binding(1) var<storage, read> labels: array<u32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
@group(0) @binding(3) var<storage, read> grad_loss: array<f32>;
@group(0) @binding(4) var<storage, read> row_loss: array<f32>;
@group(0) @binding(5) var<uniform> p: Params;

fn row_lse(b: u32) -> f32 {
    let base = b * p.classes;
    var mx = logits[base];
    for (var c = 1u; c < p.classes; c++) { mx = max(mx, logits[base + c]); }
    var s = 0.0;
    for (var c = 0u; c < p.classes; c++) { s += exp(logits[base + c] - mx); }
    return mx + log(s);
}

@compute @workgroup_size(64)
fn rows_loss(@builtin(global_invocation_id) gid: vec3<u32>) {
    let b = gid.x;
    if (b >= p.batch) { return; }
    let label = labels[b];
    if (label >= p.classes) { out[b] = bitcast<f32>(0x7fc00000u); return; }
    out[b] = row_lse(b) - logits[b * p.classes + label];
}

@compute @workgroup_size(1)
fn mean(@builtin(global_invocation_id) gid: vec3<u32>) {
    var s = 0.0;
    for (var b = 0u; b < p.batch; b++) { s += row_loss[b]; }
    out[0] = s / f32(p.batch);
}

@compute @workgroup_size(256)
fn backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let t = gid.x + gid.y * nwg.x * 256u;
    if (t >= p.batch * p.classes) { return; }
    let b = t / p.classes;
    let c = t % p.classes;
    let label = labels[b];
    let prob = exp(logits[t] - row_lse(b));
    let onehot = select(0.0, 1.0, c == label);
    out[t] = grad_loss[0] * (prob - onehot) / f32(p.batch);
}

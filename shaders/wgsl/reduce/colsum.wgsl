// Column sums of a (rows, cols) matrix: bias gradients, broadcast-operand gradients,
// LayerNorm affine gradients, batch-broadcast weight gradients.
// Two passes with a fixed order, so results are bitwise reproducible without atomics:
//   partial: partials[chunk, col] = sum of rows [chunk*chunk_rows, ...) in row order
//   finish:  out[col] = sum over chunks in chunk order
// Chunking keeps every invocation's loop short even when rows are many.

struct Params {
    rows: u32,
    cols: u32,
    chunk_rows: u32,
    chunks: u32,
}

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> partials: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
@group(0) @binding(3) var<uniform> p: Params;

@compute @workgroup_size(256)
fn partial(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let t = gid.x + gid.y * nwg.x * 256u;
    if (t >= p.cols * p.chunks) { return; }
    let col = t % p.cols;
    let chunk = t / p.cols;
    let r0 = chunk * p.chunk_rows;
    let r1 = min(r0 + p.chunk_rows, p.rows);
    var s = 0.0;
    for (var r = r0; r < r1; r++) { s += x[r * p.cols + col]; }
    partials[chunk * p.cols + col] = s;
}

@compute @workgroup_size(256)
fn finish(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let col = gid.x + gid.y * nwg.x * 256u;
    if (col >= p.cols) { return; }
    var s = 0.0;
    for (var c = 0u; c < p.chunks; c++) { s += partials[c * p.cols + col]; }
    out[col] = s;
}

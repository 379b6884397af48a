//! Point-cloud ops (reference-spec §2): farthest point sampling, ball query, kNN,
//! three_nn, row gathers with their deterministic backward, and P4DConv's
//! displacement input. Selection ops are not differentiable; they also return `rows`,
//! the global row of every chosen point in its source tensor viewed as (rows, 3), so
//! gathers and their backward need no further index arithmetic.
//!
//! Multi-frame variants take xyz as (B, L, N, 3) and a `frame_of` table (U32) that maps
//! each output frame (and temporal offset) to its source frame, so one dispatch serves
//! every frame of a clip.

use edge4d_shaders::point::{BALL_QUERY, DISPLACEMENT, FPS, GATHER, INVERSE_INDEX, KNN, THREE_NN};

use super::{f32_input, u};
use crate::step::{fold_groups, read, write};
use crate::{DType, Error, Result, Step, Tensor};

fn shape_err(op: &'static str, detail: String) -> Error {
    Error::Shape { op, detail }
}

fn xyz_dims(op: &'static str, what: &str, t: &Tensor, rank: usize) -> Result<Vec<usize>> {
    f32_input(op, "xyz", t)?;
    let s = t.shape();
    if s.len() != rank || s[rank - 1] != 3 {
        return Err(shape_err(
            op,
            format!("{what} must have rank {rank} with 3 coordinates last, got {s:?}"),
        ));
    }
    Ok(s.to_vec())
}

fn u32_table(op: &'static str, what: &'static str, t: &Tensor, len: usize) -> Result<()> {
    if t.dtype() != DType::U32 {
        return Err(Error::DType {
            op,
            what,
            expected: DType::U32,
            got: t.dtype(),
        });
    }
    if t.numel() != len {
        return Err(shape_err(
            op,
            format!("{what} has {} entries, expected {len}", t.numel()),
        ));
    }
    Ok(())
}

fn groups(n: usize, width: usize) -> [u32; 3] {
    fold_groups(n.div_ceil(width))
}

/// Indices chosen by a selection op: `idx` within the source frame, `rows` global.
#[derive(Debug, Clone)]
pub struct Selection {
    pub idx: Tensor,
    pub rows: Tensor,
}

/// The CUDA block size FPS ties depend on (reference-spec §2.1).
pub fn fps_block_size(n: usize) -> usize {
    crate::reference::point::opt_n_threads(n)
}

/// Largest cloud `fps_cached` holds in registers (workgroup 64 × 32 points).
const FPS_CACHED_POINTS: usize = 64 * 32;

/// Farthest point sampling of `m` points from each output frame of a clip:
/// xyz (B, L, N, 3), `frame_of` (L_out) source frames; returns (B, L_out, m).
pub fn fps_frames(
    s: &mut Step<'_>,
    xyz: &Tensor,
    frame_of: &Tensor,
    m: usize,
) -> Result<Selection> {
    let d = xyz_dims("fps", "xyz", xyz, 4)?;
    let (b, l, n) = (d[0], d[1], d[2]);
    let l_out = frame_of.numel();
    u32_table("fps", "frame_of", frame_of, l_out)?;
    if m == 0 {
        return Err(Error::InvalidArgument {
            op: "fps",
            detail: "cannot sample 0 points".into(),
        });
    }
    let clouds = b * l_out;
    let idx = s.alloc(&[b, l_out, m], DType::U32);
    let rows = s.alloc(&[b, l_out, m], DType::U32);
    let temp = s.alloc(&[clouds, n], DType::F32);
    let log2_bs = fps_block_size(n).trailing_zeros() as usize;
    // Clouds that fit the register cache take the faster variant (same results).
    let entry = if n <= FPS_CACHED_POINTS {
        "fps_cached"
    } else {
        "fps"
    };
    s.dispatch(
        &FPS,
        entry,
        &[
            read(0, xyz),
            read(1, frame_of),
            write(2, &idx),
            write(3, &rows),
            write(4, &temp),
        ],
        5,
        &crate::params::point::Fps {
            clouds: u(clouds),
            n: u(n),
            m: u(m),
            log2_bs: u(log2_bs),
            frames_out: u(l_out),
            clip_frames: u(l),
            ..Default::default()
        },
        fold_groups(clouds),
    );
    Ok(Selection { idx, rows })
}

/// Farthest point sampling of `m` points from each cloud of xyz (B, N, 3) → (B, m).
pub fn fps(s: &mut Step<'_>, xyz: &Tensor, m: usize) -> Result<Selection> {
    let d = xyz_dims("fps", "xyz", xyz, 3)?;
    let frames = s.device().upload_u32(&[0], &[1])?;
    let sel = fps_frames(s, &xyz.reshape(&[d[0], 1, d[1], 3])?, &frames, m)?;
    Ok(Selection {
        idx: sel.idx.reshape(&[d[0], m])?,
        rows: sel.rows.reshape(&[d[0], m])?,
    })
}

/// Ball-query result: `idx`/`rows` (…, nsample) and `count` (…) genuine hits.
#[derive(Debug, Clone)]
pub struct Balls {
    pub idx: Tensor,
    pub rows: Tensor,
    pub count: Tensor,
}

/// Ball query for anchors (B, L_out, n, 3) against source frames of xyz (B, L, N, 3):
/// query (b, t', o, a) searches frame `frame_of[t' * offsets + o]`.
/// Returns idx (B, L_out, offsets, n, nsample).
pub fn ball_query_frames(
    s: &mut Step<'_>,
    xyz: &Tensor,
    anchors: &Tensor,
    frame_of: &Tensor,
    offsets: usize,
    radius: f32,
    nsample: usize,
) -> Result<Balls> {
    let d = xyz_dims("ball_query", "xyz", xyz, 4)?;
    let a = xyz_dims("ball_query", "anchors", anchors, 4)?;
    if a[0] != d[0] {
        return Err(shape_err(
            "ball_query",
            format!("xyz {d:?} and anchors {a:?} differ in batch"),
        ));
    }
    let (b, l, npts) = (d[0], d[1], d[2]);
    let (l_out, n) = (a[1], a[2]);
    u32_table("ball_query", "frame_of", frame_of, l_out * offsets)?;
    if nsample == 0 || !(radius.is_finite() && radius > 0.0) {
        return Err(Error::InvalidArgument {
            op: "ball_query",
            detail: format!("need nsample > 0 and a finite radius > 0, got {nsample} and {radius}"),
        });
    }
    let queries = b * l_out * offsets * n;
    let shape = [b, l_out, offsets, n, nsample];
    let idx = s.alloc(&shape, DType::U32);
    let rows = s.alloc(&shape, DType::U32);
    let count = s.alloc(&shape[..4], DType::U32);
    s.dispatch(
        &BALL_QUERY,
        "ball_query",
        &[
            read(0, xyz),
            read(1, anchors),
            read(2, frame_of),
            write(3, &idx),
            write(4, &rows),
            write(5, &count),
        ],
        6,
        &crate::params::point::BallQuery {
            queries: u(queries),
            n: u(n),
            points: u(npts),
            nsample: u(nsample),
            radius2: radius * radius,
            offsets: u(offsets),
            frames_out: u(l_out),
            clip_frames: u(l),
        },
        groups(queries, 64),
    );
    Ok(Balls { idx, rows, count })
}

/// Ball query of query points (B, M, 3) in clouds xyz (B, N, 3) → idx (B, M, nsample).
pub fn ball_query(
    s: &mut Step<'_>,
    xyz: &Tensor,
    query: &Tensor,
    radius: f32,
    nsample: usize,
) -> Result<Balls> {
    let d = xyz_dims("ball_query", "xyz", xyz, 3)?;
    let q = xyz_dims("ball_query", "query", query, 3)?;
    let frames = s.device().upload_u32(&[0], &[1])?;
    let balls = ball_query_frames(
        s,
        &xyz.reshape(&[d[0], 1, d[1], 3])?,
        &query.reshape(&[q[0], 1, q[1], 3])?,
        &frames,
        1,
        radius,
        nsample,
    )?;
    Ok(Balls {
        idx: balls.idx.reshape(&[q[0], q[1], nsample])?,
        rows: balls.rows.reshape(&[q[0], q[1], nsample])?,
        count: balls.count.reshape(&[q[0], q[1]])?,
    })
}

/// Largest k the kNN kernel keeps in registers.
pub const KNN_MAX_K: usize = 64;

/// k nearest neighbours (KNN_CUDA semantics): refs (B, N, 3), query (B, M, 3) →
/// (selection (B, M, k), sqrt distances (B, M, k)).
pub fn knn(
    s: &mut Step<'_>,
    refs: &Tensor,
    query: &Tensor,
    k: usize,
) -> Result<(Selection, Tensor)> {
    let r = xyz_dims("knn", "refs", refs, 3)?;
    let q = xyz_dims("knn", "query", query, 3)?;
    if r[0] != q[0] {
        return Err(shape_err(
            "knn",
            format!("refs {r:?} and query {q:?} differ in batch"),
        ));
    }
    if k == 0 || k > KNN_MAX_K || k > r[1] {
        return Err(Error::InvalidArgument {
            op: "knn",
            detail: format!(
                "k = {k} must be in 1..={} and at most the {} reference points",
                KNN_MAX_K, r[1]
            ),
        });
    }
    let queries = q[0] * q[1];
    let shape = [q[0], q[1], k];
    let idx = s.alloc(&shape, DType::U32);
    let rows = s.alloc(&shape, DType::U32);
    let dist = s.alloc(&shape, DType::F32);
    s.dispatch(
        &KNN,
        "knn",
        &[
            read(0, refs),
            read(1, query),
            write(2, &idx),
            write(3, &rows),
            write(4, &dist),
        ],
        5,
        &crate::params::point::Knn {
            queries: u(queries),
            m: u(q[1]),
            points: u(r[1]),
            k: u(k),
        },
        groups(queries, 64),
    );
    Ok((Selection { idx, rows }, dist))
}

/// three_nn result and P4DTransConv's interpolation weights, each (clouds, n, 3).
#[derive(Debug, Clone)]
pub struct ThreeNn {
    pub sel: Selection,
    pub dist: Tensor,
    pub weight: Tensor,
}

/// three_nn of unknown (B, n, 3) among known (B, m, 3).
pub fn three_nn(s: &mut Step<'_>, unknown: &Tensor, known: &Tensor) -> Result<ThreeNn> {
    let un = xyz_dims("three_nn", "unknown", unknown, 3)?;
    let kn = xyz_dims("three_nn", "known", known, 3)?;
    if un[0] != kn[0] {
        return Err(shape_err(
            "three_nn",
            format!("unknown {un:?} and known {kn:?} differ in batch"),
        ));
    }
    let queries = un[0] * un[1];
    let shape = [un[0], un[1], 3];
    let idx = s.alloc(&shape, DType::U32);
    let rows = s.alloc(&shape, DType::U32);
    let dist = s.alloc(&shape, DType::F32);
    let weight = s.alloc(&shape, DType::F32);
    s.dispatch(
        &THREE_NN,
        "three_nn",
        &[
            read(0, unknown),
            read(1, known),
            write(2, &idx),
            write(3, &rows),
            write(4, &dist),
            write(5, &weight),
        ],
        6,
        &crate::params::point::ThreeNn {
            queries: u(queries),
            n: u(un[1]),
            m: u(kn[1]),
            ..Default::default()
        },
        groups(queries, 64),
    );
    Ok(ThreeNn {
        sel: Selection { idx, rows },
        dist,
        weight,
    })
}

fn rows_of(op: &'static str, x: &Tensor) -> Result<(usize, usize)> {
    f32_input(op, "x", x)?;
    let c = *x.shape().last().unwrap_or(&0);
    Ok((x.numel() / c.max(1), c))
}

/// out[j, :] = Σ_{s<group} w[j·group+s] · x[rows[j·group+s], :] with x viewed as
/// (R, C) (C = last dim). Returns (E / group, C).
pub fn gather_rows(
    s: &mut Step<'_>,
    x: &Tensor,
    rows: &Tensor,
    group: usize,
    weights: Option<&Tensor>,
) -> Result<Tensor> {
    let (_, c) = rows_of("gather_rows", x)?;
    let e = rows.numel();
    u32_table("gather_rows", "rows", rows, e)?;
    if group == 0 || e % group != 0 {
        return Err(shape_err(
            "gather_rows",
            format!("{e} rows do not split into groups of {group}"),
        ));
    }
    if let Some(w) = weights {
        f32_input("gather_rows", "weights", w)?;
        if w.numel() != e {
            return Err(shape_err(
                "gather_rows",
                format!("weights {:?} for {e} rows", w.shape()),
            ));
        }
    }
    let out_rows = e / group;
    let out = s.alloc(&[out_rows, c], DType::F32);
    s.dispatch(
        &GATHER,
        "gather",
        &[
            read(0, x),
            read(1, rows),
            read(2, weights.unwrap_or(x)),
            write(5, &out),
        ],
        6,
        &crate::params::point::Gather {
            out_rows: u(out_rows),
            channels: u(c),
            group: u(group),
            weighted: u(weights.is_some() as usize),
            x_stride: u(c),
            ..Default::default()
        },
        groups(out_rows * c, 256),
    );
    Ok(out)
}

/// For each of `targets` rows, the entries that point to it in ascending order (CSR).
/// Built once per forward from an index tensor and reused by every backward through it.
#[derive(Debug, Clone)]
pub struct InverseIndex {
    pub offsets: Tensor,
    pub entries: Tensor,
    pub targets: usize,
}

/// Builds the inverse of `rows` (values < `targets`) without float atomics.
pub fn inverse_index(s: &mut Step<'_>, rows: &Tensor, targets: usize) -> Result<InverseIndex> {
    let e = rows.numel();
    u32_table("inverse_index", "rows", rows, e)?;
    if targets == 0 {
        return Err(Error::InvalidArgument {
            op: "inverse_index",
            detail: "no target rows".into(),
        });
    }
    let counts = s.alloc(&[targets], DType::U32);
    let offsets = s.alloc(&[targets + 1], DType::U32);
    let entries = s.alloc(&[e], DType::U32);
    let params = crate::params::point::InverseIndex {
        entries: u(e),
        targets: u(targets),
        ..Default::default()
    };
    let binds = [
        read(0, rows),
        write(1, &counts),
        write(2, &offsets),
        write(3, &entries),
    ];
    s.dispatch(
        &INVERSE_INDEX,
        "clear",
        &binds[1..2],
        4,
        &params,
        groups(targets, 256),
    );
    s.dispatch(
        &INVERSE_INDEX,
        "count",
        &binds[..2],
        4,
        &params,
        groups(e, 256),
    );
    s.dispatch(&INVERSE_INDEX, "scan", &binds[1..3], 4, &params, [1, 1, 1]);
    s.dispatch(
        &INVERSE_INDEX,
        "clear",
        &binds[1..2],
        4,
        &params,
        groups(targets, 256),
    );
    s.dispatch(&INVERSE_INDEX, "fill", &binds, 4, &params, groups(e, 256));
    s.dispatch(
        &INVERSE_INDEX,
        "sort",
        &[write(2, &offsets), write(3, &entries)],
        4,
        &params,
        groups(targets, 256),
    );
    Ok(InverseIndex {
        offsets,
        entries,
        targets,
    })
}

/// Backward of `gather_rows`: gx (targets, C), summing each row's gradients in
/// ascending entry order. `grad` rows may be wider than C (`grad_stride`), so e.g.
/// the xyz part of a (dx, dy, dz, dt) gradient scatters directly.
pub fn gather_rows_backward(
    s: &mut Step<'_>,
    grad: &Tensor,
    inverse: &InverseIndex,
    channels: usize,
    grad_stride: usize,
    group: usize,
    weights: Option<&Tensor>,
) -> Result<Tensor> {
    f32_input("gather_rows_backward", "grad", grad)?;
    let e = inverse.entries.numel();
    if channels == 0
        || channels > grad_stride
        || group == 0
        || grad.numel() * group != e * grad_stride
    {
        return Err(shape_err(
            "gather_rows_backward",
            format!(
                "grad {:?} does not hold {e}/{group} rows of stride {grad_stride} with {channels} channels",
                grad.shape()
            ),
        ));
    }
    let out = s.alloc(&[inverse.targets, channels], DType::F32);
    s.dispatch(
        &GATHER,
        "scatter",
        &[
            read(0, grad),
            read(2, weights.unwrap_or(grad)),
            read(3, &inverse.offsets),
            read(4, &inverse.entries),
            write(5, &out),
        ],
        6,
        &crate::params::point::Gather {
            out_rows: u(inverse.targets),
            channels: u(channels),
            group: u(group),
            weighted: u(weights.is_some() as usize),
            x_stride: u(grad_stride),
            ..Default::default()
        },
        groups(inverse.targets * channels, 256),
    );
    Ok(out)
}

/// P4DConv displacements: for neighbour rows (B, L_out, offsets, n, k) of xyz viewed as
/// (R, 3) and anchors (B, L_out, n, 3), returns (B, L_out, offsets, n, k, 4) holding
/// (dx, dy, dz, dt) with dt = o − offsets/2 + `dt_shift` (a caller issuing one temporal
/// offset at a time passes that offset's dt as the shift).
pub fn displacement(
    s: &mut Step<'_>,
    xyz: &Tensor,
    anchors: &Tensor,
    rows: &Tensor,
    dt_shift: f32,
) -> Result<Tensor> {
    f32_input("displacement", "xyz", xyz)?;
    let a = xyz_dims("displacement", "anchors", anchors, 4)?;
    let r = rows.shape().to_vec();
    if r.len() != 5 || r[0] != a[0] || r[1] != a[1] || r[3] != a[2] {
        return Err(shape_err(
            "displacement",
            format!("rows {r:?} do not match anchors {a:?}"),
        ));
    }
    u32_table("displacement", "rows", rows, rows.numel())?;
    let e = rows.numel();
    let mut shape = r.clone();
    shape.push(4);
    let out = s.alloc(&shape, DType::F32);
    s.dispatch(
        &DISPLACEMENT,
        "displacement",
        &[
            read(0, xyz),
            read(1, anchors),
            read(2, rows),
            write(4, &out),
        ],
        5,
        &crate::params::point::Displacement {
            entries: u(e),
            n: u(r[3]),
            k: u(r[4]),
            offsets: u(r[2]),
            dt_shift,
            ..Default::default()
        },
        groups(e, 256),
    );
    Ok(out)
}

/// The anchors' share of the displacement gradient: −Σ over offsets and neighbours,
/// returned as (B, L_out, n, 3).
pub fn displacement_anchor_grad(s: &mut Step<'_>, grad: &Tensor) -> Result<Tensor> {
    f32_input("displacement_anchor_grad", "grad", grad)?;
    let g = grad.shape().to_vec();
    if g.len() != 6 || g[5] != 4 {
        return Err(shape_err(
            "displacement_anchor_grad",
            format!("grad {g:?} should be (B, L_out, offsets, n, k, 4)"),
        ));
    }
    let e = grad.numel() / 4;
    let out = s.alloc(&[g[0], g[1], g[3], 3], DType::F32);
    s.dispatch(
        &DISPLACEMENT,
        "anchor_grad",
        &[read(3, grad), write(4, &out)],
        5,
        &crate::params::point::Displacement {
            entries: u(e),
            n: u(g[3]),
            k: u(g[4]),
            offsets: u(g[2]),
            dt_shift: 0.0,
            ..Default::default()
        },
        groups(g[0] * g[1] * g[3] * 3, 256),
    );
    Ok(out)
}

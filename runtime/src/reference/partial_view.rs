//! C2P's partial-view generation (`partial-view generation/generation_msr.py` `oper()`,
//! reference-spec §5.4) in f64, exactly as the official numpy code does it:
//! a virtual camera on a sphere around the frame's centre looks at the centre; points
//! are projected with focal `f` onto a `w × h` screen and a z-buffer keeps, per pixel,
//! the nearest point and any point within `threshold` of it.

/// A virtual camera: position and the rows of the world → camera rotation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Camera {
    pub position: [f64; 3],
    pub trans: [[f64; 3]; 3],
}

/// Screen and z-buffer settings (the official code's: f 150, 120 × 180, 0.001).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Screen {
    pub focal: f64,
    pub width: usize,
    pub height: usize,
    pub threshold: f64,
}

impl Default for Screen {
    fn default() -> Self {
        Self {
            focal: 150.0,
            width: 120,
            height: 180,
            threshold: 0.001,
        }
    }
}

fn sub(a: [f64; 3], b: [f64; 3]) -> [f64; 3] {
    [a[0] - b[0], a[1] - b[1], a[2] - b[2]]
}

fn norm(a: [f64; 3]) -> [f64; 3] {
    let n = (a[0] * a[0] + a[1] * a[1] + a[2] * a[2]).sqrt();
    [a[0] / n, a[1] / n, a[2] / n]
}

fn cross(a: [f64; 3], b: [f64; 3]) -> [f64; 3] {
    [
        a[1] * b[2] - a[2] * b[1],
        a[2] * b[0] - a[0] * b[2],
        a[0] * b[1] - a[1] * b[0],
    ]
}

/// Inverse of a 3×3 matrix by cofactors (np.linalg.inv of the axes as columns).
fn inverse(m: [[f64; 3]; 3]) -> [[f64; 3]; 3] {
    let c =
        |r0: usize, r1: usize, c0: usize, c1: usize| m[r0][c0] * m[r1][c1] - m[r0][c1] * m[r1][c0];
    let det = m[0][0] * c(1, 2, 1, 2) - m[0][1] * c(1, 2, 0, 2) + m[0][2] * c(1, 2, 0, 1);
    let adj = [
        [c(1, 2, 1, 2), -c(0, 2, 1, 2), c(0, 1, 1, 2)],
        [-c(1, 2, 0, 2), c(0, 2, 0, 2), -c(0, 1, 0, 2)],
        [c(1, 2, 0, 1), -c(0, 2, 0, 1), c(0, 1, 0, 1)],
    ];
    adj.map(|row| row.map(|v| v / det))
}

/// The camera at angles (θ, φ) in degrees around the frame's mean:
/// `dir = −normalize([cos θ, sin φ, sin θ])`, `camera = ‖centre‖·dir + centre`.
pub fn camera(points: &[[f64; 3]], theta_deg: f64, phi_deg: f64) -> Camera {
    zoomed_camera(points, theta_deg, phi_deg, 1.0)
}

/// [`camera`] at `zoom` times the distance (the paper's zoom in and out).
pub fn zoomed_camera(points: &[[f64; 3]], theta_deg: f64, phi_deg: f64, zoom: f64) -> Camera {
    let n = points.len() as f64;
    let mut centre = [0.0; 3];
    for p in points {
        for a in 0..3 {
            centre[a] += p[a];
        }
    }
    let centre = centre.map(|v| v / n);
    let (t, p) = (theta_deg.to_radians(), phi_deg.to_radians());
    let dir = norm([t.cos(), p.sin(), t.sin()]).map(|v| -v);
    let dist = (centre[0] * centre[0] + centre[1] * centre[1] + centre[2] * centre[2]).sqrt();
    let position = [0, 1, 2].map(|a| zoom * dist * dir[a] + centre[a]);
    let z = norm(sub(centre, position));
    let x = norm(cross([0.0, 1.0, 0.0], z));
    let y = cross(z, x);
    // Columns x, y, z; trans = its inverse.
    let axes = [[x[0], y[0], z[0]], [x[1], y[1], z[1]], [x[2], y[2], z[2]]];
    Camera {
        position,
        trans: inverse(axes),
    }
}

/// World → camera coordinates.
pub fn to_camera(cam: &Camera, p: [f64; 3]) -> [f64; 3] {
    let d = sub(p, cam.position);
    cam.trans
        .map(|row| row[0] * d[0] + row[1] * d[1] + row[2] * d[2])
}

/// Indices (in input order) of the points the camera sees.
pub fn visible(points: &[[f64; 3]], cam: &Camera, screen: &Screen) -> Vec<usize> {
    let (w, h) = (screen.width as i64, screen.height as i64);
    let mut zbuf = vec![-1.0f64; screen.width * screen.height];
    let mut pixel = Vec::with_capacity(points.len());
    for &p in points {
        let pc = to_camera(cam, p);
        let z = pc[2];
        let (sx, sy) = (pc[0] * screen.focal / z, pc[1] * screen.focal / z);
        // Only an upper bound is checked; int() truncates toward zero.
        let at = (sx < 1e6 && sy < 1e6)
            .then(|| ((sx + w as f64 / 2.0) as i64, (sy + h as f64 / 2.0) as i64))
            .filter(|(px, py)| (0..w).contains(px) && (0..h).contains(py))
            .map(|(px, py)| (px * h + py) as usize);
        if let Some(i) = at {
            if zbuf[i] > z || zbuf[i] < 0.0 {
                zbuf[i] = z;
            }
        }
        pixel.push((at, z));
    }
    pixel
        .iter()
        .enumerate()
        .filter_map(|(i, &(at, z))| at.filter(|&px| z - zbuf[px] < screen.threshold).map(|_| i))
        .collect()
}

/// The trajectory of a clip of `frames` frames (§5.4): θ evenly from 15° to 165°
/// (`reverse`: from 165° to 15°); φ by `vertical`: 0 = level, 1 = 0 → 5 → 0°,
/// −1 = 0 → −5 → 0° (odd frame counts repeat the last angle).
pub fn trajectory(frames: usize, reverse: bool, vertical: i32) -> Vec<(f64, f64)> {
    let arange = |start: f64, stop: f64, step: f64| -> Vec<f64> {
        let count = ((stop - start) / step).ceil().max(0.0) as usize;
        (0..count).map(|k| start + k as f64 * step).collect()
    };
    let mut hor = if frames > 1 {
        arange(15.0, 166.0, 150.0 / (frames - 1) as f64)
    } else {
        vec![90.0]
    };
    hor.resize(frames, *hor.last().unwrap_or(&90.0));
    if reverse {
        hor.reverse();
    }
    let half = (frames / 2).max(1) as f64;
    let mut ver = arange(0.0, 4.99999, 5.0 / half);
    ver.extend(arange(5.0, 0.00001, -5.0 / half));
    ver.resize(frames, 0.0);
    hor.into_iter()
        .zip(ver)
        .map(|(h, v)| (h, v * vertical as f64))
        .collect()
}

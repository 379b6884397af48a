//! Depth frames on disk: 16-bit grayscale PNG (one depth unit per `depth_scale`
//! metres, 0 = no return) with the camera intrinsics in a JSON file beside them, as
//! depth cameras and their SDKs write them.
//!
//! `intrinsics.json`: `{"width": W, "height": H, "fx": .., "fy": .., "cx": .., "cy": ..,
//! "depth_scale": 0.001}` (depth_scale: metres per unit; 0.001 for millimetres).

use std::path::Path;

use crate::file_error as err;
use edge4d_runtime::Result;
use serde_json::Value;

/// Pinhole intrinsics of a depth stream.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DepthIntrinsics {
    pub width: usize,
    pub height: usize,
    pub fx: f32,
    pub fy: f32,
    pub cx: f32,
    pub cy: f32,
    /// Metres per depth unit.
    pub depth_scale: f32,
}

impl DepthIntrinsics {
    pub fn load(path: &Path) -> Result<Self> {
        let text =
            std::fs::read_to_string(path).map_err(|e| err(path, format!("cannot read: {e}")))?;
        let v: Value =
            serde_json::from_str(&text).map_err(|e| err(path, format!("not JSON: {e}")))?;
        let num = |k: &str| -> Result<f64> {
            v[k].as_f64().filter(|x| x.is_finite()).ok_or_else(|| {
                err(
                    path,
                    format!(
                        "needs a number `{k}` (keys: width, height, fx, fy, cx, cy, depth_scale)"
                    ),
                )
            })
        };
        let me = Self {
            width: num("width")? as usize,
            height: num("height")? as usize,
            fx: num("fx")? as f32,
            fy: num("fy")? as f32,
            cx: num("cx")? as f32,
            cy: num("cy")? as f32,
            depth_scale: num("depth_scale")? as f32,
        };
        if me.width == 0 || me.height == 0 {
            return Err(err(
                path,
                format!("width and height must be positive: {me:?}"),
            ));
        }
        me.check().map_err(|e| err(path, e))?;
        Ok(me)
    }

    /// Checks the numbers against what a depth camera can have: focal lengths of 1 to
    /// 10⁶ pixels, a principal point within a frame's width or height of the image, and
    /// 10⁻⁶ to 10 metres per depth unit (millimetres are 0.001). Outside these, points
    /// come out meaningless (or beyond f32), so the frame is refused instead.
    pub fn check(&self) -> std::result::Result<(), String> {
        let (w, h) = (self.width as f32, self.height as f32);
        let within = |v: f32, lo: f32, hi: f32| v.is_finite() && v >= lo && v <= hi;
        if !within(self.fx, 1.0, 1e6) || !within(self.fy, 1.0, 1e6) {
            return Err(format!(
                "focal lengths fx = {}, fy = {} are outside 1 to 1e6 pixels",
                self.fx, self.fy
            ));
        }
        if !within(self.cx, -w, 2.0 * w) || !within(self.cy, -h, 2.0 * h) {
            return Err(format!(
                "principal point cx = {}, cy = {} is far outside the {}x{} image",
                self.cx, self.cy, self.width, self.height
            ));
        }
        if !within(self.depth_scale, 1e-6, 10.0) {
            return Err(format!(
                "depth_scale = {} metres per unit is outside 1e-6 to 10 (millimetres: 0.001)",
                self.depth_scale
            ));
        }
        Ok(())
    }

    pub fn save(&self, path: &Path) -> Result<()> {
        let v = serde_json::json!({"width": self.width, "height": self.height, "fx": self.fx, "fy": self.fy,
                                   "cx": self.cx, "cy": self.cy, "depth_scale": self.depth_scale});
        let text = serde_json::to_string_pretty(&v).map_err(|e| err(path, e.to_string()))?;
        edge4d_runtime::tensor_file::write_bytes_atomic(path, text.as_bytes())
    }

    /// Back-projects a depth image to points (x right, y down, z forward) in metres.
    pub fn back_project(&self, depth: &[u16]) -> Vec<[f32; 3]> {
        self.back_project_metres(|u, v| depth[v * self.width + u] as f32 * self.depth_scale)
    }

    /// Back-projects the depth `metres(u, v)` gives for each pixel; pixels whose depth
    /// is not a positive finite number are no return.
    pub fn back_project_metres(&self, metres: impl Fn(usize, usize) -> f32) -> Vec<[f32; 3]> {
        let mut pts = Vec::new();
        for v in 0..self.height {
            for u in 0..self.width {
                let z = metres(u, v);
                if z.is_finite() && z > 0.0 {
                    pts.push([
                        (u as f32 - self.cx) / self.fx * z,
                        (v as f32 - self.cy) / self.fy * z,
                        z,
                    ]);
                }
            }
        }
        pts
    }
}

/// Reads a 16-bit grayscale PNG depth image: (width, height, row-major depth).
pub fn read_depth_png(path: &Path) -> Result<(usize, usize, Vec<u16>)> {
    let file = std::fs::File::open(path).map_err(|e| err(path, format!("cannot open: {e}")))?;
    let dec = png::Decoder::new(std::io::BufReader::new(file));
    let mut reader = dec
        .read_info()
        .map_err(|e| err(path, format!("not a readable PNG: {e}")))?;
    let info = reader.info().clone();
    if info.color_type != png::ColorType::Grayscale || info.bit_depth != png::BitDepth::Sixteen {
        return Err(err(
            path,
            format!(
                "depth must be 16-bit grayscale, this PNG is {:?} {:?}",
                info.color_type, info.bit_depth
            ),
        ));
    }
    let mut buf = vec![0u8; reader.output_buffer_size().unwrap_or(0)];
    let frame = reader
        .next_frame(&mut buf)
        .map_err(|e| err(path, format!("corrupt PNG data: {e}")))?;
    let bytes = &buf[..frame.buffer_size()];
    let depth = bytes
        .chunks_exact(2)
        .map(|b| u16::from_be_bytes([b[0], b[1]]))
        .collect();
    Ok((info.width as usize, info.height as usize, depth))
}

/// Writes a 16-bit grayscale PNG depth image (atomically).
pub fn write_depth_png(path: &Path, width: usize, height: usize, depth: &[u16]) -> Result<()> {
    if depth.len() != width * height {
        return Err(err(
            path,
            format!("{} depth values for {width}x{height}", depth.len()),
        ));
    }
    let mut bytes = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut bytes, width as u32, height as u32);
        enc.set_color(png::ColorType::Grayscale);
        enc.set_depth(png::BitDepth::Sixteen);
        let data: Vec<u8> = depth.iter().flat_map(|d| d.to_be_bytes()).collect();
        enc.write_header()
            .and_then(|mut w| w.write_image_data(&data))
            .map_err(|e| err(path, e.to_string()))?;
    }
    edge4d_runtime::tensor_file::write_bytes_atomic(path, &bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depth_png_and_intrinsics_round_trip_and_back_project() {
        let dir = std::env::temp_dir().join(format!("edge4d-depth-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let depth: Vec<u16> = (0..12)
            .map(|i| if i == 5 { 0 } else { 1000 + i * 700 })
            .collect();
        let png = dir.join("000.png");
        write_depth_png(&png, 4, 3, &depth).unwrap();
        assert_eq!(read_depth_png(&png).unwrap(), (4, 3, depth.clone()));
        let intr = DepthIntrinsics {
            width: 4,
            height: 3,
            fx: 2.0,
            fy: 2.0,
            cx: 2.0,
            cy: 1.0,
            depth_scale: 0.001,
        };
        intr.save(&dir.join("intrinsics.json")).unwrap();
        assert_eq!(
            DepthIntrinsics::load(&dir.join("intrinsics.json")).unwrap(),
            intr
        );
        let pts = intr.back_project(&depth);
        assert_eq!(pts.len(), 11, "the zero pixel is no return");
        // Pixel (u 0, v 0): depth 1.0 m → x = (0 − 2)/2·1 = −1, y = (0 − 1)/2 = −0.5.
        assert_eq!(pts[0], [-1.0, -0.5, 1.0]);
        // An 8-bit PNG is refused with the reason.
        let bad = dir.join("rgb.png");
        let mut bytes = Vec::new();
        {
            let mut enc = png::Encoder::new(&mut bytes, 1, 1);
            enc.set_color(png::ColorType::Rgb);
            enc.write_header()
                .unwrap()
                .write_image_data(&[1, 2, 3])
                .unwrap();
        }
        std::fs::write(&bad, bytes).unwrap();
        let e = read_depth_png(&bad).unwrap_err().to_string();
        assert!(
            e.contains("16-bit grayscale") && e.contains("rgb.png"),
            "{e}"
        );
        std::fs::write(&bad, b"not a png").unwrap();
        assert!(read_depth_png(&bad)
            .unwrap_err()
            .to_string()
            .contains("not a readable PNG"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

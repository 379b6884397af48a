//! The ROS 2 messages a recording's depth comes in — `sensor_msgs/msg/Image`,
//! `CameraInfo` and `PointCloud2` — as serde types decoded from CDR by `cdr-encoding`,
//! and their conversion to points in metres in the camera frame.

use serde::Deserialize;

use crate::depth_io::DepthIntrinsics;

pub const IMAGE: &str = "sensor_msgs/msg/Image";
pub const CAMERA_INFO: &str = "sensor_msgs/msg/CameraInfo";
pub const POINT_CLOUD2: &str = "sensor_msgs/msg/PointCloud2";

#[derive(Debug, Clone, Deserialize)]
pub struct Time {
    pub sec: i32,
    pub nanosec: u32,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Header {
    pub stamp: Time,
    pub frame_id: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Image {
    pub header: Header,
    pub height: u32,
    pub width: u32,
    pub encoding: String,
    pub is_bigendian: u8,
    pub step: u32,
    #[serde(with = "serde_bytes")]
    pub data: Vec<u8>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct RegionOfInterest {
    pub x_offset: u32,
    pub y_offset: u32,
    pub height: u32,
    pub width: u32,
    pub do_rectify: bool,
}

#[derive(Debug, Clone, Deserialize)]
pub struct CameraInfo {
    pub header: Header,
    pub height: u32,
    pub width: u32,
    pub distortion_model: String,
    pub d: Vec<f64>,
    pub k: [f64; 9],
    pub r: [f64; 9],
    pub p: [f64; 12],
    pub binning_x: u32,
    pub binning_y: u32,
    pub roi: RegionOfInterest,
}

#[derive(Debug, Clone, Deserialize)]
pub struct PointField {
    pub name: String,
    pub offset: u32,
    pub datatype: u8,
    pub count: u32,
}

#[derive(Debug, Clone, Deserialize)]
pub struct PointCloud2 {
    pub header: Header,
    pub height: u32,
    pub width: u32,
    pub fields: Vec<PointField>,
    pub is_bigendian: bool,
    pub point_step: u32,
    pub row_step: u32,
    #[serde(with = "serde_bytes")]
    pub data: Vec<u8>,
    pub is_dense: bool,
}

/// `PointField.datatype` of a 32-bit float.
const FLOAT32: u8 = 7;

/// Decodes one CDR message: a 4-byte encapsulation header (plain CDR, big- or
/// little-endian) and the message; anything else is refused with what it is.
pub fn decode<'de, T: Deserialize<'de>>(bytes: &'de [u8]) -> Result<T, String> {
    use cdr_encoding::from_bytes;
    if bytes.len() < 4 {
        return Err(format!(
            "{} bytes, shorter than the 4-byte CDR encapsulation header",
            bytes.len()
        ));
    }
    let (kind, body) = bytes.split_at(4);
    let decoded = match (kind[0], kind[1]) {
        (0, 0) => from_bytes::<T, byteorder::BigEndian>(body),
        (0, 1) => from_bytes::<T, byteorder::LittleEndian>(body),
        (a, b) => {
            return Err(format!(
                "CDR encapsulation {a:#04x}{b:02x} is not plain CDR (0x0000 big-endian or 0x0001 little-endian)"
            ))
        }
    };
    decoded
        .map(|(msg, _)| msg)
        .map_err(|e| format!("not a valid CDR message of this type: {e}"))
}

fn read_f32(b: &[u8], big: bool) -> f32 {
    let a = [b[0], b[1], b[2], b[3]];
    if big {
        f32::from_be_bytes(a)
    } else {
        f32::from_le_bytes(a)
    }
}

fn read_u16(b: &[u8], big: bool) -> u16 {
    let a = [b[0], b[1]];
    if big {
        u16::from_be_bytes(a)
    } else {
        u16::from_le_bytes(a)
    }
}

/// Pinhole intrinsics from a CameraInfo's K (fx, fy, cx, cy), for `width` × `height`
/// images, checked as any depth camera's are.
pub fn intrinsics(info: &CameraInfo) -> Result<DepthIntrinsics, String> {
    let k = &info.k;
    let me = DepthIntrinsics {
        width: info.width as usize,
        height: info.height as usize,
        fx: k[0] as f32,
        fy: k[4] as f32,
        cx: k[2] as f32,
        cy: k[5] as f32,
        depth_scale: 0.001,
    };
    if me.width == 0 || me.height == 0 {
        return Err(format!(
            "CameraInfo has a {}x{} image size",
            me.width, me.height
        ));
    }
    me.check().map_err(|e| format!("CameraInfo K: {e}"))?;
    Ok(me)
}

/// Back-projects a depth image (`16UC1` millimetres or `32FC1` metres; 0 and NaN are
/// no return) with `intr`: points in metres in the camera frame (x right, y down, z
/// forward).
pub fn depth_points(img: &Image, intr: &DepthIntrinsics) -> Result<Vec<[f32; 3]>, String> {
    let bytes_per_pixel = match img.encoding.as_str() {
        "16UC1" | "mono16" => 2,
        "32FC1" => 4,
        other => {
            return Err(format!(
                "image encoding {other:?} is not a depth encoding edge4d reads (16UC1 millimetres, 32FC1 metres)"
            ))
        }
    };
    let (w, h, step) = (img.width as usize, img.height as usize, img.step as usize);
    if w == 0 || h == 0 {
        return Err(format!("image is {w}x{h}"));
    }
    if step < w * bytes_per_pixel {
        return Err(format!(
            "row step {step} is shorter than width {w} × {bytes_per_pixel} bytes"
        ));
    }
    let need = step.checked_mul(h).ok_or("row step × height overflows")?;
    if img.data.len() != need {
        return Err(format!(
            "{w}x{h} {} image with row step {step} needs {need} bytes, its data has {}",
            img.encoding,
            img.data.len()
        ));
    }
    if (w, h) != (intr.width, intr.height) {
        return Err(format!(
            "image is {w}x{h}, its CameraInfo says {}x{}",
            intr.width, intr.height
        ));
    }
    let big = img.is_bigendian != 0;
    Ok(intr.back_project_metres(|u, v| {
        let px = &img.data[v * step + u * bytes_per_pixel..];
        if bytes_per_pixel == 2 {
            read_u16(px, big) as f32 * 0.001
        } else {
            read_f32(px, big)
        }
    }))
}

/// The float32 `x`, `y`, `z` of a PointCloud2, at whatever offsets and point step, in
/// either byte order; points with a non-finite coordinate are dropped.
pub fn cloud_points(pc: &PointCloud2) -> Result<Vec<[f32; 3]>, String> {
    let field = |name: &str| -> Result<usize, String> {
        let f = pc.fields.iter().find(|f| f.name == name).ok_or_else(|| {
            let names: Vec<&str> = pc.fields.iter().map(|f| f.name.as_str()).collect();
            format!("PointCloud2 has no field {name:?} (fields: {names:?})")
        })?;
        if f.datatype != FLOAT32 {
            return Err(format!(
                "PointCloud2 field {name:?} has datatype {}, edge4d reads float32 (7)",
                f.datatype
            ));
        }
        let offset = f.offset as usize;
        if offset + 4 > pc.point_step as usize {
            return Err(format!(
                "PointCloud2 field {name:?} at offset {offset} lies beyond the point step {}",
                pc.point_step
            ));
        }
        Ok(offset)
    };
    let (ox, oy, oz) = (field("x")?, field("y")?, field("z")?);
    let (w, h) = (pc.width as usize, pc.height as usize);
    let (step, row_step) = (pc.point_step as usize, pc.row_step as usize);
    if row_step < w * step {
        return Err(format!(
            "PointCloud2 row step {row_step} is shorter than width {w} × point step {step}"
        ));
    }
    let need = row_step
        .checked_mul(h)
        .ok_or("row step × height overflows")?;
    if pc.data.len() != need {
        return Err(format!(
            "PointCloud2 of {w}x{h} points with row step {row_step} needs {need} bytes, its data has {}",
            pc.data.len()
        ));
    }
    let big = pc.is_bigendian;
    let mut pts = Vec::with_capacity(w * h);
    for r in 0..h {
        for c in 0..w {
            let p = &pc.data[r * row_step + c * step..];
            let xyz = [
                read_f32(&p[ox..], big),
                read_f32(&p[oy..], big),
                read_f32(&p[oz..], big),
            ];
            if xyz.iter().all(|v| v.is_finite()) {
                pts.push(xyz);
            }
        }
    }
    Ok(pts)
}

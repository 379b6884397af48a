//! Point clouds on disk: PLY (via ply-rs-bw) and PCD (via pcd-rs), xyz only. Reading
//! accepts any numeric type for x, y, z; writing uses binary little-endian float32.

use std::path::Path;

use crate::file_error as err;
use edge4d_runtime::Result;
use pcd_rs::{DataKind, DynReader, DynRecord, DynWriter, Field, Schema, ValueKind, WriterInit};
use ply_rs_bw::parser::Parser;
use ply_rs_bw::ply::{
    Addable, DefaultElement, ElementDef, Encoding, Ply, Property, PropertyDef, PropertyType,
    ScalarType,
};
use ply_rs_bw::writer::Writer;

/// Reads the `vertex` element's x, y, z of a PLY file (ascii or binary).
pub fn read_ply(path: &Path) -> Result<Vec<[f32; 3]>> {
    let file = std::fs::File::open(path).map_err(|e| err(path, format!("cannot open: {e}")))?;
    let ply = Parser::<DefaultElement>::new()
        .read_ply(&mut std::io::BufReader::new(file))
        .map_err(|e| err(path, format!("not a readable PLY file: {e}")))?;
    let vertices = ply
        .payload
        .get("vertex")
        .ok_or_else(|| err(path, "has no `vertex` element".into()))?;
    vertices
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let c = |k: &str| {
                v.get(k)
                    .and_then(Property::to_f32_lossy)
                    .ok_or_else(|| err(path, format!("vertex {i} has no numeric `{k}`")))
            };
            Ok([c("x")?, c("y")?, c("z")?])
        })
        .collect()
}

/// Writes points as a binary little-endian PLY `vertex` element (atomically).
pub fn write_ply(path: &Path, points: &[[f32; 3]]) -> Result<()> {
    let mut ply = Ply::<DefaultElement>::new();
    ply.header.encoding = Encoding::BinaryLittleEndian;
    let mut def = ElementDef::new("vertex".to_string());
    for k in ["x", "y", "z"] {
        def.properties.add(PropertyDef::new(
            k.to_string(),
            PropertyType::Scalar(ScalarType::Float),
        ));
    }
    ply.header.elements.add(def);
    let rows = points
        .iter()
        .map(|p| {
            let mut e = DefaultElement::new();
            for (k, v) in ["x", "y", "z"].iter().zip(p) {
                e.insert(k.to_string(), Property::Float(*v));
            }
            e
        })
        .collect();
    ply.payload.insert("vertex".to_string(), rows);
    ply.make_consistent()
        .map_err(|e| err(path, format!("{e:?}")))?;
    let mut bytes = Vec::new();
    Writer::new()
        .write_ply(&mut bytes, &mut ply)
        .map_err(|e| err(path, format!("cannot encode: {e}")))?;
    edge4d_runtime::tensor_file::write_bytes_atomic(path, &bytes)
}

/// Reads x, y, z of a PCD v0.7 file (ascii, binary or compressed).
pub fn read_pcd(path: &Path) -> Result<Vec<[f32; 3]>> {
    let reader =
        DynReader::open(path).map_err(|e| err(path, format!("not a readable PCD file: {e}")))?;
    reader
        .enumerate()
        .map(|(i, r)| {
            let r = r.map_err(|e| err(path, format!("point {i}: {e}")))?;
            r.to_xyz::<f32>()
                .ok_or_else(|| err(path, format!("point {i} has no x, y, z fields")))
        })
        .collect()
}

/// Writes points as a binary PCD v0.7 file with float32 x, y, z.
pub fn write_pcd(path: &Path, points: &[[f32; 3]]) -> Result<()> {
    let tmp = path.with_extension("pcd.tmp");
    let schema = Schema::from_iter([
        ("x", ValueKind::F32, 1),
        ("y", ValueKind::F32, 1),
        ("z", ValueKind::F32, 1),
    ]);
    let mut writer: DynWriter<_> = WriterInit {
        width: points.len() as u64,
        height: 1,
        viewpoint: Default::default(),
        data_kind: DataKind::Binary,
        schema: Some(schema),
        version: None,
    }
    .create(&tmp)
    .map_err(|e| err(path, format!("cannot create: {e}")))?;
    for p in points {
        writer
            .push(&DynRecord(vec![
                Field::F32(vec![p[0]]),
                Field::F32(vec![p[1]]),
                Field::F32(vec![p[2]]),
            ]))
            .map_err(|e| err(path, format!("cannot write: {e}")))?;
    }
    writer
        .finish()
        .map_err(|e| err(path, format!("cannot finish: {e}")))?;
    std::fs::rename(&tmp, path).map_err(|e| err(path, format!("cannot move into place: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ply_and_pcd_round_trip_and_bad_files_are_named() {
        let dir = std::env::temp_dir().join(format!("edge4d-cloud-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let pts = vec![[0.5f32, -1.25, 3.0], [1e-3, 2.0, -7.5], [0.0, 0.0, 1.0]];
        let ply = dir.join("c.ply");
        write_ply(&ply, &pts).unwrap();
        assert_eq!(read_ply(&ply).unwrap(), pts);
        let pcd = dir.join("c.pcd");
        write_pcd(&pcd, &pts).unwrap();
        assert_eq!(read_pcd(&pcd).unwrap(), pts);
        // An ascii PLY with double coordinates, as other tools write it.
        let ascii = dir.join("a.ply");
        std::fs::write(&ascii, "ply\nformat ascii 1.0\nelement vertex 2\nproperty double x\nproperty double y\nproperty double z\nend_header\n1 2 3\n4 5 6\n").unwrap();
        assert_eq!(
            read_ply(&ascii).unwrap(),
            vec![[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]
        );
        std::fs::write(&ascii, "not a ply").unwrap();
        let e = read_ply(&ascii).unwrap_err().to_string();
        assert!(e.contains("a.ply") && e.contains("PLY"), "{e}");
        std::fs::write(&pcd, "garbage").unwrap();
        assert!(read_pcd(&pcd).unwrap_err().to_string().contains("c.pcd"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

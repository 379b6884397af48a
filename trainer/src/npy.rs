//! NumPy `.npy` arrays and `.npz` archives (a zip of `.npy` members), as the reference
//! repositories' preprocessing writes them: numeric arrays of any byte order, and object
//! arrays of arrays (pickled; see [`crate::pickle`]). Fortran-ordered arrays are refused.
//!
//! Writing covers the plain numeric case (little-endian, C order), for exports and tests.

use std::io::{Read, Write};
use std::path::Path;

use edge4d_runtime::{Error, Result};

use crate::pickle::{self, Py};

/// An array's values: numbers widened to f64 / i64, or the elements of an object array.
#[derive(Debug, Clone, PartialEq)]
pub enum Values {
    Float(Vec<f64>),
    Int(Vec<i64>),
    Object(Vec<Array>),
}

/// A NumPy array in host memory, C order.
#[derive(Debug, Clone, PartialEq)]
pub struct Array {
    pub shape: Vec<usize>,
    pub values: Values,
}

impl Array {
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The values as f32 (integers converted); None for object arrays.
    pub fn to_f32(&self) -> Option<Vec<f32>> {
        match &self.values {
            Values::Float(v) => Some(v.iter().map(|&x| x as f32).collect()),
            Values::Int(v) => Some(v.iter().map(|&x| x as f32).collect()),
            Values::Object(_) => None,
        }
    }

    /// The values as i64 (floats only when integral); None otherwise.
    pub fn to_i64(&self) -> Option<Vec<i64>> {
        match &self.values {
            Values::Int(v) => Some(v.clone()),
            Values::Float(v) => v
                .iter()
                .map(|&x| (x.fract() == 0.0 && x.abs() < 9.0e15).then_some(x as i64))
                .collect(),
            Values::Object(_) => None,
        }
    }
}

fn err(what: &str, detail: String) -> Error {
    Error::TensorFile {
        path: what.to_string(),
        detail,
    }
}

/// Decodes `count` elements of dtype `kind`+`size` in byte order `order` ('<', '>', '|').
fn decode(
    data: &[u8],
    kind: char,
    size: usize,
    big: bool,
    count: usize,
) -> std::result::Result<Values, String> {
    let need = count.checked_mul(size).ok_or("the shape overflows")?;
    if data.len() < need {
        return Err(format!(
            "holds {} data bytes, the header promises {need}",
            data.len()
        ));
    }
    let word = |i: usize| -> [u8; 8] {
        let mut b = [0u8; 8];
        let s = &data[i * size..(i + 1) * size];
        if big {
            for (k, &x) in s.iter().rev().enumerate() {
                b[k] = x;
            }
        } else {
            b[..size].copy_from_slice(s);
        }
        b
    };
    Ok(match (kind, size) {
        ('f', 4) => Values::Float(
            (0..count)
                .map(|i| f32::from_le_bytes(word(i)[..4].try_into().expect("4")) as f64)
                .collect(),
        ),
        ('f', 8) => Values::Float((0..count).map(|i| f64::from_le_bytes(word(i))).collect()),
        ('i', 1 | 2 | 4 | 8) => Values::Int(
            (0..count)
                .map(|i| {
                    let shift = 64 - 8 * size as u32;
                    (i64::from_le_bytes(word(i)) << shift) >> shift
                })
                .collect(),
        ),
        ('u' | 'b', 1 | 2 | 4 | 8) => Values::Int(
            (0..count)
                .map(|i| {
                    let v = u64::from_le_bytes(word(i));
                    i64::try_from(v).map_err(|_| format!("holds {v}, beyond int64"))
                })
                .collect::<std::result::Result<_, _>>()?,
        ),
        _ => {
            return Err(format!(
                "has dtype {kind}{size}, which is not a number type edge4d reads"
            ))
        }
    })
}

/// The header's `'key': value` text for `key`.
fn header_field<'a>(header: &'a str, key: &str) -> Option<&'a str> {
    let at = header.find(&format!("'{key}'"))? + key.len() + 2;
    let rest = header[at..].trim_start().strip_prefix(':')?.trim_start();
    let end = if rest.starts_with('(') {
        rest.find(')')? + 1
    } else {
        rest.find([',', '}'])?
    };
    Some(rest[..end].trim())
}

/// Parses one `.npy` file's bytes; `what` names it in errors.
pub fn parse(bytes: &[u8], what: &str) -> Result<Array> {
    let bad = |d: String| err(what, d);
    if bytes.len() < 10 || &bytes[..6] != b"\x93NUMPY" {
        return Err(bad("is not a .npy array (no \\x93NUMPY magic)".into()));
    }
    let (len_bytes, start) = match bytes[6] {
        1 => (2, 10),
        2 | 3 => (4, 12),
        v => return Err(bad(format!("has .npy format version {v}, expected 1–3"))),
    };
    let hlen = if len_bytes == 2 {
        u16::from_le_bytes([bytes[8], bytes[9]]) as usize
    } else {
        bytes
            .get(8..12)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
            .ok_or_else(|| bad("is truncated inside its header".into()))?
    };
    let header = bytes
        .get(start..start + hlen)
        .and_then(|h| std::str::from_utf8(h).ok())
        .ok_or_else(|| bad("is truncated inside its header".into()))?;
    let descr = header_field(header, "descr")
        .map(|d| d.trim_matches(|c| c == '\'' || c == '"'))
        .ok_or_else(|| bad(format!("has no dtype in its header {header:?}")))?;
    if header_field(header, "fortran_order") == Some("True") {
        return Err(bad("is stored in Fortran order; save it in C order".into()));
    }
    let shape_text = header_field(header, "shape")
        .ok_or_else(|| bad(format!("has no shape in its header {header:?}")))?;
    let shape = shape_text
        .trim_matches(|c| c == '(' || c == ')')
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.trim_end_matches('L').parse::<usize>())
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|_| bad(format!("has an unreadable shape {shape_text}")))?;
    let data = &bytes[start + hlen..];
    let count = shape
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .ok_or_else(|| bad(format!("has a shape {shape:?} too large to address")))?;
    let mut chars = descr.chars();
    let order = chars.next().unwrap_or('|');
    let kind = chars.next().unwrap_or('?');
    if kind == 'O' {
        let tree = pickle::parse(data).map_err(|e| bad(format!("holds a pickle that {e}")))?;
        let array =
            from_pickle(&tree).map_err(|e| bad(format!("holds an object array that {e}")))?;
        if array.shape != shape {
            return Err(bad(format!(
                "header shape {shape:?} but the pickled array is {:?}",
                array.shape
            )));
        }
        return Ok(array);
    }
    let size: usize = chars
        .as_str()
        .parse()
        .map_err(|_| bad(format!("has an unreadable dtype {descr:?}")))?;
    let values = decode(data, kind, size, order == '>', count).map_err(bad)?;
    Ok(Array { shape, values })
}

/// Rebuilds an array from the tree `ndarray.__reduce__` pickles: `_reconstruct(ndarray,
/// …)` whose state is (version, shape, dtype, fortran, data).
fn from_pickle(v: &Py) -> std::result::Result<Array, String> {
    let Py::Call { func, state, .. } = v else {
        return Err(format!("is not an array but {v:?}"));
    };
    if !func
        .global()
        .is_some_and(|g| g.ends_with("multiarray._reconstruct"))
    {
        return Err(format!("is built by {func:?}, not numpy's _reconstruct"));
    }
    let Some(Py::Tuple(st)) = state.as_deref() else {
        return Err("has no array state".into());
    };
    let [_, Py::Tuple(shape), dtype, Py::Bool(fortran), data] = st.as_slice() else {
        return Err(format!("has an unexpected array state {st:?}"));
    };
    if *fortran {
        return Err("holds a Fortran-ordered element".into());
    }
    let shape = shape
        .iter()
        .map(|d| match d {
            Py::Int(n) if *n >= 0 => Ok(*n as usize),
            other => Err(format!("has a shape entry {other:?}")),
        })
        .collect::<std::result::Result<Vec<_>, _>>()?;
    let Py::Call { args, state, .. } = dtype else {
        return Err(format!("has no dtype: {dtype:?}"));
    };
    let Py::Tuple(dargs) = args.as_ref() else {
        return Err("has an unreadable dtype".into());
    };
    let Some(Py::Str(code)) = dargs.first() else {
        return Err("has an unreadable dtype".into());
    };
    let big =
        matches!(state.as_deref(), Some(Py::Tuple(s)) if s.get(1) == Some(&Py::Str(">".into())));
    let count = shape.iter().product::<usize>();
    let kind = code.chars().next().unwrap_or('?');
    if kind == 'O' {
        let Py::List(items) = data else {
            return Err("is an object array without a list of elements".into());
        };
        if items.len() != count {
            return Err(format!("has {} elements for shape {shape:?}", items.len()));
        }
        let elements = items
            .iter()
            .map(from_pickle)
            .collect::<std::result::Result<Vec<_>, _>>()?;
        return Ok(Array {
            shape,
            values: Values::Object(elements),
        });
    }
    let bytes: Vec<u8> = match data {
        Py::Bytes(b) => b.clone(),
        // Protocol 2 from Python 3 stores bytes as _codecs.encode(text, 'latin1').
        Py::Call { func, args, .. } if func.global() == Some("_codecs.encode") => {
            match args.as_ref() {
                Py::Tuple(a) => match a.first() {
                    Some(Py::Str(s)) => s.chars().map(|c| c as u32 as u8).collect(),
                    _ => return Err("has unreadable latin1 data".into()),
                },
                _ => return Err("has unreadable latin1 data".into()),
            }
        }
        other => return Err(format!("has no raw data but {other:?}")),
    };
    let size: usize = code[1..]
        .parse()
        .map_err(|_| format!("has an unreadable dtype {code:?}"))?;
    Ok(Array {
        values: decode(&bytes, kind, size, big, count)?,
        shape,
    })
}

/// Reads a `.npy` file.
pub fn read(path: &Path) -> Result<Array> {
    let what = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|e| err(&what, format!("cannot be read: {e}")))?;
    parse(&bytes, &what)
}

/// An open `.npz` archive.
pub struct Npz {
    path: String,
    zip: zip::ZipArchive<std::fs::File>,
}

impl Npz {
    pub fn open(path: &Path) -> Result<Self> {
        let name = path.display().to_string();
        let file =
            std::fs::File::open(path).map_err(|e| err(&name, format!("cannot be opened: {e}")))?;
        let zip = zip::ZipArchive::new(file)
            .map_err(|e| err(&name, format!("is not a .npz (zip) archive: {e}")))?;
        Ok(Self { path: name, zip })
    }

    /// The arrays' names (members without `.npy`).
    pub fn names(&self) -> Vec<String> {
        self.zip
            .file_names()
            .filter_map(|n| n.ok().map(|n| n.trim_end_matches(".npy").to_string()))
            .collect()
    }

    /// The array `name`.
    pub fn array(&mut self, name: &str) -> Result<Array> {
        let what = format!("{}[{name}]", self.path);
        let names = self.names().join(", ");
        let mut member = self.zip.by_name(&format!("{name}.npy")).map_err(|_| {
            err(
                &self.path,
                format!("has no array `{name}` (it holds: {names})"),
            )
        })?;
        // The member's stated size is not trusted for the allocation.
        let mut bytes = Vec::new();
        member
            .read_to_end(&mut bytes)
            .map_err(|e| err(&what, format!("cannot be decompressed: {e}")))?;
        parse(&bytes, &what)
    }
}

/// `.npy` bytes of a little-endian numeric array (`descr` e.g. "<f4", "<i8", "|u1").
pub fn to_npy_bytes(descr: &str, shape: &[usize], data: &[u8]) -> Vec<u8> {
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    let shape_text = match dims.len() {
        1 => format!("({},)", dims[0]),
        _ => format!("({})", dims.join(", ")),
    };
    let mut header =
        format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape_text}, }}");
    // Pad so the data starts on a 64-byte boundary, ending the header with '\n'.
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend((header.len() as u16).to_le_bytes());
    out.extend(header.as_bytes());
    out.extend_from_slice(data);
    out
}

/// Writes `.npz` members (name, `.npy` bytes) to `path`, deflated as `np.savez_compressed`.
pub fn write_npz(path: &Path, members: &[(&str, Vec<u8>)]) -> Result<()> {
    let name = path.display().to_string();
    let io = |e: String| err(&name, e);
    let file = std::fs::File::create(path).map_err(|e| io(format!("cannot be created: {e}")))?;
    let mut zip = zip::ZipWriter::new(file);
    let opts = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for (member, bytes) in members {
        zip.start_file(format!("{member}.npy"), opts)
            .map_err(|e| io(format!("cannot add {member}: {e}")))?;
        zip.write_all(bytes)
            .map_err(|e| io(format!("cannot write {member}: {e}")))?;
    }
    zip.finish()
        .map_err(|e| io(format!("cannot be finished: {e}")))?;
    Ok(())
}

/// Little-endian bytes of f32 values.
pub fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// Little-endian bytes of i64 values.
pub fn i64_bytes(v: &[i64]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numeric_arrays_round_trip_and_big_endian_reads() {
        let b = to_npy_bytes("<f4", &[2, 2], &f32_bytes(&[1.0, -2.0, 3.5, 0.25]));
        assert_eq!(b.len() % 64, 16, "data starts on a 64-byte boundary");
        let a = parse(&b, "x").unwrap();
        assert_eq!(a.shape, vec![2, 2]);
        assert_eq!(a.to_f32().unwrap(), vec![1.0, -2.0, 3.5, 0.25]);
        let be = to_npy_bytes(">i2", &[2], &[0xff, 0xfe, 0x00, 0x07]);
        assert_eq!(parse(&be, "x").unwrap().to_i64().unwrap(), vec![-2, 7]);
        let short = &b[..b.len() - 1];
        assert!(parse(short, "x.npy")
            .unwrap_err()
            .to_string()
            .contains("x.npy"));
        assert!(parse(b"nope", "x").is_err());
    }
}

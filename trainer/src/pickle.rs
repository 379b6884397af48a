//! Just enough of Python's pickle to read NumPy object arrays (`np.save` of an array of
//! arrays, as MSR-Action3D's preprocessed `point_clouds` are stored): a stack machine
//! over the binary opcodes of protocols 2–5 that builds a tree of plain values, with
//! callables kept as names. Nothing is executed; an opcode outside that set is an error.
//!
//! Memoised values are copies: NumPy's pickles never mutate an object after memoising
//! it and then fetch it again, so copies read them exactly.

/// A decoded pickle value.
#[derive(Debug, Clone, PartialEq)]
pub enum Py {
    None,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Bytes(Vec<u8>),
    Tuple(Vec<Py>),
    List(Vec<Py>),
    Dict(Vec<(Py, Py)>),
    /// A global reference, `module.name`.
    Global(String),
    /// `func(*args)`, with the state BUILD gave it.
    Call {
        func: Box<Py>,
        args: Box<Py>,
        state: Option<Box<Py>>,
    },
}

impl Py {
    /// The global's dotted name if this is one.
    pub fn global(&self) -> Option<&str> {
        match self {
            Py::Global(g) => Some(g),
            _ => None,
        }
    }
}

enum Item {
    Mark,
    Value(Py),
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self.at.checked_add(n).filter(|&e| e <= self.bytes.len());
        let end = end.ok_or_else(|| format!("ends inside an opcode at byte {}", self.at))?;
        let s = &self.bytes[self.at..end];
        self.at = end;
        Ok(s)
    }

    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<usize, String> {
        let b = self.take(2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]) as usize)
    }

    fn u32(&mut self) -> Result<usize, String> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
    }

    fn u64(&mut self) -> Result<usize, String> {
        let b = self.take(8)?;
        usize::try_from(u64::from_le_bytes(b.try_into().expect("8 bytes")))
            .map_err(|_| "a length does not fit in memory".to_string())
    }

    fn line(&mut self) -> Result<&'a str, String> {
        let rest = &self.bytes[self.at..];
        let n = rest
            .iter()
            .position(|&b| b == b'\n')
            .ok_or("a text argument has no newline")?;
        let s = std::str::from_utf8(&rest[..n]).map_err(|_| "a text argument is not UTF-8")?;
        self.at += n + 1;
        Ok(s)
    }
}

fn utf8(b: &[u8]) -> Result<String, String> {
    String::from_utf8(b.to_vec()).map_err(|_| "a string is not UTF-8".to_string())
}

/// Decodes one pickle.
pub fn parse(bytes: &[u8]) -> Result<Py, String> {
    let mut r = Reader { bytes, at: 0 };
    let mut stack: Vec<Item> = Vec::new();
    let mut memo: std::collections::HashMap<usize, Py> = Default::default();
    fn pop(stack: &mut Vec<Item>) -> Result<Py, String> {
        match stack.pop() {
            Some(Item::Value(v)) => Ok(v),
            Some(Item::Mark) => Err("a mark where a value was expected".into()),
            None => Err("the stack is empty".into()),
        }
    }
    fn pop_mark(stack: &mut Vec<Item>) -> Result<Vec<Py>, String> {
        let mut items = Vec::new();
        loop {
            match stack.pop() {
                Some(Item::Value(v)) => items.push(v),
                Some(Item::Mark) => break,
                None => return Err("no mark on the stack".into()),
            }
        }
        items.reverse();
        Ok(items)
    }
    fn top(stack: &mut [Item]) -> Result<&mut Py, String> {
        match stack.last_mut() {
            Some(Item::Value(v)) => Ok(v),
            _ => Err("no value on the stack".into()),
        }
    }
    fn pairs(items: Vec<Py>) -> Result<Vec<(Py, Py)>, String> {
        if items.len() % 2 != 0 {
            return Err("an odd number of dict items".into());
        }
        let mut it = items.into_iter();
        let mut out = Vec::new();
        while let (Some(k), Some(v)) = (it.next(), it.next()) {
            out.push((k, v));
        }
        Ok(out)
    }
    loop {
        let at = r.at;
        let op = r.u8()?;
        let value = match op {
            0x80 => {
                r.u8()?; // PROTO
                continue;
            }
            0x95 => {
                r.u64()?; // FRAME: a length hint only
                continue;
            }
            b'.' => return pop(&mut stack),
            b'(' => {
                stack.push(Item::Mark);
                continue;
            }
            b'N' => Py::None,
            0x88 => Py::Bool(true),
            0x89 => Py::Bool(false),
            b'K' => Py::Int(r.u8()? as i64),
            b'M' => Py::Int(r.u16()? as i64),
            b'J' => Py::Int(r.u32()? as u32 as i32 as i64),
            0x8a => {
                let n = r.u8()? as usize;
                let b = r.take(n)?;
                if n > 8 {
                    return Err(format!("an integer of {n} bytes at byte {at}"));
                }
                let mut v: i64 = 0;
                for (i, &byte) in b.iter().enumerate() {
                    v |= (byte as i64) << (8 * i);
                }
                if n > 0 && n < 8 && b[n - 1] & 0x80 != 0 {
                    v -= 1i64 << (8 * n);
                }
                Py::Int(v)
            }
            b'G' => Py::Float(f64::from_be_bytes(r.take(8)?.try_into().expect("8 bytes"))),
            0x8c => {
                let n = r.u8()? as usize;
                Py::Str(utf8(r.take(n)?)?)
            }
            b'X' => {
                let n = r.u32()?;
                Py::Str(utf8(r.take(n)?)?)
            }
            0x8d => {
                let n = r.u64()?;
                Py::Str(utf8(r.take(n)?)?)
            }
            // Python 2 `str` (bytes): SHORT_BINSTRING, BINSTRING.
            b'U' => {
                let n = r.u8()? as usize;
                Py::Bytes(r.take(n)?.to_vec())
            }
            b'T' => {
                let n = r.u32()?;
                Py::Bytes(r.take(n)?.to_vec())
            }
            b'C' => {
                let n = r.u8()? as usize;
                Py::Bytes(r.take(n)?.to_vec())
            }
            b'B' => {
                let n = r.u32()?;
                Py::Bytes(r.take(n)?.to_vec())
            }
            0x8e | 0x96 => {
                let n = r.u64()?;
                Py::Bytes(r.take(n)?.to_vec())
            }
            b')' => Py::Tuple(vec![]),
            b't' => Py::Tuple(pop_mark(&mut stack)?),
            0x85..=0x87 => {
                let n = (op - 0x84) as usize;
                let mut items = (0..n)
                    .map(|_| pop(&mut stack))
                    .collect::<Result<Vec<_>, _>>()?;
                items.reverse();
                Py::Tuple(items)
            }
            b']' => Py::List(vec![]),
            b'l' => Py::List(pop_mark(&mut stack)?),
            b'a' => {
                let v = pop(&mut stack)?;
                match top(&mut stack)? {
                    Py::List(l) => l.push(v),
                    _ => return Err(format!("APPEND to a non-list at byte {at}")),
                }
                continue;
            }
            b'e' => {
                let items = pop_mark(&mut stack)?;
                match top(&mut stack)? {
                    Py::List(l) => l.extend(items),
                    _ => return Err(format!("APPENDS to a non-list at byte {at}")),
                }
                continue;
            }
            b'}' => Py::Dict(vec![]),
            b'd' => Py::Dict(pairs(pop_mark(&mut stack)?)?),
            b's' | b'u' => {
                let items = if op == b's' {
                    let v = pop(&mut stack)?;
                    let k = pop(&mut stack)?;
                    vec![(k, v)]
                } else {
                    pairs(pop_mark(&mut stack)?)?
                };
                match top(&mut stack)? {
                    Py::Dict(d) => d.extend(items),
                    _ => return Err(format!("SETITEM on a non-dict at byte {at}")),
                }
                continue;
            }
            b'c' => {
                let module = r.line()?.to_string();
                let name = r.line()?;
                Py::Global(format!("{module}.{name}"))
            }
            0x93 => {
                let name = pop(&mut stack)?;
                let module = pop(&mut stack)?;
                match (module, name) {
                    (Py::Str(m), Py::Str(n)) => Py::Global(format!("{m}.{n}")),
                    _ => return Err(format!("STACK_GLOBAL without two names at byte {at}")),
                }
            }
            b'R' | 0x81 => {
                let args = pop(&mut stack)?;
                let func = pop(&mut stack)?;
                Py::Call {
                    func: Box::new(func),
                    args: Box::new(args),
                    state: None,
                }
            }
            b'b' => {
                let state = pop(&mut stack)?;
                match top(&mut stack)? {
                    Py::Call { state: s, .. } => *s = Some(Box::new(state)),
                    _ => {
                        return Err(format!(
                            "BUILD on a value that was not constructed at byte {at}"
                        ))
                    }
                }
                continue;
            }
            0x94 => {
                let v = match stack.last() {
                    Some(Item::Value(v)) => v.clone(),
                    _ => return Err("MEMOIZE with no value".into()),
                };
                memo.insert(memo.len(), v);
                continue;
            }
            b'q' | b'r' => {
                let i = if op == b'q' {
                    r.u8()? as usize
                } else {
                    r.u32()?
                };
                let v = match stack.last() {
                    Some(Item::Value(v)) => v.clone(),
                    _ => return Err("PUT with no value".into()),
                };
                memo.insert(i, v);
                continue;
            }
            b'h' | b'j' => {
                let i = if op == b'h' {
                    r.u8()? as usize
                } else {
                    r.u32()?
                };
                memo.get(&i)
                    .cloned()
                    .ok_or_else(|| format!("memo entry {i} is missing"))?
            }
            other => {
                return Err(format!(
                    "opcode 0x{other:02x} at byte {at} is outside what NumPy arrays use"
                ))
            }
        };
        stack.push(Item::Value(value));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_containers_calls_and_memo() {
        // pickle.dumps((1, -2, 'ab', [True, None], {'k': 2.5}), protocol=4), by hand:
        let mut p = vec![0x80, 4, b'(', b'K', 1, b'J'];
        p.extend((-2i32).to_le_bytes());
        p.extend([0x8c, 2, b'a', b'b', 0x94, b']', b'(', 0x88, b'N', b'e']);
        p.extend([b'}', 0x8c, 1, b'k', b'G']);
        p.extend(2.5f64.to_be_bytes());
        p.extend([b's', b'h', 0, b't', b'.']);
        let v = parse(&p).unwrap();
        assert_eq!(
            v,
            Py::Tuple(vec![
                Py::Int(1),
                Py::Int(-2),
                Py::Str("ab".into()),
                Py::List(vec![Py::Bool(true), Py::None]),
                Py::Dict(vec![(Py::Str("k".into()), Py::Float(2.5))]),
                Py::Str("ab".into()),
            ])
        );
        // A truncated pickle and an unknown opcode are errors, not panics.
        assert!(parse(&p[..p.len() - 3]).is_err());
        assert!(parse(&[0x80, 4, 0xff]).unwrap_err().contains("0xff"));
        // LONG1 is signed little-endian.
        assert_eq!(parse(&[0x8a, 2, 0x00, 0xff, b'.']).unwrap(), Py::Int(-256));
    }
}

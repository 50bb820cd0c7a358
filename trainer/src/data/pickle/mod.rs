//! A minimal, safe reader for the Python pickles that hold CIFAR-10 python batches.
//!
//! It is a small stack machine for the opcodes that Python 2 `cPickle` (protocol 2) and
//! Python 3 (protocols 2 to 5) emit for a dict of a numpy `uint8` array, lists, ints and
//! strings. Globals are never imported or executed: only the handful of names needed to
//! rebuild a numpy array are recognised, and they are interpreted by this code as data
//! constructors. Any other global (e.g. `os.system`) is an error.

mod value;

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

pub(crate) use value::Value;
use value::{Global, append, build, reduce, set_items};

/// Byte cursor over the pickle; every read is bounds-checked.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.buf.len())
            .ok_or_else(|| format!("pickle is truncated at byte {}", self.pos))?;
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], String> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }

    fn u32_len(&mut self) -> Result<usize, String> {
        Ok(u32::from_le_bytes(self.array()?) as usize)
    }

    fn u64_len(&mut self) -> Result<usize, String> {
        usize::try_from(u64::from_le_bytes(self.array()?))
            .map_err(|_| "pickle length field does not fit in memory".to_string())
    }

    /// A `\n`-terminated line (GLOBAL operands).
    fn line(&mut self) -> Result<&'a str, String> {
        let rest = self.buf.get(self.pos..).unwrap_or_default();
        let len = rest
            .iter()
            .position(|&b| b == b'\n')
            .ok_or_else(|| "pickle is truncated inside a GLOBAL name".to_string())?;
        let line = self.take(len + 1)?;
        std::str::from_utf8(&line[..len]).map_err(|_| "GLOBAL name is not UTF-8".to_string())
    }

    fn utf8(&mut self, len: usize) -> Result<Value, String> {
        let raw = self.take(len)?;
        let s = std::str::from_utf8(raw).map_err(|_| "pickle string is not valid UTF-8")?;
        Ok(Value::Str(Rc::from(s)))
    }

    fn bytes(&mut self, len: usize) -> Result<Value, String> {
        Ok(Value::Bytes(Rc::new(self.take(len)?.to_vec())))
    }
}

/// The unpickler state.
struct Machine {
    stack: Vec<Value>,
    marks: Vec<usize>,
    memo: HashMap<u32, Value>,
}

impl Machine {
    fn pop(&mut self) -> Result<Value, String> {
        match self.marks.last() {
            Some(&m) if self.stack.len() <= m => Err("pickle pops past a MARK".to_string()),
            _ => self
                .stack
                .pop()
                .ok_or_else(|| "pickle stack underflow".to_string()),
        }
    }

    fn top(&mut self) -> Result<&mut Value, String> {
        match self.marks.last() {
            Some(&m) if self.stack.len() <= m => Err("pickle reads past a MARK".to_string()),
            _ => self
                .stack
                .last_mut()
                .ok_or_else(|| "pickle stack underflow".to_string()),
        }
    }

    /// Pops everything above the last MARK (and the mark).
    fn pop_mark(&mut self) -> Result<Vec<Value>, String> {
        let m = self
            .marks
            .pop()
            .ok_or_else(|| "pickle uses a MARK that was never set".to_string())?;
        if m > self.stack.len() {
            return Err("pickle MARK points past the stack".to_string());
        }
        Ok(self.stack.split_off(m))
    }

    fn pop_n(&mut self, n: usize) -> Result<Vec<Value>, String> {
        let floor = self.marks.last().copied().unwrap_or(0);
        if self.stack.len() < floor + n {
            return Err("pickle stack underflow".to_string());
        }
        Ok(self.stack.split_off(self.stack.len() - n))
    }

    fn memo_get(&self, idx: u32) -> Result<Value, String> {
        self.memo
            .get(&idx)
            .cloned()
            .ok_or_else(|| format!("pickle reads memo slot {idx} that was never written"))
    }

    fn memo_put(&mut self, idx: u32) -> Result<(), String> {
        let v = self.top()?.clone();
        self.memo.insert(idx, v);
        Ok(())
    }
}

/// Unpickles `buf`, returning the top-level value. Errors are human-readable reasons.
pub(crate) fn parse(buf: &[u8]) -> Result<Value, String> {
    let mut r = Reader { buf, pos: 0 };
    let mut m = Machine {
        stack: Vec::new(),
        marks: Vec::new(),
        memo: HashMap::new(),
    };
    loop {
        let at = r.pos;
        let op = r.u8().map_err(|_| "pickle ends without STOP".to_string())?;
        match op {
            0x80 => {
                let proto = r.u8()?;
                if proto > 5 {
                    return Err(format!("unsupported pickle protocol {proto}"));
                }
            }
            // FRAME: a framing hint only; the data follows inline.
            0x95 => {
                r.take(8)?;
            }
            b'.' => {
                let v = m.pop()?;
                return if m.stack.is_empty() {
                    Ok(v)
                } else {
                    Err("pickle leaves extra values on the stack".to_string())
                };
            }
            b'(' => m.marks.push(m.stack.len()),
            b'}' => m.stack.push(Value::Dict(Rc::default())),
            b'd' => {
                let items = m.pop_mark()?;
                let d = Value::Dict(Rc::default());
                set_items(&d, items)?;
                m.stack.push(d);
            }
            b']' => m.stack.push(Value::List(Rc::default())),
            b'l' => {
                let items = m.pop_mark()?;
                m.stack.push(Value::List(Rc::new(RefCell::new(items))));
            }
            b'a' => {
                let v = m.pop()?;
                append(m.top()?, vec![v])?;
            }
            b'e' => {
                let items = m.pop_mark()?;
                append(m.top()?, items)?;
            }
            b')' => m.stack.push(Value::Tuple(Rc::from(Vec::new()))),
            b't' => {
                let items = m.pop_mark()?;
                m.stack.push(Value::Tuple(Rc::from(items)));
            }
            0x85..=0x87 => {
                let items = m.pop_n(usize::from(op - 0x84))?;
                m.stack.push(Value::Tuple(Rc::from(items)));
            }
            b's' => {
                let v = m.pop()?;
                let k = m.pop()?;
                set_items(m.top()?, vec![k, v])?;
            }
            b'u' => {
                let items = m.pop_mark()?;
                set_items(m.top()?, items)?;
            }
            b'q' => {
                let i = r.u8()?;
                m.memo_put(u32::from(i))?;
            }
            b'r' => {
                let i = u32::from_le_bytes(r.array()?);
                m.memo_put(i)?;
            }
            0x94 => {
                let i = u32::try_from(m.memo.len()).map_err(|_| "memo too large")?;
                m.memo_put(i)?;
            }
            b'h' => {
                let i = r.u8()?;
                let v = m.memo_get(u32::from(i))?;
                m.stack.push(v);
            }
            b'j' => {
                let i = u32::from_le_bytes(r.array()?);
                let v = m.memo_get(i)?;
                m.stack.push(v);
            }
            b'J' => m
                .stack
                .push(Value::Int(i64::from(i32::from_le_bytes(r.array()?)))),
            b'K' => m.stack.push(Value::Int(i64::from(r.u8()?))),
            b'M' => m
                .stack
                .push(Value::Int(i64::from(u16::from_le_bytes(r.array()?)))),
            0x8a => {
                let n = usize::from(r.u8()?);
                let raw = r.take(n)?;
                if n > 8 {
                    return Err(format!("LONG1 integer of {n} bytes is too large"));
                }
                // Little-endian two's complement, sign-extended from the top byte.
                let fill = if raw.last().is_some_and(|&b| b & 0x80 != 0) {
                    0xff
                } else {
                    0
                };
                let mut le = [fill; 8];
                le[..n].copy_from_slice(raw);
                m.stack.push(Value::Int(i64::from_le_bytes(le)));
            }
            b'T' => {
                let len = i32::from_le_bytes(r.array()?);
                let len = usize::try_from(len).map_err(|_| "negative BINSTRING length")?;
                let v = r.bytes(len)?;
                m.stack.push(v);
            }
            b'U' | b'C' => {
                let len = usize::from(r.u8()?);
                let v = r.bytes(len)?;
                m.stack.push(v);
            }
            b'B' => {
                let len = r.u32_len()?;
                let v = r.bytes(len)?;
                m.stack.push(v);
            }
            // BINBYTES8 and BYTEARRAY8 (protocol 5 in-band buffers); a bytearray is read as
            // bytes since nothing here mutates it.
            0x8e | 0x96 => {
                let len = r.u64_len()?;
                let v = r.bytes(len)?;
                m.stack.push(v);
            }
            b'X' => {
                let len = r.u32_len()?;
                let v = r.utf8(len)?;
                m.stack.push(v);
            }
            0x8c => {
                let len = usize::from(r.u8()?);
                let v = r.utf8(len)?;
                m.stack.push(v);
            }
            0x8d => {
                let len = r.u64_len()?;
                let v = r.utf8(len)?;
                m.stack.push(v);
            }
            b'N' => m.stack.push(Value::None),
            0x88 => m.stack.push(Value::Bool(true)),
            0x89 => m.stack.push(Value::Bool(false)),
            b'c' => {
                let module = r.line()?;
                let name = r.line()?;
                m.stack.push(Value::Global(Global::lookup(module, name)?));
            }
            0x93 => {
                let name = m.pop()?;
                let module = m.pop()?;
                let (Value::Str(module), Value::Str(name)) = (&module, &name) else {
                    return Err("STACK_GLOBAL operands are not strings".to_string());
                };
                m.stack.push(Value::Global(Global::lookup(module, name)?));
            }
            b'R' => {
                let args = m.pop()?;
                let callable = m.pop()?;
                let v = reduce(&callable, &args)?;
                m.stack.push(v);
            }
            b'b' => {
                let state = m.pop()?;
                build(m.top()?, state)?;
            }
            other => {
                return Err(format!(
                    "unsupported pickle opcode 0x{other:02x} at byte {at} (not a CIFAR-10 \
                     python batch?)"
                ));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A hand-written Python 2 `cPickle` protocol-2 stream in the layout of the real CIFAR-10
    /// python batches: `{'data': uint8 array [2, 3], 'labels': [7, 300]}`.
    fn py2_batch() -> Vec<u8> {
        let mut p = b"\x80\x02}q\x01(U\x04dataq\x02cnumpy.core.multiarray\n_reconstruct\nq\x03".to_vec();
        p.extend_from_slice(b"cnumpy\nndarray\nq\x04K\x00\x85U\x01b\x87Rq\x05(K\x01K\x02K\x03\x86");
        p.extend_from_slice(b"cnumpy\ndtype\nq\x06U\x02u1K\x00K\x01\x87Rq\x07(K\x03U\x01|NNNJ");
        p.extend_from_slice(b"\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb\x89T\x06\x00\x00\x00");
        p.extend_from_slice(&[9, 8, 7, 6, 5, 4]);
        p.extend_from_slice(b"tbU\x06labelsq\x08]q\t(K\x07M,\x01eu.");
        p
    }

    #[test]
    fn reads_py2_layout() {
        let v = parse(&py2_batch()).unwrap();
        let a = v.dict_get("data").unwrap().as_array().unwrap();
        assert_eq!(a.shape, vec![2, 3]);
        assert_eq!(a.dtype, "u1");
        assert!(!a.fortran);
        assert_eq!(*a.data, vec![9, 8, 7, 6, 5, 4]);
        assert_eq!(v.dict_get("labels").unwrap().as_int_list().unwrap(), vec![7, 300]);
    }

    #[test]
    fn every_truncation_is_an_error() {
        let p = py2_batch();
        for n in 0..p.len() {
            assert!(parse(&p[..n]).is_err(), "prefix of {n} bytes parsed");
        }
    }

    #[test]
    fn long1_sign_extends() {
        let v = parse(b"\x80\x02\x8a\x02\x00\xff.").unwrap();
        assert!(matches!(v, Value::Int(-256)));
        let v = parse(b"\x8a\x00.").unwrap();
        assert!(matches!(v, Value::Int(0)));
    }

    #[test]
    fn rejects_other_globals() {
        let e = parse(b"\x80\x02cos\nsystem\nq\x00X\x02\x00\x00\x00idq\x01\x85R.").unwrap_err();
        assert!(e.contains("os.system"), "{e}");
        let e = parse(b"\x80\x04\x8c\x08builtins\x8c\x04eval\x93.").unwrap_err();
        assert!(e.contains("builtins.eval"), "{e}");
    }

    #[test]
    fn rejects_stack_abuse() {
        assert!(parse(b".").is_err());
        assert!(parse(b"(.").is_err());
        assert!(parse(b"Nh\x05.").is_err());
        assert!(parse(b"(Ns.").is_err());
        assert!(parse(b"N\x87.").is_err());
        assert!(parse(b"NN.").is_err());
    }
}

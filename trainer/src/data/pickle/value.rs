//! The values a CIFAR-10 pickle holds (dicts, lists, ints, strings, numpy arrays) and the
//! few numpy constructors the stream may call, interpreted here as data, never imported.

use std::cell::RefCell;
use std::rc::Rc;

/// The only callables a pickle may name. Each is interpreted here, never executed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Global {
    /// `numpy.core.multiarray._reconstruct(ndarray, shape, dtype)`: an empty array that a
    /// later BUILD fills in.
    Reconstruct,
    /// `numpy.ndarray`: only as the first argument of `_reconstruct`.
    Ndarray,
    /// `numpy.dtype(descr, align, copy)`.
    Dtype,
    /// `_codecs.encode(text, "latin1")`: how Python 3 writes `bytes` at protocol 2.
    CodecsEncode,
    /// `numpy.core.numeric._frombuffer(buf, dtype, shape, order)`: protocol 5 arrays.
    FromBuffer,
    /// `bytes()`: how Python 3 writes empty `bytes` at protocol 2.
    BytesType,
}

impl Global {
    pub(super) fn lookup(module: &str, name: &str) -> Result<Self, String> {
        match (module, name) {
            ("numpy.core.multiarray" | "numpy._core.multiarray", "_reconstruct") => Ok(Self::Reconstruct),
            ("numpy", "ndarray") => Ok(Self::Ndarray),
            ("numpy", "dtype") => Ok(Self::Dtype),
            ("_codecs", "encode") => Ok(Self::CodecsEncode),
            ("numpy.core.numeric" | "numpy._core.numeric", "_frombuffer") => Ok(Self::FromBuffer),
            ("__builtin__" | "builtins", "bytes") => Ok(Self::BytesType),
            _ => Err(format!(
                "pickle refers to the global `{module}.{name}`; only numpy array globals are \
                 allowed, so it was not loaded (pickles can run arbitrary code)"
            )),
        }
    }
}

/// A numpy array rebuilt from a pickle (raw bytes plus metadata).
#[derive(Debug, Clone, Default)]
pub(crate) struct NdArray {
    /// Dimensions.
    pub shape: Vec<usize>,
    /// The dtype descriptor as numpy names it, e.g. `u1`.
    pub dtype: String,
    /// True if the data is in Fortran (column-major) order.
    pub fortran: bool,
    /// Raw element bytes.
    pub data: Rc<Vec<u8>>,
}

/// A value on the pickle stack. Containers are shared (`Rc`) so that the memo and the stack
/// see the same object, as in Python (a dict is memoised before its items are set).
#[derive(Debug, Clone)]
pub(crate) enum Value {
    None,
    Bool(bool),
    Int(i64),
    Bytes(Rc<Vec<u8>>),
    Str(Rc<str>),
    List(Rc<RefCell<Vec<Value>>>),
    Tuple(Rc<[Value]>),
    Dict(Rc<RefCell<Vec<(Value, Value)>>>),
    Global(Global),
    Dtype(Rc<str>),
    /// An array: `None` data until BUILD sets its state.
    Array(Rc<RefCell<Option<NdArray>>>),
}

impl Value {
    pub(super) fn kind(&self) -> &'static str {
        match self {
            Self::None => "None",
            Self::Bool(_) => "bool",
            Self::Int(_) => "int",
            Self::Bytes(_) => "bytes",
            Self::Str(_) => "str",
            Self::List(_) => "list",
            Self::Tuple(_) => "tuple",
            Self::Dict(_) => "dict",
            Self::Global(_) => "global",
            Self::Dtype(_) => "dtype",
            Self::Array(_) => "ndarray",
        }
    }

    /// Text of a `str` or (Python 2) byte string.
    pub(super) fn text(&self) -> Option<String> {
        match self {
            Self::Str(s) => Some(s.to_string()),
            Self::Bytes(b) => std::str::from_utf8(b).ok().map(str::to_string),
            _ => None,
        }
    }

    /// Looks up `key` in a dict whose keys are `str` or `bytes` (Python 2 files use byte
    /// strings; Python 3 `encoding="bytes"` round trips do too). Later duplicates win.
    pub(crate) fn dict_get(&self, key: &str) -> Option<Value> {
        let Self::Dict(items) = self else {
            return None;
        };
        items
            .borrow()
            .iter()
            .rev()
            .find(|(k, _)| k.text().as_deref() == Some(key))
            .map(|(_, v)| v.clone())
    }

    /// The keys of a dict, for error messages.
    pub(crate) fn dict_keys(&self) -> Vec<String> {
        match self {
            Self::Dict(items) => items
                .borrow()
                .iter()
                .map(|(k, _)| k.text().unwrap_or_else(|| format!("<{}>", k.kind())))
                .collect(),
            _ => Vec::new(),
        }
    }

    /// The array this value holds (after BUILD).
    pub(crate) fn as_array(&self) -> Result<NdArray, String> {
        match self {
            Self::Array(a) => a
                .borrow()
                .clone()
                .ok_or_else(|| "numpy array has no state (BUILD missing)".to_string()),
            other => Err(format!("expected a numpy array, found {}", other.kind())),
        }
    }

    /// The integers of a list or tuple of ints.
    pub(crate) fn as_int_list(&self) -> Result<Vec<i64>, String> {
        let ints = |items: &[Value]| {
            items
                .iter()
                .map(|v| match v {
                    Self::Int(i) => Ok(*i),
                    Self::Bool(b) => Ok(i64::from(*b)),
                    other => Err(format!("expected ints in the list, found {}", other.kind())),
                })
                .collect()
        };
        match self {
            Self::List(l) => ints(&l.borrow()),
            Self::Tuple(t) => ints(t),
            other => Err(format!("expected a list of ints, found {}", other.kind())),
        }
    }
}

pub(super) fn set_items(dict: &Value, items: Vec<Value>) -> Result<(), String> {
    let Value::Dict(d) = dict else {
        return Err(format!("SETITEM(S) on a {}", dict.kind()));
    };
    if !items.len().is_multiple_of(2) {
        return Err("SETITEMS with an odd number of items".to_string());
    }
    let mut d = d.borrow_mut();
    let mut it = items.into_iter();
    while let (Some(k), Some(v)) = (it.next(), it.next()) {
        d.push((k, v));
    }
    Ok(())
}

pub(super) fn append(list: &Value, items: Vec<Value>) -> Result<(), String> {
    let Value::List(l) = list else {
        return Err(format!("APPEND(S) on a {}", list.kind()));
    };
    l.borrow_mut().extend(items);
    Ok(())
}

pub(super) fn shape_of(v: &Value) -> Result<Vec<usize>, String> {
    v.as_int_list()?
        .into_iter()
        .map(|d| usize::try_from(d).map_err(|_| format!("negative array dimension {d}")))
        .collect()
}

/// `callable(*args)` for the allowed globals.
pub(super) fn reduce(callable: &Value, args: &Value) -> Result<Value, String> {
    let Value::Global(g) = callable else {
        return Err(format!(
            "REDUCE calls a {}, not an allowed global",
            callable.kind()
        ));
    };
    let Value::Tuple(args) = args else {
        return Err("REDUCE arguments are not a tuple".to_string());
    };
    match (g, &args[..]) {
        (Global::Reconstruct, [Value::Global(Global::Ndarray), ..]) => {
            Ok(Value::Array(Rc::new(RefCell::new(None))))
        }
        (Global::Reconstruct, _) => Err("_reconstruct of something other than ndarray".into()),
        (Global::Dtype, [descr, ..]) => {
            let d = descr
                .text()
                .ok_or_else(|| "numpy.dtype argument is not a string".to_string())?;
            Ok(Value::Dtype(Rc::from(d.as_str())))
        }
        (Global::CodecsEncode, [Value::Str(text), enc]) => {
            let enc = enc.text().unwrap_or_default().to_ascii_lowercase();
            if !matches!(enc.as_str(), "latin1" | "latin-1" | "iso-8859-1" | "iso8859-1") {
                return Err(format!("_codecs.encode with unsupported encoding `{enc}`"));
            }
            let bytes: Result<Vec<u8>, _> = text.chars().map(u8::try_from).collect();
            let bytes = bytes.map_err(|_| "latin1 text with a character above U+00FF")?;
            Ok(Value::Bytes(Rc::new(bytes)))
        }
        (Global::BytesType, []) => Ok(Value::Bytes(Rc::new(Vec::new()))),
        (Global::FromBuffer, [Value::Bytes(buf), Value::Dtype(dtype), shape, order]) => {
            let order = order.text().unwrap_or_default();
            Ok(Value::Array(Rc::new(RefCell::new(Some(NdArray {
                shape: shape_of(shape)?,
                dtype: dtype.to_string(),
                fortran: order == "F",
                data: Rc::clone(buf),
            })))))
        }
        (g, a) => Err(format!("unsupported call {g:?} with {} arguments", a.len())),
    }
}

/// `obj.__setstate__(state)` for arrays and dtypes.
pub(super) fn build(obj: &Value, state: Value) -> Result<(), String> {
    match obj {
        // A dtype's state (byte order, field names, ...) does not change what a `u1` is.
        Value::Dtype(_) => Ok(()),
        Value::Array(cell) => {
            let Value::Tuple(st) = state else {
                return Err("numpy array state is not a tuple".to_string());
            };
            // numpy writes (version, shape, dtype, is_fortran, rawdata); very old pickles
            // omit the version.
            let (shape, dtype, fortran, raw) = match &st[..] {
                [_, shape, dtype, fortran, raw] | [shape, dtype, fortran, raw] => {
                    (shape, dtype, fortran, raw)
                }
                _ => return Err(format!("numpy array state has {} fields", st.len())),
            };
            let Value::Dtype(dtype) = dtype else {
                return Err(format!("numpy array dtype is a {}", dtype.kind()));
            };
            let fortran = match fortran {
                Value::Bool(b) => *b,
                Value::Int(i) => *i != 0,
                other => return Err(format!("numpy is_fortran flag is a {}", other.kind())),
            };
            let data = match raw {
                Value::Bytes(b) => Rc::clone(b),
                other => {
                    return Err(format!(
                        "numpy array data is a {} (object arrays are not supported)",
                        other.kind()
                    ));
                }
            };
            *cell.borrow_mut() = Some(NdArray {
                shape: shape_of(shape)?,
                dtype: dtype.to_string(),
                fortran,
                data,
            });
            Ok(())
        }
        other => Err(format!("BUILD on a {} is not supported", other.kind())),
    }
}

//! Metadata values. Scalars are stored decoded; strings and arrays are stored as spans
//! into the file, which parsing has already proved to be in bounds and well-formed, so
//! reading them again here cannot run past the end.

use std::fmt;

/// A string's place in the file: `len` bytes at `start` (after its length prefix).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Span {
    pub start: usize,
    pub len: usize,
}

/// GGUF metadata value type ids.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ValueType {
    U8,
    I8,
    U16,
    I16,
    U32,
    I32,
    F32,
    Bool,
    String,
    Array,
    U64,
    I64,
    F64,
}

impl ValueType {
    pub fn from_id(id: u32) -> Option<ValueType> {
        use ValueType::*;
        Some(match id {
            0 => U8,
            1 => I8,
            2 => U16,
            3 => I16,
            4 => U32,
            5 => I32,
            6 => F32,
            7 => Bool,
            8 => String,
            9 => Array,
            10 => U64,
            11 => I64,
            12 => F64,
            _ => return None,
        })
    }

    /// Bytes per value for fixed-size types; `None` for strings and arrays.
    pub fn fixed_size(self) -> Option<usize> {
        use ValueType::*;
        match self {
            U8 | I8 | Bool => Some(1),
            U16 | I16 => Some(2),
            U32 | I32 | F32 => Some(4),
            U64 | I64 | F64 => Some(8),
            String | Array => None,
        }
    }

    /// The smallest number of bytes one value of this type can take (a string is at
    /// least its 8-byte length; an array its 4-byte type and 8-byte count).
    pub fn min_size(self) -> usize {
        match self {
            ValueType::String => 8,
            ValueType::Array => 12,
            t => t.fixed_size().unwrap_or(1),
        }
    }

    pub fn name(self) -> &'static str {
        use ValueType::*;
        match self {
            U8 => "u8",
            I8 => "i8",
            U16 => "u16",
            I16 => "i16",
            U32 => "u32",
            I32 => "i32",
            F32 => "f32",
            Bool => "bool",
            String => "string",
            Array => "array",
            U64 => "u64",
            I64 => "i64",
            F64 => "f64",
        }
    }
}

/// An array value: `len` elements of type `elem`, whose encoded bytes are
/// `start..end` of the file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ArrayValue {
    pub elem: ValueType,
    pub len: u64,
    pub start: usize,
    pub end: usize,
}

/// A metadata value.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum MetaValue {
    U8(u8),
    I8(i8),
    U16(u16),
    I16(i16),
    U32(u32),
    I32(i32),
    F32(f32),
    Bool(bool),
    String(Span),
    Array(ArrayValue),
    U64(u64),
    I64(i64),
    F64(f64),
}

impl MetaValue {
    /// The value as an integer, for any integer type.
    pub fn as_i128(&self) -> Option<i128> {
        use MetaValue::*;
        Some(match *self {
            U8(x) => x.into(),
            I8(x) => x.into(),
            U16(x) => x.into(),
            I16(x) => x.into(),
            U32(x) => x.into(),
            I32(x) => x.into(),
            U64(x) => x.into(),
            I64(x) => x.into(),
            _ => return None,
        })
    }

    /// The value as a float, for any numeric type.
    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            MetaValue::F32(x) => Some(x.into()),
            MetaValue::F64(x) => Some(x),
            _ => self.as_i128().map(|x| x as f64),
        }
    }

    pub fn value_type(&self) -> ValueType {
        use MetaValue::*;
        match self {
            U8(_) => ValueType::U8,
            I8(_) => ValueType::I8,
            U16(_) => ValueType::U16,
            I16(_) => ValueType::I16,
            U32(_) => ValueType::U32,
            I32(_) => ValueType::I32,
            F32(_) => ValueType::F32,
            Bool(_) => ValueType::Bool,
            String(_) => ValueType::String,
            Array(_) => ValueType::Array,
            U64(_) => ValueType::U64,
            I64(_) => ValueType::I64,
            F64(_) => ValueType::F64,
        }
    }

    /// "u32", "array of 49152 string", … for error messages.
    pub fn describe(&self) -> String {
        match self {
            MetaValue::Array(a) => format!("array of {} {}", a.len, a.elem.name()),
            v => v.value_type().name().to_string(),
        }
    }
}

impl fmt::Display for MetaValue {
    /// Scalars only; strings and arrays need the file (see `GgufFile`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use MetaValue::*;
        match self {
            U8(x) => write!(f, "{x}"),
            I8(x) => write!(f, "{x}"),
            U16(x) => write!(f, "{x}"),
            I16(x) => write!(f, "{x}"),
            U32(x) => write!(f, "{x}"),
            I32(x) => write!(f, "{x}"),
            U64(x) => write!(f, "{x}"),
            I64(x) => write!(f, "{x}"),
            F32(x) => write!(f, "{x}"),
            F64(x) => write!(f, "{x}"),
            Bool(x) => write!(f, "{x}"),
            String(s) => write!(f, "<string of {} bytes>", s.len),
            Array(a) => write!(f, "<array of {} {}>", a.len, a.elem.name()),
        }
    }
}

/// An array of strings in the file, iterated without copying.
#[derive(Clone, Copy)]
pub struct StrArray<'a> {
    bytes: &'a [u8],
    len: usize,
}

impl<'a> StrArray<'a> {
    pub(crate) fn new(file: &'a [u8], a: &ArrayValue) -> StrArray<'a> {
        StrArray {
            bytes: file.get(a.start..a.end).unwrap_or(&[]),
            // Parsing checked that `len` strings fit in start..end.
            len: usize::try_from(a.len).unwrap_or(0),
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Total bytes of the strings themselves (without their 8-byte length prefixes).
    pub fn text_len(&self) -> usize {
        self.bytes.len().saturating_sub(self.len.saturating_mul(8))
    }

    /// Each string's raw bytes, in order.
    pub fn iter(&self) -> impl Iterator<Item = &'a [u8]> + 'a {
        let mut rest = self.bytes;
        (0..self.len).map_while(move |_| {
            let (n, tail) = rest.split_first_chunk::<8>()?;
            let n = usize::try_from(u64::from_le_bytes(*n)).ok()?;
            let s = tail.get(..n)?;
            rest = &tail[n..];
            Some(s)
        })
    }
}

pub(crate) fn bytes_at(file: &[u8], s: Span) -> &[u8] {
    file.get(s.start..s.start.saturating_add(s.len))
        .unwrap_or(&[])
}

pub(crate) fn str_at(file: &[u8], s: Span) -> Result<&str, std::str::Utf8Error> {
    std::str::from_utf8(bytes_at(file, s))
}

/// Decodes every element of an array (nested arrays stay spans).
pub(crate) fn items(file: &[u8], a: &ArrayValue) -> Vec<MetaValue> {
    let body = file.get(..a.end).unwrap_or(&[]);
    let mut cur = super::parse::Cursor::new(body, a.start);
    let mut out = Vec::new();
    for _ in 0..a.len {
        match cur.value(a.elem, 0) {
            Ok(v) => out.push(v),
            Err(_) => break, // cannot happen: parsing walked the same bytes
        }
    }
    out
}

/// Converts every element of a numeric array with `f`; `None` if any does not convert.
///
/// Elements are decoded straight from their fixed-size chunks (parsing checked that `len`
/// of them fill `start..end`), without a vector of decoded values in between.
pub(crate) fn numbers<T>(
    file: &[u8],
    a: &ArrayValue,
    f: impl Fn(&MetaValue) -> Option<T>,
) -> Option<Vec<T>> {
    let size = a.elem.fixed_size()?;
    let body = file.get(a.start..a.end)?;
    let len = usize::try_from(a.len).ok()?;
    if body.len() / size < len {
        return None; // cannot happen: parsing checked the span
    }
    let mut out = Vec::with_capacity(len);
    for c in body.chunks_exact(size).take(len) {
        out.push(f(&fixed_value(a.elem, c)?)?);
    }
    Some(out)
}

/// Every element of an array of 4-byte values, converted from its bytes with `f`.
pub(crate) fn words4<T>(file: &[u8], a: &ArrayValue, f: impl Fn([u8; 4]) -> T) -> Option<Vec<T>> {
    let body = file.get(a.start..a.end)?;
    let len = usize::try_from(a.len).ok()?;
    if a.elem.fixed_size() != Some(4) || body.len() / 4 < len {
        return None; // cannot happen: callers check the type, parsing the span
    }
    let (words, _) = body.as_chunks::<4>();
    Some(words[..len].iter().map(|&w| f(w)).collect())
}

/// One fixed-size value from its little-endian bytes (`c` holds exactly its size).
#[inline]
fn fixed_value(ty: ValueType, c: &[u8]) -> Option<MetaValue> {
    use ValueType as T;
    Some(match ty {
        T::U8 => MetaValue::U8(c[0]),
        T::I8 => MetaValue::I8(c[0] as i8),
        T::U16 => MetaValue::U16(u16::from_le_bytes(c.try_into().ok()?)),
        T::I16 => MetaValue::I16(i16::from_le_bytes(c.try_into().ok()?)),
        T::U32 => MetaValue::U32(u32::from_le_bytes(c.try_into().ok()?)),
        T::I32 => MetaValue::I32(i32::from_le_bytes(c.try_into().ok()?)),
        T::F32 => MetaValue::F32(f32::from_le_bytes(c.try_into().ok()?)),
        T::U64 => MetaValue::U64(u64::from_le_bytes(c.try_into().ok()?)),
        T::I64 => MetaValue::I64(i64::from_le_bytes(c.try_into().ok()?)),
        T::F64 => MetaValue::F64(f64::from_le_bytes(c.try_into().ok()?)),
        T::Bool => MetaValue::Bool(c[0] != 0), // parsing checked 0 or 1
        T::String | T::Array => return None,
    })
}

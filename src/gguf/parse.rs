//! The parser: one pass over header, metadata and tensor infos, then the checks that
//! tie tensor infos to the data section.
//!
//! Invariants it establishes for the rest of the module:
//! - every string and array span lies inside the file and was walked element by element;
//! - every tensor's `offset..offset+size` lies inside the data section, is aligned, and
//!   overlaps no other tensor;
//! - no allocation was sized by a count before the bytes that count claims were seen
//!   to exist (a count is first compared with the bytes left).

use std::collections::HashSet;

use super::value::{ArrayValue, MetaValue, Span, ValueType};
use super::{GgufError, TensorInfo, DEFAULT_ALIGNMENT};
use crate::quant::GgmlType;

const MAGIC: &[u8; 4] = b"GGUF";
/// ggml supports at most 4 dimensions.
const MAX_DIMS: u32 = 4;
/// Arrays of arrays deeper than this are refused (no real file nests at all; the bound
/// keeps the recursive reader's stack small on hostile input).
const MAX_NESTING: u32 = 8;
/// Keys and tensor names longer than this are refused (ggml's tensor names are < 64).
const MAX_NAME: usize = 1 << 16;

pub(crate) struct Parsed {
    pub version: u32,
    pub alignment: u64,
    pub data_offset: u64,
    pub metadata: Vec<(String, MetaValue)>,
    pub tensors: Vec<TensorInfo>,
}

/// A bounds-checked reader over `bytes`, starting at `pos`.
pub(crate) struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    pub fn new(bytes: &'a [u8], pos: usize) -> Cursor<'a> {
        Cursor { bytes, pos }
    }

    fn remaining(&self) -> usize {
        self.bytes.len().saturating_sub(self.pos)
    }

    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], GgufError> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.bytes.len());
        match end {
            Some(end) => {
                let s = &self.bytes[self.pos..end];
                self.pos = end;
                Ok(s)
            }
            None => Err(GgufError::format(
                self.pos,
                format!(
                    "file ends inside {what} ({n} bytes needed, {} left)",
                    self.remaining()
                ),
            )),
        }
    }

    fn array<const N: usize>(&mut self, what: &str) -> Result<[u8; N], GgufError> {
        let s = self.take(N, what)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }

    fn u32(&mut self, what: &str) -> Result<u32, GgufError> {
        self.array(what).map(u32::from_le_bytes)
    }

    fn u64(&mut self, what: &str) -> Result<u64, GgufError> {
        self.array(what).map(u64::from_le_bytes)
    }

    /// A length-prefixed string's span.
    fn string(&mut self, what: &str) -> Result<Span, GgufError> {
        let at = self.pos;
        let n = self.u64(what)?;
        let len = usize::try_from(n)
            .ok()
            .filter(|&n| n <= self.remaining())
            .ok_or_else(|| {
                GgufError::format(
                    at,
                    format!(
                        "{what} claims {n} bytes but only {} are left",
                        self.remaining()
                    ),
                )
            })?;
        let start = self.pos;
        self.take(len, what)?;
        Ok(Span { start, len })
    }

    /// A string that must be UTF-8 (keys, tensor names, the architecture).
    fn name(&mut self, what: &str) -> Result<String, GgufError> {
        let at = self.pos;
        let span = self.string(what)?;
        if span.len > MAX_NAME {
            return Err(GgufError::format(
                at,
                format!("{what} is {} bytes long", span.len),
            ));
        }
        let s = &self.bytes[span.start..span.start + span.len];
        std::str::from_utf8(s)
            .map(str::to_owned)
            .map_err(|_| GgufError::format(at, format!("{what} is not valid UTF-8")))
    }

    fn value_type(&mut self, what: &str) -> Result<ValueType, GgufError> {
        let at = self.pos;
        let id = self.u32(what)?;
        ValueType::from_id(id)
            .ok_or_else(|| GgufError::format(at, format!("unknown metadata value type {id}")))
    }

    /// One value of type `ty`. Arrays are walked element by element (so their span is
    /// known to be well-formed) but not stored decoded.
    pub fn value(&mut self, ty: ValueType, depth: u32) -> Result<MetaValue, GgufError> {
        use ValueType as T;
        Ok(match ty {
            T::U8 => MetaValue::U8(self.array::<1>("u8 value")?[0]),
            T::I8 => MetaValue::I8(self.array::<1>("i8 value")?[0] as i8),
            T::U16 => MetaValue::U16(u16::from_le_bytes(self.array("u16 value")?)),
            T::I16 => MetaValue::I16(i16::from_le_bytes(self.array("i16 value")?)),
            T::U32 => MetaValue::U32(self.u32("u32 value")?),
            T::I32 => MetaValue::I32(i32::from_le_bytes(self.array("i32 value")?)),
            T::F32 => MetaValue::F32(f32::from_le_bytes(self.array("f32 value")?)),
            T::U64 => MetaValue::U64(self.u64("u64 value")?),
            T::I64 => MetaValue::I64(i64::from_le_bytes(self.array("i64 value")?)),
            T::F64 => MetaValue::F64(f64::from_le_bytes(self.array("f64 value")?)),
            T::Bool => {
                let at = self.pos;
                match self.array::<1>("bool value")?[0] {
                    0 => MetaValue::Bool(false),
                    1 => MetaValue::Bool(true),
                    b => return Err(GgufError::format(at, format!("bool value is {b}"))),
                }
            }
            T::String => MetaValue::String(self.string("string value")?),
            T::Array => MetaValue::Array(self.array_value(depth)?),
        })
    }

    fn array_value(&mut self, depth: u32) -> Result<ArrayValue, GgufError> {
        let at = self.pos;
        if depth >= MAX_NESTING {
            return Err(GgufError::format(
                at,
                format!("arrays nested more than {MAX_NESTING} deep"),
            ));
        }
        let elem = self.value_type("array element type")?;
        let count_at = self.pos;
        let len = self.u64("array length")?;
        // Every element takes at least min_size bytes: a count the rest of the file
        // cannot hold is refused before anything is walked or allocated.
        let fits = len
            .checked_mul(elem.min_size() as u64)
            .is_some_and(|b| b <= self.remaining() as u64);
        if !fits {
            return Err(GgufError::format(
                count_at,
                format!(
                    "array of {len} {} does not fit in the {} bytes left",
                    elem.name(),
                    self.remaining()
                ),
            ));
        }
        let start = self.pos;
        match elem.fixed_size() {
            Some(size) => {
                // Bool arrays are walked too, so that each byte is checked to be 0 or 1.
                if elem == ValueType::Bool {
                    for _ in 0..len {
                        self.value(elem, depth + 1)?;
                    }
                } else {
                    self.take(len as usize * size, "array data")?;
                }
            }
            // Vocabularies are arrays of 50k-260k strings: skip them in a tight loop.
            None if elem == ValueType::String => {
                for _ in 0..len {
                    let at = self.pos;
                    let n = self
                        .bytes
                        .get(at..at + 8)
                        .map(|b| u64::from_le_bytes(b.try_into().unwrap_or([0xff; 8])));
                    match n.and_then(|n| usize::try_from(n).ok()) {
                        Some(n) if n <= self.remaining() - 8 => self.pos = at + 8 + n,
                        _ => {
                            self.string("string value")?;
                        }
                    }
                }
            }
            None => {
                for _ in 0..len {
                    self.value(elem, depth + 1)?;
                }
            }
        }
        Ok(ArrayValue {
            elem,
            len,
            start,
            end: self.pos,
        })
    }
}

/// A count from the header, refused when the remaining bytes cannot hold that many
/// entries of at least `min_entry` bytes each.
fn bounded_count(
    cur: &Cursor<'_>,
    at: usize,
    n: u64,
    min_entry: usize,
    what: &str,
) -> Result<usize, GgufError> {
    let fits = n
        .checked_mul(min_entry as u64)
        .is_some_and(|b| b <= cur.remaining() as u64);
    if !fits {
        return Err(GgufError::format(
            at,
            format!(
                "{what} count {n} cannot fit in the {} bytes left",
                cur.remaining()
            ),
        ));
    }
    Ok(n as usize)
}

pub(crate) fn parse(bytes: &[u8]) -> Result<Parsed, GgufError> {
    let mut cur = Cursor::new(bytes, 0);
    let magic = cur.array::<4>("the magic number")?;
    if &magic != MAGIC {
        return Err(GgufError::format(
            0,
            format!(
                "not a GGUF file (it starts with {:?}, not \"GGUF\")",
                String::from_utf8_lossy(&magic)
            ),
        ));
    }
    let version = cur.u32("the version")?;
    match version {
        2 | 3 => {}
        1 => return Err(GgufError::format(
            4,
            "GGUF version 1 is not supported (convert the model again with a current llama.cpp)",
        )),
        v if v.swap_bytes() <= 3 => {
            return Err(GgufError::format(
                4,
                "big-endian GGUF is not supported on this machine",
            ))
        }
        v => {
            return Err(GgufError::format(
                4,
                format!("GGUF version {v} is not supported (hearth reads versions 2 and 3)"),
            ))
        }
    }
    let tensors_at = cur.pos;
    let n_tensors = cur.u64("the tensor count")?;
    let kv_at = cur.pos;
    let n_kv = cur.u64("the metadata count")?;
    // A key-value pair is at least an 8-byte key length and a 4-byte type (plus a value).
    let n_kv = bounded_count(&cur, kv_at, n_kv, 8 + 4 + 1, "metadata")?;

    let mut metadata = Vec::with_capacity(n_kv);
    let mut seen = HashSet::with_capacity(n_kv);
    for _ in 0..n_kv {
        let at = cur.pos;
        let key = cur.name("a metadata key")?;
        let ty = cur.value_type("a metadata value type")?;
        let value = cur.value(ty, 0).map_err(|e| match e {
            GgufError::Format { offset, what } => GgufError::Format {
                offset,
                what: format!("{what} (in metadata key '{key}')"),
            },
            e => e,
        })?;
        if !seen.insert(key.clone()) {
            return Err(GgufError::format(
                at,
                format!("metadata key '{key}' appears twice"),
            ));
        }
        metadata.push((key, value));
    }

    let alignment = match metadata.iter().find(|(k, _)| k == "general.alignment") {
        None => DEFAULT_ALIGNMENT,
        Some((_, v)) => match v.as_i128() {
            Some(a) if a > 0 && a <= (1 << 30) && (a as u64).is_power_of_two() => a as u64,
            _ => {
                return Err(GgufError::format(
                    kv_at,
                    format!(
                        "general.alignment must be a power of two, not {}",
                        v.as_i128().map_or_else(|| v.describe(), |a| a.to_string())
                    ),
                ))
            }
        },
    };

    // A tensor info is at least a name length, a dim count, one dim, a type and an offset.
    let n_tensors = bounded_count(&cur, tensors_at, n_tensors, 8 + 4 + 8 + 4 + 8, "tensor")?;
    let mut tensors = Vec::with_capacity(n_tensors);
    let mut names = HashSet::with_capacity(n_tensors);
    for _ in 0..n_tensors {
        let at = cur.pos;
        let t = tensor_info(&mut cur, alignment)?;
        if !names.insert(t.name.clone()) {
            return Err(GgufError::format(
                at,
                format!("tensor '{}' appears twice", t.name),
            ));
        }
        tensors.push(t);
    }

    let end_of_infos = cur.pos as u64;
    let data_offset = end_of_infos.div_ceil(alignment) * alignment;
    let file_len = bytes.len() as u64;
    if !tensors.is_empty() && data_offset > file_len {
        return Err(GgufError::format(
            cur.pos,
            format!("file ends before the data section (which starts at byte {data_offset})"),
        ));
    }
    check_layout(&tensors, data_offset, file_len)?;

    Ok(Parsed {
        version,
        alignment,
        data_offset,
        metadata,
        tensors,
    })
}

fn tensor_info(cur: &mut Cursor<'_>, alignment: u64) -> Result<TensorInfo, GgufError> {
    let at = cur.pos;
    let name = cur.name("a tensor name")?;
    let bad =
        |offset: usize, what: String| GgufError::format(offset, format!("tensor '{name}': {what}"));

    let dims_at = cur.pos;
    let n_dims = cur.u32("a tensor's dimension count")?;
    if n_dims == 0 || n_dims > MAX_DIMS {
        return Err(bad(
            dims_at,
            format!("{n_dims} dimensions (1 to {MAX_DIMS} allowed)"),
        ));
    }
    let mut dims = Vec::with_capacity(n_dims as usize);
    let mut n_elements: u64 = 1;
    for _ in 0..n_dims {
        let d_at = cur.pos;
        let d = cur.u64("a tensor dimension")?;
        if d == 0 {
            return Err(bad(d_at, "a dimension is zero".into()));
        }
        // ggml keeps element counts in int64_t.
        n_elements = n_elements
            .checked_mul(d)
            .filter(|&n| n <= i64::MAX as u64)
            .ok_or_else(|| bad(d_at, "the element count overflows".into()))?;
        dims.push(d);
    }

    let ty_at = cur.pos;
    let ty_id = cur.u32("a tensor type")?;
    let ty = GgmlType::from_id(ty_id)
        .ok_or_else(|| bad(ty_at, format!("ggml type id {ty_id} is unknown to hearth")))?;
    if dims[0] % ty.block_size() as u64 != 0 {
        return Err(bad(
            dims_at,
            format!(
                "row length {} is not a multiple of the {} block size {}",
                dims[0],
                ty,
                ty.block_size()
            ),
        ));
    }
    let size = ty
        .row_bytes(n_elements)
        .ok_or_else(|| bad(dims_at, "the byte size overflows".into()))?;

    let off_at = cur.pos;
    let offset = cur.u64("a tensor offset")?;
    if offset % alignment != 0 {
        return Err(bad(
            off_at,
            format!("data offset {offset} is not a multiple of the alignment {alignment}"),
        ));
    }
    let _ = at;
    Ok(TensorInfo {
        name,
        dims,
        ty,
        offset,
        size,
    })
}

/// Every tensor inside the file and no two overlapping.
fn check_layout(tensors: &[TensorInfo], data_offset: u64, file_len: u64) -> Result<(), GgufError> {
    let data_len = file_len.saturating_sub(data_offset);
    let mut order: Vec<&TensorInfo> = tensors.iter().collect();
    order.sort_by_key(|t| t.offset);
    let mut prev: Option<&TensorInfo> = None;
    for t in order {
        let end = t.offset.checked_add(t.size);
        if end.is_none_or(|e| e > data_len) {
            return Err(GgufError::format(
                data_offset.saturating_add(t.offset).min(usize::MAX as u64) as usize,
                format!(
                    "tensor '{}' ({} bytes at data offset {}) extends past the end of the file ({} bytes of data)",
                    t.name, t.size, t.offset, data_len
                ),
            ));
        }
        if let Some(p) = prev {
            if t.offset < p.offset + p.size {
                return Err(GgufError::format(
                    (data_offset + t.offset) as usize,
                    format!("tensors '{}' and '{}' overlap", p.name, t.name),
                ));
            }
        }
        prev = Some(t);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_that_cannot_fit_are_refused_before_allocating() {
        let mut f = b"GGUF".to_vec();
        f.extend(3u32.to_le_bytes());
        f.extend((1u64 << 60).to_le_bytes());
        f.extend(0u64.to_le_bytes());
        let e = parse(&f).err().unwrap().to_string();
        assert!(e.contains("tensor count"), "{e}");
    }
}

//! The GGUF file format: header, metadata, tensor infos, and the tensor data, read
//! through a memory map with zero copies.
//!
//! Shape: [`GgufFile::open`] maps the file and validates *everything* once (every count,
//! length and offset against the file size, with checked arithmetic), recording spans
//! into the map rather than copying values. After that, accessors cannot fail on
//! bounds: they slice ranges that parsing already proved to be inside the file. The
//! only allocations sized by the file are bounded by its length (a count is only
//! trusted after the bytes it claims have been seen).
//!
//! This module knows nothing of models: it exposes typed metadata look-ups and raw
//! tensor bytes; the model layer decides what the keys mean.

mod error;
mod json;
mod parse;
mod value;
pub mod write;

use std::collections::HashMap;
use std::fs::File;
use std::ops::Deref;
use std::path::Path;

use crate::quant::GgmlType;

pub use error::GgufError;
pub use value::{ArrayValue, MetaValue, StrArray, ValueType};

/// `general.alignment` when the file does not set it.
pub const DEFAULT_ALIGNMENT: u64 = 32;

/// Checks that `bytes` are a well-formed GGUF image, without keeping anything.
pub fn validate(bytes: &[u8]) -> Result<(), GgufError> {
    parse::parse(bytes).map(|_| ())
}

/// One tensor's description. `offset` is relative to the start of the data section.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TensorInfo {
    pub name: String,
    /// Dimensions in ggml order: `dims[0]` is the length of a row (the contiguous one).
    pub dims: Vec<u64>,
    pub ty: GgmlType,
    pub offset: u64,
    /// Bytes of data, computed from `dims` and `ty`.
    pub size: u64,
}

impl TensorInfo {
    /// Number of elements (the product of the dimensions; checked at parse time).
    pub fn n_elements(&self) -> u64 {
        self.dims.iter().product()
    }

    /// Length of one row (the first dimension).
    pub fn row_len(&self) -> u64 {
        self.dims[0]
    }

    /// Number of rows (the product of the other dimensions).
    pub fn n_rows(&self) -> u64 {
        self.dims[1..].iter().product()
    }
}

/// The bytes behind a parsed file: a read-only memory map, or an owned buffer (tests,
/// fuzzing, in-memory files).
enum Backing {
    Mmap(memmap2::Mmap),
    Owned(Vec<u8>),
}

impl Deref for Backing {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Backing::Mmap(m) => m,
            Backing::Owned(v) => v,
        }
    }
}

/// A parsed GGUF file.
pub struct GgufFile {
    bytes: Backing,
    version: u32,
    alignment: u64,
    data_offset: u64,
    metadata: Vec<(String, MetaValue)>,
    by_key: HashMap<String, usize>,
    tensors: Vec<TensorInfo>,
    by_name: HashMap<String, usize>,
}

impl GgufFile {
    /// Maps and parses the file at `path`.
    pub fn open(path: &Path) -> Result<GgufFile, GgufError> {
        let io = |err: std::io::Error| GgufError::Io { err };
        let file = File::open(path).map_err(io)?;
        let len = file.metadata().map_err(io)?.len();
        if len == 0 {
            // mmap of an empty file fails on some platforms; the header check gives
            // the useful message.
            return GgufFile::from_bytes(Vec::new());
        }
        // The map is read-only and private to this process. Another process truncating
        // or rewriting the file while it is mapped is outside what we can guard against
        // (as for every mmap-based loader); hearth never writes to a model file it has
        // mapped, and the store replaces files by rename, which leaves existing maps intact.
        // SAFETY: read-only map of a file hearth does not modify while mapped (above).
        let map = unsafe { memmap2::Mmap::map(&file) }.map_err(io)?;
        GgufFile::parse(Backing::Mmap(map))
    }

    /// Locks the mapped file in memory (`mlock`), so that the kernel never evicts the
    /// weights under memory pressure; the pages are read in now. An owned buffer needs
    /// nothing. The error says what limit to raise.
    pub fn lock_memory(&self) -> Result<(), String> {
        let Backing::Mmap(m) = &self.bytes else {
            return Ok(());
        };
        m.lock().map_err(|e| {
            let limit = memlock_limit().map_or(String::new(), |l| format!("; the limit is {l}"));
            format!(
                "cannot lock the {} MiB of model weights in memory ({e}{limit}): raise the \
                 locked-memory limit (ulimit -l unlimited; LimitMEMLOCK=infinity under \
                 systemd; ulimits: memlock: -1 in compose), or run without --mlock and \
                 HEARTH_MLOCK",
                m.len().div_ceil(1 << 20)
            )
        })
    }

    /// Parses a GGUF image held in memory.
    pub fn from_bytes(bytes: Vec<u8>) -> Result<GgufFile, GgufError> {
        GgufFile::parse(Backing::Owned(bytes))
    }

    fn parse(bytes: Backing) -> Result<GgufFile, GgufError> {
        let parsed = parse::parse(&bytes)?;
        let by_key = parsed
            .metadata
            .iter()
            .enumerate()
            .map(|(i, (k, _))| (k.clone(), i))
            .collect();
        let by_name = parsed
            .tensors
            .iter()
            .enumerate()
            .map(|(i, t)| (t.name.clone(), i))
            .collect();
        Ok(GgufFile {
            bytes,
            version: parsed.version,
            alignment: parsed.alignment,
            data_offset: parsed.data_offset,
            metadata: parsed.metadata,
            by_key,
            tensors: parsed.tensors,
            by_name,
        })
    }

    /// GGUF format version (2 or 3).
    pub fn version(&self) -> u32 {
        self.version
    }

    /// Alignment of tensor data (`general.alignment`, default 32).
    pub fn alignment(&self) -> u64 {
        self.alignment
    }

    /// Byte offset of the data section in the file.
    pub fn data_offset(&self) -> u64 {
        self.data_offset
    }

    /// Total file size in bytes.
    pub fn file_size(&self) -> u64 {
        self.bytes.len() as u64
    }

    /// The whole file.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Metadata in file order.
    pub fn metadata(&self) -> impl Iterator<Item = (&str, &MetaValue)> {
        self.metadata.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// The raw value under `key`.
    pub fn get(&self, key: &str) -> Option<&MetaValue> {
        self.by_key.get(key).map(|&i| &self.metadata[i].1)
    }

    /// Tensor descriptions in file order.
    pub fn tensors(&self) -> &[TensorInfo] {
        &self.tensors
    }

    /// The tensor called `name`.
    pub fn tensor(&self, name: &str) -> Option<&TensorInfo> {
        self.by_name.get(name).map(|&i| &self.tensors[i])
    }

    /// The bytes of a tensor of this file (a view into the map, no copy).
    ///
    /// `t` must come from this file's [`tensors`](Self::tensors); its range was checked
    /// at parse time. A `TensorInfo` from elsewhere whose range lies outside the file
    /// yields an empty slice.
    pub fn tensor_data(&self, t: &TensorInfo) -> &[u8] {
        let start = self.data_offset.saturating_add(t.offset);
        let end = start.saturating_add(t.size);
        usize::try_from(start)
            .ok()
            .zip(usize::try_from(end).ok())
            .and_then(|(s, e)| self.bytes.get(s..e))
            .unwrap_or(&[])
    }

    /// A value's string, when the key holds a string.
    pub fn get_str(&self, key: &str) -> Result<Option<&str>, GgufError> {
        self.typed(key, "string", |v| match v {
            MetaValue::String(span) => Some(value::str_at(&self.bytes, *span)),
            _ => None,
        })?
        .transpose()
        .map_err(|_| GgufError::NotUtf8 {
            key: key.to_string(),
        })
    }

    /// An integer value of any integer type that fits in `u32`.
    pub fn get_u32(&self, key: &str) -> Result<Option<u32>, GgufError> {
        self.typed(key, "unsigned 32-bit integer", |v| {
            v.as_i128().and_then(|x| u32::try_from(x).ok())
        })
    }

    /// An integer value of any integer type that fits in `u64`.
    pub fn get_u64(&self, key: &str) -> Result<Option<u64>, GgufError> {
        self.typed(key, "unsigned 64-bit integer", |v| {
            v.as_i128().and_then(|x| u64::try_from(x).ok())
        })
    }

    /// An integer value of any integer type that fits in `i64`.
    pub fn get_i64(&self, key: &str) -> Result<Option<i64>, GgufError> {
        self.typed(key, "64-bit integer", |v| {
            v.as_i128().and_then(|x| i64::try_from(x).ok())
        })
    }

    /// A float value (f32, or f64 narrowed).
    pub fn get_f32(&self, key: &str) -> Result<Option<f32>, GgufError> {
        self.typed(key, "float", |v| match *v {
            MetaValue::F32(x) => Some(x),
            MetaValue::F64(x) => Some(x as f32),
            _ => None,
        })
    }

    /// A boolean value.
    pub fn get_bool(&self, key: &str) -> Result<Option<bool>, GgufError> {
        self.typed(key, "bool", |v| match *v {
            MetaValue::Bool(b) => Some(b),
            _ => None,
        })
    }

    /// An array of strings, as raw bytes (token texts need not be UTF-8).
    pub fn get_str_array(&self, key: &str) -> Result<Option<StrArray<'_>>, GgufError> {
        self.typed(key, "array of strings", |v| match v {
            MetaValue::Array(a) if a.elem == ValueType::String => {
                Some(StrArray::new(&self.bytes, a))
            }
            _ => None,
        })
    }

    /// An array of numbers converted to f32 (f32 or f64 elements).
    pub fn get_f32_array(&self, key: &str) -> Result<Option<Vec<f32>>, GgufError> {
        self.typed(key, "array of floats", |v| match v {
            // f32 elements (the usual case) are read straight from their bytes, through the
            // same f64 round trip as the general path.
            MetaValue::Array(a) if a.elem == ValueType::F32 => {
                value::words4(&self.bytes, a, |w| f64::from(f32::from_le_bytes(w)) as f32)
            }
            MetaValue::Array(a) => value::numbers(&self.bytes, a, |n| n.as_f64().map(|x| x as f32)),
            _ => None,
        })
    }

    /// An array of integers that each fit in i32.
    pub fn get_i32_array(&self, key: &str) -> Result<Option<Vec<i32>>, GgufError> {
        self.typed(key, "array of 32-bit integers", |v| match v {
            MetaValue::Array(a) if a.elem == ValueType::I32 => {
                value::words4(&self.bytes, a, i32::from_le_bytes)
            }
            MetaValue::Array(a) => value::numbers(&self.bytes, a, |n| {
                n.as_i128().and_then(|x| i32::try_from(x).ok())
            }),
            _ => None,
        })
    }

    /// Decodes any array value (nested arrays included) into owned values, for display.
    pub fn array_items(&self, a: &ArrayValue) -> Vec<MetaValue> {
        value::items(&self.bytes, a)
    }

    /// The text of a string value (lossy for invalid UTF-8), for display.
    pub fn string_lossy(&self, v: &MetaValue) -> Option<std::borrow::Cow<'_, str>> {
        match v {
            MetaValue::String(span) => {
                Some(String::from_utf8_lossy(value::bytes_at(&self.bytes, *span)))
            }
            _ => None,
        }
    }

    /// `general.architecture`.
    pub fn architecture(&self) -> Result<Option<&str>, GgufError> {
        self.get_str("general.architecture")
    }

    fn typed<'a, T>(
        &'a self,
        key: &str,
        expected: &'static str,
        f: impl FnOnce(&'a MetaValue) -> Option<T>,
    ) -> Result<Option<T>, GgufError> {
        let Some(v) = self.get(key) else {
            return Ok(None);
        };
        match f(v) {
            Some(x) => Ok(Some(x)),
            None => Err(GgufError::WrongType {
                key: key.to_string(),
                expected,
                found: v.describe(),
            }),
        }
    }
}

impl std::fmt::Debug for GgufFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GgufFile")
            .field("version", &self.version)
            .field("metadata", &self.metadata.len())
            .field("tensors", &self.tensors.len())
            .field("data_offset", &self.data_offset)
            .finish()
    }
}

/// llama.cpp's `llama_ftype` names (general.file_type).
pub fn file_type_name(ft: u32) -> Option<&'static str> {
    Some(match ft {
        0 => "F32",
        1 => "F16",
        2 => "Q4_0",
        3 => "Q4_1",
        7 => "Q8_0",
        8 => "Q5_0",
        9 => "Q5_1",
        10 => "Q2_K",
        11 => "Q3_K_S",
        12 => "Q3_K_M",
        13 => "Q3_K_L",
        14 => "Q4_K_S",
        15 => "Q4_K_M",
        16 => "Q5_K_S",
        17 => "Q5_K_M",
        18 => "Q6_K",
        19 => "IQ2_XXS",
        20 => "IQ2_XS",
        21 => "Q2_K_S",
        22 => "IQ3_XS",
        23 => "IQ3_XXS",
        24 => "IQ1_S",
        25 => "IQ4_NL",
        26 => "IQ3_S",
        27 => "IQ3_M",
        28 => "IQ2_S",
        29 => "IQ2_M",
        30 => "IQ4_XS",
        31 => "IQ1_M",
        32 => "BF16",
        36 => "TQ1_0",
        37 => "TQ2_0",
        38 => "MXFP4_MOE",
        _ => return None,
    })
}

/// This process's locked-memory limit (soft), as `ulimit -l` would say it: "8 MiB",
/// "unlimited"; None where /proc/self/limits cannot tell.
fn memlock_limit() -> Option<String> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let soft = limits
        .lines()
        .find_map(|l| l.strip_prefix("Max locked memory"))?
        .split_whitespace()
        .next()?;
    if soft == "unlimited" {
        return Some(soft.into());
    }
    let bytes: u64 = soft.parse().ok()?;
    Some(match bytes {
        b if b >= 1 << 20 => format!("{} MiB", b >> 20),
        b => format!("{} KiB", b >> 10),
    })
}

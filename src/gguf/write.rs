//! A GGUF writer: builds a file image from owned metadata and tensor bytes.
//!
//! Used to make synthetic models and test files (hostile ones included: it writes what
//! it is given, so a test can describe a tensor whose bytes are missing). It records
//! where each field landed so that tests can corrupt one field at a time.

use super::DEFAULT_ALIGNMENT;
use crate::quant::GgmlType;

/// An owned metadata value to write.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    U8(u8),
    I8(i8),
    U16(u16),
    I16(i16),
    U32(u32),
    I32(i32),
    F32(f32),
    Bool(bool),
    String(Vec<u8>),
    /// Element type id and elements (which must all be of that type).
    Array(u32, Vec<Value>),
    U64(u64),
    I64(i64),
    F64(f64),
}

impl Value {
    pub fn str(s: &str) -> Value {
        Value::String(s.as_bytes().to_vec())
    }

    pub fn strs<S: AsRef<str>>(items: &[S]) -> Value {
        Value::Array(8, items.iter().map(|s| Value::str(s.as_ref())).collect())
    }

    pub fn f32s(items: &[f32]) -> Value {
        Value::Array(6, items.iter().map(|&x| Value::F32(x)).collect())
    }

    pub fn i32s(items: &[i32]) -> Value {
        Value::Array(5, items.iter().map(|&x| Value::I32(x)).collect())
    }

    /// The GGUF value type id.
    pub fn type_id(&self) -> u32 {
        match self {
            Value::U8(_) => 0,
            Value::I8(_) => 1,
            Value::U16(_) => 2,
            Value::I16(_) => 3,
            Value::U32(_) => 4,
            Value::I32(_) => 5,
            Value::F32(_) => 6,
            Value::Bool(_) => 7,
            Value::String(_) => 8,
            Value::Array(..) => 9,
            Value::U64(_) => 10,
            Value::I64(_) => 11,
            Value::F64(_) => 12,
        }
    }

    fn write(&self, out: &mut Vec<u8>) {
        match self {
            Value::U8(x) => out.push(*x),
            Value::I8(x) => out.extend(x.to_le_bytes()),
            Value::U16(x) => out.extend(x.to_le_bytes()),
            Value::I16(x) => out.extend(x.to_le_bytes()),
            Value::U32(x) => out.extend(x.to_le_bytes()),
            Value::I32(x) => out.extend(x.to_le_bytes()),
            Value::F32(x) => out.extend(x.to_le_bytes()),
            Value::Bool(x) => out.push(u8::from(*x)),
            Value::String(s) => {
                out.extend((s.len() as u64).to_le_bytes());
                out.extend(s);
            }
            Value::Array(elem, items) => {
                out.extend(elem.to_le_bytes());
                out.extend((items.len() as u64).to_le_bytes());
                for v in items {
                    v.write(out);
                }
            }
            Value::U64(x) => out.extend(x.to_le_bytes()),
            Value::I64(x) => out.extend(x.to_le_bytes()),
            Value::F64(x) => out.extend(x.to_le_bytes()),
        }
    }
}

/// A tensor to write: its bytes are placed at the next aligned offset.
#[derive(Clone, Debug)]
pub struct Tensor {
    pub name: String,
    pub dims: Vec<u64>,
    pub ty: GgmlType,
    pub data: Vec<u8>,
}

/// Where the fields of a written file are (byte offsets into the image).
#[derive(Clone, Debug, Default)]
pub struct Layout {
    /// Start of each metadata pair (its key length).
    pub kv: Vec<usize>,
    /// Start of each metadata value's type id.
    pub kv_type: Vec<usize>,
    /// Start of each tensor info (its name length).
    pub tensor_info: Vec<usize>,
    /// Start of each tensor info's dimension count.
    pub tensor_dims: Vec<usize>,
    /// Start of each tensor info's ggml type id.
    pub tensor_type: Vec<usize>,
    /// Start of each tensor info's data offset.
    pub tensor_offset: Vec<usize>,
    pub data_offset: usize,
}

/// A GGUF v3 file under construction.
#[derive(Clone, Debug, Default)]
pub struct Writer {
    pub version: u32,
    pub metadata: Vec<(String, Value)>,
    pub tensors: Vec<Tensor>,
}

impl Writer {
    pub fn new() -> Writer {
        Writer {
            version: 3,
            ..Writer::default()
        }
    }

    pub fn kv(&mut self, key: &str, v: Value) -> &mut Writer {
        self.metadata.push((key.to_string(), v));
        self
    }

    pub fn tensor(&mut self, name: &str, dims: &[u64], ty: GgmlType, data: Vec<u8>) -> &mut Writer {
        self.tensors.push(Tensor {
            name: name.to_string(),
            dims: dims.to_vec(),
            ty,
            data,
        });
        self
    }

    fn alignment(&self) -> u64 {
        self.metadata
            .iter()
            .find(|(k, _)| k == "general.alignment")
            .and_then(|(_, v)| match v {
                Value::U32(a) if a.is_power_of_two() => Some(u64::from(*a)),
                _ => None,
            })
            .unwrap_or(DEFAULT_ALIGNMENT)
    }

    /// The file image and where its fields are.
    pub fn build(&self) -> (Vec<u8>, Layout) {
        let align = self.alignment() as usize;
        let mut out = Vec::new();
        let mut layout = Layout::default();
        out.extend(b"GGUF");
        out.extend(self.version.to_le_bytes());
        out.extend((self.tensors.len() as u64).to_le_bytes());
        out.extend((self.metadata.len() as u64).to_le_bytes());
        for (k, v) in &self.metadata {
            layout.kv.push(out.len());
            Value::str(k).write(&mut out);
            layout.kv_type.push(out.len());
            out.extend(v.type_id().to_le_bytes());
            v.write(&mut out);
        }
        let mut offset = 0usize;
        let mut offsets = Vec::new();
        for t in &self.tensors {
            layout.tensor_info.push(out.len());
            Value::str(&t.name).write(&mut out);
            layout.tensor_dims.push(out.len());
            out.extend((t.dims.len() as u32).to_le_bytes());
            for d in &t.dims {
                out.extend(d.to_le_bytes());
            }
            layout.tensor_type.push(out.len());
            out.extend(t.ty.id().to_le_bytes());
            layout.tensor_offset.push(out.len());
            out.extend((offset as u64).to_le_bytes());
            offsets.push(offset);
            offset = (offset + t.data.len()).div_ceil(align) * align;
        }
        out.resize(out.len().div_ceil(align) * align, 0);
        layout.data_offset = out.len();
        for (t, off) in self.tensors.iter().zip(offsets) {
            out.resize(layout.data_offset + off, 0);
            out.extend(&t.data);
        }
        (out, layout)
    }
}

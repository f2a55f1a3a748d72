//! The GGUF reader against well-formed, truncated and corrupted files: every bad file
//! gives an error naming a byte offset, never a panic.

mod common;

use hearth::gguf::write::{Layout, Value, Writer};
use hearth::gguf::{validate, GgufError, GgufFile, MetaValue};
use hearth::quant::GgmlType;

/// A small file with every metadata value type, a nested array and three tensors.
fn sample() -> Writer {
    let mut w = Writer::new();
    w.kv("general.architecture", Value::str("llama"))
        .kv("t.u8", Value::U8(200))
        .kv("t.i8", Value::I8(-5))
        .kv("t.u16", Value::U16(65000))
        .kv("t.i16", Value::I16(-30000))
        .kv("t.u32", Value::U32(4_000_000_000))
        .kv("t.i32", Value::I32(-7))
        .kv("t.f32", Value::F32(1.5))
        .kv("t.bool", Value::Bool(true))
        .kv("t.u64", Value::U64(1 << 40))
        .kv("t.i64", Value::I64(-(1 << 40)))
        .kv("t.f64", Value::F64(0.25))
        .kv("t.strs", Value::strs(&["a", "", "ü€"]))
        .kv("t.f32s", Value::f32s(&[1.0, -2.0]))
        .kv("t.i32s", Value::i32s(&[3, -4, 5]))
        .kv(
            "t.nested",
            Value::Array(
                9,
                vec![
                    Value::Array(4, vec![Value::U32(1), Value::U32(2)]),
                    Value::Array(8, vec![Value::str("x")]),
                ],
            ),
        )
        .kv("general.alignment", Value::U32(64));
    w.tensor("a", &[32, 2], GgmlType::F32, vec![1; 256])
        .tensor("b", &[64], GgmlType::Q8_0, vec![2; 68])
        .tensor("c", &[256, 1, 1, 2], GgmlType::Q4K, vec![3; 288]);
    w
}

fn parse(bytes: &[u8]) -> Result<GgufFile, GgufError> {
    GgufFile::from_bytes(bytes.to_vec())
}

/// The error message, asserting that it is a format error (with a byte offset).
fn format_error(bytes: &[u8]) -> String {
    match parse(bytes) {
        Ok(_) => panic!("a corrupted file parsed"),
        Err(e @ GgufError::Format { .. }) => e.to_string(),
        Err(e) => panic!("expected a format error, got {e}"),
    }
}

fn put_u32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

fn put_u64(b: &mut [u8], at: usize, v: u64) {
    b[at..at + 8].copy_from_slice(&v.to_le_bytes());
}

fn built() -> (Vec<u8>, Layout) {
    sample().build()
}

#[test]
fn well_formed_sample_reads_back() {
    let (bytes, layout) = built();
    let f = parse(&bytes).unwrap();
    assert_eq!(f.version(), 3);
    assert_eq!(f.alignment(), 64);
    assert_eq!(f.data_offset() as usize, layout.data_offset);
    assert_eq!(f.architecture().unwrap(), Some("llama"));
    assert_eq!(f.get_u32("t.u8").unwrap(), Some(200));
    assert_eq!(f.get_i64("t.i8").unwrap(), Some(-5));
    assert_eq!(f.get_u32("t.u16").unwrap(), Some(65000));
    assert_eq!(f.get_i64("t.i16").unwrap(), Some(-30000));
    assert_eq!(f.get_u32("t.u32").unwrap(), Some(4_000_000_000));
    assert_eq!(f.get_i64("t.i32").unwrap(), Some(-7));
    assert_eq!(f.get_f32("t.f32").unwrap(), Some(1.5));
    assert_eq!(f.get_bool("t.bool").unwrap(), Some(true));
    assert_eq!(f.get_u64("t.u64").unwrap(), Some(1 << 40));
    assert_eq!(f.get_i64("t.i64").unwrap(), Some(-(1 << 40)));
    assert_eq!(f.get_f32("t.f64").unwrap(), Some(0.25));
    let strs: Vec<&[u8]> = f.get_str_array("t.strs").unwrap().unwrap().iter().collect();
    assert_eq!(strs, vec![&b"a"[..], b"", "ü€".as_bytes()]);
    assert_eq!(f.get_f32_array("t.f32s").unwrap(), Some(vec![1.0, -2.0]));
    assert_eq!(f.get_i32_array("t.i32s").unwrap(), Some(vec![3, -4, 5]));
    let Some(MetaValue::Array(nested)) = f.get("t.nested") else {
        panic!("nested array missing")
    };
    let items = f.array_items(nested);
    assert_eq!(items.len(), 2);
    let MetaValue::Array(inner) = items[0] else {
        panic!()
    };
    assert_eq!(
        f.array_items(&inner),
        vec![MetaValue::U32(1), MetaValue::U32(2)]
    );

    // Typed look-ups refuse the wrong type and report absent keys as None.
    assert!(f.get_str("t.u32").is_err());
    assert!(f.get_u32("t.i32").is_err(), "negative value is not a u32");
    assert!(f.get_u32("t.u64").is_err(), "2^40 does not fit in u32");
    assert!(f.get_str_array("t.f32s").is_err());
    assert_eq!(f.get_u32("absent").unwrap(), None);

    assert_eq!(f.tensors().len(), 3);
    let c = f.tensor("c").unwrap();
    assert_eq!(c.ty, GgmlType::Q4K);
    assert_eq!((c.n_elements(), c.row_len(), c.n_rows()), (512, 256, 2));
    assert_eq!(f.tensor_data(c), &[3u8; 288][..]);
    assert_eq!(f.tensor_data(f.tensor("b").unwrap()), &[2u8; 68][..]);
    assert_eq!(f.tensor("b").unwrap().offset % 64, 0);
}

#[test]
fn version_2_is_read() {
    let mut w = sample();
    w.version = 2;
    assert_eq!(parse(&w.build().0).unwrap().version(), 2);
}

#[test]
fn every_truncation_of_the_sample_is_an_error() {
    let (bytes, _) = built();
    let last_tensor_end = bytes.len();
    for n in 0..last_tensor_end {
        let e = format_error(&bytes[..n]);
        assert!(e.contains("at byte"), "{n}: {e}");
    }
}

#[test]
fn header_fields() {
    let (good, _) = built();
    let mut b = good.clone();
    b[0] = b'X';
    assert!(format_error(&b).contains("not a GGUF file"));

    for (v, want) in [
        (1, "version 1 is not supported"),
        (4, "version 4 is not supported"),
        (3u32.swap_bytes(), "big-endian"),
    ] {
        let mut b = good.clone();
        put_u32(&mut b, 4, v);
        let e = format_error(&b);
        assert!(e.contains(want), "{e}");
        assert!(e.contains("at byte 4"), "{e}");
    }

    let mut b = good.clone();
    put_u64(&mut b, 8, 1 << 60);
    assert!(format_error(&b).contains("tensor count"));

    let mut b = good.clone();
    put_u64(&mut b, 16, 1 << 60);
    let e = format_error(&b);
    assert!(
        e.contains("metadata count") && e.contains("at byte 16"),
        "{e}"
    );

    // One tensor more than described: the next bytes are read as a tensor info.
    let mut b = good.clone();
    put_u64(&mut b, 8, 4);
    format_error(&b);
}

#[test]
fn metadata_fields() {
    let (good, layout) = built();
    let idx = |key: &str| {
        sample()
            .metadata
            .iter()
            .position(|(k, _)| k == key)
            .unwrap()
    };

    // A key length of 10 GB.
    let mut b = good.clone();
    put_u64(&mut b, layout.kv[1], 10_000_000_000);
    let e = format_error(&b);
    assert!(e.contains("claims 10000000000 bytes"), "{e}");
    assert!(e.contains(&format!("at byte {}", layout.kv[1])), "{e}");

    // Unknown value type.
    let mut b = good.clone();
    put_u32(&mut b, layout.kv_type[1], 13);
    assert!(format_error(&b).contains("unknown metadata value type 13"));

    // A string value whose length runs past the end.
    let i = idx("general.architecture");
    let mut b = good.clone();
    put_u64(&mut b, layout.kv_type[i] + 4, u64::MAX);
    assert!(format_error(&b).contains("general.architecture"));

    // An array of 2^40 elements.
    let i = idx("t.i32s");
    let mut b = good.clone();
    put_u64(&mut b, layout.kv_type[i] + 8, 1 << 40);
    let e = format_error(&b);
    assert!(e.contains("array of 1099511627776 i32 does not fit"), "{e}");

    // An array of 2^62 strings (the count times 8 overflows u64 checks only if done wrong).
    let i = idx("t.strs");
    let mut b = good.clone();
    put_u64(&mut b, layout.kv_type[i] + 8, 1 << 62);
    assert!(format_error(&b).contains("does not fit"));

    // An array whose element type is unknown.
    let mut b = good.clone();
    put_u32(&mut b, layout.kv_type[i] + 4, 99);
    assert!(format_error(&b).contains("unknown metadata value type 99"));

    // A bool that is neither 0 nor 1.
    let i = idx("t.bool");
    let mut b = good.clone();
    b[layout.kv_type[i] + 4] = 7;
    assert!(format_error(&b).contains("bool value is 7"));

    // A key that is not UTF-8.
    let mut b = good.clone();
    b[layout.kv[1] + 8] = 0xff;
    assert!(format_error(&b).contains("not valid UTF-8"));

    // Duplicate keys.
    let mut w = sample();
    w.kv("t.u8", Value::U8(1));
    let e = format_error(&w.build().0);
    assert!(e.contains("'t.u8' appears twice"), "{e}");

    // Alignment that is not a power of two, or zero.
    for a in [0u32, 3, 48] {
        let mut w = sample();
        w.metadata.retain(|(k, _)| k != "general.alignment");
        w.kv("general.alignment", Value::U32(a));
        let e = format_error(&w.build().0);
        assert!(e.contains("power of two"), "{a}: {e}");
    }
}

#[test]
fn deeply_nested_arrays_are_refused() {
    let mut v = Value::U8(1);
    for _ in 0..100 {
        v = Value::Array(v.type_id(), vec![v]);
    }
    let mut w = Writer::new();
    w.kv("deep", v);
    assert!(format_error(&w.build().0).contains("nested"));
}

#[test]
fn tensor_fields() {
    let (good, layout) = built();

    for (n, want) in [(0u32, "0 dimensions"), (5, "5 dimensions")] {
        let mut b = good.clone();
        put_u32(&mut b, layout.tensor_dims[0], n);
        let e = format_error(&b);
        assert!(e.contains(want) && e.contains("tensor 'a'"), "{e}");
    }

    // A zero dimension.
    let mut b = good.clone();
    put_u64(&mut b, layout.tensor_dims[0] + 4 + 8, 0);
    assert!(format_error(&b).contains("dimension is zero"));

    // Dimensions whose product overflows.
    let mut b = good.clone();
    put_u64(&mut b, layout.tensor_dims[2] + 4, 1 << 40);
    put_u64(&mut b, layout.tensor_dims[2] + 12, 1 << 40);
    assert!(format_error(&b).contains("overflows"));

    // A row that is not a whole number of blocks.
    let mut b = good.clone();
    put_u64(&mut b, layout.tensor_dims[1] + 4, 40);
    assert!(format_error(&b).contains("not a multiple of the Q8_0 block size 32"));

    // ggml types unknown to hearth (removed ids, and ones never assigned).
    for id in [4u32, 5, 31, 99, u32::MAX] {
        let mut b = good.clone();
        put_u32(&mut b, layout.tensor_type[0], id);
        let e = format_error(&b);
        assert!(e.contains(&format!("ggml type id {id} is unknown")), "{e}");
        assert!(
            e.contains(&format!("at byte {}", layout.tensor_type[0])),
            "{e}"
        );
    }

    // Offsets outside the file, misaligned, and overlapping.
    let mut b = good.clone();
    put_u64(&mut b, layout.tensor_offset[2], 1 << 20);
    assert!(format_error(&b).contains("extends past the end"));

    let mut b = good.clone();
    put_u64(&mut b, layout.tensor_offset[2], u64::MAX - 63);
    assert!(format_error(&b).contains("extends past the end"));

    let mut b = good.clone();
    put_u64(&mut b, layout.tensor_offset[1], 8);
    assert!(format_error(&b).contains("not a multiple of the alignment 64"));

    let mut b = good.clone();
    put_u64(&mut b, layout.tensor_offset[1], 0);
    let e = format_error(&b);
    assert!(e.contains("overlap"), "{e}");

    // Duplicate names.
    let mut w = sample();
    w.tensor("a", &[32], GgmlType::F32, vec![0; 128]);
    assert!(format_error(&w.build().0).contains("'a' appears twice"));

    // A tensor name that is not UTF-8.
    let mut b = good.clone();
    b[layout.tensor_info[0] + 8] = 0xc0;
    assert!(format_error(&b).contains("not valid UTF-8"));
}

/// Flip bytes all over the header of the sample: every result is Ok or a clean error.
#[test]
fn random_corruption_never_panics() {
    let (good, layout) = built();
    let mut state = 0x9e3779b97f4a7c15u64;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for _ in 0..20_000 {
        let mut b = good.clone();
        for _ in 0..1 + next() % 4 {
            let at = (next() as usize) % layout.data_offset;
            b[at] = next() as u8;
        }
        if let Ok(f) = parse(&b) {
            // Whatever parsed must be readable without panics.
            for t in f.tensors() {
                assert_eq!(f.tensor_data(t).len() as u64, t.size);
            }
            for (k, _) in f.metadata() {
                let _ = f.get_str(k);
                let _ = f.get_str_array(k).map(|a| a.map(|a| a.iter().count()));
                let _ = f.get_f32_array(k);
            }
        }
    }
}

/// The real models' headers cut at every KiB and around every field boundary.
#[test]
fn real_model_truncations() {
    for name in [common::SMOLLM2, common::GEMMA3] {
        let path = common::test_model(name);
        let bytes = std::fs::read(&path).unwrap();
        let whole = GgufFile::open(&path).unwrap();
        let header = whole.data_offset() as usize;
        let mut cuts: Vec<usize> = (0..header).step_by(1024).collect();
        // Boundaries: the fixed header, and the start of every tensor info (which we
        // find from the parsed names: each info starts with its name's length).
        cuts.extend(0..64);
        let mut pos = 0;
        for t in whole.tensors() {
            let needle = t.name.as_bytes();
            if let Some(i) = find(&bytes[pos..header], needle) {
                let start = pos + i - 8;
                cuts.extend(start.saturating_sub(2)..start + 12 + needle.len());
                pos = start + 8 + needle.len();
            }
        }
        cuts.extend(header - 64..header);
        for n in cuts {
            let e = validate(&bytes[..n]).expect_err("a truncated header parsed");
            assert!(e.to_string().contains("at byte"), "{name} cut at {n}: {e}");
        }
        // Cut inside the data section: the last tensor no longer fits.
        let e = validate(&bytes[..bytes.len() - 1]).unwrap_err().to_string();
        assert!(e.contains("extends past the end"), "{e}");
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[test]
fn real_models_parse() {
    for (name, arch, n_tensors) in [
        (common::SMOLLM2, "llama", 272),
        (common::GEMMA3, "gemma3", 236),
    ] {
        let f = GgufFile::open(&common::test_model(name)).unwrap();
        assert_eq!(f.architecture().unwrap(), Some(arch));
        assert_eq!(f.tensors().len(), n_tensors);
        let total: u64 = f.tensors().iter().map(|t| t.size).sum();
        assert!(total <= f.file_size() - f.data_offset());
    }
}

//! hearth's quant kernels against an independent oracle: the Python `gguf` package
//! (`tests/oracle/gguf_quants.py`), compared bit for bit.
//!
//! Why shaped so:
//! - Python starts slowly (~0.3 s), so each test writes all its cases to files and runs
//!   the oracle once with a job list.
//! - Hand-built blocks are pseudo-random bytes (our own splitmix64, so runs are
//!   reproducible) with the f16/f32 scale fields forced to finite, sane values, except
//!   for one block in 16 that gets an extreme one (0, -0, max, subnormal, inf, NaN):
//!   random scale bits would mostly test NaN propagation, and sane ones test arithmetic.
//! - Real-model rows are located and cut by the oracle script (its own GGUF header walker),
//!   independently of hearth's GGUF reader, and Rust dequantizes the raw bytes it cut.
//!   hearth's reader is then checked to describe the same tensors and hand out the same
//!   bytes for those rows, and every tensor is dequantized whole (all values finite).
//! - Equality is on f32 bits, except that any NaN equals any NaN (NaN payloads may differ
//!   between f16 conversion routines and do not matter).

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use hearth::gguf::GgufFile;
use hearth::quant::{
    dequantize_row, quantize_row_q8_0, quantize_row_q8_1, quantize_row_q8_k, GgmlType,
};

const ORACLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/oracle/gguf_quants.py");

/// splitmix64: tiny, good enough, and ours.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    /// Uniform in [0, 1).
    fn unit(&mut self) -> f32 {
        (self.next() >> 40) as f32 / (1u64 << 24) as f32
    }
    fn fill(&mut self, buf: &mut [u8]) {
        for b in buf {
            *b = self.next() as u8;
        }
    }
}

/// A fresh scratch directory under cargo's per-target temp dir.
fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("quant_oracle_{name}"));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs the oracle once on a list of jobs (each a list of tab-separated fields).
fn run_oracle(dir: &Path, jobs: &[Vec<String>]) {
    let list = dir.join("jobs.tsv");
    let text: String = jobs.iter().map(|j| j.join("\t") + "\n").collect();
    fs::write(&list, text).unwrap();
    let out = Command::new("python3")
        .arg(ORACLE)
        .arg("--jobs")
        .arg(&list)
        .output()
        .unwrap_or_else(|e| panic!("cannot run python3 (needed for the oracle): {e}"));
    assert!(
        out.status.success(),
        "oracle {ORACLE} failed ({}); it needs `pip install gguf numpy`:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

fn f32s(bytes: &[u8]) -> Vec<f32> {
    bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
        .collect()
}

fn same(a: f32, b: f32) -> bool {
    a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan())
}

/// Panics with the first few differences (and their count) if `ours != oracle`.
fn assert_same_f32(what: &str, ours: &[f32], oracle: &[f32], block: usize) {
    assert_eq!(ours.len(), oracle.len(), "{what}: lengths");
    let bad: Vec<usize> = (0..ours.len())
        .filter(|&i| !same(ours[i], oracle[i]))
        .collect();
    if !bad.is_empty() {
        let show: Vec<String> = bad
            .iter()
            .take(8)
            .map(|&i| {
                format!(
                    "  [{i}] (block {}, elem {}): ours {:e} ({:#010x}) oracle {:e} ({:#010x})",
                    i / block,
                    i % block,
                    ours[i],
                    ours[i].to_bits(),
                    oracle[i],
                    oracle[i].to_bits()
                )
            })
            .collect();
        panic!(
            "{what}: {} of {} elements differ:\n{}",
            bad.len(),
            ours.len(),
            show.join("\n")
        );
    }
}

const F16_EXTREMES: [u16; 9] = [
    0x0000, 0x8000, 0x7bff, 0xfbff, 0x0001, 0x03ff, 0x7c00, 0xfc00, 0x7e00,
];
const F32_EXTREMES: [u32; 8] = [
    0x0000_0000,
    0x8000_0000,
    0x7f7f_ffff,
    0x0000_0001,
    0x007f_ffff,
    0x7f80_0000,
    0xff80_0000,
    0x7fc0_0000,
];

/// Byte offsets of the f16 scale fields in one block of `ty` (written from ggml-common.h,
/// deliberately not from hearth's block structs), and whether the scale is an f32 instead.
fn scale_fields(ty: GgmlType) -> (&'static [usize], bool) {
    use GgmlType::*;
    match ty {
        Q4_0 | Q5_0 | Q8_0 | Iq4Nl | Iq4Xs => (&[0], false),
        Q4_1 | Q5_1 | Q4K | Q5K => (&[0, 2], false),
        Q2K => (&[80, 82], false),
        Q3K => (&[108], false),
        Q6K => (&[208], false),
        Q8K => (&[0], true),
        _ => (&[], false),
    }
}

/// Random blocks of `ty` with sane scales, except every 16th block gets extreme ones.
fn hand_built(ty: GgmlType, n_blocks: usize, rng: &mut Rng) -> Vec<u8> {
    let size = ty.type_size();
    let mut bytes = vec![0u8; n_blocks * size];
    rng.fill(&mut bytes);
    let (fields, is_f32) = scale_fields(ty);
    for (b, block) in bytes.chunks_exact_mut(size).enumerate() {
        for (k, &off) in fields.iter().enumerate() {
            let extreme = b % 16 == 0;
            let which = b / 16 + k;
            if is_f32 {
                let bits = if extreme {
                    F32_EXTREMES[which % F32_EXTREMES.len()]
                } else {
                    // sign, exponent 2^-20 .. 2^0, random mantissa
                    ((rng.below(2) as u32) << 31)
                        | ((107 + rng.below(21) as u32) << 23)
                        | (rng.next() as u32 & 0x7f_ffff)
                };
                block[off..off + 4].copy_from_slice(&bits.to_le_bytes());
            } else {
                let bits = if extreme {
                    F16_EXTREMES[which % F16_EXTREMES.len()]
                } else {
                    // sign, exponent 2^-12 .. 2^2, random mantissa
                    ((rng.below(2) as u16) << 15)
                        | ((3 + rng.below(15) as u16) << 10)
                        | (rng.next() as u16 & 0x3ff)
                };
                block[off..off + 2].copy_from_slice(&bits.to_le_bytes());
            }
        }
    }
    bytes
}

/// f32 test rows for the quantizers: per-block magnitudes from 1e-3 to 1e3, plus blocks of
/// zeros, exact rounding ties, a negative extreme, tiny values (f16(d) = 0) and one spike.
fn quant_input(n_blocks: usize, block: usize, rng: &mut Rng) -> Vec<f32> {
    let mut x = Vec::with_capacity(n_blocks * block);
    for b in 0..n_blocks {
        let start = x.len();
        let mag = 10f32.powf(rng.unit() * 6.0 - 3.0);
        for _ in 0..block {
            x.push((rng.unit() * 2.0 - 1.0) * mag);
        }
        let blk = &mut x[start..];
        match b % 8 {
            1 => blk.fill(0.0),
            2 => {
                // |max| = 127 makes d = 1 (Q8_0) and iscale = -1 (Q8_K): x.5 are ties.
                for (i, v) in blk.iter_mut().enumerate() {
                    *v = (i % 200) as f32 - 100.5;
                }
                blk[block / 2] = 127.0;
            }
            3 => blk[block - 1] = -2.0 * mag, // the signed max is negative
            4 => {
                for v in blk.iter_mut() {
                    *v *= 1e-30;
                }
            }
            5 => blk[3] = 1e6, // one spike: everything else rounds to ~0
            _ => {}
        }
    }
    x
}

#[test]
fn hand_built_blocks_match_oracle() {
    let dir = scratch("hand_built");
    let mut rng = Rng(0x5eed_0001);
    let mut jobs = Vec::new();
    let mut cases = Vec::new();

    for ty in GgmlType::all().filter(|t| t.is_supported()) {
        let n_blocks = match ty.block_size() {
            1 => 4096,
            32 => 256,
            _ => 64,
        };
        let mut bytes = hand_built(ty, n_blocks, &mut rng);
        if matches!(ty, GgmlType::F16 | GgmlType::Bf16) {
            // Every 16-bit pattern once (fully random bits cover F32 well enough).
            bytes = (0..=u16::MAX).flat_map(|v| v.to_le_bytes()).collect();
        }
        let src = dir.join(format!("{ty}.bin"));
        let out = dir.join(format!("{ty}.f32"));
        fs::write(&src, &bytes).unwrap();
        jobs.push(vec![
            "dequant".into(),
            ty.name().into(),
            src.display().to_string(),
            out.display().to_string(),
        ]);
        cases.push((ty, bytes, out));
    }

    type Quantizer = fn(&[f32], &mut [u8]) -> Result<(), hearth::quant::QuantError>;
    let quantizers: [(GgmlType, Quantizer); 3] = [
        (GgmlType::Q8_0, quantize_row_q8_0),
        (GgmlType::Q8_1, quantize_row_q8_1),
        (GgmlType::Q8K, quantize_row_q8_k),
    ];
    let mut qcases = Vec::new();
    for (ty, f) in quantizers {
        let x = quant_input(96, ty.block_size(), &mut rng);
        let src = dir.join(format!("{ty}.in.f32"));
        let out = dir.join(format!("{ty}.q"));
        fs::write(
            &src,
            x.iter().flat_map(|v| v.to_le_bytes()).collect::<Vec<u8>>(),
        )
        .unwrap();
        jobs.push(vec![
            "quant".into(),
            ty.name().into(),
            src.display().to_string(),
            out.display().to_string(),
        ]);
        qcases.push((ty, f, x, out));
    }

    run_oracle(&dir, &jobs);

    for (ty, bytes, out) in cases {
        let n = bytes.len() / ty.type_size() * ty.block_size();
        let mut ours = vec![0f32; n];
        dequantize_row(ty, &bytes, &mut ours).unwrap();
        let oracle = f32s(&fs::read(&out).unwrap());
        assert_same_f32(&format!("dequantize {ty}"), &ours, &oracle, ty.block_size());
    }

    for (ty, f, x, out) in qcases {
        let mut ours = vec![0u8; ty.row_bytes(x.len() as u64).unwrap() as usize];
        f(&x, &mut ours).unwrap();
        let oracle = fs::read(&out).unwrap();
        assert_eq!(ours.len(), oracle.len(), "quantize {ty}: lengths");
        let size = ty.type_size();
        for (b, (o, r)) in ours
            .chunks_exact(size)
            .zip(oracle.chunks_exact(size))
            .enumerate()
        {
            assert_eq!(o, r, "quantize {ty}: block {b} differs (ours, then oracle)");
        }
    }
}

fn models_dir() -> PathBuf {
    match std::env::var_os("HEARTH_TEST_MODELS") {
        Some(d) => PathBuf::from(d),
        None => {
            let home = std::env::var_os("HOME").expect("HOME or HEARTH_TEST_MODELS must be set");
            Path::new(&home).join(".cache/hearth/test-models")
        }
    }
}

/// (file, types the file must contain)
const MODELS: [(&str, &[&str]); 2] = [
    ("SmolLM2-135M-Instruct.Q4_1.gguf", &["F32", "Q4_1"]),
    (
        "gemma-3-270m-q4_k_m.gguf",
        &["F32", "Q4_K", "Q5_0", "Q6_K", "Q8_0"],
    ),
];

#[test]
fn real_model_rows_match_oracle() {
    let models = models_dir();
    for (file, _) in MODELS {
        let path = models.join(file);
        assert!(
            path.is_file(),
            "test model {} is missing: run scripts/fetch-test-models \
             (or point HEARTH_TEST_MODELS at a directory holding it)",
            path.display()
        );
    }

    let dir = scratch("models");
    let jobs: Vec<Vec<String>> = MODELS
        .iter()
        .enumerate()
        .map(|(i, (file, _))| {
            vec![
                "sample".into(),
                models.join(file).display().to_string(),
                dir.join(format!("m{i}")).display().to_string(),
                "8".into(),
            ]
        })
        .collect();
    run_oracle(&dir, &jobs);

    for (i, (file, must_have)) in MODELS.iter().enumerate() {
        let gguf = GgufFile::open(&models.join(file))
            .unwrap_or_else(|e| panic!("{file}: hearth's GGUF reader failed: {e}"));
        let mut ours_tensors = gguf.tensors().iter();
        let out = dir.join(format!("m{i}"));
        let index = fs::read_to_string(out.join("index.tsv")).unwrap();
        let raw = fs::read(out.join("raw.bin")).unwrap();
        let oracle = f32s(&fs::read(out.join("f32.bin")).unwrap());
        let mut f32_off = 0usize;
        let mut types = BTreeSet::new();
        let mut tensors = 0;
        for line in index.lines() {
            let f: Vec<&str> = line.split('\t').collect();
            let [name, ty_name, row_len, n_rows, rows, raw_off, raw_len] = f[..] else {
                panic!("bad index line {line:?}");
            };
            let ty = GgmlType::all()
                .find(|t| t.name() == ty_name)
                .unwrap_or_else(|| panic!("{file}: {name}: unknown type {ty_name}"));
            assert!(ty.is_supported(), "{file}: {name}: {ty} unsupported");
            let row_len: usize = row_len.parse().unwrap();
            let n_rows: usize = n_rows.parse().unwrap();
            let raw_off: usize = raw_off.parse().unwrap();
            let raw_len: usize = raw_len.parse().unwrap();
            let row_bytes = ty.row_bytes(row_len as u64).unwrap() as usize;
            assert_eq!(raw_len, row_bytes * n_rows, "{file}: {name}");
            let tensor_raw = &raw[raw_off..raw_off + raw_len];

            // hearth's reader agrees with the oracle's walker on this tensor and its bytes.
            let t = ours_tensors
                .next()
                .unwrap_or_else(|| panic!("{file}: hearth's reader lacks {name}"));
            assert_eq!((t.name.as_str(), t.ty), (name, ty), "{file}: tensor order");
            assert_eq!(t.row_len(), row_len as u64, "{file}: {name}");
            let data = gguf.tensor_data(t);
            for (r, cut) in rows.split(',').zip(tensor_raw.chunks_exact(row_bytes)) {
                let r: usize = r.parse().unwrap();
                assert_eq!(
                    &data[r * row_bytes..(r + 1) * row_bytes],
                    cut,
                    "{file}: {name} row {r}: hearth's reader gives other bytes"
                );
            }

            let want = &oracle[f32_off..f32_off + n_rows * row_len];
            f32_off += n_rows * row_len;

            let mut ours = vec![0f32; row_len];
            for ((r, src), want) in rows
                .split(',')
                .zip(tensor_raw.chunks_exact(row_bytes))
                .zip(want.chunks_exact(row_len))
            {
                dequantize_row(ty, src, &mut ours).unwrap();
                assert_same_f32(
                    &format!("{file}: {name} ({ty}) row {r}"),
                    &ours,
                    want,
                    ty.block_size(),
                );
            }
            types.insert(ty_name.to_string());
            tensors += 1;
        }
        assert_eq!(
            f32_off,
            oracle.len(),
            "{file}: oracle output not fully used"
        );
        assert!(
            ours_tensors.next().is_none(),
            "{file}: hearth sees extra tensors"
        );
        all_rows_finite(file, &gguf);
        assert!(tensors > 100, "{file}: only {tensors} tensors sampled");
        for t in *must_have {
            assert!(types.contains(*t), "{file}: no {t} tensor seen ({types:?})");
        }
    }
}

/// Dequantizes every row of every tensor (no oracle: real weights are finite, and a
/// whole-file pass catches any length bookkeeping a few sampled rows would miss).
fn all_rows_finite(file: &str, gguf: &GgufFile) {
    let mut buf = Vec::new();
    for t in gguf.tensors() {
        let row_len = t.row_len() as usize;
        let row_bytes = t.ty.row_bytes(t.row_len()).unwrap() as usize;
        let data = gguf.tensor_data(t);
        assert_eq!(
            data.len(),
            row_bytes * t.n_rows() as usize,
            "{file}: {}",
            t.name
        );
        buf.resize(row_len, 0f32);
        for (r, src) in data.chunks_exact(row_bytes).enumerate() {
            dequantize_row(t.ty, src, &mut buf).unwrap();
            if let Some(j) = buf.iter().position(|v| !v.is_finite()) {
                panic!("{file}: {} row {r} elem {j} = {}", t.name, buf[j]);
            }
        }
    }
}

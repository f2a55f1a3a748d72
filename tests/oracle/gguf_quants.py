#!/usr/bin/env python3
"""Independent oracle for hearth's quant kernels, built on the Python `gguf` package.

hearth's Rust test (tests/quant_oracle.rs) writes inputs to files and runs this script
once per batch (process start costs ~0.3 s), then compares the outputs bit for bit.

Usage:
    gguf_quants.py dequant TYPE IN OUT        raw blocks -> little-endian f32
    gguf_quants.py quant TYPE IN OUT          little-endian f32 -> raw blocks
    gguf_quants.py sample MODEL OUTDIR ROWS   sample rows of every tensor of a GGUF file
    gguf_quants.py --jobs FILE                one of the above per line, tab-separated

`sample` locates the tensors of MODEL with the small header walker below (independent of
hearth's GGUF reader; gguf.GGUFReader would do, but it takes ~15 s on gemma-3's 262k-token
vocabulary because it materializes every metadata array; set HEARTH_ORACLE_GGUFREADER=1 to
cross-check the walker against it) and, for every tensor, picks up to ROWS rows (first, last, evenly spread ones), appending their raw
bytes to OUTDIR/raw.bin and the gguf package's dequantization of them to OUTDIR/f32.bin.
OUTDIR/index.tsv gets one line per tensor:
    name  type  row_len  n_rows  row_indices(comma-separated)  raw_offset  raw_len

Dequantization/quantization is gguf.quants' wherever it has the type. It lacks the
activation formats Q8_K (dequant and quant) and Q8_1 (quant); those below are transcribed
by hand from ggml's C reference (quantize_row_q8_K_ref, quantize_row_q8_1_ref), in numpy,
separately from the Rust code.
"""

import os
import sys

import numpy as np
from gguf import GGMLQuantizationType as T
from gguf import GGUFReader
from gguf import quants as gq

QK_K = 256


def q8k_dequant(raw: np.ndarray) -> np.ndarray:
    b = raw.reshape(-1, 292)
    d = b[:, 0:4].copy().view("<f4").astype(np.float32)  # (n, 1)
    qs = b[:, 4:260].view(np.int8).astype(np.float32)
    return (d * qs).reshape(-1)


def q8k_quant(x: np.ndarray) -> np.ndarray:
    x = x.reshape(-1, QK_K).astype(np.float32)
    n = x.shape[0]
    ax = np.abs(x)
    imax = ax.argmax(axis=1)  # first index of the largest |x|, like C's strict '>'
    rows = np.arange(n)
    amax = ax[rows, imax]
    mx = x[rows, imax]
    zero = amax == 0
    with np.errstate(divide="ignore", invalid="ignore"):
        iscale = (np.float32(-127.0) / np.where(zero, np.float32(1), mx)).astype(np.float32)
        # ggml's nearest_int rounds half to even, as np.rint does (|v| <= 127 here).
        v = np.rint(iscale[:, None] * x)
        q = np.minimum(v, 127).astype(np.int8)
        d = (np.float32(1.0) / iscale).astype(np.float32)
    q[zero] = 0
    d[zero] = 0
    bsums = q.reshape(n, 16, 16).astype(np.int32).sum(axis=2).astype("<i2")
    out = np.concatenate(
        [d.astype("<f4").reshape(n, 1).view(np.uint8), q.view(np.uint8), bsums.view(np.uint8)],
        axis=1,
    )
    return out.reshape(-1)


def q8_1_quant(x: np.ndarray) -> np.ndarray:
    x = x.reshape(-1, 32).astype(np.float32)
    n = x.shape[0]
    d = (np.abs(x).max(axis=1, keepdims=True) / np.float32(127)).astype(np.float32)
    with np.errstate(divide="ignore"):
        idv = np.where(d == 0, np.float32(0), np.float32(1) / d).astype(np.float32)
    q = gq.np_roundf(x * idv).astype(np.int8)
    s = q.astype(np.int32).sum(axis=1, keepdims=True).astype(np.float32) * d
    out = np.concatenate(
        [
            d.astype(np.float16).view(np.uint8),
            s.astype(np.float32).astype(np.float16).view(np.uint8),
            q.view(np.uint8),
        ],
        axis=1,
    )
    return out.reshape(n * 36)


def dequant(ty: str, raw: np.ndarray) -> np.ndarray:
    if ty == "Q8_K":
        return q8k_dequant(raw)
    out = gq.dequantize(raw, T[ty])
    return np.asarray(out, dtype=np.float32).reshape(-1)


def quant(ty: str, x: np.ndarray) -> np.ndarray:
    if ty == "Q8_K":
        return q8k_quant(x)
    if ty == "Q8_1":
        return q8_1_quant(x)
    block, _ = gq.GGML_QUANT_SIZES[T[ty]]
    return np.asarray(gq.quantize(x.reshape(-1, block), T[ty])).view(np.uint8).reshape(-1)


# GGUF metadata value types: fixed-size scalars by type id, 8 = string, 9 = array.
_SCALAR_SIZE = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}


def gguf_tensors(path: str) -> list[tuple[str, list[int], str, int, int]]:
    """(name, dims, type name, absolute data offset, n_bytes) of each tensor, in order."""
    mm = np.memmap(path, dtype=np.uint8, mode="r")
    buf = memoryview(mm)
    pos = 0

    def u32() -> int:
        nonlocal pos
        v = int.from_bytes(buf[pos : pos + 4], "little")
        pos += 4
        return v

    def u64() -> int:
        nonlocal pos
        v = int.from_bytes(buf[pos : pos + 8], "little")
        pos += 8
        return v

    def string() -> str:
        nonlocal pos
        n = u64()
        v = bytes(buf[pos : pos + n]).decode("utf-8")
        pos += n
        return v

    def skip_value(vt: int) -> None:
        nonlocal pos
        if vt in _SCALAR_SIZE:
            pos += _SCALAR_SIZE[vt]
        elif vt == 8:
            n = u64()  # not `pos += u64()`: that would add to the pre-call pos
            pos += n
        elif vt == 9:
            et, n = u32(), u64()
            if et in _SCALAR_SIZE:
                pos += _SCALAR_SIZE[et] * n
            else:
                for _ in range(n):
                    skip_value(et)
        else:
            raise ValueError(f"bad GGUF value type {vt} at {pos}")

    if bytes(buf[0:4]) != b"GGUF":
        raise ValueError(f"{path}: not a GGUF file")
    pos = 4
    version = u32()
    if version not in (2, 3):
        raise ValueError(f"{path}: GGUF version {version}")
    n_tensors, n_kv = u64(), u64()
    alignment = 32
    for _ in range(n_kv):
        key = string()
        vt = u32()
        if key == "general.alignment" and vt == 4:
            alignment = u32()
        else:
            skip_value(vt)
    infos = []
    for _ in range(n_tensors):
        name = string()
        dims = [u64() for _ in range(u32())]
        ty = T(u32()).name
        infos.append((name, dims, ty, u64()))
    data_start = (pos + alignment - 1) // alignment * alignment
    out = []
    for name, dims, ty, off in infos:
        block, type_size = gq.GGML_QUANT_SIZES[T[ty]]
        n_elems = int(np.prod(dims, dtype=np.int64))
        out.append((name, dims, ty, data_start + off, n_elems // block * type_size))
    if os.environ.get("HEARTH_ORACLE_GGUFREADER") == "1":
        reader = GGUFReader(path)
        assert len(reader.tensors) == len(out)
        for t, (name, dims, ty, off, n) in zip(reader.tensors, out):
            assert (t.name, [int(d) for d in t.shape], t.tensor_type.name, t.data_offset, t.n_bytes) == (
                name, dims, ty, off, n), name
    return out


def pick_rows(n_rows: int, want: int) -> list[int]:
    if n_rows <= want:
        return list(range(n_rows))
    picks = {0, 1, n_rows - 2, n_rows - 1}
    k = max(want - len(picks), 1)
    for i in range(1, k + 1):
        picks.add(i * (n_rows - 1) // (k + 1))
    return sorted(p for p in picks if 0 <= p < n_rows)[:want]


def sample(model: str, outdir: str, rows_per_tensor: int) -> None:
    os.makedirs(outdir, exist_ok=True)
    mm = np.memmap(model, dtype=np.uint8, mode="r")
    with open(os.path.join(outdir, "raw.bin"), "wb") as raw_f, open(
        os.path.join(outdir, "f32.bin"), "wb"
    ) as f32_f, open(os.path.join(outdir, "index.tsv"), "w") as idx:
        off = 0
        for name, dims, ty, data_off, n_bytes in gguf_tensors(model):
            row_len = dims[0]
            n_rows = int(np.prod(dims, dtype=np.int64)) // row_len
            data = mm[data_off : data_off + n_bytes]
            assert data.size == n_bytes, name
            row_bytes = data.size // n_rows
            rows = pick_rows(n_rows, rows_per_tensor)
            raw = np.concatenate([data[r * row_bytes : (r + 1) * row_bytes] for r in rows])
            f32 = dequant(ty, raw)
            assert f32.size == len(rows) * row_len, name
            raw_f.write(raw.tobytes())
            f32_f.write(f32.astype("<f4").tobytes())
            idx.write(
                f"{name}\t{ty}\t{row_len}\t{len(rows)}\t{','.join(map(str, rows))}\t{off}\t{raw.size}\n"
            )
            off += raw.size


def run(args: list[str]) -> None:
    cmd = args[0]
    if cmd == "dequant":
        ty, src, dst = args[1:4]
        raw = np.fromfile(src, dtype=np.uint8)
        dequant(ty, raw).astype("<f4").tofile(dst)
    elif cmd == "quant":
        ty, src, dst = args[1:4]
        x = np.fromfile(src, dtype="<f4").astype(np.float32)
        quant(ty, x).astype(np.uint8).tofile(dst)
    elif cmd == "sample":
        sample(args[1], args[2], int(args[3]))
    else:
        raise SystemExit(f"unknown command {cmd!r}")


def main() -> None:
    argv = sys.argv[1:]
    if not argv:
        raise SystemExit(__doc__)
    if argv[0] == "--jobs":
        with open(argv[1]) as f:
            for line in f:
                line = line.rstrip("\n")
                if line:
                    run(line.split("\t"))
    else:
        run(argv)


if __name__ == "__main__":
    main()

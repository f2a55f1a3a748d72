//! GPT-2 byte-level BPE (`tokenizer.ggml.model = "gpt2"`).
//!
//! Every byte of a pre-tokenized word is first mapped to one printable codepoint (GPT-2's
//! `bytes_to_unicode` table), so token texts are strings over those codepoints; the word then
//! starts as one symbol per byte and adjacent symbols are merged by rank, lowest rank first
//! (ties: leftmost), as long as some adjacent pair has a merge. This is llama.cpp's
//! `llm_tokenizer_bpe_session`, done on token ids instead of strings: [`Bpe::new`] checks that
//! both halves of every merge and their concatenation are tokens, so every merged symbol is a
//! token and a pair can be looked up by two ids.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::OnceLock;

use super::vocab::{Strings, Vocab};
use super::TokenizerError;

/// Fast non-cryptographic hasher for vocabulary maps (keys are fixed at load; the text only
/// looks them up, so there is no flooding concern).
#[derive(Default, Clone, Copy)]
pub struct FxHasher {
    hash: u64,
}

const FX_SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

impl FxHasher {
    #[inline]
    fn add(&mut self, w: u64) {
        self.hash = (self.hash.rotate_left(5) ^ w).wrapping_mul(FX_SEED);
    }
}

impl Hasher for FxHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.add(u64::from_le_bytes(w));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut w = [0u8; 8];
            w[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(w) ^ ((rest.len() as u64) << 59));
        }
    }
    #[inline]
    fn write_u64(&mut self, n: u64) {
        self.add(n);
    }
    #[inline]
    fn write_usize(&mut self, n: usize) {
        self.add(n as u64);
    }
    #[inline]
    fn finish(&self) -> u64 {
        // The multiply leaves the low bits poorly mixed and hashbrown indexes buckets with
        // them; rotating the well-mixed high bits down avoids long probe chains.
        self.hash.rotate_left(26)
    }
}

/// HashMap with [`FxHasher`].
pub type FxMap<K, V> = std::collections::HashMap<K, V, BuildHasherDefault<FxHasher>>;

/// GPT-2's byte -> codepoint table: printable Latin-1 bytes map to themselves, the other 68
/// bytes to U+0100.. in byte order.
pub fn byte_to_char_table() -> [char; 256] {
    let mut table = ['\0'; 256];
    let mut next = 0x100u32;
    for b in 0..=255u8 {
        let printable = matches!(b, b'!'..=b'~' | 0xA1..=0xAC | 0xAE..=0xFF);
        let cp = if printable {
            u32::from(b)
        } else {
            let c = next;
            next += 1;
            c
        };
        // All values are below 0x200, valid scalar values.
        table[usize::from(b)] = char::from_u32(cp).unwrap_or('\u{FFFD}');
    }
    table
}

/// The byte a GPT-2 codepoint stands for, if it is one of the 256.
pub fn char_to_byte(c: char) -> Option<u8> {
    static INVERSE: OnceLock<[u8; 0x144]> = OnceLock::new();
    let inv = INVERSE.get_or_init(|| {
        let mut inv = [0u8; 0x144];
        for (b, c) in byte_to_char_table().iter().enumerate() {
            inv[*c as usize] = b as u8;
        }
        inv
    });
    let cp = c as usize;
    match cp {
        0x21..=0x7E | 0xA1..=0xAC | 0xAE..=0x143 => Some(inv[cp]),
        _ => None,
    }
}

/// Decode a GPT-2 token text to bytes, as llama.cpp's `llama_decode_text`: a codepoint outside
/// the byte table becomes `[UNK_BYTE_0x<its utf-8 hex><the whole token text>]`.
pub fn decode_token_text(text: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len());
    decode_token_text_into(text, &mut out);
    out
}

/// [`decode_token_text`], appending to `out`.
pub fn decode_token_text_into(text: &[u8], out: &mut Vec<u8>) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let unk = |c: char, out: &mut Vec<u8>| {
        out.extend_from_slice(b"[UNK_BYTE_0x");
        let mut buf = [0u8; 4];
        for b in c.encode_utf8(&mut buf).bytes() {
            out.push(HEX[usize::from(b >> 4)]);
            out.push(HEX[usize::from(b & 15)]);
        }
        out.extend_from_slice(text);
        out.push(b']');
    };
    // As over `String::from_utf8_lossy(text)`: each invalid sequence is one U+FFFD.
    for chunk in text.utf8_chunks() {
        for c in chunk.valid().chars() {
            match char_to_byte(c) {
                Some(b) => out.push(b),
                None => unk(c, out),
            }
        }
        if !chunk.invalid().is_empty() {
            unk('\u{FFFD}', out);
        }
    }
}

const NONE: u32 = u32::MAX;

/// The merge table and byte symbols of one vocabulary.
pub struct Bpe {
    /// (left id, right id) -> (rank, merged id).
    merges: FxMap<u64, (u32, u32)>,
    /// Symbol of each byte: its token id, or `n_tokens + byte` when the byte's codepoint is
    /// not a token (such a symbol never merges and falls back as llama.cpp does).
    byte_sym: [u32; 256],
    /// UTF-8 of each byte's GPT-2 codepoint.
    byte_utf8: [([u8; 2], u8); 256],
    /// Token whose text is exactly the one byte `b` (llama.cpp's last-resort lookup).
    single_byte_token: [u32; 256],
    n_tokens: u32,
    ignore_merges: bool,
}

#[inline]
fn pair_key(a: u32, b: u32) -> u64 {
    (u64::from(a) << 32) | u64::from(b)
}

impl Bpe {
    pub fn new(
        merges: &Strings,
        vocab: &Vocab,
        n_tokens: u32,
        ignore_merges: bool,
    ) -> Result<Bpe, TokenizerError> {
        let mut table: FxMap<u64, (u32, u32)> = FxMap::default();
        table.reserve(merges.len());
        let mut joined = Vec::new();
        for (rank, m) in merges.iter().enumerate() {
            // llama.cpp splits at the first space after the first byte.
            let pos = m.iter().skip(1).position(|&b| b == b' ').map(|p| p + 1);
            let Some(pos) = pos else {
                return Err(TokenizerError::InvalidMerge {
                    index: rank,
                    merge: String::from_utf8_lossy(m).into_owned(),
                    reason: "no space separating its two halves",
                });
            };
            let (l, r) = (&m[..pos], &m[pos + 1..]);
            joined.clear();
            joined.extend_from_slice(l);
            joined.extend_from_slice(r);
            let lookup = |s: &[u8], what| {
                vocab.id(s).ok_or_else(|| TokenizerError::InvalidMerge {
                    index: rank,
                    merge: String::from_utf8_lossy(m).into_owned(),
                    reason: what,
                })
            };
            let li = lookup(l, "its left half is not a token")?;
            let ri = lookup(r, "its right half is not a token")?;
            let ji = lookup(&joined, "the merged text is not a token")?;
            // Rank fits u32 as long as there are fewer than 4G merges; a GGUF array can't
            // hold more.
            table
                .entry(pair_key(li, ri))
                .or_insert((rank.min(u32::MAX as usize - 1) as u32, ji));
        }
        let chars = byte_to_char_table();
        let mut byte_sym = [0u32; 256];
        let mut byte_utf8 = [([0u8; 2], 0u8); 256];
        let mut single_byte_token = [NONE; 256];
        for b in 0..256usize {
            let mut buf = [0u8; 4];
            let s = chars[b].encode_utf8(&mut buf);
            let n = s.len();
            byte_utf8[b].0[..n].copy_from_slice(&buf[..n]);
            byte_utf8[b].1 = n as u8;
            byte_sym[b] = vocab
                .id(&buf[..n])
                .unwrap_or(n_tokens.saturating_add(b as u32));
            if let Some(id) = vocab.id(&[b as u8][..]) {
                single_byte_token[b] = id;
            }
        }
        Ok(Bpe {
            merges: table,
            byte_sym,
            byte_utf8,
            single_byte_token,
            n_tokens,
            ignore_merges,
        })
    }

    /// Encode one pre-tokenized word (raw bytes), appending ids to `out`.
    pub fn encode_word(
        &self,
        word: &[u8],
        vocab: &Vocab,
        scratch: &mut Scratch,
        out: &mut Vec<u32>,
    ) {
        if word.is_empty() {
            return;
        }
        if self.ignore_merges {
            scratch.text.clear();
            for &b in word {
                let (u, n) = &self.byte_utf8[usize::from(b)];
                scratch.text.extend_from_slice(&u[..usize::from(*n)]);
            }
            if let Some(id) = vocab.id(&scratch.text[..]) {
                out.push(id);
                return;
            }
        }
        if word.len() == 1 {
            self.emit(self.byte_sym[usize::from(word[0])], out);
            return;
        }
        let syms = &mut scratch.syms;
        syms.clear();
        let n = word.len();
        for (i, &b) in word.iter().enumerate() {
            syms.push(Sym {
                id: self.byte_sym[usize::from(b)],
                prev: if i == 0 { NONE } else { i as u32 - 1 },
                next: if i + 1 == n { NONE } else { i as u32 + 1 },
            });
        }
        let heap = &mut scratch.heap;
        heap.clear();
        for i in 0..n - 1 {
            self.push_pair(syms, heap, i as u32, i as u32 + 1);
        }
        while let Some(Reverse((_rank, left, lid, right, rid))) = heap.pop() {
            let (l, r) = (left as usize, right as usize);
            // Stale if either side has been merged away or changed since the pair was queued.
            if syms[l].id != lid || syms[r].id != rid || syms[l].next != right {
                continue;
            }
            let Some(&(_, merged)) = self.merges.get(&pair_key(lid, rid)) else {
                continue;
            };
            syms[l].id = merged;
            syms[r].id = NONE;
            let rn = syms[r].next;
            syms[l].next = rn;
            if rn != NONE {
                syms[rn as usize].prev = left;
            }
            let lp = syms[l].prev;
            if lp != NONE {
                self.push_pair(syms, heap, lp, left);
            }
            if rn != NONE {
                self.push_pair(syms, heap, left, rn);
            }
        }
        let mut i = 0u32;
        while i != NONE {
            let s = syms[i as usize];
            self.emit(s.id, out);
            i = s.next;
        }
    }

    #[inline]
    fn push_pair(&self, syms: &[Sym], heap: &mut Heap, left: u32, right: u32) {
        let (lid, rid) = (syms[left as usize].id, syms[right as usize].id);
        if let Some(&(rank, _)) = self.merges.get(&pair_key(lid, rid)) {
            heap.push(Reverse((rank, left, lid, right, rid)));
        }
    }

    #[inline]
    fn emit(&self, sym: u32, out: &mut Vec<u32>) {
        if sym < self.n_tokens {
            out.push(sym);
            return;
        }
        // A byte whose GPT-2 codepoint is not a token: llama.cpp looks up each byte of the
        // codepoint's UTF-8 as a one-byte token text, and drops the ones it can't find.
        let b = (sym - self.n_tokens) as usize;
        let (u, n) = &self.byte_utf8[b.min(255)];
        for &x in &u[..usize::from(*n)] {
            let id = self.single_byte_token[usize::from(x)];
            if id != NONE {
                out.push(id);
            }
        }
    }
}

#[derive(Clone, Copy)]
struct Sym {
    id: u32,
    prev: u32,
    next: u32,
}

/// (rank, left index, left id, right index, right id), smallest first.
type Heap = BinaryHeap<Reverse<(u32, u32, u32, u32, u32)>>;

/// Buffers reused across words.
#[derive(Default)]
pub struct Scratch {
    syms: Vec<Sym>,
    heap: Heap,
    text: Vec<u8>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_table_round_trips() {
        let t = byte_to_char_table();
        assert_eq!(t[b' ' as usize], 'Ġ');
        assert_eq!(t[b'\n' as usize], 'Ċ');
        assert_eq!(t[b'a' as usize], 'a');
        for b in 0..=255u8 {
            assert_eq!(char_to_byte(t[b as usize]), Some(b));
        }
        assert_eq!(char_to_byte('日'), None);
    }
}

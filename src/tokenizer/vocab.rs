//! Compact storage for a vocabulary: all token texts in one buffer ([`Strings`]) and a
//! text -> id index that holds only ids ([`TextIndex`]), so that building a 262k-token
//! vocabulary makes a handful of allocations instead of one per token and per map key.

use std::ops::Index;

/// Byte strings packed end to end in one buffer: string `i` is `bytes[ends[i-1]..ends[i]]`.
///
/// The total is limited to 4 GiB (offsets are `u32`); [`Strings::try_push`] reports a string
/// that would go past it.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Strings {
    bytes: Vec<u8>,
    ends: Vec<u32>,
}

impl std::fmt::Debug for Strings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.iter().map(String::from_utf8_lossy))
            .finish()
    }
}

impl Strings {
    pub fn new() -> Strings {
        Strings::default()
    }

    /// Room for `n` strings of `bytes` bytes in total.
    pub fn with_capacity(n: usize, bytes: usize) -> Strings {
        Strings {
            bytes: Vec::with_capacity(bytes),
            ends: Vec::with_capacity(n),
        }
    }

    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// All strings end to end.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Total bytes of all strings.
    pub fn total_bytes(&self) -> usize {
        self.bytes.len()
    }

    pub fn clear(&mut self) {
        self.bytes.clear();
        self.ends.clear();
    }

    /// Append a string. Panics past 4 GiB in total (see [`Strings::try_push`]).
    pub fn push(&mut self, s: impl AsRef<[u8]>) {
        assert!(self.try_push(s.as_ref()), "Strings: more than 4 GiB");
    }

    /// Append a string; `false` (and nothing added) if the total would pass 4 GiB.
    pub fn try_push(&mut self, s: &[u8]) -> bool {
        self.try_push_with(|b| b.extend_from_slice(s))
    }

    /// Append the bytes `f` writes to the end of the buffer as one string; `false` (and
    /// nothing added) if the total would pass 4 GiB.
    pub fn try_push_with(&mut self, f: impl FnOnce(&mut Vec<u8>)) -> bool {
        let start = self.bytes.len();
        f(&mut self.bytes);
        match u32::try_from(self.bytes.len()) {
            Ok(end) => {
                self.ends.push(end);
                true
            }
            Err(_) => {
                self.bytes.truncate(start);
                false
            }
        }
    }

    /// String `i`, `None` past the end.
    #[inline]
    pub fn get(&self, i: usize) -> Option<&[u8]> {
        let end = *self.ends.get(i)? as usize;
        let start = match i {
            0 => 0,
            _ => self.ends[i - 1] as usize,
        };
        self.bytes.get(start..end)
    }

    /// Length of string `i` (0 past the end).
    #[inline]
    pub fn len_of(&self, i: usize) -> usize {
        self.get(i).map_or(0, <[u8]>::len)
    }

    pub fn iter(&self) -> impl ExactSizeIterator<Item = &[u8]> + '_ {
        let mut start = 0usize;
        self.ends.iter().map(move |&e| {
            let s = &self.bytes[start..e as usize];
            start = e as usize;
            s
        })
    }

    /// Release spare capacity.
    pub fn shrink_to_fit(&mut self) {
        self.bytes.shrink_to_fit();
        self.ends.shrink_to_fit();
    }
}

impl Index<usize> for Strings {
    type Output = [u8];
    #[inline]
    fn index(&self, i: usize) -> &[u8] {
        match self.get(i) {
            Some(s) => s,
            None => panic!("string index {i} out of range ({} strings)", self.len()),
        }
    }
}

impl<T: AsRef<[u8]>> FromIterator<T> for Strings {
    fn from_iter<I: IntoIterator<Item = T>>(iter: I) -> Strings {
        let mut s = Strings::new();
        s.extend(iter);
        s
    }
}

impl<T: AsRef<[u8]>> Extend<T> for Strings {
    fn extend<I: IntoIterator<Item = T>>(&mut self, iter: I) {
        for x in iter {
            self.push(x);
        }
    }
}

/// Little-endian word of `b[at..at + N]` (in range), zero-extended.
#[inline(always)]
fn word<const N: usize>(b: &[u8], at: usize) -> u64 {
    let mut w = [0u8; 8];
    w[..N].copy_from_slice(&b[at..at + N]);
    u64::from_le_bytes(w)
}

/// Hash of a token text: FxHash-style over 8-byte words, then a final mix so that both the
/// high bits (slot) and the low bits (tag) are usable. The tail is read as overlapping
/// words (the length is mixed in first), never through a byte copy.
#[inline]
fn hash_bytes(b: &[u8]) -> u64 {
    const K: u64 = 0x51_7c_c1_b7_27_22_0a_95;
    let add = |h: u64, w: u64| (h.rotate_left(5) ^ w).wrapping_mul(K);
    let n = b.len();
    let mut h = (n as u64).wrapping_mul(K);
    if n >= 8 {
        let mut i = 0;
        while i + 8 <= n {
            h = add(h, word::<8>(b, i));
            i += 8;
        }
        if i < n {
            h = add(h, word::<8>(b, n - 8));
        }
    } else if n >= 4 {
        h = add(h, word::<4>(b, 0) | (word::<4>(b, n - 4) << 32));
    } else if n > 0 {
        let w = u64::from(b[0]) | (u64::from(b[n / 2]) << 8) | (u64::from(b[n - 1]) << 16);
        h = add(h, w);
    }
    h ^= h >> 32;
    h = h.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    h ^ (h >> 29)
}

/// Open-addressing (linear probing) index from a text to its id in a [`Strings`], sized once
/// at load <= 1/2. A slot is one `u32`: `id + 1` in the low bits (0 = empty) and, in the
/// bits the ids do not need, a tag from the text's hash, so a probe compares texts only
/// when the tags agree (for 262k tokens: 13 tag bits, one false match in 8192).
#[derive(Clone, Default)]
pub struct TextIndex {
    slots: Vec<u32>,
    shift: u32,
    /// Bits of a slot that hold `id + 1`.
    id_mask: u32,
}

impl TextIndex {
    /// Index every string of `texts`; a repeated text maps to its last id (as llama.cpp's
    /// map assignment does). Also returns whether any text was repeated.
    /// `texts` must hold fewer than `u32::MAX / 2` strings.
    pub fn build(texts: &Strings) -> (TextIndex, bool) {
        let n = texts.len();
        assert!(n < (u32::MAX / 2) as usize, "TextIndex: too many strings");
        let cap = (n.max(4) * 2).next_power_of_two();
        let id_bits = u32::BITS - (n as u32).leading_zeros();
        let mut ix = TextIndex {
            // Zeroed memory comes from the allocator without a pass over it.
            slots: vec![0; cap],
            shift: 64 - cap.trailing_zeros(),
            id_mask: ((1u64 << id_bits) - 1) as u32,
        };
        let mask = cap - 1;
        let mut dup = false;
        // Hash a batch first, then insert it: the insert loop is short and its (cache-missing)
        // slot loads are independent, so many are in flight at once.
        const BATCH: usize = 256;
        let mut hashes = [0u64; BATCH];
        let mut iter = texts.iter();
        let mut base = 0usize;
        while base < n {
            let m = BATCH.min(n - base);
            for h in &mut hashes[..m] {
                *h = iter.next().map_or(0, hash_bytes);
            }
            for (k, &h) in hashes[..m].iter().enumerate() {
                let id = base + k;
                let new = ix.tag(h) | (id as u32 + 1);
                let mut i = ix.slot_of(h);
                loop {
                    let s = ix.slots[i];
                    if s == 0 {
                        ix.slots[i] = new;
                        break;
                    }
                    if s & !ix.id_mask == new & !ix.id_mask {
                        let other = (s & ix.id_mask) as usize - 1;
                        if texts.get(other) == texts.get(id) {
                            ix.slots[i] = new;
                            dup = true;
                            break;
                        }
                    }
                    i = (i + 1) & mask;
                }
            }
            base += m;
        }
        (ix, dup)
    }

    #[inline]
    fn slot_of(&self, h: u64) -> usize {
        // `shift` is 64 - log2(capacity), so this is below the capacity.
        (h >> self.shift) as usize
    }

    #[inline]
    fn tag(&self, h: u64) -> u32 {
        h as u32 & !self.id_mask
    }

    /// The id of `key` in `texts` (the [`Strings`] this index was built from).
    #[inline]
    pub fn get(&self, texts: &Strings, key: &[u8]) -> Option<u32> {
        if self.slots.is_empty() {
            return None;
        }
        let h = hash_bytes(key);
        let tag = self.tag(h);
        let mask = self.slots.len() - 1;
        let mut i = self.slot_of(h);
        loop {
            let s = self.slots[i];
            if s == 0 {
                return None;
            }
            if s & !self.id_mask == tag {
                let id = (s & self.id_mask) - 1;
                if texts.get(id as usize) == Some(key) {
                    return Some(id);
                }
            }
            i = (i + 1) & mask;
        }
    }
}

/// Token texts with their index.
#[derive(Clone, Default)]
pub struct Vocab {
    texts: Strings,
    index: TextIndex,
}

impl Vocab {
    /// Index `texts`; also returns whether some text is repeated.
    pub fn new(texts: Strings) -> (Vocab, bool) {
        let (index, dup) = TextIndex::build(&texts);
        (Vocab { texts, index }, dup)
    }

    /// The id whose text is exactly `key` (the last one, if repeated).
    #[inline]
    pub fn id(&self, key: &[u8]) -> Option<u32> {
        self.index.get(&self.texts, key)
    }

    #[inline]
    pub fn texts(&self) -> &Strings {
        &self.texts
    }

    pub fn len(&self) -> usize {
        self.texts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.texts.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_round_trip() {
        let s: Strings = ["", "a", "bc", "", "def"].iter().collect();
        assert_eq!(s.len(), 5);
        assert_eq!(
            s.iter().collect::<Vec<_>>(),
            [&b""[..], b"a", b"bc", b"", b"def"]
        );
        assert_eq!(&s[4], b"def");
        assert_eq!(s.get(5), None);
        assert_eq!(s.total_bytes(), 6);
    }

    #[test]
    fn index_finds_every_text_and_last_duplicate() {
        let mut s: Strings = (0..5000).map(|i| format!("t{i}")).collect();
        s.push("t7");
        s.push("");
        let (v, dup) = Vocab::new(s);
        assert!(dup);
        for i in 0..5000u32 {
            let want = if i == 7 { 5000 } else { i };
            assert_eq!(v.id(format!("t{i}").as_bytes()), Some(want));
        }
        assert_eq!(v.id(b""), Some(5001));
        assert_eq!(v.id(b"t5000"), None);
        assert_eq!(v.id(b"x"), None);
        let (v, dup) = Vocab::new(["a", "b"].iter().collect());
        assert!(!dup);
        assert_eq!(v.id(b"b"), Some(1));
    }
}

//! Unit tests on small hand-made vocabularies: malformed metadata and edge cases.

use super::*;

fn gpt2_char(b: u8) -> String {
    bpe::byte_to_char_table()[b as usize].to_string()
}

/// A tiny GPT-2 vocabulary: the 256 byte characters, "ab", "Ġa", "<|eot|>" (control).
fn tiny_bpe() -> TokenizerConfig {
    let mut tokens: Vec<Vec<u8>> = (0..=255u8).map(|b| gpt2_char(b).into_bytes()).collect();
    tokens.push(b"ab".to_vec()); // 256
    tokens.push("Ġa".as_bytes().to_vec()); // 257
    tokens.push(b"<|im_end|>".to_vec()); // 258
    let mut types = vec![1; tokens.len()];
    types[258] = 3;
    TokenizerConfig {
        model: "gpt2".into(),
        pre: Some("gpt-2".into()),
        tokens: tokens.into_iter().collect(),
        token_types: Some(types),
        merges: Some(["a b", "Ġ a"].into_iter().collect()),
        ..TokenizerConfig::default()
    }
}

#[test]
fn tiny_bpe_encodes_and_decodes() {
    let t = Tokenizer::new(tiny_bpe()).unwrap();
    let ids = t.encode("ab a<|im_end|>", true, true);
    assert_eq!(ids, [256, 257, 258]);
    assert_eq!(t.decode(&ids).unwrap(), b"ab a");
    assert_eq!(t.decode_with(&ids, true).unwrap(), b"ab a<|im_end|>");
    // Without parse_special the control token is plain text.
    let plain = t.encode("<|im_end|>", false, false);
    assert!(!plain.contains(&258));
    assert!(t.is_eog(258));
    // Default special ids of a gpt2 vocab (11) are in range here.
    assert_eq!(t.bos(), Some(11));
    assert!(matches!(
        t.decode(&[9999]),
        Err(TokenizerError::InvalidTokenId { id: 9999, .. })
    ));
}

#[test]
fn malformed_metadata_is_an_error() {
    let mut c = tiny_bpe();
    c.tokens.clear();
    assert!(matches!(Tokenizer::new(c), Err(TokenizerError::EmptyVocab)));

    let mut c = tiny_bpe();
    c.model = "t5".into();
    assert!(matches!(Tokenizer::new(c), Err(TokenizerError::UnsupportedModel(m)) if m == "t5"));

    let mut c = tiny_bpe();
    c.pre = Some("no-such-pre".into());
    let e = Tokenizer::new(c).unwrap_err();
    assert!(e.to_string().contains("no-such-pre"), "{e}");

    let mut c = tiny_bpe();
    c.merges = None;
    assert!(matches!(
        Tokenizer::new(c),
        Err(TokenizerError::MissingKey(_))
    ));

    let mut c = tiny_bpe();
    c.merges = Some(["x zz"].into_iter().collect());
    assert!(matches!(
        Tokenizer::new(c),
        Err(TokenizerError::InvalidMerge { index: 0, .. })
    ));

    let mut c = tiny_bpe();
    c.merges = Some(["a b", "nospace"].into_iter().collect());
    assert!(matches!(
        Tokenizer::new(c),
        Err(TokenizerError::InvalidMerge { index: 1, .. })
    ));

    let mut c = tiny_bpe();
    c.scores = Some(vec![0.0; 3]);
    assert!(matches!(
        Tokenizer::new(c),
        Err(TokenizerError::LengthMismatch { .. })
    ));

    let mut c = tiny_bpe();
    c.token_types = Some(vec![1; 3]);
    assert!(matches!(
        Tokenizer::new(c),
        Err(TokenizerError::LengthMismatch { .. })
    ));
}

#[test]
fn odd_but_loadable_metadata() {
    // Out-of-range special ids are ignored; odd token types are tolerated; empty and
    // duplicate token texts do not break anything.
    let mut c = tiny_bpe();
    c.special.bos = Some(u32::MAX);
    c.special.eos = Some(100_000);
    c.token_types.as_mut().unwrap()[5] = 42;
    c.tokens.push(Vec::new());
    c.tokens.push(b"ab");
    c.token_types.as_mut().unwrap().extend([1, 1]);
    let t = Tokenizer::new(c).unwrap();
    assert_eq!(t.bos(), Some(11));
    assert_eq!(t.token_text(259), Some(&b"[EMPTY_259]"[..]));
    // The later duplicate wins, as in llama.cpp.
    assert_eq!(t.encode("ab", false, false), [260]);
    for id in 0..t.vocab_size() as u32 {
        let _ = t.token_piece(id);
        let _ = t.decode(&[id]).unwrap();
    }
}

/// A tiny SPM vocabulary with byte fallback.
fn tiny_spm() -> TokenizerConfig {
    let mut tokens: Vec<Vec<u8>> = vec![b"<unk>".to_vec(), b"<s>".to_vec(), b"</s>".to_vec()];
    let mut types = vec![2, 3, 3];
    let mut scores = vec![0.0, 0.0, 0.0];
    for b in 0..=255u8 {
        tokens.push(format!("<0x{b:02X}>").into_bytes());
        types.push(6);
        scores.push(0.0);
    }
    for (t, s) in [
        ("▁", -1.0),
        ("h", -2.0),
        ("i", -2.0),
        ("▁h", -1.5),
        ("▁hi", -1.0),
    ] {
        tokens.push(t.as_bytes().to_vec());
        types.push(1);
        scores.push(s);
    }
    TokenizerConfig {
        model: "llama".into(),
        tokens: tokens.into_iter().collect(),
        scores: Some(scores),
        token_types: Some(types),
        ..TokenizerConfig::default()
    }
}

#[test]
fn tiny_spm_prefix_space_and_byte_fallback() {
    let t = Tokenizer::new(tiny_spm()).unwrap();
    assert!(t.add_bos());
    let hi = t.token_id("▁hi".as_bytes()).unwrap();
    // Default add_space_prefix for SPM is on: "hi" -> "▁hi".
    assert_eq!(t.encode("hi", true, true), [1, hi]);
    // "é" is not in the vocabulary: two byte tokens.
    let ids = t.encode("é", false, false);
    assert_eq!(ids[1..], [3 + 0xC3, 3 + 0xA9]);
    assert_eq!(t.decode(&ids).unwrap(), "é".as_bytes());
    let mut c = tiny_spm();
    c.add_space_prefix = Some(false);
    let t = Tokenizer::new(c).unwrap();
    let h = t.token_id(b"h").unwrap();
    let i = t.token_id(b"i").unwrap();
    assert_eq!(t.encode("hi", false, false), [h, i]);
    // A NaN score does not break the merge order or panic.
    let mut c = tiny_spm();
    c.scores.as_mut().unwrap()[3 + 256 + 3] = f32::NAN;
    let t = Tokenizer::new(c).unwrap();
    let _ = t.encode("hi hi hh ii", true, true);
}

#[test]
fn special_partition_prefers_longer_tokens_first() {
    // llama.cpp applies special tokens longest first across the whole text, so "bcd" wins
    // over "ab" in "abcd" even though "ab" starts earlier.
    let mut c = tiny_bpe();
    for t in ["ab", "bcd"] {
        c.tokens.push(format!("<{t}>").into_bytes());
    }
    c.tokens.push(b"xab");
    c.tokens.push(b"bcdx");
    c.token_types.as_mut().unwrap().extend([3, 3, 4, 4]);
    let t = Tokenizer::new(c).unwrap();
    let xab = t.token_id(b"xab").unwrap();
    let bcdx = t.token_id(b"bcdx").unwrap();
    let ids = t.encode("xabcdx", false, false);
    // Both have length 4 vs 3: "bcdx" (4) first, then "xab" cannot match any more.
    assert_eq!(ids.last(), Some(&bcdx));
    assert!(!ids.contains(&xab));
}

/// A tiny WordPiece vocabulary laid out as BERT's: [PAD] 0, [UNK] 1, [CLS] 2, [SEP] 3, ...
fn tiny_wpm() -> TokenizerConfig {
    let tokens = [
        "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "▁hello", "▁world", "▁,", "ing", "▁play",
    ];
    let mut types = vec![1; tokens.len()];
    types[..5].fill(3);
    TokenizerConfig {
        model: "bert".into(),
        tokens: tokens.into_iter().collect(),
        token_types: Some(types),
        special: SpecialIds {
            bos: Some(2),
            eos: Some(3),
            unk: Some(1),
            sep: Some(3),
            pad: Some(0),
            ..SpecialIds::default()
        },
        ..TokenizerConfig::default()
    }
}

#[test]
fn tiny_wpm_encodes_and_decodes() {
    let t = Tokenizer::new(tiny_wpm()).unwrap();
    assert_eq!(t.model_name(), "bert");
    assert_eq!((t.bos(), t.sep(), t.add_sep()), (Some(2), Some(3), true));
    let n = t.wordpiece_normalizer().unwrap();
    assert!(n.lowercase && n.strip_accents);
    assert_eq!(
        t.encode("Hello, playing!", true, true),
        [2, 5, 7, 9, 8, 1, 3]
    );
    assert_eq!(t.encode("Hello, playing!", false, true), [5, 7, 9, 8, 1]);
    assert_eq!(t.encode("", true, true), [2, 3]);
    // "[CLS]" in the text is the control token only with parse_special.
    assert_eq!(t.encode("hello [CLS]world", false, true), [5, 2, 6]);
    assert_eq!(t.encode("hello [CLS]world", false, false), [5, 1, 1, 1, 6]);
    // llama.cpp's pieces: "▁" is a space (so a leading one stays), continuations glue,
    // control tokens are not rendered.
    let ids = t.encode("hello playing, world", true, true);
    assert_eq!(t.decode(&ids).unwrap(), b" hello playing , world");
    assert_eq!(
        t.decode_with(&ids, true).unwrap(),
        b"[CLS] hello playing , world[SEP]"
    );
    // The flags from metadata: no [SEP] flag, other normalizer.
    let mut c = tiny_wpm();
    c.add_sep = Some(false);
    c.normalizer_lowercase = Some(false);
    let t = Tokenizer::new(c).unwrap();
    assert!(!t.add_sep());
    assert_eq!(t.encode("Hello hello", false, true), [1, 5]);
    let n = t.wordpiece_normalizer().unwrap();
    assert!(!n.lowercase && !n.strip_accents);
}

#[test]
fn wpm_defaults_follow_llama_cpp() {
    // Without special-id metadata a "bert" vocabulary takes BERT's ids: [UNK] 100,
    // [CLS] 101, [SEP] 102.
    let mut tokens: Vec<String> = (0..110).map(|i| format!("[unused{i}]")).collect();
    tokens[100] = "[UNK]".into();
    tokens[101] = "[CLS]".into();
    tokens[102] = "[SEP]".into();
    tokens.push("▁hi".into()); // 110
    let c = TokenizerConfig {
        model: "bert".into(),
        tokens: tokens.iter().collect(),
        ..TokenizerConfig::default()
    };
    let t = Tokenizer::new(c).unwrap();
    assert_eq!((t.bos(), t.eos(), t.sep()), (Some(101), None, Some(102)));
    assert_eq!(t.encode("hi yo", true, false), [101, 110, 100, 102]);
}

#[test]
fn hostile_wpm_vocab_is_an_error_or_harmless() {
    // No [UNK] id in range (the default 100 is outside a 10-token vocabulary).
    let mut c = tiny_wpm();
    c.special.unk = None;
    let e = Tokenizer::new(c).unwrap_err();
    assert!(e.to_string().contains("unknown_token_id"), "{e}");
    let mut c = tiny_wpm();
    c.special.unk = Some(99);
    assert!(Tokenizer::new(c).is_err());

    // Empty texts are renamed; a huge token only costs its own length lookups.
    let mut c = tiny_wpm();
    let mut tokens: Vec<Vec<u8>> = c.tokens.iter().map(<[u8]>::to_vec).collect();
    tokens.push(Vec::new());
    tokens.push(vec![b'x'; 1 << 20]);
    tokens.push(vec![0xFF, 0xFE]);
    c.tokens = tokens.iter().collect();
    c.token_types = None;
    let t = Tokenizer::new(c).unwrap();
    let long = "hello ".repeat(1000) + &"x".repeat(5000);
    let ids = t.encode(&long, true, true);
    assert_eq!(ids.len(), 1003);
    assert_eq!(ids[1001], 1);
    assert!(t.encode("\u{FFFD}\0\u{1}", false, true).is_empty());
    assert_eq!(
        t.decode(&[10, 12]).unwrap(),
        "[EMPTY_10]\u{FFFD}\u{FFFD}".as_bytes()
    );
}

//! Stop sequences over streamed text: text that could still turn into a stop sequence is
//! held back, and a completed stop sequence ends the stream without being emitted.

/// Watches a stream of text chunks for stop sequences.
#[derive(Debug, Clone)]
pub struct StopMatcher {
    stops: Vec<String>,
    /// Text received but not yet emitted: always a suffix that may begin a stop sequence.
    pending: String,
    stopped: bool,
}

impl StopMatcher {
    /// A matcher for `stops`; empty strings are ignored.
    pub fn new(stops: &[String]) -> StopMatcher {
        StopMatcher {
            stops: stops.iter().filter(|s| !s.is_empty()).cloned().collect(),
            pending: String::new(),
            stopped: false,
        }
    }

    /// Feeds a chunk. Returns the text that is safe to emit now, and whether a stop sequence
    /// has completed (then the returned text is everything before it, and later calls return
    /// nothing).
    pub fn push(&mut self, text: &str) -> (String, bool) {
        if self.stopped {
            return (String::new(), true);
        }
        self.pending.push_str(text);
        if let Some(at) = self
            .stops
            .iter()
            .filter_map(|s| self.pending.find(s.as_str()))
            .min()
        {
            self.pending.truncate(at);
            self.stopped = true;
            return (std::mem::take(&mut self.pending), true);
        }
        let hold = self.held_suffix_len();
        let emit_len = self.pending.len() - hold;
        let rest = self.pending.split_off(emit_len);
        (std::mem::replace(&mut self.pending, rest), false)
    }

    /// Ends the stream: returns what was held back (nothing after a stop).
    pub fn finish(&mut self) -> String {
        if self.stopped {
            return String::new();
        }
        std::mem::take(&mut self.pending)
    }

    /// Whether a stop sequence has completed.
    pub fn stopped(&self) -> bool {
        self.stopped
    }

    /// The length of the longest suffix of `pending` that is a proper prefix of some stop.
    /// Such a suffix always starts on a character boundary: its first byte equals a stop's
    /// first byte, which starts a character.
    fn held_suffix_len(&self) -> usize {
        let p = self.pending.as_bytes();
        self.stops
            .iter()
            .map(|s| {
                let s = s.as_bytes();
                let max = (s.len() - 1).min(p.len());
                (1..=max)
                    .rev()
                    .find(|&k| p[p.len() - k..] == s[..k])
                    .unwrap_or(0)
            })
            .max()
            .unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(stops: &[&str], chunks: &[&str]) -> (Vec<String>, bool, String) {
        let stops: Vec<String> = stops.iter().map(|s| s.to_string()).collect();
        let mut m = StopMatcher::new(&stops);
        let mut out = Vec::new();
        let mut stopped = false;
        for c in chunks {
            let (t, s) = m.push(c);
            out.push(t);
            if s {
                stopped = true;
                break;
            }
        }
        let tail = m.finish();
        (out, stopped, tail)
    }

    #[test]
    fn stop_split_over_three_chunks() {
        let (out, stopped, tail) = run(&["<|im_end|>"], &["Hello <|", "im_", "end|> ignored"]);
        assert_eq!(out, ["Hello ", "", ""]);
        assert!(stopped);
        assert_eq!(tail, "");
    }

    #[test]
    fn partial_match_then_mismatch_releases_text() {
        let (out, stopped, tail) = run(&["STOP"], &["a ST", "O", "P? no: STOx", " end S"]);
        // "STOP?" completes the stop at chunk 3, so nothing after the first "a " is emitted.
        assert_eq!(out, ["a ", "", ""]);
        assert!(stopped);
        assert_eq!(tail, "");
        let (out, stopped, tail) = run(&["STOP"], &["a ST", "O", "x end S"]);
        assert_eq!(out, ["a ", "", "STOx end "]);
        assert!(!stopped);
        assert_eq!(tail, "S");
    }

    #[test]
    fn multibyte_characters() {
        let (out, stopped, _) = run(&["。終"], &["日本の首都は東京", "。", "終わり"]);
        assert_eq!(out, ["日本の首都は東京", "", ""]);
        assert!(stopped);
        // A stop sharing a first byte with emitted text never splits a character.
        let (out, stopped, tail) = run(&["éa"], &["café", "é", "b"]);
        assert_eq!(out, ["caf", "é", "éb"]);
        assert!(!stopped);
        assert_eq!(tail, "");
    }

    #[test]
    fn several_stops_earliest_wins() {
        let (out, stopped, _) = run(&["\n\n", "User:"], &["answer User: x\n\n"]);
        assert_eq!(out, ["answer "]);
        assert!(stopped);
        let (out, _, _) = run(&["xyz", "b"], &["axy", "b"]);
        assert_eq!(out, ["a", "xy"]);
    }

    #[test]
    fn overlapping_prefixes() {
        // "ab" completes before "abc" could.
        let (out, stopped, _) = run(&["abc", "ab"], &["xa", "b", "c"]);
        assert_eq!(out, ["x", ""]);
        assert!(stopped);
        // Only "abc": "ab" is held until "d" proves it is not a stop.
        let (out, stopped, tail) = run(&["abc"], &["xa", "b", "d"]);
        assert_eq!(out, ["x", "", "abd"]);
        assert!(!stopped);
        assert_eq!(tail, "");
        // Self-overlapping stop.
        let (out, stopped, _) = run(&["aab"], &["aa", "ab"]);
        assert_eq!(out, ["", "a"]);
        assert!(stopped);
    }

    #[test]
    fn no_stops_passes_everything_and_finish_flushes() {
        let (out, stopped, tail) = run(&[""], &["a", "b"]);
        assert_eq!(out, ["a", "b"]);
        assert!(!stopped && tail.is_empty());
        let (out, _, tail) = run(&["END"], &["the EN"]);
        assert_eq!(out, ["the "]);
        assert_eq!(tail, "EN");
    }

    #[test]
    fn after_stop_nothing_more() {
        let mut m = StopMatcher::new(&["x".to_string()]);
        assert_eq!(m.push("axb"), ("a".to_string(), true));
        assert!(m.stopped());
        assert_eq!(m.push("more"), (String::new(), true));
        assert_eq!(m.finish(), "");
    }
}

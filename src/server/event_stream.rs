//! What the Anthropic Messages and OpenAI Responses endpoints share: named server-sent
//! events (`event: NAME` then `data: JSON`), a generation relayed as such events by an
//! API-specific [`Relay`], ids that do not repeat across restarts, and which of a
//! request's stop sequences ended a generation.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use axum::body::Bytes;
use axum::response::Response;
use futures_util::StreamExt;
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::stream::sse;
use crate::scheduler::{Done, Event, Events, Lease};
use crate::tokenizer::Tokenizer;

/// One named server-sent event: `event: NAME\ndata: JSON\n\n` (Anthropic's clients skip
/// events without a name).
pub(super) fn named_event(name: &str, data: &Value) -> Bytes {
    let mut out = format!("event: {name}\ndata: ").into_bytes();
    out.extend_from_slice(&serde_json::to_vec(data).unwrap_or_default());
    out.extend_from_slice(b"\n\n");
    Bytes::from(out)
}

/// `PREFIX_` and 24 hex digits, unique within the process (a counter) and, with the
/// time and the process id hashed in, across restarts.
pub(super) fn unique_id(prefix: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let mut h = Sha256::new();
    h.update(n.to_le_bytes());
    h.update(nanos.to_le_bytes());
    h.update(std::process::id().to_le_bytes());
    let hex: String = h.finalize()[..12]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("{prefix}_{hex}")
}

/// The stop sequence (of `stops`) that ended a generation, if one did. A generation that
/// stopped on a stop sequence keeps the token that completed it in `done.tokens` (its
/// text is held back from the answer); one that stopped on an end-of-generation token
/// does not, and its tokens hold no stop sequence (it would have stopped there). So the
/// stop sequence found earliest in the decoded tokens is the one that matched.
pub(super) fn stop_sequence_hit(tok: &Tokenizer, done: &Done, stops: &[String]) -> Option<String> {
    if done.reason != crate::generate::DoneReason::Stop || stops.is_empty() {
        return None;
    }
    let bytes = tok.decode(&done.tokens).ok()?;
    let text = String::from_utf8_lossy(&bytes);
    stops
        .iter()
        .filter(|s| !s.is_empty())
        .filter_map(|s| text.find(s.as_str()).map(|at| (at, s)))
        .min_by_key(|(at, s)| (*at, std::cmp::Reverse(s.len())))
        .map(|(_, s)| s.clone())
}

/// Turns a generation's events into one API's server-sent events.
pub(super) trait Relay: Send + 'static {
    /// A piece of generated text (never empty).
    fn text(&mut self, text: &str) -> Vec<Bytes>;
    /// The end: the closing events.
    fn done(&mut self, done: &Done) -> Vec<Bytes>;
    /// A failure after the stream began: the API's error events, which end it.
    fn error(&mut self, message: &str) -> Vec<Bytes>;
}

/// A stream's state: events ready to send, and the generation while it runs (the lease
/// lives as long as the stream; a client that disconnects drops the stream, which drops
/// the events' receiver and cancels the sequence).
struct Relaying<R> {
    pending: VecDeque<Bytes>,
    live: Option<(Events, Lease)>,
    relay: R,
}

impl<R: Relay> Relaying<R> {
    fn on_event(&mut self, e: Option<Event>) {
        let out = match e {
            Some(Event::Text(t)) if t.is_empty() => Vec::new(),
            // These APIs are not asked for log probabilities.
            Some(Event::Logprob(_)) => Vec::new(),
            Some(Event::Text(t)) => self.relay.text(&t),
            Some(Event::Done(d)) => {
                self.live = None;
                self.relay.done(&d)
            }
            Some(Event::Error(m)) => {
                self.live = None;
                self.relay.error(&m)
            }
            None => {
                self.live = None;
                self.relay.error("the generation ended without a result")
            }
        };
        self.pending.extend(out);
    }
}

/// A `text/event-stream` response: `opening` first, then the generation through `relay`.
pub(super) fn relay_sse(
    events: Events,
    lease: Lease,
    opening: Vec<Bytes>,
    relay: impl Relay,
) -> Response {
    let state = Relaying {
        pending: opening.into(),
        live: Some((events, lease)),
        relay,
    };
    let s = futures_util::stream::unfold(state, |mut st| async move {
        loop {
            if let Some(b) = st.pending.pop_front() {
                return Some((b, st));
            }
            let (events, _) = st.live.as_mut()?;
            let e = events.recv().await;
            st.on_event(e);
        }
    });
    sse(s.boxed())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_prefixed_and_distinct() {
        let a = unique_id("msg");
        let b = unique_id("msg");
        assert!(a.starts_with("msg_") && a.len() == 4 + 24, "{a}");
        assert_ne!(a, b);
    }

    /// Records what it was given, one event each.
    struct Echo;

    impl Relay for Echo {
        fn text(&mut self, text: &str) -> Vec<Bytes> {
            vec![Bytes::from(format!("text {text}"))]
        }
        fn done(&mut self, d: &Done) -> Vec<Bytes> {
            vec![Bytes::from(format!("done {}", d.prompt_len))]
        }
        fn error(&mut self, message: &str) -> Vec<Bytes> {
            vec![Bytes::from(format!("error {message}"))]
        }
    }

    #[test]
    fn events_reach_the_relay() {
        let mut st = Relaying {
            pending: VecDeque::new(),
            live: None,
            relay: Echo,
        };
        st.on_event(Some(Event::Text("a".into())));
        st.on_event(Some(Event::Text(String::new())));
        st.on_event(Some(Event::Error("bad".into())));
        st.on_event(None);
        let got: Vec<&[u8]> = st.pending.iter().map(|b| &b[..]).collect();
        assert_eq!(
            got,
            [
                &b"text a"[..],
                b"error bad",
                b"error the generation ended without a result"
            ]
        );
    }

    #[test]
    fn named_event_framing() {
        let b = named_event("ping", &serde_json::json!({"type": "ping"}));
        assert_eq!(&b[..], b"event: ping\ndata: {\"type\":\"ping\"}\n\n");
    }
}

//! The answers of `/v1/chat/completions` and `/v1/completions`: whole (`stream: false`)
//! or as server-sent chunks, with the text read for thinking (`reasoning_content`) and
//! tool calls (`tool_calls`, streamed as OpenAI streams them) and, when asked, each
//! token's log probabilities (`logprobs.content`).

use std::collections::VecDeque;
use std::time::SystemTime;

use axum::body::Bytes;
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures_util::StreamExt;
use serde_json::{json, Value};

use super::super::infer::{self, Started, Truncation};
use super::super::stream::{sse, sse_done, sse_event};
use super::{next_id, tools, FINGERPRINT};
use crate::civil::unix_seconds;
use crate::generate::logprobs::TokenLogprob;
use crate::generate::output::{OutputParser, Whole};
use crate::generate::tools::Piece;
use crate::generate::DoneReason;
use crate::scheduler::{Done, Event, Events, Lease};

/// Which endpoint a reply is for.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Chat,
    Completion,
}

/// What every object of one reply shares.
pub(super) struct Reply {
    kind: Kind,
    id: String,
    created: u64,
    model: String,
    include_usage: bool,
    /// What was dropped to fit the context (an extension field, `truncated`, on the
    /// whole answer and on the finish chunk).
    truncation: Option<Truncation>,
    /// Reads thinking and tool calls out of the text.
    parser: Option<OutputParser>,
    /// Whether the request asked for log probabilities, and those not yet sent.
    pub(super) logprobs: bool,
    pending_logprobs: Vec<TokenLogprob>,
}

fn finish_reason(r: DoneReason) -> &'static str {
    match r {
        DoneReason::Length => "length",
        DoneReason::Stop | DoneReason::Cancelled => "stop",
    }
}

fn usage(d: &Done) -> Value {
    json!({
        "prompt_tokens": d.prompt_len,
        "completion_tokens": d.stats.eval_count,
        "total_tokens": d.prompt_len + d.stats.eval_count,
        "prompt_tokens_details": {"cached_tokens": d.reused},
    })
}

/// A mid-stream error as OpenAI's clients read it.
fn error_event(message: &str) -> Bytes {
    sse_event(&json!({"error": {
        "message": message, "type": "api_error", "param": null, "code": null
    }}))
}

impl Reply {
    pub(super) fn new(kind: Kind, model: &str, include_usage: bool) -> Reply {
        let prefix = match kind {
            Kind::Chat => "chatcmpl",
            Kind::Completion => "cmpl",
        };
        Reply {
            kind,
            id: next_id(prefix),
            created: unix_seconds(SystemTime::now()),
            model: model.to_string(),
            include_usage,
            truncation: None,
            parser: None,
            logprobs: false,
            pending_logprobs: Vec::new(),
        }
    }

    /// `logprobs` of a choice: `{"content": [...]}` when asked for, else null.
    fn logprobs_value(&self, list: &[TokenLogprob]) -> Value {
        if self.logprobs {
            json!({"content": infer::logprobs_json(list), "refusal": null})
        } else {
            Value::Null
        }
    }

    /// Serializes chunks; the log probabilities received since the last chunk go with
    /// the first of them.
    fn send(&mut self, mut chunks: Vec<Value>) -> Vec<Bytes> {
        if self.logprobs && !self.pending_logprobs.is_empty() {
            if let Some(first) = chunks.first_mut() {
                let lp = std::mem::take(&mut self.pending_logprobs);
                first["choices"][0]["logprobs"] = self.logprobs_value(&lp);
            }
        }
        chunks.iter().map(sse_event).collect()
    }

    /// `finish_reason`: `tool_calls` when the model called a tool.
    fn finish(&self, r: DoneReason) -> &'static str {
        match &self.parser {
            Some(p) if p.calls() > 0 && r == DoneReason::Stop => "tool_calls",
            _ => finish_reason(r),
        }
    }

    /// The deltas for a piece of streamed text (with tools: text and calls).
    fn deltas(&mut self, text: &str, end: bool) -> Vec<Bytes> {
        let Some(parser) = &mut self.parser else {
            let chunks = if text.is_empty() {
                Vec::new()
            } else {
                vec![self.chunk_object(json!({"content": text}), None)]
            };
            return self.send(chunks);
        };
        let mut index = parser.calls();
        let mut pieces = parser.push(text);
        if end {
            pieces.extend(parser.finish());
        }
        let mut out = Vec::new();
        for p in pieces {
            match p {
                Piece::Text(t) | Piece::Thinking(t) if t.is_empty() => {}
                Piece::Text(t) => out.push(self.chunk_object(json!({"content": t}), None)),
                // llama-server's and DeepSeek's name, and Ollama's.
                Piece::Thinking(t) => out
                    .push(self.chunk_object(json!({"reasoning_content": t, "reasoning": t}), None)),
                Piece::Call(c) => {
                    for d in tools::deltas(&c, index) {
                        out.push(self.chunk_object(d, None));
                    }
                    index += 1;
                }
            }
        }
        self.send(out)
    }

    fn mark_truncation(&self, v: &mut Value) {
        if let Some(t) = self.truncation {
            v["truncated"] = json!({"messages": t.messages, "tokens": t.tokens});
        }
    }

    fn object(&self, object: &str, choices: Value) -> Value {
        json!({
            "id": self.id,
            "object": object,
            "created": self.created,
            "model": self.model,
            "system_fingerprint": FINGERPRINT,
            "choices": choices,
        })
    }

    /// The whole answer (not streamed).
    fn whole(&mut self, text: String, d: &Done, logprobs: &[TokenLogprob]) -> Value {
        let Whole {
            thinking,
            text,
            calls,
        } = Whole::of(self.parser.as_mut(), text);
        let reason = self.finish(d.reason);
        let (object, choice) = match self.kind {
            Kind::Chat => {
                let mut message = json!({"role": "assistant", "content": text});
                if !calls.is_empty() {
                    if text.trim().is_empty() {
                        message["content"] = Value::Null;
                    }
                    message["tool_calls"] = tools::message_calls(&calls);
                }
                if !thinking.is_empty() {
                    message["reasoning_content"] = json!(thinking);
                    message["reasoning"] = json!(thinking);
                }
                (
                    "chat.completion",
                    json!({"index": 0, "message": message,
                           "logprobs": self.logprobs_value(logprobs), "finish_reason": reason}),
                )
            }
            Kind::Completion => (
                "text_completion",
                json!({"text": text, "index": 0, "logprobs": null, "finish_reason": reason}),
            ),
        };
        let mut v = self.object(object, json!([choice]));
        v["usage"] = usage(d);
        self.mark_truncation(&mut v);
        v
    }

    /// One streamed chunk: `delta` is the chat delta (for completions, its `content`
    /// is the text).
    fn chunk(&self, delta: Value, finish: Option<&str>) -> Bytes {
        sse_event(&self.chunk_object(delta, finish))
    }

    fn chunk_object(&self, delta: Value, finish: Option<&str>) -> Value {
        let (object, choice) = match self.kind {
            Kind::Chat => (
                "chat.completion.chunk",
                json!({"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}),
            ),
            Kind::Completion => (
                "text_completion",
                json!({"text": delta.get("content").cloned().unwrap_or(json!("")),
                       "index": 0, "logprobs": null, "finish_reason": finish}),
            ),
        };
        let mut v = self.object(object, json!([choice]));
        if self.include_usage {
            v["usage"] = Value::Null;
        }
        v
    }

    /// The events that close a stream: the finish chunk, the usage chunk when asked
    /// for, and `[DONE]`.
    fn closing(&mut self, d: &Done) -> Vec<Bytes> {
        let mut finish = self.chunk_object(json!({}), Some(self.finish(d.reason)));
        self.mark_truncation(&mut finish);
        let mut out = self.send(vec![finish]);
        if self.include_usage {
            let object = match self.kind {
                Kind::Chat => "chat.completion.chunk",
                Kind::Completion => "text_completion",
            };
            let mut v = self.object(object, json!([]));
            v["usage"] = usage(d);
            out.push(sse_event(&v));
        }
        out.push(sse_done());
        out
    }
}

/// A stream's state: events ready to send, and the generation while it runs (the
/// lease lives as long as the stream; dropping the stream cancels the sequence).
struct Streaming {
    pending: VecDeque<Bytes>,
    live: Option<(Events, Lease)>,
    reply: Reply,
}

impl Streaming {
    /// Turns the next event of the generation into SSE events.
    fn on_event(&mut self, e: Option<Event>) {
        match e {
            Some(Event::Logprob(l)) => self.reply.pending_logprobs.push(l),
            Some(Event::Text(t)) => {
                let deltas = self.reply.deltas(&t, false);
                self.pending.extend(deltas);
            }
            Some(Event::Done(d)) => {
                self.live = None;
                let deltas = self.reply.deltas("", true);
                self.pending.extend(deltas);
                self.pending.extend(self.reply.closing(&d));
            }
            Some(Event::Error(m)) => {
                self.live = None;
                self.pending.push_back(error_event(&m));
            }
            None => {
                self.live = None;
                self.pending
                    .push_back(error_event("the generation ended without a result"));
            }
        }
    }
}

/// Streams (server-sent events) or collects a started generation.
pub(super) async fn respond(started: Started, mut reply: Reply, stream: bool) -> Response {
    let Started {
        lease,
        mut events,
        truncation,
        output,
        ..
    } = started;
    reply.truncation = truncation;
    reply.parser = output.parser();
    if !stream {
        return match infer::collect_all(&mut events).await {
            Ok((text, d, logprobs)) => Json(reply.whole(text, &d, &logprobs)).into_response(),
            Err(e) => e.openai(),
        };
    }
    let mut pending = VecDeque::new();
    if reply.kind == Kind::Chat {
        pending.push_back(reply.chunk(json!({"role": "assistant", "content": ""}), None));
    }
    let state = Streaming {
        pending,
        live: Some((events, lease)),
        reply,
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

    fn done(reason: DoneReason) -> Done {
        Done {
            reason,
            stats: crate::generate::Stats {
                eval_count: 3,
                ..Default::default()
            },
            reused: 4,
            prompt_len: 10,
            tokens: vec![1, 2, 3],
        }
    }

    fn events(st: &Streaming) -> Vec<String> {
        st.pending
            .iter()
            .map(|b| String::from_utf8(b.to_vec()).unwrap())
            .collect()
    }

    #[test]
    fn stream_events() {
        let mut st = Streaming {
            pending: VecDeque::new(),
            live: None,
            reply: Reply::new(Kind::Chat, "m", true),
        };
        st.on_event(Some(Event::Text("hi".into())));
        st.on_event(Some(Event::Text(String::new())));
        st.on_event(Some(Event::Done(done(DoneReason::Length))));
        let ev = events(&st);
        assert_eq!(ev.len(), 4, "{ev:?}");
        let data = |e: &str| -> Value {
            serde_json::from_str(e.strip_prefix("data: ").unwrap().trim_end()).unwrap()
        };
        let first = data(&ev[0]);
        assert_eq!(first["choices"][0]["delta"], json!({"content": "hi"}));
        assert!(first["usage"].is_null() && first.get("usage").is_some());
        assert_eq!(data(&ev[1])["choices"][0]["finish_reason"], "length");
        let usage = data(&ev[2]);
        assert_eq!(usage["choices"], json!([]));
        assert_eq!(
            usage["usage"],
            json!({"prompt_tokens": 10, "completion_tokens": 3, "total_tokens": 13,
                   "prompt_tokens_details": {"cached_tokens": 4}})
        );
        assert_eq!(ev[3], "data: [DONE]\n\n");

        let mut st = Streaming {
            pending: VecDeque::new(),
            live: None,
            reply: Reply::new(Kind::Completion, "m", false),
        };
        st.on_event(Some(Event::Text("a".into())));
        st.on_event(Some(Event::Error("boom".into())));
        let ev = events(&st);
        assert_eq!(ev.len(), 2);
        let chunk = data(&ev[0]);
        assert_eq!(chunk["object"], "text_completion");
        assert_eq!(chunk["choices"][0]["text"], "a");
        assert!(chunk.get("usage").is_none());
        let err = data(&ev[1]);
        assert_eq!(err["error"]["message"], "boom");
        assert_eq!(err["error"]["type"], "api_error");
    }

    #[test]
    fn streamed_logprobs_go_with_their_text() {
        use crate::generate::logprobs::Candidate;
        let cand = |t: &str, lp: f32| Candidate {
            id: 0,
            bytes: t.as_bytes().to_vec(),
            logprob: lp,
        };
        let mut reply = Reply::new(Kind::Chat, "m", false);
        reply.logprobs = true;
        let mut st = Streaming {
            pending: VecDeque::new(),
            live: None,
            reply,
        };
        for (t, lp) in [("Hel", -0.5f32), ("lo", -0.25)] {
            st.on_event(Some(Event::Logprob(TokenLogprob {
                token: cand(t, lp),
                top: vec![cand(t, lp)],
            })));
        }
        st.on_event(Some(Event::Text("Hello".into())));
        st.on_event(Some(Event::Done(done(DoneReason::Stop))));
        let ev = events(&st);
        let first: Value =
            serde_json::from_str(ev[0].strip_prefix("data: ").unwrap().trim_end()).unwrap();
        let content = &first["choices"][0]["logprobs"]["content"];
        assert_eq!(content.as_array().unwrap().len(), 2, "{first}");
        assert_eq!(content[0]["token"], "Hel");
        assert_eq!(content[1]["logprob"], -0.25);
        assert_eq!(content[1]["bytes"], json!([108, 111]));
        assert_eq!(content[1]["top_logprobs"][0]["token"], "lo");
        // The finish chunk has none left to carry.
        let finish: Value =
            serde_json::from_str(ev[1].strip_prefix("data: ").unwrap().trim_end()).unwrap();
        assert!(finish["choices"][0]["logprobs"].is_null(), "{finish}");
    }
}

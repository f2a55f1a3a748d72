//! The path every generating endpoint shares (Ollama's generate and chat, OpenAI's chat
//! and completions): name -> store model, option precedence, a place in the queue, the
//! model's lease, the prompt rendered, tokenized and fitted to the context off the
//! stepping thread, and the sequence started.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Map, Value};

use super::error::ApiError;
use super::AppState;
use crate::constrain::{ConstrainError, Format};
use crate::generate::load::apply_request_options;
use crate::generate::logprobs::{TokenLogprob, MAX_TOP};
use crate::generate::output::{OutputSpec, Thinking};
use crate::generate::thinking::{self, Think};
use crate::generate::tools::{self, CallSyntax, ToolChoice};
use crate::generate::ModelSource;
use crate::sampler::SamplerOptions;
use crate::scheduler::{Done, Event, Events, Job, KeepAlive, Lease, ModelInfo, Ticket};
use crate::store::{Store, StoreError};
use crate::template::{ChatTemplate, Message};

/// What to generate from.
pub enum Prompt {
    /// A conversation, rendered with the model's template (`/api/chat`, `/v1/chat/…`).
    Chat(Vec<Message>),
    /// One user prompt (`/api/generate`, `/v1/completions`): with `raw` sent as is,
    /// else rendered as `[system, the model's messages, user]`; `template` replaces
    /// the model's (a Go template), `context` is the ids of an earlier answer.
    Text {
        prompt: String,
        raw: bool,
        template: Option<String>,
        context: Vec<u32>,
    },
}

/// A generation request, as the endpoints translate theirs.
pub struct GenRequest {
    pub model: String,
    pub prompt: Prompt,
    /// Overrides the model's system message.
    pub system: Option<String>,
    pub options: Map<String, Value>,
    pub keep_alive: KeepAlive,
    /// Drop the oldest messages when the prompt does not fit (else a 400).
    pub truncate: bool,
    /// Structured output (checked by the endpoint; compiled here, off the stepping thread).
    pub format: Option<Format>,
    /// Functions the model may call (OpenAI's shape), and whether it must.
    pub tools: Vec<Value>,
    pub tool_choice: ToolChoice,
    /// `think` (Ollama), `reasoning_effort` (OpenAI), `thinking` (Anthropic); `None`
    /// leaves it to the template's default.
    pub think: Option<Think>,
    /// `Some(top)`: each token's log probability with `top` alternatives.
    pub logprobs: Option<usize>,
}

/// Messages and tokens dropped to fit the context.
#[derive(Clone, Copy, Debug, Default)]
pub struct Truncation {
    pub messages: usize,
    pub tokens: usize,
}

/// A started generation.
pub struct Started {
    pub lease: Lease,
    pub events: Events,
    pub prompt_ids: Vec<u32>,
    pub truncation: Option<Truncation>,
    /// Time in the queue and loading.
    pub load_duration: Duration,
    pub num_ctx: usize,
    /// When the request arrived (`total_duration` counts from here).
    pub arrived: Instant,
    /// How to read thinking and tool calls out of the text.
    pub output: OutputSpec,
}

/// The whole text and the end of a generation (for `stream: false`).
pub async fn collect(events: &mut Events) -> Result<(String, Done), ApiError> {
    collect_all(events).await.map(|(text, d, _)| (text, d))
}

/// [`collect`] with the tokens' log probabilities (empty unless the job asked).
pub async fn collect_all(
    events: &mut Events,
) -> Result<(String, Done, Vec<TokenLogprob>), ApiError> {
    let mut text = String::new();
    let mut logprobs = Vec::new();
    while let Some(e) = events.recv().await {
        match e {
            Event::Text(t) => text.push_str(&t),
            Event::Logprob(l) => logprobs.push(l),
            Event::Done(d) => return Ok((text, d, logprobs)),
            Event::Error(m) => return Err(ApiError::internal(m)),
        }
    }
    Err(ApiError::internal("the generation ended without a result"))
}

/// Log probabilities as OpenAI's `logprobs.content` and Ollama's `logprobs` list them:
/// `{"token", "logprob", "bytes", "top_logprobs": [{"token", "logprob", "bytes"}]}`.
pub fn logprobs_json(list: &[TokenLogprob]) -> Value {
    let one = |c: &crate::generate::logprobs::Candidate| serde_json::json!({"token": c.text(), "logprob": c.logprob, "bytes": c.bytes});
    Value::Array(
        list.iter()
            .map(|l| {
                let mut v = one(&l.token);
                v["top_logprobs"] = Value::Array(l.top.iter().map(one).collect());
                v
            })
            .collect(),
    )
}

/// `top_logprobs` checked against its bound (0 to 20).
pub fn top_logprobs(n: Option<i64>) -> Result<usize, ApiError> {
    match n {
        None => Ok(0),
        Some(n) if (0..=MAX_TOP as i64).contains(&n) => Ok(n as usize),
        Some(n) => Err(ApiError::bad_request(format!(
            "top_logprobs must be between 0 and {MAX_TOP}, got {n}"
        ))),
    }
}

/// The model a request names, from the store (off the async threads).
pub async fn resolve(model: &str) -> Result<ModelSource, ApiError> {
    if model.trim().is_empty() {
        return Err(ApiError::bad_request("model is required"));
    }
    let name = super::models::parse_name(model)?;
    let shown = model.to_string();
    tokio::task::spawn_blocking(move || {
        let store = Store::open();
        ModelSource::from_store(&store, &name).map_err(|e| match e.downcast_ref::<StoreError>() {
            Some(StoreError::NotFound(_)) => ApiError::model_not_found(&shown),
            _ => ApiError::internal(format!("{e:#}")),
        })
    })
    .await
    .map_err(|e| ApiError::internal(e.to_string()))?
}

/// Loads (or finds loaded) the model a request names, within the queue's bound.
pub async fn lease(
    state: &AppState,
    model: &str,
    keep_alive: KeepAlive,
) -> Result<(Lease, Ticket, Duration), ApiError> {
    let t0 = Instant::now();
    let ticket = state.scheduler.ticket()?;
    let source = resolve(model).await?;
    let lease = state.scheduler.acquire(source, 0, keep_alive).await?;
    Ok((lease, ticket, t0.elapsed()))
}

/// Options under the model's params layer, then the request's; the requested `num_ctx`
/// (0: the default). Checked before the model is loaded.
pub(super) fn options(
    source: &ModelSource,
    req: &Map<String, Value>,
) -> Result<(SamplerOptions, usize), ApiError> {
    let (mut load, mut sampling) = source
        .defaults()
        .map_err(|e| ApiError::internal(e.to_string()))?;
    apply_request_options(&mut load, &mut sampling, req)
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    Ok((sampling, load.num_ctx))
}

/// Refuses a context whose KV cache cannot fit in memory.
fn check_memory(info: &ModelInfo, num_ctx: usize) -> Result<(), ApiError> {
    let need = info.kv_bytes_per_token * num_ctx as u64;
    let have = crate::scheduler::memory::available();
    // Keep a quarter of what is available for everything else.
    if need > have / 4 * 3 {
        let mib = |b: u64| b / (1 << 20);
        return Err(ApiError::bad_request(format!(
            "num_ctx {num_ctx} needs {} MiB of KV cache, but only {} MiB of memory is available",
            mib(need),
            mib(have)
        )));
    }
    Ok(())
}

/// Starts a generation: the request's place in the queue is held until its sequence
/// has a slot.
pub async fn start(state: &AppState, req: GenRequest) -> Result<Started, ApiError> {
    let arrived = Instant::now();
    let ticket = state.scheduler.ticket()?;
    let source = resolve(&req.model).await?;
    let (sampling, requested_ctx) = options(&source, &req.options)?;
    let lease = state
        .scheduler
        .acquire(source, requested_ctx, req.keep_alive)
        .await?;
    let load_duration = arrived.elapsed();
    let info = Arc::clone(lease.info());
    if info.embedding {
        // Ollama's message: an embedding model neither chats nor generates.
        let what = match req.prompt {
            Prompt::Chat(_) => "chat",
            Prompt::Text { .. } => "generate",
        };
        return Err(ApiError::bad_request(format!(
            "\"{}\" does not support {what}",
            req.model
        )));
    }
    let num_ctx = crate::scheduler::context_length(
        requested_ctx,
        state.scheduler.config().num_ctx,
        info.n_ctx_train,
    );
    check_memory(&info, num_ctx)?;
    // `num_predict` (at most i32::MAX, else the option is a 400) needs no cap of its own:
    // a sequence ends when its context is full (done_reason "length"), so it yields at
    // most num_ctx minus the prompt's tokens, and nothing is allocated ahead from it.
    let system = req.system.clone().or(info.source.layers.system.clone());
    let truncate = req.truncate;
    let prompt = req.prompt;
    let (tools, tool_syntax) = offered_tools(&req.model, &info, req.tools, &req.tool_choice)?;
    let format = match &tool_syntax {
        Some(syntax) => tools::forced(syntax, &tools, &req.tool_choice).or(req.format),
        None => req.format,
    };
    let raw = matches!(prompt, Prompt::Text { raw: true, .. });
    let thinks = !raw && thinking::supported(&info.template);
    if req.think.as_ref().is_some_and(Think::enabled) && !thinks {
        return Err(ApiError::bad_request(format!(
            "\"{}\" does not support thinking",
            req.model
        )));
    }
    let think_kept = req.think != Some(Think::Off);
    let logprobs = req.logprobs;
    let think = req.think;
    let name = req.model.clone();
    let (built, constraint) = tokio::task::spawn_blocking(move || {
        let extras = Extras {
            tools: &tools,
            think: think.as_ref().map(|t| (t.enabled(), t.level())),
        };
        let built = build_prompt(&info, prompt, &extras, system, num_ctx, truncate)?;
        let constraint = match &format {
            Some(f) => Some(info.grammars.constraint(f).map_err(format_error)?),
            None => None,
        };
        Ok::<_, ApiError>((built, constraint))
    })
    .await
    .map_err(|e| ApiError::internal(e.to_string()))??;
    let Built {
        ids,
        truncation,
        opens_thinking,
    } = built;
    let output = OutputSpec {
        tools: tool_syntax,
        thinking: thinks.then_some(Thinking {
            inside: opens_thinking,
            keep: think_kept,
        }),
    };
    if let Some(t) = truncation {
        eprintln!(
            "hearth: {name}: prompt truncated to fit num_ctx {num_ctx}: dropped {} message(s), {} token(s)",
            t.messages, t.tokens
        );
    }
    let events = lease.generate(
        Job {
            ids: ids.clone(),
            sampling,
            constraint,
            num_ctx,
            logprobs,
            arrived,
        },
        ticket,
    );
    Ok(Started {
        lease,
        events,
        prompt_ids: ids,
        truncation,
        load_duration,
        num_ctx,
        arrived,
        output,
    })
}

/// The tools shown to the model and how its calls are read: none when none are offered
/// or `tool_choice` is `none`; a 400 when the model's template has no tools or a tool
/// or the choice is invalid.
fn offered_tools(
    model: &str,
    info: &ModelInfo,
    offered: Vec<Value>,
    choice: &ToolChoice,
) -> Result<(Vec<Value>, Option<CallSyntax>), ApiError> {
    if offered.is_empty() && matches!(choice, ToolChoice::Auto | ToolChoice::None) {
        return Ok((Vec::new(), None));
    }
    tools::check(&offered, choice).map_err(format_error)?;
    if *choice == ToolChoice::None {
        return Ok((Vec::new(), None));
    }
    match CallSyntax::of(&info.template) {
        Some(syntax) => Ok((offered, Some(syntax))),
        None => Err(ApiError::bad_request(format!(
            "\"{model}\" does not support tools"
        ))),
    }
}

/// A format that cannot be used: the request's fault (400).
pub fn format_error(e: ConstrainError) -> ApiError {
    ApiError::bad_request(e.to_string())
}

fn too_long(n: usize, num_ctx: usize) -> ApiError {
    ApiError::bad_request(format!(
        "the prompt has {n} tokens, but the context length is {num_ctx} (raise num_ctx, or shorten the prompt)"
    ))
}

/// What a request adds to its messages when they are rendered.
pub struct Extras<'a> {
    pub tools: &'a [Value],
    /// Whether to think, and the level (`""` for none), when the request said.
    pub think: Option<(bool, &'a str)>,
}

/// A prompt ready to run.
pub struct Built {
    pub ids: Vec<u32>,
    pub truncation: Option<Truncation>,
    /// The rendered prompt ends inside a thinking block (DeepSeek-R1's template).
    pub opens_thinking: bool,
}

/// Renders and tokenizes; with `truncate`, drops the oldest messages other than system
/// messages and the last one until the prompt fits (with room for one token).
pub(super) fn build_prompt(
    info: &ModelInfo,
    prompt: Prompt,
    extras: &Extras,
    system: Option<String>,
    num_ctx: usize,
    truncate: bool,
) -> Result<Built, ApiError> {
    let tok = &info.tokenizer;
    let render_err = |e: anyhow::Error| ApiError::bad_request(format!("{e:#}"));
    let (mut messages, template, raw_text, context): (Vec<Message>, _, _, Vec<u32>) = match prompt {
        Prompt::Chat(mut m) => {
            // The model's messages open the conversation; its system message applies
            // when the request has none.
            let mut all = info.source.layers.messages.clone();
            if !m.iter().any(|x| x.role == "system") {
                if let Some(s) = system {
                    all.insert(0, Message::new("system", s));
                }
            }
            all.append(&mut m);
            (all, None, None, Vec::new())
        }
        Prompt::Text {
            prompt,
            raw: true,
            context,
            ..
        } => (Vec::new(), None, Some(prompt), context),
        Prompt::Text {
            prompt,
            template,
            context,
            ..
        } => {
            let mut all = Vec::new();
            if let Some(s) = system {
                all.push(Message::new("system", s));
            }
            all.extend(info.source.layers.messages.iter().cloned());
            all.push(Message::new("user", prompt));
            let t = match template {
                Some(src) => Some(
                    ChatTemplate::go(&src)
                        .map_err(|e| ApiError::bad_request(format!("invalid template: {e}")))?,
                ),
                None => None,
            };
            (all, t, None, context)
        }
    };
    let template = template.as_ref().unwrap_or(&info.template);
    let encode = |messages: &[Message]| -> Result<(Vec<u32>, bool), ApiError> {
        let text = match &raw_text {
            Some(t) => t.clone(),
            None => template
                .render_for(messages, extras.tools, extras.think, true)
                .map_err(|e| render_err(e.into()))?,
        };
        let opens_thinking = raw_text.is_none() && thinking::prompt_opens_thinking(&text);
        // BOS only at the very start: a `context` already has it.
        let mut ids = tok.encode(&text, context.is_empty(), true);
        if !context.is_empty() {
            let mut c = context.clone();
            c.append(&mut ids);
            ids = c;
        }
        // Checked here (a `context` from the client, or a tokenizer larger than the
        // model's output): one bad id would fail every sequence of its engine step.
        if let Some(id) = ids.iter().find(|&&t| t as usize >= info.n_vocab) {
            return Err(ApiError::bad_request(format!(
                "invalid prompt: token id {id} is outside the vocabulary ({})",
                info.n_vocab
            )));
        }
        Ok((ids, opens_thinking))
    };
    let (ids, opens_thinking) = encode(&messages)?;
    if ids.is_empty() {
        return Err(ApiError::bad_request("the prompt is empty"));
    }
    if ids.len() < num_ctx {
        return Ok(Built {
            ids,
            truncation: None,
            opens_thinking,
        });
    }
    let first_len = ids.len();
    if !truncate || raw_text.is_some() {
        return Err(too_long(first_len, num_ctx));
    }
    let mut dropped = 0;
    loop {
        let last = messages.len().saturating_sub(1);
        let Some(i) = messages[..last].iter().position(|m| m.role != "system") else {
            return Err(too_long(first_len, num_ctx));
        };
        messages.remove(i);
        dropped += 1;
        let (ids, opens_thinking) = encode(&messages)?;
        if ids.len() < num_ctx {
            let t = Truncation {
                messages: dropped,
                tokens: first_len - ids.len(),
            };
            return Ok(Built {
                ids,
                truncation: Some(t),
                opens_thinking,
            });
        }
    }
}

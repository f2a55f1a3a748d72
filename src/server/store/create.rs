//! `POST /api/create` in Ollama's JSON form: `model`, then either `from` (a stored model)
//! or `files` (file name → digest of a blob uploaded with `POST /api/blobs`; exactly one
//! `.gguf`), plus `template`, `system`, `parameters`, `messages`, `license`. The work is
//! [`crate::store::create::create`], the CLI's; its status lines are streamed as
//! `{"status": …}`. An uploaded GGUF becomes the model layer as it is
//! ([`Source::Blob`]), without a second copy.
//!
//! Everything that can be checked before the work starts is, so that it gets a proper
//! status even when streaming: bad names and parameters, `quantize` and `adapters`
//! (not supported), a missing `from` model (404) or blob (400). As in Ollama, `from`
//! wins when both `from` and `files` are given.

use std::collections::BTreeMap;

use axum::body::Body;
use axum::extract::State;
use axum::response::Response;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::{status_response, unload_blocking};
use crate::modelfile::{format_params, parameter_kind, ModelfileError, ParamKind};
use crate::server::error::{parse_body, ApiError};
use crate::server::models::blocking;
use crate::server::models::{model_field, parse_name};
use crate::server::{read_body, AppState};
use crate::store::create::{create as create_model, CreateError, CreateRequest, Source};
use crate::store::{Digest, Store, StoreError};
use crate::template::Message;

#[derive(Deserialize)]
struct CreateBody {
    #[serde(default)]
    model: Option<String>,
    /// The older name of `model`.
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    from: Option<String>,
    #[serde(default)]
    files: Option<BTreeMap<String, String>>,
    #[serde(default)]
    adapters: Option<Map<String, Value>>,
    #[serde(default)]
    template: Option<String>,
    #[serde(default)]
    system: Option<String>,
    #[serde(default)]
    parameters: Option<Map<String, Value>>,
    #[serde(default)]
    messages: Option<Vec<MessageBody>>,
    /// A string or a list of strings.
    #[serde(default)]
    license: Option<Value>,
    #[serde(default)]
    quantize: Option<String>,
    #[serde(default)]
    stream: Option<bool>,
}

#[derive(Deserialize)]
struct MessageBody {
    role: String,
    #[serde(default)]
    content: String,
}

/// The request's parameters typed as a Modelfile's are ([`format_params`]): each value
/// is turned into its text form and checked by the same code. Only `stop` takes a list.
fn typed_parameters(params: &Map<String, Value>) -> Result<Map<String, Value>, ApiError> {
    let mut pairs = Vec::new();
    for (k, v) in params {
        let bad = || ApiError::bad_request(format!("invalid value {v} for parameter '{k}'"));
        let text = |v: &Value| match v {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            _ => None,
        };
        match v {
            Value::Null => {}
            Value::Array(items) => match parameter_kind(k) {
                Some(ParamKind::StringList) => {
                    for i in items {
                        pairs.push((k.clone(), text(i).ok_or_else(bad)?));
                    }
                }
                Some(_) => return Err(bad()),
                None => {
                    let e = ModelfileError::UnknownParameter(k.clone());
                    return Err(ApiError::bad_request(e.to_string()));
                }
            },
            v => pairs.push((k.clone(), text(v).ok_or_else(bad)?)),
        }
    }
    let (typed, deprecated) =
        format_params(&pairs).map_err(|e| ApiError::bad_request(e.to_string()))?;
    for d in deprecated {
        eprintln!("hearth: create: parameter {d} is deprecated and ignored");
    }
    Ok(typed)
}

/// `license`: a string or a list of strings.
fn licenses(v: Option<&Value>) -> Result<Vec<String>, ApiError> {
    let bad = || ApiError::bad_request("license must be a string or a list of strings");
    match v {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::String(s)) => Ok(vec![s.clone()]),
        Some(Value::Array(items)) => items
            .iter()
            .map(|i| i.as_str().map(str::to_string).ok_or_else(bad))
            .collect(),
        Some(_) => Err(bad()),
    }
}

/// The one `.gguf` of `files`, as a digest; other files are refused by name.
fn gguf_digest(files: &BTreeMap<String, String>) -> Result<Digest, ApiError> {
    for f in files.keys() {
        // Ollama's fs.ValidPath: relative, no `.`/`..`/empty elements. The names are
        // never used as paths here, but a client sending such a name has a bug.
        if f.is_empty() || f.starts_with('/') || f.split('/').any(|p| matches!(p, "" | "." | ".."))
        {
            return Err(ApiError::bad_request(format!("invalid file name '{f}'")));
        }
    }
    let is_gguf = |f: &str| f.to_ascii_lowercase().ends_with(".gguf");
    let others: Vec<&str> = files
        .keys()
        .map(String::as_str)
        .filter(|f| !is_gguf(f))
        .collect();
    if !others.is_empty() {
        return Err(ApiError::bad_request(format!(
            "only one .gguf file is supported; cannot use {}",
            others.join(", ")
        )));
    }
    let ggufs: Vec<(&String, &String)> = files.iter().collect();
    let [(_, digest)] = ggufs.as_slice() else {
        return Err(ApiError::bad_request(format!(
            "exactly one .gguf file is supported, got {}",
            ggufs.len()
        )));
    };
    crate::store::Digest::parse(digest).map_err(|e| ApiError::bad_request(e.to_string()))
}

/// A create error as a status: the request's fault (400, 404) or the server's (500).
fn create_error(e: CreateError) -> ApiError {
    match e {
        CreateError::Store(StoreError::NotFound(n)) => {
            ApiError::not_found(format!("model \"{n}\" not found"))
        }
        CreateError::Store(StoreError::MissingBlob(d)) => {
            ApiError::bad_request(format!("blob {d} not found"))
        }
        // The path in the message is the store's; the client knows the blob by digest.
        CreateError::Gguf { reason, .. } => {
            ApiError::bad_request(format!("the model file is not a usable GGUF: {reason}"))
        }
        e @ (CreateError::Modelfile(_) | CreateError::Name(_) | CreateError::From(_)) => {
            ApiError::bad_request(e.to_string())
        }
        e => ApiError::internal(e.to_string()),
    }
}

/// `POST /api/create`.
pub async fn create(State(state): State<AppState>, body: Body) -> Result<Response, ApiError> {
    let body = read_body(body).await?;
    let req: CreateBody = parse_body(&body)?;
    let name = parse_name(&model_field(&req.model, &req.name)?)?;
    if req
        .quantize
        .as_deref()
        .is_some_and(|q| !q.trim().is_empty())
    {
        return Err(ApiError::bad_request("quantize is not supported"));
    }
    if req.adapters.as_ref().is_some_and(|a| !a.is_empty()) {
        return Err(ApiError::bad_request("adapters are not supported"));
    }
    let request = CreateRequest {
        template: req.template,
        system: req.system,
        parameters: typed_parameters(&req.parameters.unwrap_or_default())?,
        messages: req
            .messages
            .unwrap_or_default()
            .into_iter()
            .map(|m| Message::new(m.role, m.content))
            .collect(),
        license: licenses(req.license.as_ref())?,
    };
    let from = req.from.filter(|f| !f.trim().is_empty());
    let files = req.files.filter(|f| !f.is_empty());
    let source = match (from, files) {
        (Some(from), _) => {
            let base = parse_name(&from)?;
            let b = base.clone();
            let found = blocking(move || Ok(Store::open().manifest_path(&b).is_file())).await?;
            if !found {
                return Err(ApiError::not_found(format!("model \"{from}\" not found")));
            }
            Source::Model(base)
        }
        (None, Some(files)) => {
            let d = gguf_digest(&files)?;
            let d2 = d.clone();
            if !blocking(move || Ok(Store::open().has_blob(&d2))).await? {
                return Err(ApiError::bad_request(format!(
                    "blob {d} not found: upload it first with POST /api/blobs/{d}"
                )));
            }
            Source::Blob(d)
        }
        (None, None) => {
            return Err(ApiError::bad_request(
                "neither 'from' nor 'files' was specified",
            ))
        }
    };
    let scheduler = state.scheduler.clone();
    Ok(status_response(req.stream.unwrap_or(true), move |emit| {
        let store = Store::open();
        let replaced = store.manifest_path(&name).is_file();
        // `success` is sent below, once a replaced model has been asked to unload.
        let mut status = |line: &str| {
            if line != "success" {
                emit.status(line);
            }
        };
        create_model(&store, &name, &source, &request, &mut status).map_err(create_error)?;
        if replaced {
            unload_blocking(&scheduler, &name);
        }
        emit.status("success");
        Ok(())
    })
    .await)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn typed(v: Value) -> Result<Value, u16> {
        let Value::Object(m) = v else { panic!() };
        typed_parameters(&m)
            .map(Value::Object)
            .map_err(|e| e.status.as_u16())
    }

    #[test]
    fn parameters_are_typed_like_a_modelfile() {
        assert_eq!(
            typed(json!({"temperature": 0.7, "num_predict": 5, "stop": ["a", "b"], "top_k": "3"})),
            Ok(json!({"temperature": 0.7, "num_predict": 5, "stop": ["a", "b"], "top_k": 3}))
        );
        assert_eq!(typed(json!({"stop": "x"})), Ok(json!({"stop": ["x"]})));
        assert_eq!(
            typed(json!({"use_mmap": true})),
            Ok(json!({"use_mmap": true}))
        );
        assert_eq!(typed(json!({"nope": 1})), Err(400));
        assert_eq!(typed(json!({"nope": []})), Err(400));
        assert_eq!(typed(json!({"num_predict": 1.5})), Err(400));
        assert_eq!(typed(json!({"temperature": [0.1, 0.2]})), Err(400));
        assert_eq!(typed(json!({"temperature": {"x": 1}})), Err(400));
    }

    #[test]
    fn files_need_exactly_one_gguf() {
        let d = format!("sha256:{}", "b".repeat(64));
        let files = |names: &[&str]| -> BTreeMap<String, String> {
            names.iter().map(|n| (n.to_string(), d.clone())).collect()
        };
        assert!(gguf_digest(&files(&["m.gguf"])).is_ok());
        let e = gguf_digest(&files(&["m.gguf", "config.json"])).unwrap_err();
        assert!(e.message.contains("config.json"), "{}", e.message);
        assert!(gguf_digest(&files(&["a.gguf", "b.gguf"])).is_err());
        assert!(gguf_digest(&files(&["../m.gguf"])).is_err());
        let mut bad = files(&["m.gguf"]);
        bad.insert("m.gguf".into(), "sha256:xyz".into());
        assert!(gguf_digest(&bad).is_err());
    }
}

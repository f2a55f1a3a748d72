//! A client of the running `hearth serve` at [`crate::config::client_host`], for the
//! commands that talk to it (`ps`, `stop`). Every failure is one line: the server's
//! `{"error": …}` message, or that nothing answers at the address.

use std::time::Duration;

use anyhow::{anyhow, Result};
use serde_json::Value;

pub struct Client {
    addr: String,
    agent: ureq::Agent,
    /// `Authorization: Bearer …` for a server that requires a key.
    auth: Option<String>,
}

impl Client {
    /// A client of the server `HEARTH_HOST` (else `OLLAMA_HOST`) names.
    pub fn from_env() -> Client {
        Client::at(&crate::config::client_host())
    }

    /// A client of the server at `host:port`.
    pub fn at(addr: &str) -> Client {
        Client {
            addr: addr.to_string(),
            agent: ureq::AgentBuilder::new()
                .timeout_connect(Duration::from_secs(5))
                .build(),
            // The first of the keys the server's own variables name (a file that cannot
            // be read gives none; the server's 401 then says a key is needed).
            auth: crate::config::api_keys()
                .ok()
                .and_then(|k| k.into_iter().next())
                .map(|k| format!("Bearer {k}")),
        }
    }

    fn request(&self, method: &str, path: &str) -> ureq::Request {
        let r = self.agent.request(method, &self.url(path));
        match &self.auth {
            Some(a) => r.set("Authorization", a),
            None => r,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// `GET path`, its JSON body.
    pub fn get(&self, path: &str) -> Result<Value> {
        let r = self.request("GET", path).call();
        self.json(r)
    }

    /// `POST path` with a JSON body, the JSON answer.
    pub fn post(&self, path: &str, body: &Value) -> Result<Value> {
        let r = self
            .request("POST", path)
            .set("Content-Type", "application/json")
            .send_string(&body.to_string());
        self.json(r)
    }

    fn json(&self, r: Result<ureq::Response, ureq::Error>) -> Result<Value> {
        match r {
            Ok(resp) => {
                let text = resp
                    .into_string()
                    .map_err(|e| anyhow!("cannot read the server's answer: {e}"))?;
                serde_json::from_str(&text)
                    .map_err(|e| anyhow!("the server's answer is not JSON: {e}"))
            }
            Err(ureq::Error::Status(code, resp)) => {
                let text = resp.into_string().unwrap_or_default();
                let msg = serde_json::from_str::<Value>(&text)
                    .ok()
                    .and_then(|v| v.get("error")?.as_str().map(str::to_string))
                    .unwrap_or_else(|| format!("the server answered {code}: {}", text.trim()));
                Err(anyhow!(msg))
            }
            Err(ureq::Error::Transport(t))
                if matches!(
                    t.kind(),
                    ureq::ErrorKind::ConnectionFailed | ureq::ErrorKind::Dns
                ) =>
            {
                Err(anyhow!(
                    "could not connect to a hearth server at {}, start one with: hearth serve \
                     (or set HEARTH_HOST to its address)",
                    self.addr
                ))
            }
            Err(ureq::Error::Transport(t)) => Err(anyhow!(
                "request to the hearth server at {} failed: {t}",
                self.addr
            )),
        }
    }
}

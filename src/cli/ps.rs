//! `hearth ps`: the models the running server has loaded, as `ollama ps` prints them:
//! `NAME ID SIZE PROCESSOR CONTEXT UNTIL`.

use std::time::{Duration, SystemTime};

use anyhow::Result;
use clap::Args;

use super::client::Client;
use super::list::{human_duration, table};
use crate::registry::human_bytes;

#[derive(Debug, Args)]
pub struct PsArgs {
    /// Only models whose name starts with this
    #[arg(value_name = "PREFIX")]
    prefix: Option<String>,
}

pub fn run(args: PsArgs) -> Result<()> {
    let v = Client::from_env().get("/api/ps")?;
    let now = SystemTime::now();
    let mut rows = vec![["NAME", "ID", "SIZE", "PROCESSOR", "CONTEXT", "UNTIL"].map(String::from)];
    let models = v["models"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    for m in models {
        let name = m["name"].as_str().unwrap_or_default();
        if args
            .prefix
            .as_ref()
            .is_some_and(|p| !name.starts_with(p.as_str()))
        {
            continue;
        }
        let digest = m["digest"].as_str().unwrap_or_default();
        let size = m["size"].as_u64().unwrap_or(0);
        let vram = m["size_vram"].as_u64().unwrap_or(0);
        let until = m["expires_at"]
            .as_str()
            .and_then(crate::civil::parse_rfc3339);
        rows.push([
            name.to_string(),
            digest.get(..12).unwrap_or(digest).to_string(),
            human_bytes(size),
            processor(size, vram),
            m["context_length"].as_u64().unwrap_or(0).to_string(),
            until_text(until, now),
        ]);
    }
    print!("{}", table(&rows));
    Ok(())
}

/// Where the model lives, as `ollama ps` says it.
fn processor(size: u64, vram: u64) -> String {
    if vram == 0 {
        "100% CPU".into()
    } else if vram == size {
        "100% GPU".into()
    } else if vram > size || size == 0 {
        "Unknown".into()
    } else {
        let cpu = ((size - vram) as f64 / size as f64 * 100.0).round() as u64;
        format!("{cpu}%/{}% CPU/GPU", 100 - cpu)
    }
}

/// `4 minutes from now`, `Forever` (more than 20 years ahead), `Stopping...` (past).
fn until_text(t: Option<SystemTime>, now: SystemTime) -> String {
    let Some(t) = t else {
        return "Never".into();
    };
    match t.duration_since(now) {
        Err(_) => "Stopping...".into(),
        Ok(d) if d > Duration::from_secs(20 * 365 * 86_400) => "Forever".into(),
        Ok(d) => format!("{} from now", human_duration(d)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn until_like_ollama() {
        let now = SystemTime::now();
        let in_5m = now + Duration::from_secs(299);
        assert_eq!(until_text(Some(in_5m), now), "4 minutes from now");
        let far = now + Duration::from_secs(290 * 365 * 86_400);
        assert_eq!(until_text(Some(far), now), "Forever");
        let past = now - Duration::from_secs(1);
        assert_eq!(until_text(Some(past), now), "Stopping...");
        assert_eq!(until_text(None, now), "Never");
    }

    #[test]
    fn processors() {
        assert_eq!(processor(100, 0), "100% CPU");
        assert_eq!(processor(100, 100), "100% GPU");
        assert_eq!(processor(100, 25), "75%/25% CPU/GPU");
    }
}

//! `hearth ps`: the models the running server has loaded, as `ollama ps` prints them:
//! `NAME ID SIZE PROCESSOR CONTEXT UNTIL`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

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
        let until = m["expires_at"].as_str().and_then(parse_rfc3339);
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

/// Parses RFC 3339 (`2026-01-02T03:04:05.123Z`, `…+02:00`); `None` when it is not.
fn parse_rfc3339(s: &str) -> Option<SystemTime> {
    // Fields of at most 4 digits: nothing below can overflow.
    let num = |t: &str| -> Option<i64> {
        (!t.is_empty() && t.len() <= 4 && t.bytes().all(|b| b.is_ascii_digit()))
            .then(|| t.parse().ok())
            .flatten()
    };
    let (date, time) = s.split_once(['T', 't', ' '])?;
    let mut d = date.splitn(3, '-');
    let (y, mo, day) = (num(d.next()?)?, num(d.next()?)?, num(d.next()?)?);
    let (clock, offset) = if let Some(c) = time.strip_suffix(['Z', 'z']) {
        (c, 0)
    } else {
        let i = time.rfind(['+', '-'])?;
        let (h, m) = time[i + 1..].split_once(':')?;
        let off = num(h)? * 3600 + num(m)? * 60;
        (&time[..i], if &time[i..=i] == "-" { -off } else { off })
    };
    let (hms, frac) = clock.split_once('.').unwrap_or((clock, ""));
    let mut c = hms.splitn(3, ':');
    let (h, mi, sec) = (num(c.next()?)?, num(c.next()?)?, num(c.next()?)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&day) || h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    let nanos: u32 = if frac.is_empty() {
        0
    } else {
        if !frac.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        format!("{:0<9}", &frac[..frac.len().min(9)]).parse().ok()?
    };
    let secs = days_from_civil(y, mo, day) * 86_400 + h * 3600 + mi * 60 + sec - offset;
    let secs = u64::try_from(secs).ok()?;
    UNIX_EPOCH.checked_add(Duration::new(secs, nanos))
}

/// Days since 1970-01-01 of a date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::stream::rfc3339;

    #[test]
    fn rfc3339_round_trips() {
        for secs in [0u64, 1_709_251_199, 1_796_428_800, 10_900_000_000] {
            let t = UNIX_EPOCH + Duration::new(secs, 123_456_789);
            assert_eq!(parse_rfc3339(&rfc3339(t)), Some(t));
        }
        let t = parse_rfc3339("2024-02-29T23:59:59+01:00").unwrap();
        assert_eq!(rfc3339(t), "2024-02-29T22:59:59.000000000Z");
        assert_eq!(parse_rfc3339("2024-13-01T00:00:00Z"), None);
        assert_eq!(parse_rfc3339("yesterday"), None);
        assert_eq!(parse_rfc3339("99999999999999999-01-01T00:00:00Z"), None);
        assert_eq!(parse_rfc3339("2024-01-01T00:00:00+99999999999:00"), None);
        assert!(parse_rfc3339("2024-01-01T00:00:00.1234567890123456789012Z").is_some());
        assert_eq!(
            parse_rfc3339("2024-01-01T00:00:00.5Z")
                .map(|t| t.duration_since(UNIX_EPOCH).unwrap().subsec_millis()),
            Some(500)
        );
    }

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

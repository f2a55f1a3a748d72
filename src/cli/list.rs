//! `hearth list` (`ls`): the models in the store, as Ollama prints them:
//! `NAME ID SIZE MODIFIED`, most recent first.

use std::time::{Duration, SystemTime};

use anyhow::Result;
use clap::Args;

use crate::registry::human_bytes;
use crate::store::Store;

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Only models whose name starts with this
    #[arg(value_name = "PREFIX")]
    prefix: Option<String>,
}

pub fn run(args: ListArgs) -> Result<()> {
    let now = SystemTime::now();
    let mut rows = vec![[
        "NAME".to_string(),
        "ID".into(),
        "SIZE".into(),
        "MODIFIED".into(),
    ]];
    for e in Store::open().list()? {
        let name = e.name.to_string();
        if let Some(p) = &args.prefix {
            if !name.starts_with(p.as_str()) && !e.name.full().starts_with(p.as_str()) {
                continue;
            }
        }
        let age = now.duration_since(e.modified).unwrap_or_default();
        rows.push([
            name,
            e.id,
            human_bytes(e.size),
            format!("{} ago", human_duration(age)),
        ]);
    }
    print!("{}", table(&rows));
    Ok(())
}

/// Rows as Ollama's tables print them: left-aligned columns four spaces apart, no
/// trailing spaces.
pub fn table<R: AsRef<[String]>>(rows: &[R]) -> String {
    let mut widths: Vec<usize> = Vec::new();
    for r in rows {
        for (i, c) in r.as_ref().iter().enumerate() {
            if widths.len() <= i {
                widths.push(0);
            }
            widths[i] = widths[i].max(c.chars().count());
        }
    }
    let mut out = String::new();
    for r in rows {
        let mut line = String::new();
        for (c, w) in r.as_ref().iter().zip(&widths) {
            line.push_str(&format!("{c:<w$}    "));
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// Ollama's humanised duration ("Less than a second", "About a minute", "4 minutes"…).
pub fn human_duration(d: Duration) -> String {
    let s = d.as_secs();
    if s < 1 {
        return "Less than a second".into();
    }
    if s == 1 {
        return "1 second".into();
    }
    if s < 60 {
        return format!("{s} seconds");
    }
    let m = s / 60;
    if m == 1 {
        return "About a minute".into();
    }
    if m < 60 {
        return format!("{m} minutes");
    }
    let h = (d.as_secs_f64() / 3600.0).round() as u64;
    match h {
        1 => "About an hour".into(),
        h if h < 48 => format!("{h} hours"),
        h if h < 24 * 7 * 2 => format!("{} days", h / 24),
        h if h < 24 * 30 * 2 => format!("{} weeks", h / 24 / 7),
        h if h < 24 * 365 * 2 => format!("{} months", h / 24 / 30),
        _ => format!("{} years", s / 3600 / 24 / 365),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(
            human_duration(Duration::from_millis(10)),
            "Less than a second"
        );
        assert_eq!(human_duration(Duration::from_secs(65)), "About a minute");
        assert_eq!(human_duration(Duration::from_secs(4 * 60 + 5)), "4 minutes");
        assert_eq!(human_duration(Duration::from_secs(3 * 86400)), "3 days");
    }

    #[test]
    fn tables() {
        let rows = [
            vec!["NAME".to_string(), "ID".into(), "X".into()],
            vec!["smol:latest".to_string(), "abc".into(), "".into()],
        ];
        assert_eq!(
            table(&rows),
            "NAME           ID     X\nsmol:latest    abc\n"
        );
    }
}

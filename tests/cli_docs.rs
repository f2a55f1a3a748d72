//! Shell completions (completions/) and the man page (man/) are generated from the
//! clap definitions (plus the man page's ENVIRONMENT section from
//! `hearth::config::ENVIRONMENT`); this test fails when they are stale.
//!
//! Regenerate with: HEARTH_UPDATE_DOCS=1 cargo test --test cli_docs

use std::path::Path;

use clap::CommandFactory;
use clap_complete::Shell;
use hearth::cli::Cli;

fn check(rel: &str, generated: Vec<u8>) -> Option<String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(rel);
    if std::env::var_os("HEARTH_UPDATE_DOCS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &generated).unwrap();
        return None;
    }
    match std::fs::read(&path) {
        Ok(on_disk) if on_disk == generated => None,
        _ => Some(rel.to_string()),
    }
}

/// Text for roff: backslashes, hyphens and apostrophes escaped, no line starting a request.
fn roff_text(s: &str) -> String {
    let t = s
        .replace('\\', "\\e")
        .replace('-', "\\-")
        .replace('\'', "\\*(Aq");
    if t.starts_with('.') {
        format!("\\&{t}")
    } else {
        t
    }
}

/// The ENVIRONMENT section: one tagged paragraph per variable.
fn environment_section() -> String {
    let mut out = String::from(".SH ENVIRONMENT\n");
    for v in hearth::config::ENVIRONMENT {
        out.push_str(".TP\n");
        out.push_str(&format!("\\fB{}\\fR", roff_text(v.name)));
        if let Some(f) = v.fallback {
            out.push_str(&format!(" (else \\fB{}\\fR)", roff_text(f)));
        }
        out.push('\n');
        out.push_str(&roff_text(v.help));
        out.push('\n');
    }
    out
}

fn man_page() -> Vec<u8> {
    let mut man = Vec::new();
    clap_mangen::Man::new(Cli::command())
        .render(&mut man)
        .unwrap();
    let text = String::from_utf8(man).unwrap();
    let at = text.find(".SH VERSION").unwrap_or(text.len());
    format!("{}{}{}", &text[..at], environment_section(), &text[at..]).into_bytes()
}

#[test]
fn completions_and_man_page_are_current() {
    let mut stale = Vec::new();
    for (shell, file) in [
        (Shell::Bash, "completions/hearth.bash"),
        (Shell::Zsh, "completions/_hearth"),
        (Shell::Fish, "completions/hearth.fish"),
    ] {
        let mut out = Vec::new();
        clap_complete::generate(shell, &mut Cli::command(), "hearth", &mut out);
        stale.extend(check(file, out));
    }
    stale.extend(check("man/hearth.1", man_page()));
    assert!(
        stale.is_empty(),
        "stale: {stale:?}; regenerate with HEARTH_UPDATE_DOCS=1 cargo test --test cli_docs"
    );
}

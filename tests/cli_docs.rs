//! Shell completions (completions/) and the man page (man/) are generated from the
//! clap definitions; this test fails when they are stale.
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
    let mut man = Vec::new();
    clap_mangen::Man::new(Cli::command())
        .render(&mut man)
        .unwrap();
    stale.extend(check("man/hearth.1", man));
    assert!(
        stale.is_empty(),
        "stale: {stale:?}; regenerate with HEARTH_UPDATE_DOCS=1 cargo test --test cli_docs"
    );
}

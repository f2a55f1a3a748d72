//! Shell completions (completions/) and the man pages (man/) are generated from the clap
//! definitions, plus for the man pages the ENVIRONMENT section from
//! `hearth::config::ENVIRONMENT` and the FILES, EXIT STATUS and EXAMPLES sections from
//! `hearth::cli::docs`; this test fails when they are stale.
//!
//! Regenerate with: HEARTH_UPDATE_DOCS=1 cargo test --release --test cli_docs

use std::path::Path;
use std::process::Command;

use clap::CommandFactory;
use clap_complete::Shell;
use clap_mangen::Man;
use hearth::cli::docs::{self, Page};
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
    if t.starts_with('.') || t.starts_with('\'') {
        format!("\\&{t}")
    } else {
        t
    }
}

/// A section of tagged paragraphs: the tag in bold, then its text.
fn tagged_section(title: &str, items: &[(String, String)]) -> String {
    let mut out = format!(".SH {title}\n");
    for (tag, text) in items {
        out.push_str(&format!(".TP\n{tag}\n{}\n", roff_text(text)));
    }
    out
}

fn bold(s: &str) -> String {
    format!("\\fB{}\\fR", roff_text(s))
}

/// The ENVIRONMENT section: one tagged paragraph per variable (all when `names` is None).
fn environment_section(names: Option<&[&str]>) -> String {
    let items: Vec<_> = hearth::config::ENVIRONMENT
        .iter()
        // RUST_LOG (error details) applies to every command.
        .filter(|v| names.is_none_or(|n| n.contains(&v.name) || v.name == "RUST_LOG"))
        .map(|v| {
            let tag = match v.fallback {
                Some(f) => format!("{} (else {})", bold(v.name), bold(f)),
                None => bold(v.name),
            };
            (tag, v.help.to_string())
        })
        .collect();
    if items.is_empty() {
        return String::new();
    }
    tagged_section("ENVIRONMENT", &items)
}

fn files_section() -> String {
    let items: Vec<_> = docs::FILES
        .iter()
        .map(|(p, t)| (format!("\\fI{}\\fR", roff_text(p)), t.to_string()))
        .collect();
    tagged_section("FILES", &items)
}

fn exit_status_section() -> String {
    let items: Vec<_> = docs::EXIT_STATUS
        .iter()
        .map(|(c, t)| (bold(c), t.to_string()))
        .collect();
    tagged_section("EXIT STATUS", &items)
}

fn examples_section(examples: &[(&str, &str)]) -> String {
    let items: Vec<_> = examples
        .iter()
        .map(|(cmd, what)| (bold(cmd), what.to_string()))
        .collect();
    tagged_section("EXAMPLES", &items)
}

fn render(man: &Man, extra: &str, with_subcommands: bool) -> Vec<u8> {
    let mut out = Vec::new();
    man.render_title(&mut out).unwrap();
    man.render_name_section(&mut out).unwrap();
    man.render_synopsis_section(&mut out).unwrap();
    man.render_description_section(&mut out).unwrap();
    man.render_options_section(&mut out).unwrap();
    if with_subcommands {
        man.render_subcommands_section(&mut out).unwrap();
    }
    out.extend_from_slice(extra.as_bytes());
    man.render_version_section(&mut out).unwrap();
    out
}

/// `man/hearth.1`: every subcommand, every variable.
fn main_page() -> Vec<u8> {
    let extra = [
        environment_section(None),
        files_section(),
        exit_status_section(),
        examples_section(docs::MAIN_EXAMPLES),
    ]
    .concat();
    render(&Man::new(Cli::command()), &extra, true)
}

/// `man/hearth-<command>.1`.
fn sub_page(page: &Page) -> Vec<u8> {
    let mut cli = Cli::command();
    cli.build();
    // clap names are &'static str (without its "string" feature); a test may leak.
    let name: &'static str = Box::leak(format!("hearth-{}", page.command).into_boxed_str());
    let sub = cli
        .find_subcommand(page.command)
        .unwrap_or_else(|| panic!("docs::PAGES names {}, not a subcommand", page.command))
        .clone()
        .name(name)
        .display_name(name)
        .version(env!("CARGO_PKG_VERSION"));
    let extra = [
        environment_section(Some(page.environment)),
        files_section(),
        exit_status_section(),
        examples_section(page.examples),
    ]
    .concat();
    render(&Man::new(sub), &extra, false)
}

#[test]
fn completions_and_man_pages_are_current() {
    let mut stale = Vec::new();
    for (shell, file) in [
        (Shell::Bash, "completions/hearth.bash"),
        (Shell::Zsh, "completions/_hearth"),
        (Shell::Fish, "completions/hearth.fish"),
        (Shell::Elvish, "completions/hearth.elv"),
        (Shell::PowerShell, "completions/_hearth.ps1"),
    ] {
        stale.extend(check(file, hearth::cli::completion_script(shell)));
    }
    stale.extend(check("man/hearth.1", main_page()));
    for page in docs::PAGES {
        stale.extend(check(
            &format!("man/hearth-{}.1", page.command),
            sub_page(page),
        ));
    }
    assert!(
        stale.is_empty(),
        "stale: {stale:?}; regenerate with HEARTH_UPDATE_DOCS=1 cargo test --release --test cli_docs"
    );
}

/// Every visible subcommand has a page, every page a subcommand, and every variable a
/// page names is in `config::ENVIRONMENT`.
#[test]
fn every_subcommand_has_a_page() {
    let cli = Cli::command();
    let mut visible: Vec<_> = cli
        .get_subcommands()
        .filter(|s| !s.is_hide_set())
        .map(|s| s.get_name().to_string())
        .collect();
    visible.sort();
    let mut pages: Vec<_> = docs::PAGES.iter().map(|p| p.command.to_string()).collect();
    pages.sort();
    assert_eq!(visible, pages);
    for p in docs::PAGES {
        assert!(!p.examples.is_empty(), "{}: no examples", p.command);
        for v in p.environment {
            assert!(
                hearth::config::ENVIRONMENT.iter().any(|e| e.name == *v),
                "{}: {v} is not in config::ENVIRONMENT",
                p.command
            );
        }
    }
}

/// Every subcommand and every option has a one-line help.
#[test]
fn everything_has_help() {
    let mut cli = Cli::command();
    cli.build();
    for sub in cli.get_subcommands().filter(|s| !s.is_hide_set()) {
        let about = sub.get_about().map(|a| a.to_string()).unwrap_or_default();
        assert!(!about.is_empty(), "{}: no help", sub.get_name());
        assert!(
            !about.contains('\n'),
            "{}: help of more than a line",
            sub.get_name()
        );
        for arg in sub.get_arguments() {
            let help = arg.get_help().map(|h| h.to_string()).unwrap_or_default();
            assert!(
                !help.is_empty(),
                "{} {}: no help",
                sub.get_name(),
                arg.get_id()
            );
            assert!(
                !help.contains('\n'),
                "{} {}: multi-line",
                sub.get_name(),
                arg.get_id()
            );
        }
    }
}

/// `hearth completion SHELL` prints exactly what completions/ holds.
#[test]
fn the_completion_command_prints_the_scripts() {
    for (shell, file) in [
        ("bash", "completions/hearth.bash"),
        ("fish", "completions/hearth.fish"),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_hearth"))
            .args(["completion", shell])
            .output()
            .unwrap();
        assert!(out.status.success());
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(file);
        assert_eq!(out.stdout, std::fs::read(path).unwrap(), "{shell}");
    }
}

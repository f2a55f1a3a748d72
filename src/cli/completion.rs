//! `hearth completion SHELL`: the shell completion script, generated from the clap
//! definitions by clap_complete. For bash, zsh and fish a small addition completes the
//! MODEL arguments of run, show, rm, cp, push and stop with the names in the store, which
//! the hidden `hearth __complete-models` prints (one per line, from the store on disk:
//! no network, no server). `completions/` holds these scripts; tests/cli_docs.rs fails
//! when they are stale.

use std::io::Write;

use anyhow::Result;
use clap::{Args, CommandFactory};
use clap_complete::Shell;

use crate::store::Store;

#[derive(Debug, Args)]
pub struct CompletionArgs {
    /// The shell to print the completion script for
    #[arg(value_name = "SHELL")]
    shell: Shell,
}

pub fn run(args: CompletionArgs) -> Result<()> {
    std::io::stdout().write_all(&script(args.shell))?;
    Ok(())
}

/// `hearth __complete-models`: the store's model names, one per line. Quiet on every
/// failure (a missing or unreadable store prints nothing): a completion must not spill
/// errors into the user's command line.
pub fn complete_models() -> std::io::Result<()> {
    let mut out = String::new();
    for e in Store::open().list().unwrap_or_default() {
        out.push_str(&e.name.to_string());
        out.push('\n');
    }
    std::io::stdout().write_all(out.as_bytes())
}

/// The completion script for `shell`, exactly as `completions/` holds it.
pub fn script(shell: Shell) -> Vec<u8> {
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut super::Cli::command(), "hearth", &mut out);
    let text = String::from_utf8_lossy(&out).into_owned();
    let text = match shell {
        Shell::Bash => format!("{text}{BASH_MODELS}"),
        Shell::Fish => format!("{text}{FISH_MODELS}"),
        Shell::Zsh => zsh_with_models(&text),
        _ => text,
    };
    text.into_bytes()
}

/// The subcommands whose first positional argument is a model in the store (for `rm`,
/// every positional argument is).
const MODEL_COMMANDS: [&str; 6] = ["run", "show", "rm", "cp", "push", "stop"];

/// Bash: a wrapper around the generated `_hearth` that offers model names where a MODEL
/// goes. Words are split at spaces only (not at COMP_WORDBREAKS' colons, which would cut
/// `llama3.2:1b` in three), and what precedes the last colon of the word is removed from
/// the candidates, as bash-completion's `__ltrim_colon_completions` does.
const BASH_MODELS: &str = r#"
# Model names from the store (hearth __complete-models) for the MODEL arguments.
_hearth_models() {
    local line="${COMP_LINE:0:COMP_POINT}" cur="" sub="" w n=0 skip=0
    local -a words
    read -ra words <<< "$line"
    if [[ "$line" != *" " && ${#words[@]} -gt 0 ]]; then
        cur="${words[${#words[@]}-1]}"
        unset "words[$((${#words[@]}-1))]"
    fi
    for w in "${words[@]:1}"; do
        if ((skip)); then skip=0; continue; fi
        case "$w" in
            -o|--option|--system|-f|--file) skip=1 ;;
            -*) ;;
            *) if [[ -z "$sub" ]]; then sub="$w"; else n=$((n + 1)); fi ;;
        esac
    done
    local want=0
    case "$sub" in
        rm) want=1 ;;
        run|show|cp|push|stop) ((n == 0)) && want=1 ;;
    esac
    if ((want)) && [[ "$cur" != -* ]]; then
        COMPREPLY=( $(compgen -W "$(hearth __complete-models 2>/dev/null)" -- "$cur") )
        if [[ "$cur" == *:* ]]; then
            local prefix="${cur%"${cur##*:}"}"
            COMPREPLY=( "${COMPREPLY[@]#"$prefix"}" )
        fi
        ((${#COMPREPLY[@]})) && return 0
    fi
    _hearth "$@"
}

if [[ "${BASH_VERSINFO[0]}" -eq 4 && "${BASH_VERSINFO[1]}" -ge 4 || "${BASH_VERSINFO[0]}" -gt 4 ]]; then
    complete -F _hearth_models -o nosort -o bashdefault -o default hearth
else
    complete -F _hearth_models -o bashdefault -o default hearth
fi
"#;

/// Fish: one more completion, active where a MODEL goes.
const FISH_MODELS: &str = r#"
# Model names from the store (hearth __complete-models) for the MODEL arguments.
function __fish_hearth_wants_model
    set -l cmd (commandline -opc)
    set -e cmd[1]
    set -l sub ""
    set -l n 0
    set -l skip 0
    for w in $cmd
        if test $skip = 1
            set skip 0
            continue
        end
        switch $w
            case -o --option --system -f --file
                set skip 1
            case '-*'
            case '*'
                if test -z "$sub"
                    set sub $w
                else
                    set n (math $n + 1)
                end
        end
    end
    switch $sub
        case rm
            return 0
        case run show cp push stop
            test $n = 0
        case '*'
            return 1
    end
end

complete -c hearth -n "__fish_hearth_wants_model" -a "(hearth __complete-models 2>/dev/null)" -d 'Model'
"#;

/// Zsh: the generated `_default` action of each MODEL argument becomes `_hearth_models`
/// (for run and show, which also take a .gguf path, models and files), and that function
/// is defined before the script's closing `compdef`.
fn zsh_with_models(text: &str) -> String {
    const FUNCTIONS: &str = r#"(( $+functions[_hearth_models] )) ||
_hearth_models() {
    local -a models
    models=(${(f)"$(_call_program models hearth __complete-models 2>/dev/null)"})
    _wanted models expl model compadd -a models
}
(( $+functions[_hearth_models_or_files] )) ||
_hearth_models_or_files() {
    _alternative 'models:model:_hearth_models' 'files:file:_files'
}

"#;
    let mut out = String::with_capacity(text.len() + FUNCTIONS.len());
    // The subcommand whose `_arguments` block is being read, until its model argument
    // has been rewritten (only the first positional argument is a MODEL).
    let mut pending: Option<&str> = None;
    for line in text.split_inclusive('\n') {
        let trimmed = line.trim_end();
        if let Some(sub) = trimmed.strip_prefix('(').and_then(|s| s.strip_suffix(')')) {
            pending = MODEL_COMMANDS.iter().copied().find(|c| *c == sub);
        } else if trimmed == ";;" {
            pending = None;
        }
        let positional = ["':", "'::", "'*::"].iter().any(|p| line.starts_with(p));
        if let (Some(sub), true) = (pending, positional) {
            if let Some(head) = trimmed.strip_suffix(":_default' \\") {
                let action = match sub {
                    "run" | "show" => "_hearth_models_or_files",
                    _ => "_hearth_models",
                };
                out.push_str(&format!("{head}:{action}' \\\n"));
                pending = None;
                continue;
            }
        }
        if line.starts_with("if [ \"$funcstack[1]\" = \"_hearth\" ]") {
            out.push_str(FUNCTIONS);
        }
        out.push_str(line);
    }
    out
}

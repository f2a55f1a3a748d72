//! What the man pages say beyond the clap definitions: the examples of each command, the
//! environment variables that matter to it, the files hearth uses and its exit statuses.
//! tests/cli_docs.rs renders `man/hearth.1` and `man/hearth-<command>.1` from these.

/// The man page additions of one subcommand.
#[derive(Clone, Copy, Debug)]
pub struct Page {
    /// The subcommand, as typed.
    pub command: &'static str,
    /// The variables of [`crate::config::ENVIRONMENT`] it reads.
    pub environment: &'static [&'static str],
    /// Command lines and what each does.
    pub examples: &'static [(&'static str, &'static str)],
}

/// Variables every command that opens the store reads.
const STORE: &[&str] = &["HEARTH_MODELS"];
/// Variables of the commands that show progress and open the store.
const PROGRESS: &[&str] = &["HEARTH_MODELS", "NO_COLOR"];
/// Variables of the commands that run a model in this process.
const INFERENCE: &[&str] = &[
    "HEARTH_MODELS",
    "HEARTH_NUM_THREADS",
    "HEARTH_KERNEL",
    "HEARTH_MLOCK",
];
/// Variables of the commands that talk to a running server.
const CLIENT: &[&str] = &["HEARTH_HOST"];

/// The examples of `hearth.1`.
pub const MAIN_EXAMPLES: &[(&str, &str)] = &[
    (
        "hearth pull qwen2.5:0.5b",
        "Download a model from the Ollama registry.",
    ),
    ("hearth run qwen2.5:0.5b", "Chat with it in the terminal."),
    (
        "hearth run qwen2.5:0.5b \"Why is the sky blue?\"",
        "Print one answer and exit.",
    ),
    (
        "hearth serve",
        "Serve the Ollama and OpenAI APIs on 127.0.0.1:11434.",
    ),
    (
        "hearth completion bash > /etc/bash_completion.d/hearth",
        "Install the bash completions.",
    ),
];

/// One page per subcommand, in the order of `hearth --help`.
pub const PAGES: &[Page] = &[
    Page {
        command: "bench",
        environment: INFERENCE,
        examples: &[
            ("hearth bench qwen2.5:0.5b", "pp512 and tg128, three runs each."),
            (
                "hearth bench -p 0 -n 64 --batch 1,4 model.gguf",
                "Generation only, one and four sequences at once, from a file.",
            ),
            (
                "hearth bench --json -t 4 qwen2.5:0.5b",
                "Four threads, the results as JSON.",
            ),
        ],
    },
    Page {
        command: "completion",
        environment: &[],
        examples: &[
            (
                "hearth completion bash > /etc/bash_completion.d/hearth",
                "Bash (model names complete from the store).",
            ),
            (
                "hearth completion zsh > \"${fpath[1]}/_hearth\"",
                "Zsh: a directory of $fpath.",
            ),
            (
                "hearth completion fish > ~/.config/fish/completions/hearth.fish",
                "Fish.",
            ),
            (
                "hearth completion powershell >> $PROFILE",
                "PowerShell.",
            ),
        ],
    },
    Page {
        command: "cp",
        environment: STORE,
        examples: &[(
            "hearth cp qwen2.5:0.5b my-assistant",
            "Another name for the same blobs (no copy of the weights).",
        )],
    },
    Page {
        command: "create",
        environment: PROGRESS,
        examples: &[
            (
                "hearth create my-assistant -f Modelfile",
                "A model from a Modelfile (FROM a store model or a .gguf file).",
            ),
            (
                "hearth create imported",
                "Import ./Modelfile, or the .gguf file in the current directory.",
            ),
        ],
    },
    Page {
        command: "list",
        environment: STORE,
        examples: &[
            ("hearth list", "Every model in the store, newest first."),
            ("hearth ls qwen", "The models whose name starts with qwen."),
        ],
    },
    Page {
        command: "ps",
        environment: CLIENT,
        examples: &[
            ("hearth ps", "The models the running server has loaded."),
            (
                "HEARTH_HOST=10.0.0.5:11434 hearth ps",
                "Ask a server on another machine.",
            ),
        ],
    },
    Page {
        command: "pull",
        environment: PROGRESS,
        examples: &[
            ("hearth pull qwen2.5:0.5b", "From registry.ollama.ai."),
            (
                "hearth pull --insecure 127.0.0.1:5000/library/smol:latest",
                "From a registry on plain http.",
            ),
        ],
    },
    Page {
        command: "push",
        environment: PROGRESS,
        examples: &[(
            "hearth push --insecure 127.0.0.1:5000/me/my-assistant:latest",
            "Upload a model (named with its registry) to a registry on plain http.",
        )],
    },
    Page {
        command: "rm",
        environment: STORE,
        examples: &[(
            "hearth rm qwen2.5:0.5b my-assistant",
            "Delete two models, and the blobs no other model uses.",
        )],
    },
    Page {
        command: "run",
        environment: &[
            "HEARTH_HOME",
            "HEARTH_MODELS",
            "HEARTH_NUM_THREADS",
            "HEARTH_KERNEL",
            "HEARTH_MLOCK",
            "NO_COLOR",
        ],
        examples: &[
            (
                "hearth run qwen2.5:0.5b",
                "Chat (/? lists the commands; the history is kept in ~/.hearth/history).",
            ),
            (
                "hearth run -o temperature=0 -o num_predict=64 qwen2.5:0.5b \"Name three colors\"",
                "One answer with options.",
            ),
            (
                "cat notes.txt | hearth run qwen2.5:0.5b \"Summarize:\"",
                "Stdin first, then the prompt.",
            ),
            (
                "hearth run --verbose ./model.gguf \"Hello\"",
                "A .gguf file, with timings on stderr.",
            ),
        ],
    },
    Page {
        command: "serve",
        environment: super::serve::ENVIRONMENT,
        examples: &[
            ("hearth serve", "Listen on 127.0.0.1:11434."),
            (
                "HEARTH_HOST=0.0.0.0:11434 HEARTH_NUM_PARALLEL=2 hearth serve",
                "Listen on every interface, two sequences at once per model.",
            ),
            (
                "ulimit -l unlimited && hearth serve --mlock",
                "Keep loaded weights in RAM, never paged out (root, or a raised hard limit).",
            ),
            (
                "curl http://127.0.0.1:11434/api/generate -d '{\"model\":\"qwen2.5:0.5b\",\"prompt\":\"Hi\"}'",
                "Ask the server.",
            ),
        ],
    },
    Page {
        command: "show",
        environment: STORE,
        examples: &[
            ("hearth show qwen2.5:0.5b", "Architecture, size, quantization, parameters."),
            ("hearth show --modelfile qwen2.5:0.5b", "The model's Modelfile."),
            (
                "hearth show -v --file model.gguf",
                "Every metadata key and tensor of a .gguf file.",
            ),
        ],
    },
    Page {
        command: "stop",
        environment: CLIENT,
        examples: &[(
            "hearth stop qwen2.5:0.5b",
            "Unload a model from the running server now.",
        )],
    },
    Page {
        command: "tokenize",
        environment: STORE,
        examples: &[
            ("hearth tokenize qwen2.5:0.5b \"Hello world\"", "The token ids."),
            (
                "hearth tokenize --decode qwen2.5:0.5b \"[9707, 1879]\"",
                "The text of token ids.",
            ),
        ],
    },
];

/// The FILES section: (path, what it holds).
pub const FILES: &[(&str, &str)] = &[
    (
        "~/.hearth/models",
        "The model store ($HEARTH_MODELS, else $OLLAMA_MODELS), laid out as Ollama's, so \
         either can use the other's.",
    ),
    (
        "~/.hearth/models/manifests/<host>/<namespace>/<model>/<tag>",
        "A model's manifest (JSON), e.g. manifests/registry.ollama.ai/library/qwen2.5/0.5b.",
    ),
    (
        "~/.hearth/models/blobs/sha256-<hex>",
        "The layers (weights, template, parameters, license) and configs, named by their \
         checked sha256; shared by every model that uses them.",
    ),
    (
        "~/.hearth/history",
        "The chat history of hearth run ($HEARTH_HOME/history).",
    ),
];

/// The EXIT STATUS section: (status, meaning).
pub const EXIT_STATUS: &[(&str, &str)] = &[
    ("0", "Success."),
    (
        "1",
        "An error: one line on stderr, \"Error: \" and the cause (and the fix, where there \
         is one).",
    ),
    (
        "2",
        "A usage error: an unknown option or subcommand, or a missing or invalid argument.",
    ),
];

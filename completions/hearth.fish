# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_hearth_global_optspecs
    string join \n h/help V/version
end

function __fish_hearth_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_hearth_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_hearth_using_subcommand
    set -l cmd (__fish_hearth_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c hearth -n "__fish_hearth_needs_command" -s h -l help -d 'Print help'
complete -c hearth -n "__fish_hearth_needs_command" -s V -l version -d 'Print version'
complete -c hearth -n "__fish_hearth_needs_command" -f -a "bench" -d 'Measure prompt processing and generation speed'
complete -c hearth -n "__fish_hearth_needs_command" -f -a "completion" -d 'Print the shell completion script for bash, zsh, fish, elvish or powershell'
complete -c hearth -n "__fish_hearth_needs_command" -f -a "cp" -d 'Copy a model under another name'
complete -c hearth -n "__fish_hearth_needs_command" -f -a "create" -d 'Create a model from a Modelfile'
complete -c hearth -n "__fish_hearth_needs_command" -f -a "list" -d 'List the models in the store'
complete -c hearth -n "__fish_hearth_needs_command" -f -a "ls" -d 'List the models in the store'
complete -c hearth -n "__fish_hearth_needs_command" -f -a "ps" -d 'List the models the running server has loaded'
complete -c hearth -n "__fish_hearth_needs_command" -f -a "pull" -d 'Pull a model from a registry'
complete -c hearth -n "__fish_hearth_needs_command" -f -a "push" -d 'Push a model to a registry'
complete -c hearth -n "__fish_hearth_needs_command" -f -a "rm" -d 'Remove models'
complete -c hearth -n "__fish_hearth_needs_command" -f -a "run" -d 'Run a model: answer a prompt, or chat'
complete -c hearth -n "__fish_hearth_needs_command" -f -a "serve" -d 'Start the server (Ollama and OpenAI APIs)'
complete -c hearth -n "__fish_hearth_needs_command" -f -a "start" -d 'Start the server (Ollama and OpenAI APIs)'
complete -c hearth -n "__fish_hearth_needs_command" -f -a "show" -d 'Show information about a model'
complete -c hearth -n "__fish_hearth_needs_command" -f -a "stop" -d 'Unload a model from the running server'
complete -c hearth -n "__fish_hearth_needs_command" -f -a "tokenize" -d 'Print the token ids of a text (or, with --decode, the text of token ids)'
complete -c hearth -n "__fish_hearth_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c hearth -n "__fish_hearth_using_subcommand bench" -s p -l n-prompt -d 'Prompt tokens per pp test (0 to skip)' -r
complete -c hearth -n "__fish_hearth_using_subcommand bench" -s n -l n-gen -d 'Generated tokens per tg test (0 to skip)' -r
complete -c hearth -n "__fish_hearth_using_subcommand bench" -s r -l repetitions -d 'Repetitions of each test' -r
complete -c hearth -n "__fish_hearth_using_subcommand bench" -s t -l threads -d 'Threads (default: HEARTH_NUM_THREADS or one per CPU)' -r
complete -c hearth -n "__fish_hearth_using_subcommand bench" -l batch -d 'Sequences decoded together, comma-separated (e.g. 1,2,4,8)' -r
complete -c hearth -n "__fish_hearth_using_subcommand bench" -l json -d 'Print one JSON array instead of a table'
complete -c hearth -n "__fish_hearth_using_subcommand bench" -l mlock -d 'Lock the model\'s weights in memory first (as HEARTH_MLOCK=1)'
complete -c hearth -n "__fish_hearth_using_subcommand bench" -s h -l help -d 'Print help'
complete -c hearth -n "__fish_hearth_using_subcommand completion" -s h -l help -d 'Print help'
complete -c hearth -n "__fish_hearth_using_subcommand cp" -s h -l help -d 'Print help'
complete -c hearth -n "__fish_hearth_using_subcommand create" -s f -l file -d 'The Modelfile (default ./Modelfile; without one, FROM the current directory)' -r -F
complete -c hearth -n "__fish_hearth_using_subcommand create" -s h -l help -d 'Print help'
complete -c hearth -n "__fish_hearth_using_subcommand list" -s h -l help -d 'Print help'
complete -c hearth -n "__fish_hearth_using_subcommand ls" -s h -l help -d 'Print help'
complete -c hearth -n "__fish_hearth_using_subcommand ps" -s h -l help -d 'Print help'
complete -c hearth -n "__fish_hearth_using_subcommand pull" -l insecure -d 'Allow plain http to the registry'
complete -c hearth -n "__fish_hearth_using_subcommand pull" -s h -l help -d 'Print help'
complete -c hearth -n "__fish_hearth_using_subcommand push" -l insecure -d 'Allow plain http to the registry'
complete -c hearth -n "__fish_hearth_using_subcommand push" -s h -l help -d 'Print help'
complete -c hearth -n "__fish_hearth_using_subcommand rm" -s h -l help -d 'Print help'
complete -c hearth -n "__fish_hearth_using_subcommand run" -s o -l option -d 'Set a model option, e.g. -o temperature=0 -o num_predict=32 (repeatable)' -r
complete -c hearth -n "__fish_hearth_using_subcommand run" -l system -d 'A system message for the conversation' -r
complete -c hearth -n "__fish_hearth_using_subcommand run" -l format -d 'Answer in JSON: `json` for any JSON object, or a file holding a JSON Schema' -r
complete -c hearth -n "__fish_hearth_using_subcommand run" -l think -d 'Let a reasoning model think first (true, false, or a level: low, medium, high)' -r
complete -c hearth -n "__fish_hearth_using_subcommand run" -l raw -d 'Send the prompt as it is, without the chat template'
complete -c hearth -n "__fish_hearth_using_subcommand run" -l verbose -d 'Print timings and token rates to stderr after each answer'
complete -c hearth -n "__fish_hearth_using_subcommand run" -l nowordwrap -d 'Do not wrap words on a terminal'
complete -c hearth -n "__fish_hearth_using_subcommand run" -l insecure -d 'Allow plain http when the model must be pulled'
complete -c hearth -n "__fish_hearth_using_subcommand run" -l mlock -d 'Lock the model\'s weights in memory, never paged out (as HEARTH_MLOCK=1)'
complete -c hearth -n "__fish_hearth_using_subcommand run" -l hidethinking -d 'Do not show what a reasoning model thinks (only its answer)'
complete -c hearth -n "__fish_hearth_using_subcommand run" -s h -l help -d 'Print help'
complete -c hearth -n "__fish_hearth_using_subcommand serve" -l mlock -d 'Lock each loaded model\'s weights in memory, never paged out (as HEARTH_MLOCK=1)'
complete -c hearth -n "__fish_hearth_using_subcommand serve" -s h -l help -d 'Print help'
complete -c hearth -n "__fish_hearth_using_subcommand start" -l mlock -d 'Lock each loaded model\'s weights in memory, never paged out (as HEARTH_MLOCK=1)'
complete -c hearth -n "__fish_hearth_using_subcommand start" -s h -l help -d 'Print help'
complete -c hearth -n "__fish_hearth_using_subcommand show" -l file -d 'Read this .gguf file' -r -F
complete -c hearth -n "__fish_hearth_using_subcommand show" -s v -l verbose -d 'Also list all metadata and tensors'
complete -c hearth -n "__fish_hearth_using_subcommand show" -l modelfile -d 'Print the model\'s Modelfile'
complete -c hearth -n "__fish_hearth_using_subcommand show" -l template -d 'Print the model\'s template'
complete -c hearth -n "__fish_hearth_using_subcommand show" -l parameters -d 'Print the model\'s parameters'
complete -c hearth -n "__fish_hearth_using_subcommand show" -l system -d 'Print the model\'s system message'
complete -c hearth -n "__fish_hearth_using_subcommand show" -l license -d 'Print the model\'s license'
complete -c hearth -n "__fish_hearth_using_subcommand show" -s h -l help -d 'Print help'
complete -c hearth -n "__fish_hearth_using_subcommand stop" -s h -l help -d 'Print help'
complete -c hearth -n "__fish_hearth_using_subcommand tokenize" -l no-bos -d 'Do not add the BOS token the model would add'
complete -c hearth -n "__fish_hearth_using_subcommand tokenize" -l decode -d 'Decode a JSON array of token ids to text instead'
complete -c hearth -n "__fish_hearth_using_subcommand tokenize" -s h -l help -d 'Print help'
complete -c hearth -n "__fish_hearth_using_subcommand help; and not __fish_seen_subcommand_from bench completion cp create list ps pull push rm run serve show stop tokenize help" -f -a "bench" -d 'Measure prompt processing and generation speed'
complete -c hearth -n "__fish_hearth_using_subcommand help; and not __fish_seen_subcommand_from bench completion cp create list ps pull push rm run serve show stop tokenize help" -f -a "completion" -d 'Print the shell completion script for bash, zsh, fish, elvish or powershell'
complete -c hearth -n "__fish_hearth_using_subcommand help; and not __fish_seen_subcommand_from bench completion cp create list ps pull push rm run serve show stop tokenize help" -f -a "cp" -d 'Copy a model under another name'
complete -c hearth -n "__fish_hearth_using_subcommand help; and not __fish_seen_subcommand_from bench completion cp create list ps pull push rm run serve show stop tokenize help" -f -a "create" -d 'Create a model from a Modelfile'
complete -c hearth -n "__fish_hearth_using_subcommand help; and not __fish_seen_subcommand_from bench completion cp create list ps pull push rm run serve show stop tokenize help" -f -a "list" -d 'List the models in the store'
complete -c hearth -n "__fish_hearth_using_subcommand help; and not __fish_seen_subcommand_from bench completion cp create list ps pull push rm run serve show stop tokenize help" -f -a "ps" -d 'List the models the running server has loaded'
complete -c hearth -n "__fish_hearth_using_subcommand help; and not __fish_seen_subcommand_from bench completion cp create list ps pull push rm run serve show stop tokenize help" -f -a "pull" -d 'Pull a model from a registry'
complete -c hearth -n "__fish_hearth_using_subcommand help; and not __fish_seen_subcommand_from bench completion cp create list ps pull push rm run serve show stop tokenize help" -f -a "push" -d 'Push a model to a registry'
complete -c hearth -n "__fish_hearth_using_subcommand help; and not __fish_seen_subcommand_from bench completion cp create list ps pull push rm run serve show stop tokenize help" -f -a "rm" -d 'Remove models'
complete -c hearth -n "__fish_hearth_using_subcommand help; and not __fish_seen_subcommand_from bench completion cp create list ps pull push rm run serve show stop tokenize help" -f -a "run" -d 'Run a model: answer a prompt, or chat'
complete -c hearth -n "__fish_hearth_using_subcommand help; and not __fish_seen_subcommand_from bench completion cp create list ps pull push rm run serve show stop tokenize help" -f -a "serve" -d 'Start the server (Ollama and OpenAI APIs)'
complete -c hearth -n "__fish_hearth_using_subcommand help; and not __fish_seen_subcommand_from bench completion cp create list ps pull push rm run serve show stop tokenize help" -f -a "show" -d 'Show information about a model'
complete -c hearth -n "__fish_hearth_using_subcommand help; and not __fish_seen_subcommand_from bench completion cp create list ps pull push rm run serve show stop tokenize help" -f -a "stop" -d 'Unload a model from the running server'
complete -c hearth -n "__fish_hearth_using_subcommand help; and not __fish_seen_subcommand_from bench completion cp create list ps pull push rm run serve show stop tokenize help" -f -a "tokenize" -d 'Print the token ids of a text (or, with --decode, the text of token ids)'
complete -c hearth -n "__fish_hearth_using_subcommand help; and not __fish_seen_subcommand_from bench completion cp create list ps pull push rm run serve show stop tokenize help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'

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

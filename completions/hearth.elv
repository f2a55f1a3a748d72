
use builtin;
use str;

set edit:completion:arg-completer[hearth] = {|@words|
    fn spaces {|n|
        builtin:repeat $n ' ' | str:join ''
    }
    fn cand {|text desc|
        edit:complex-candidate $text &display=$text' '(spaces (- 14 (wcswidth $text)))$desc
    }
    var command = 'hearth'
    for word $words[1..-1] {
        if (str:has-prefix $word '-') {
            break
        }
        set command = $command';'$word
    }
    var completions = [
        &'hearth'= {
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
            cand bench 'Measure prompt processing and generation speed'
            cand completion 'Print the shell completion script for bash, zsh, fish, elvish or powershell'
            cand cp 'Copy a model under another name'
            cand create 'Create a model from a Modelfile'
            cand list 'List the models in the store'
            cand ls 'List the models in the store'
            cand ps 'List the models the running server has loaded'
            cand pull 'Pull a model from a registry'
            cand push 'Push a model to a registry'
            cand rm 'Remove models'
            cand run 'Run a model: answer a prompt, or chat'
            cand serve 'Start the server (Ollama and OpenAI APIs)'
            cand start 'Start the server (Ollama and OpenAI APIs)'
            cand show 'Show information about a model'
            cand stop 'Unload a model from the running server'
            cand tokenize 'Print the token ids of a text (or, with --decode, the text of token ids)'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'hearth;bench'= {
            cand -p 'Prompt tokens per pp test (0 to skip)'
            cand --n-prompt 'Prompt tokens per pp test (0 to skip)'
            cand -n 'Generated tokens per tg test (0 to skip)'
            cand --n-gen 'Generated tokens per tg test (0 to skip)'
            cand -r 'Repetitions of each test'
            cand --repetitions 'Repetitions of each test'
            cand -t 'Threads (default: HEARTH_NUM_THREADS or one per CPU)'
            cand --threads 'Threads (default: HEARTH_NUM_THREADS or one per CPU)'
            cand --batch 'Sequences decoded together, comma-separated (e.g. 1,2,4,8)'
            cand --json 'Print one JSON array instead of a table'
            cand --mlock 'Lock the model''s weights in memory first (as HEARTH_MLOCK=1)'
            cand -h 'Print help'
            cand --help 'Print help'
        }
        &'hearth;completion'= {
            cand -h 'Print help'
            cand --help 'Print help'
        }
        &'hearth;cp'= {
            cand -h 'Print help'
            cand --help 'Print help'
        }
        &'hearth;create'= {
            cand -f 'The Modelfile (default ./Modelfile; without one, FROM the current directory)'
            cand --file 'The Modelfile (default ./Modelfile; without one, FROM the current directory)'
            cand -h 'Print help'
            cand --help 'Print help'
        }
        &'hearth;list'= {
            cand -h 'Print help'
            cand --help 'Print help'
        }
        &'hearth;ls'= {
            cand -h 'Print help'
            cand --help 'Print help'
        }
        &'hearth;ps'= {
            cand -h 'Print help'
            cand --help 'Print help'
        }
        &'hearth;pull'= {
            cand --insecure 'Allow plain http to the registry'
            cand -h 'Print help'
            cand --help 'Print help'
        }
        &'hearth;push'= {
            cand --insecure 'Allow plain http to the registry'
            cand -h 'Print help'
            cand --help 'Print help'
        }
        &'hearth;rm'= {
            cand -h 'Print help'
            cand --help 'Print help'
        }
        &'hearth;run'= {
            cand -o 'Set a model option, e.g. -o temperature=0 -o num_predict=32 (repeatable)'
            cand --option 'Set a model option, e.g. -o temperature=0 -o num_predict=32 (repeatable)'
            cand --system 'A system message for the conversation'
            cand --format 'Answer in JSON: `json` for any JSON object, or a file holding a JSON Schema'
            cand --think 'Let a reasoning model think first (true, false, or a level: low, medium, high)'
            cand --raw 'Send the prompt as it is, without the chat template'
            cand --verbose 'Print timings and token rates to stderr after each answer'
            cand --nowordwrap 'Do not wrap words on a terminal'
            cand --insecure 'Allow plain http when the model must be pulled'
            cand --mlock 'Lock the model''s weights in memory, never paged out (as HEARTH_MLOCK=1)'
            cand --hidethinking 'Do not show what a reasoning model thinks (only its answer)'
            cand -h 'Print help'
            cand --help 'Print help'
        }
        &'hearth;serve'= {
            cand --mlock 'Lock each loaded model''s weights in memory, never paged out (as HEARTH_MLOCK=1)'
            cand -h 'Print help'
            cand --help 'Print help'
        }
        &'hearth;start'= {
            cand --mlock 'Lock each loaded model''s weights in memory, never paged out (as HEARTH_MLOCK=1)'
            cand -h 'Print help'
            cand --help 'Print help'
        }
        &'hearth;show'= {
            cand --file 'Read this .gguf file'
            cand -v 'Also list all metadata and tensors'
            cand --verbose 'Also list all metadata and tensors'
            cand --modelfile 'Print the model''s Modelfile'
            cand --template 'Print the model''s template'
            cand --parameters 'Print the model''s parameters'
            cand --system 'Print the model''s system message'
            cand --license 'Print the model''s license'
            cand -h 'Print help'
            cand --help 'Print help'
        }
        &'hearth;stop'= {
            cand -h 'Print help'
            cand --help 'Print help'
        }
        &'hearth;tokenize'= {
            cand --no-bos 'Do not add the BOS token the model would add'
            cand --decode 'Decode a JSON array of token ids to text instead'
            cand -h 'Print help'
            cand --help 'Print help'
        }
        &'hearth;help'= {
            cand bench 'Measure prompt processing and generation speed'
            cand completion 'Print the shell completion script for bash, zsh, fish, elvish or powershell'
            cand cp 'Copy a model under another name'
            cand create 'Create a model from a Modelfile'
            cand list 'List the models in the store'
            cand ps 'List the models the running server has loaded'
            cand pull 'Pull a model from a registry'
            cand push 'Push a model to a registry'
            cand rm 'Remove models'
            cand run 'Run a model: answer a prompt, or chat'
            cand serve 'Start the server (Ollama and OpenAI APIs)'
            cand show 'Show information about a model'
            cand stop 'Unload a model from the running server'
            cand tokenize 'Print the token ids of a text (or, with --decode, the text of token ids)'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'hearth;help;bench'= {
        }
        &'hearth;help;completion'= {
        }
        &'hearth;help;cp'= {
        }
        &'hearth;help;create'= {
        }
        &'hearth;help;list'= {
        }
        &'hearth;help;ps'= {
        }
        &'hearth;help;pull'= {
        }
        &'hearth;help;push'= {
        }
        &'hearth;help;rm'= {
        }
        &'hearth;help;run'= {
        }
        &'hearth;help;serve'= {
        }
        &'hearth;help;show'= {
        }
        &'hearth;help;stop'= {
        }
        &'hearth;help;tokenize'= {
        }
        &'hearth;help;help'= {
        }
    ]
    $completions[$command]
}

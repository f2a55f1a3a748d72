
using namespace System.Management.Automation
using namespace System.Management.Automation.Language

Register-ArgumentCompleter -Native -CommandName 'hearth' -ScriptBlock {
    param($wordToComplete, $commandAst, $cursorPosition)

    $commandElements = $commandAst.CommandElements
    $command = @(
        'hearth'
        for ($i = 1; $i -lt $commandElements.Count; $i++) {
            $element = $commandElements[$i]
            if ($element -isnot [StringConstantExpressionAst] -or
                $element.StringConstantType -ne [StringConstantType]::BareWord -or
                $element.Value.StartsWith('-') -or
                $element.Value -eq $wordToComplete) {
                break
        }
        $element.Value
    }) -join ';'

    $completions = @(switch ($command) {
        'hearth' {
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('bench', 'bench', [CompletionResultType]::ParameterValue, 'Measure prompt processing and generation speed')
            [CompletionResult]::new('completion', 'completion', [CompletionResultType]::ParameterValue, 'Print the shell completion script for bash, zsh, fish, elvish or powershell')
            [CompletionResult]::new('cp', 'cp', [CompletionResultType]::ParameterValue, 'Copy a model under another name')
            [CompletionResult]::new('create', 'create', [CompletionResultType]::ParameterValue, 'Create a model from a Modelfile')
            [CompletionResult]::new('list', 'list', [CompletionResultType]::ParameterValue, 'List the models in the store')
            [CompletionResult]::new('ls', 'ls', [CompletionResultType]::ParameterValue, 'List the models in the store')
            [CompletionResult]::new('ps', 'ps', [CompletionResultType]::ParameterValue, 'List the models the running server has loaded')
            [CompletionResult]::new('pull', 'pull', [CompletionResultType]::ParameterValue, 'Pull a model from a registry')
            [CompletionResult]::new('push', 'push', [CompletionResultType]::ParameterValue, 'Push a model to a registry')
            [CompletionResult]::new('rm', 'rm', [CompletionResultType]::ParameterValue, 'Remove models')
            [CompletionResult]::new('run', 'run', [CompletionResultType]::ParameterValue, 'Run a model: answer a prompt, or chat')
            [CompletionResult]::new('serve', 'serve', [CompletionResultType]::ParameterValue, 'Start the server (Ollama and OpenAI APIs)')
            [CompletionResult]::new('start', 'start', [CompletionResultType]::ParameterValue, 'Start the server (Ollama and OpenAI APIs)')
            [CompletionResult]::new('show', 'show', [CompletionResultType]::ParameterValue, 'Show information about a model')
            [CompletionResult]::new('stop', 'stop', [CompletionResultType]::ParameterValue, 'Unload a model from the running server')
            [CompletionResult]::new('tokenize', 'tokenize', [CompletionResultType]::ParameterValue, 'Print the token ids of a text (or, with --decode, the text of token ids)')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'hearth;bench' {
            [CompletionResult]::new('-p', '-p', [CompletionResultType]::ParameterName, 'Prompt tokens per pp test (0 to skip)')
            [CompletionResult]::new('--n-prompt', '--n-prompt', [CompletionResultType]::ParameterName, 'Prompt tokens per pp test (0 to skip)')
            [CompletionResult]::new('-n', '-n', [CompletionResultType]::ParameterName, 'Generated tokens per tg test (0 to skip)')
            [CompletionResult]::new('--n-gen', '--n-gen', [CompletionResultType]::ParameterName, 'Generated tokens per tg test (0 to skip)')
            [CompletionResult]::new('-r', '-r', [CompletionResultType]::ParameterName, 'Repetitions of each test')
            [CompletionResult]::new('--repetitions', '--repetitions', [CompletionResultType]::ParameterName, 'Repetitions of each test')
            [CompletionResult]::new('-t', '-t', [CompletionResultType]::ParameterName, 'Threads (default: HEARTH_NUM_THREADS or one per CPU)')
            [CompletionResult]::new('--threads', '--threads', [CompletionResultType]::ParameterName, 'Threads (default: HEARTH_NUM_THREADS or one per CPU)')
            [CompletionResult]::new('--batch', '--batch', [CompletionResultType]::ParameterName, 'Sequences decoded together, comma-separated (e.g. 1,2,4,8)')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print one JSON array instead of a table')
            [CompletionResult]::new('--mlock', '--mlock', [CompletionResultType]::ParameterName, 'Lock the model''s weights in memory first (as HEARTH_MLOCK=1)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            break
        }
        'hearth;completion' {
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            break
        }
        'hearth;cp' {
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            break
        }
        'hearth;create' {
            [CompletionResult]::new('-f', '-f', [CompletionResultType]::ParameterName, 'The Modelfile (default ./Modelfile; without one, FROM the current directory)')
            [CompletionResult]::new('--file', '--file', [CompletionResultType]::ParameterName, 'The Modelfile (default ./Modelfile; without one, FROM the current directory)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            break
        }
        'hearth;list' {
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            break
        }
        'hearth;ls' {
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            break
        }
        'hearth;ps' {
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            break
        }
        'hearth;pull' {
            [CompletionResult]::new('--insecure', '--insecure', [CompletionResultType]::ParameterName, 'Allow plain http to the registry')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            break
        }
        'hearth;push' {
            [CompletionResult]::new('--insecure', '--insecure', [CompletionResultType]::ParameterName, 'Allow plain http to the registry')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            break
        }
        'hearth;rm' {
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            break
        }
        'hearth;run' {
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Set a model option, e.g. -o temperature=0 -o num_predict=32 (repeatable)')
            [CompletionResult]::new('--option', '--option', [CompletionResultType]::ParameterName, 'Set a model option, e.g. -o temperature=0 -o num_predict=32 (repeatable)')
            [CompletionResult]::new('--system', '--system', [CompletionResultType]::ParameterName, 'A system message for the conversation')
            [CompletionResult]::new('--format', '--format', [CompletionResultType]::ParameterName, 'Answer in JSON: `json` for any JSON object, or a file holding a JSON Schema')
            [CompletionResult]::new('--think', '--think', [CompletionResultType]::ParameterName, 'Let a reasoning model think first (true, false, or a level: low, medium, high)')
            [CompletionResult]::new('--raw', '--raw', [CompletionResultType]::ParameterName, 'Send the prompt as it is, without the chat template')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Print timings and token rates to stderr after each answer')
            [CompletionResult]::new('--nowordwrap', '--nowordwrap', [CompletionResultType]::ParameterName, 'Do not wrap words on a terminal')
            [CompletionResult]::new('--insecure', '--insecure', [CompletionResultType]::ParameterName, 'Allow plain http when the model must be pulled')
            [CompletionResult]::new('--mlock', '--mlock', [CompletionResultType]::ParameterName, 'Lock the model''s weights in memory, never paged out (as HEARTH_MLOCK=1)')
            [CompletionResult]::new('--hidethinking', '--hidethinking', [CompletionResultType]::ParameterName, 'Do not show what a reasoning model thinks (only its answer)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            break
        }
        'hearth;serve' {
            [CompletionResult]::new('--mlock', '--mlock', [CompletionResultType]::ParameterName, 'Lock each loaded model''s weights in memory, never paged out (as HEARTH_MLOCK=1)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            break
        }
        'hearth;start' {
            [CompletionResult]::new('--mlock', '--mlock', [CompletionResultType]::ParameterName, 'Lock each loaded model''s weights in memory, never paged out (as HEARTH_MLOCK=1)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            break
        }
        'hearth;show' {
            [CompletionResult]::new('--file', '--file', [CompletionResultType]::ParameterName, 'Read this .gguf file')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Also list all metadata and tensors')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Also list all metadata and tensors')
            [CompletionResult]::new('--modelfile', '--modelfile', [CompletionResultType]::ParameterName, 'Print the model''s Modelfile')
            [CompletionResult]::new('--template', '--template', [CompletionResultType]::ParameterName, 'Print the model''s template')
            [CompletionResult]::new('--parameters', '--parameters', [CompletionResultType]::ParameterName, 'Print the model''s parameters')
            [CompletionResult]::new('--system', '--system', [CompletionResultType]::ParameterName, 'Print the model''s system message')
            [CompletionResult]::new('--license', '--license', [CompletionResultType]::ParameterName, 'Print the model''s license')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            break
        }
        'hearth;stop' {
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            break
        }
        'hearth;tokenize' {
            [CompletionResult]::new('--no-bos', '--no-bos', [CompletionResultType]::ParameterName, 'Do not add the BOS token the model would add')
            [CompletionResult]::new('--decode', '--decode', [CompletionResultType]::ParameterName, 'Decode a JSON array of token ids to text instead')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            break
        }
        'hearth;help' {
            [CompletionResult]::new('bench', 'bench', [CompletionResultType]::ParameterValue, 'Measure prompt processing and generation speed')
            [CompletionResult]::new('completion', 'completion', [CompletionResultType]::ParameterValue, 'Print the shell completion script for bash, zsh, fish, elvish or powershell')
            [CompletionResult]::new('cp', 'cp', [CompletionResultType]::ParameterValue, 'Copy a model under another name')
            [CompletionResult]::new('create', 'create', [CompletionResultType]::ParameterValue, 'Create a model from a Modelfile')
            [CompletionResult]::new('list', 'list', [CompletionResultType]::ParameterValue, 'List the models in the store')
            [CompletionResult]::new('ps', 'ps', [CompletionResultType]::ParameterValue, 'List the models the running server has loaded')
            [CompletionResult]::new('pull', 'pull', [CompletionResultType]::ParameterValue, 'Pull a model from a registry')
            [CompletionResult]::new('push', 'push', [CompletionResultType]::ParameterValue, 'Push a model to a registry')
            [CompletionResult]::new('rm', 'rm', [CompletionResultType]::ParameterValue, 'Remove models')
            [CompletionResult]::new('run', 'run', [CompletionResultType]::ParameterValue, 'Run a model: answer a prompt, or chat')
            [CompletionResult]::new('serve', 'serve', [CompletionResultType]::ParameterValue, 'Start the server (Ollama and OpenAI APIs)')
            [CompletionResult]::new('show', 'show', [CompletionResultType]::ParameterValue, 'Show information about a model')
            [CompletionResult]::new('stop', 'stop', [CompletionResultType]::ParameterValue, 'Unload a model from the running server')
            [CompletionResult]::new('tokenize', 'tokenize', [CompletionResultType]::ParameterValue, 'Print the token ids of a text (or, with --decode, the text of token ids)')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'hearth;help;bench' {
            break
        }
        'hearth;help;completion' {
            break
        }
        'hearth;help;cp' {
            break
        }
        'hearth;help;create' {
            break
        }
        'hearth;help;list' {
            break
        }
        'hearth;help;ps' {
            break
        }
        'hearth;help;pull' {
            break
        }
        'hearth;help;push' {
            break
        }
        'hearth;help;rm' {
            break
        }
        'hearth;help;run' {
            break
        }
        'hearth;help;serve' {
            break
        }
        'hearth;help;show' {
            break
        }
        'hearth;help;stop' {
            break
        }
        'hearth;help;tokenize' {
            break
        }
        'hearth;help;help' {
            break
        }
    })

    $completions.Where{ $_.CompletionText -like "$wordToComplete*" } |
        Sort-Object -Property ListItemText
}

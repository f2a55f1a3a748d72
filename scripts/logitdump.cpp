// logitdump: llama.cpp's logits for given token sequences, summarised per position.
//
//     logitdump MODEL.gguf N_CTX [THREADS] < sequences.txt > out.json
//
// Input: one sequence per line, token ids separated by spaces or commas (blank lines and
// lines starting with '#' are skipped). Every sequence is decoded on its own: the context's
// memory is cleared, then the whole sequence goes in as one batch of sequence 0 at
// positions 0..n-1 with logits requested at every position. The context has n_ctx =
// n_batch = n_ubatch = N_CTX, THREADS threads (default 2) for both single-token and batch
// work, and llama.cpp's defaults for everything else (flash attention "auto", F16 KV cache).
//
// Output (stdout, one JSON object): the model's vocabulary size, llama.cpp's system_info
// line, and in "log" every warning ("W ") or error ("E ") llama.cpp logged plus its info
// lines ("I ") about flash attention, rope and sliding windows, and per sequence and position the 10 largest raw logits as [id, logit]
// (descending, ties to the lower id), top1 - top2, and log-sum-exp over the vocabulary
// (in double). Logits are printed with 9 significant digits (exact for a float).
// llama.cpp's own log goes to stderr unchanged.
//
// Built by scripts/gen-family-reference against the static libraries of
// scripts/build-llamacpp; written for hearth, against llama.cpp's public C API only.

#include "llama.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace {

std::vector<std::string> g_notes;  // warnings, errors and the flash attention resolution
std::string g_pending;             // a log message arriving in pieces (GGML_LOG_LEVEL_CONT)
int g_pending_level = GGML_LOG_LEVEL_NONE;

bool worth_keeping(int level, const std::string & msg) {
    if (level == GGML_LOG_LEVEL_WARN || level == GGML_LOG_LEVEL_ERROR) {
        return true;
    }
    return msg.find("Flash Attention") != std::string::npos ||
           msg.find("flash_attn") != std::string::npos || msg.find("swa") != std::string::npos ||
           msg.find("sliding") != std::string::npos || msg.find("n_ctx_orig_yarn") != std::string::npos ||
           msg.find("rope") != std::string::npos;
}

void flush_pending() {
    if (!g_pending.empty()) {
        std::string m = g_pending;
        while (!m.empty() && (m.back() == '\n' || m.back() == '\r')) {
            m.pop_back();
        }
        if (worth_keeping(g_pending_level, m)) {
            const char * tag = g_pending_level == GGML_LOG_LEVEL_WARN    ? "W "
                               : g_pending_level == GGML_LOG_LEVEL_ERROR ? "E "
                                                                         : "I ";
            g_notes.push_back(tag + m);
        }
    }
    g_pending.clear();
}

void on_log(enum ggml_log_level level, const char * text, void *) {
    fputs(text, stderr);
    if (level == GGML_LOG_LEVEL_CONT) {
        g_pending += text;
    } else {
        flush_pending();
        g_pending = text;
        g_pending_level = level;
    }
    if (!g_pending.empty() && g_pending.back() == '\n') {
        flush_pending();
    }
}

std::string json_string(const std::string & s) {
    std::string out = "\"";
    for (unsigned char c : s) {
        switch (c) {
            case '"': out += "\\\""; break;
            case '\\': out += "\\\\"; break;
            case '\n': out += "\\n"; break;
            case '\t': out += "\\t"; break;
            case '\r': out += "\\r"; break;
            default:
                if (c < 0x20) {
                    char buf[8];
                    snprintf(buf, sizeof buf, "\\u%04x", c);
                    out += buf;
                } else {
                    out += static_cast<char>(c);
                }
        }
    }
    return out + "\"";
}

std::string num(double x) {
    if (!std::isfinite(x)) {
        return std::isnan(x) ? "\"nan\"" : (x > 0 ? "\"inf\"" : "\"-inf\"");
    }
    char buf[40];
    snprintf(buf, sizeof buf, "%.9g", x);
    return buf;
}

std::vector<std::vector<llama_token>> read_sequences(std::istream & in) {
    std::vector<std::vector<llama_token>> seqs;
    std::string line;
    while (std::getline(in, line)) {
        for (char & c : line) {
            if (c == ',') {
                c = ' ';
            }
        }
        size_t first = line.find_first_not_of(" \t\r");
        if (first == std::string::npos || line[first] == '#') {
            continue;
        }
        std::istringstream ls(line);
        std::vector<llama_token> ids;
        long long v;
        while (ls >> v) {
            ids.push_back(static_cast<llama_token>(v));
        }
        if (!ls.eof()) {
            fprintf(stderr, "logitdump: bad input line: %s\n", line.c_str());
            exit(2);
        }
        seqs.push_back(ids);
    }
    return seqs;
}

}  // namespace

int main(int argc, char ** argv) {
    if (argc < 3 || argc > 4) {
        fprintf(stderr, "usage: %s MODEL.gguf N_CTX [THREADS] < sequences.txt\n", argv[0]);
        return 2;
    }
    const char * model_path = argv[1];
    const int n_ctx = atoi(argv[2]);
    const int n_threads = argc > 3 ? atoi(argv[3]) : 2;
    if (n_ctx <= 0 || n_threads <= 0) {
        fprintf(stderr, "logitdump: N_CTX and THREADS must be positive\n");
        return 2;
    }
    const auto seqs = read_sequences(std::cin);

    llama_log_set(on_log, nullptr);
    llama_backend_init();

    llama_model_params mp = llama_model_default_params();
    llama_model * model = llama_model_load_from_file(model_path, mp);
    if (!model) {
        flush_pending();
        fprintf(stderr, "logitdump: failed to load %s\n", model_path);
        return 1;
    }
    const llama_vocab * vocab = llama_model_get_vocab(model);
    const int n_vocab = llama_vocab_n_tokens(vocab);

    llama_context_params cp = llama_context_default_params();
    cp.n_ctx = n_ctx;
    cp.n_batch = n_ctx;
    cp.n_ubatch = n_ctx;
    cp.n_threads = n_threads;
    cp.n_threads_batch = n_threads;
    llama_context * ctx = llama_init_from_model(model, cp);
    if (!ctx) {
        flush_pending();
        fprintf(stderr, "logitdump: failed to create a context\n");
        return 1;
    }

    std::ostringstream sysinfo;
    sysinfo << "system_info: n_threads = " << n_threads << " (n_threads_batch = " << n_threads << ") / "
            << std::thread::hardware_concurrency() << " | " << llama_print_system_info();

    std::ostringstream out;
    out << "{\"model\": " << json_string(model_path) << ", \"n_vocab\": " << n_vocab
        << ", \"n_ctx\": " << llama_n_ctx(ctx) << ", \"n_threads\": " << n_threads
        << ", \"flash_attn_type_requested\": " << json_string(llama_flash_attn_type_name(cp.flash_attn_type))
        << ", \"system_info\": " << json_string(sysinfo.str())
        << ", \"llama_print_system_info\": " << json_string(llama_print_system_info()) << ",\n\"sequences\": [";

    std::vector<int> order(n_vocab);
    for (size_t s = 0; s < seqs.size(); s++) {
        const auto & ids = seqs[s];
        const int n = static_cast<int>(ids.size());
        if (n == 0 || n > n_ctx) {
            fprintf(stderr, "logitdump: sequence %zu has %d tokens (context %d)\n", s, n, n_ctx);
            return 1;
        }
        for (llama_token t : ids) {
            if (t < 0 || t >= n_vocab) {
                fprintf(stderr, "logitdump: token %d outside the vocabulary (%d)\n", t, n_vocab);
                return 1;
            }
        }
        llama_memory_clear(llama_get_memory(ctx), true);
        llama_batch batch = llama_batch_init(n, 0, 1);
        for (int i = 0; i < n; i++) {
            batch.token[i] = ids[i];
            batch.pos[i] = i;
            batch.n_seq_id[i] = 1;
            batch.seq_id[i][0] = 0;
            batch.logits[i] = 1;
        }
        batch.n_tokens = n;
        const int rc = llama_decode(ctx, batch);
        if (rc != 0) {
            flush_pending();
            fprintf(stderr, "logitdump: llama_decode returned %d on sequence %zu\n", rc, s);
            return 1;
        }
        out << (s ? ",\n" : "\n") << "{\"input_ids\": [";
        for (int i = 0; i < n; i++) {
            out << (i ? "," : "") << ids[i];
        }
        out << "], \"positions\": [";
        for (int i = 0; i < n; i++) {
            const float * lg = llama_get_logits_ith(ctx, i);
            if (!lg) {
                fprintf(stderr, "logitdump: no logits at position %d\n", i);
                return 1;
            }
            for (int v = 0; v < n_vocab; v++) {
                order[v] = v;
            }
            auto before = [lg](int a, int b) { return lg[a] > lg[b] || (lg[a] == lg[b] && a < b); };
            std::partial_sort(order.begin(), order.begin() + 10, order.end(), before);
            double mx = -INFINITY;
            bool finite = true;
            for (int v = 0; v < n_vocab; v++) {
                finite = finite && std::isfinite(lg[v]);
                mx = std::max(mx, static_cast<double>(lg[v]));
            }
            double sum = 0.0;
            for (int v = 0; v < n_vocab; v++) {
                sum += std::exp(static_cast<double>(lg[v]) - mx);
            }
            const double lse = mx + std::log(sum);
            out << (i ? ",\n " : "\n ") << "{\"top10\": [";
            for (int k = 0; k < 10 && k < n_vocab; k++) {
                out << (k ? "," : "") << "[" << order[k] << "," << num(lg[order[k]]) << "]";
            }
            out << "], \"margin\": " << num(static_cast<double>(lg[order[0]]) - lg[order[1]])
                << ", \"lse\": " << num(lse) << ", \"finite\": " << (finite ? "true" : "false") << "}";
        }
        out << "]}";
        llama_batch_free(batch);
    }
    flush_pending();
    out << "],\n\"log\": [";
    for (size_t i = 0; i < g_notes.size(); i++) {
        out << (i ? ",\n " : "\n ") << json_string(g_notes[i]);
    }
    out << "]}\n";
    std::cout << out.str();

    llama_free(ctx);
    llama_model_free(model);
    llama_backend_free();
    return 0;
}

// pretok-words: llama.cpp's pre-tokenizer words for given texts.
//
//     pretok-words REGEX_FILE < texts.bin > words.bin
//
// REGEX_FILE holds the regexes of one pre-tokenizer type, one per line, exactly as
// llama.cpp's llm_tokenizer_bpe passes them (scripts/gen-gpt4o-reference extracts them from
// the peer's src/llama-vocab.cpp). Each text is split by llama.cpp's own
// unicode_regex_split(text, regexes, byte_encode = false): the words BPE then merges within,
// as UTF-8 (before the GPT-2 byte mapping).
//
// Binary framing, so that any bytes (NUL, newlines) pass: the input is a sequence of texts,
// each a 4-byte little-endian length and its bytes; the output has, per text, a 4-byte word
// count, then each word as a 4-byte length and its bytes.
//
// Built by scripts/gen-gpt4o-reference against the static libraries of scripts/build-llamacpp
// (unicode_regex_split is in libllama's unicode.cpp; it is declared here, not included).

#include <cstdint>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

std::vector<std::string> unicode_regex_split(const std::string & text,
                                             const std::vector<std::string> & regex_exprs,
                                             bool byte_encode);

static bool read_u32(std::istream & in, uint32_t & v) {
    unsigned char b[4];
    if (!in.read(reinterpret_cast<char *>(b), 4)) {
        return false;
    }
    v = uint32_t(b[0]) | uint32_t(b[1]) << 8 | uint32_t(b[2]) << 16 | uint32_t(b[3]) << 24;
    return true;
}

static void write_u32(std::ostream & out, uint32_t v) {
    const unsigned char b[4] = {
        (unsigned char) (v & 0xFF), (unsigned char) (v >> 8 & 0xFF),
        (unsigned char) (v >> 16 & 0xFF), (unsigned char) (v >> 24 & 0xFF),
    };
    out.write(reinterpret_cast<const char *>(b), 4);
}

int main(int argc, char ** argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: %s REGEX_FILE < texts.bin > words.bin\n", argv[0]);
        return 2;
    }
    std::ifstream rf(argv[1], std::ios::binary);
    std::vector<std::string> regexes;
    for (std::string line; std::getline(rf, line);) {
        if (!line.empty()) {
            regexes.push_back(line);
        }
    }
    if (regexes.empty()) {
        std::fprintf(stderr, "no regex in %s\n", argv[1]);
        return 2;
    }
    std::ios::sync_with_stdio(false);
    uint32_t len = 0;
    while (read_u32(std::cin, len)) {
        std::string text(len, '\0');
        if (len > 0 && !std::cin.read(&text[0], len)) {
            std::fprintf(stderr, "truncated input\n");
            return 1;
        }
        const auto words = text.empty() ? std::vector<std::string>{}
                                        : unicode_regex_split(text, regexes, false);
        write_u32(std::cout, (uint32_t) words.size());
        for (const auto & w : words) {
            write_u32(std::cout, (uint32_t) w.size());
            std::cout.write(w.data(), (std::streamsize) w.size());
        }
    }
    std::cout.flush();
    return 0;
}

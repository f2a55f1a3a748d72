"""Log probabilities through the official clients (openai: chat.completions with
logprobs and top_logprobs, whole and streamed; ollama: chat and generate): one entry per
generated token, the tokens spell the answer, each sampled token is its position's top-1
at temperature 0, and the alternatives are sorted, distinct and sum to at most 1.
Run by tests/serve_logprobs.rs.

    python logprobs_client.py URL MODEL
"""
import math
import sys

import ollama
import openai

url, model = sys.argv[1], sys.argv[2]
ai = openai.OpenAI(base_url=url + "/v1", api_key="unused", timeout=600)
oc = ollama.Client(host=url, timeout=600)
msgs = [{"role": "user", "content": "Name three colours."}]
checks = 0


def check(entries, n_tokens, text, top):
    """`entries`: (token, logprob, [(token, logprob)]) per generated token."""
    global checks
    assert len(entries) == n_tokens, (len(entries), n_tokens)
    assert "".join(e[0] for e in entries) == text, (entries, text)
    for token, lp, alts in entries:
        assert lp <= 0 and math.isfinite(lp), lp
        assert len(alts) == top, alts
        assert alts[0][0] == token and abs(alts[0][1] - lp) < 1e-6, (token, lp, alts)
        lps = [a[1] for a in alts]
        assert lps == sorted(lps, reverse=True), lps
        assert sum(math.exp(x) for x in lps) <= 1 + 1e-5
        assert len({a[0] for a in alts}) == len(alts) or any("\ufffd" in a[0] for a in alts)
    checks += 1


# OpenAI chat completions (repeat penalties off: the sampled token is the argmax).
opts = {"temperature": 0, "max_tokens": 12, "extra_body": {"options": {"repeat_penalty": 1}}}
r = ai.chat.completions.create(model=model, messages=msgs, logprobs=True, top_logprobs=3, **opts)
c = r.choices[0]
check([(t.token, t.logprob, [(a.token, a.logprob) for a in t.top_logprobs]) for t in c.logprobs.content],
      r.usage.completion_tokens, c.message.content, 3)
entries, text = [], ""
for chunk in ai.chat.completions.create(model=model, messages=msgs, logprobs=True, top_logprobs=2,
                                        stream=True, stream_options={"include_usage": True}, **opts):
    if chunk.usage:
        n = chunk.usage.completion_tokens
    for ch in chunk.choices:
        text += ch.delta.content or ""
        if ch.logprobs and ch.logprobs.content:
            entries += [(t.token, t.logprob, [(a.token, a.logprob) for a in t.top_logprobs])
                        for t in ch.logprobs.content]
check(entries, n, text, 2)
# Without logprobs: none.
r = ai.chat.completions.create(model=model, messages=msgs, **opts)
assert r.choices[0].logprobs is None, r.choices[0].logprobs

# Ollama
o = {"temperature": 0, "num_predict": 12, "repeat_penalty": 1}
r = oc.chat(model=model, messages=msgs, options=o, logprobs=True, top_logprobs=4)
check([(t.token, t.logprob, [(a.token, a.logprob) for a in t.top_logprobs]) for t in r.logprobs],
      r.eval_count, r.message.content, 4)
entries, text = [], ""
for part in oc.generate(model=model, prompt="Name three colours.", options=o, logprobs=True,
                        top_logprobs=1, stream=True):
    text += part.response
    entries += [(t.token, t.logprob, [(a.token, a.logprob) for a in t.top_logprobs])
                for t in part.logprobs or []]
    if part.done:
        n = part.eval_count
check(entries, n, text, 1)
print(f"ok {checks}")

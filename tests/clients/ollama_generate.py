"""Drives hearth serve with the official `ollama` Python client: generate and chat,
streamed and not, greedy. Prints one JSON object with what it received, which the Rust
test (tests/serve_clients.rs) compares with `hearth run`.

    python ollama_generate.py URL MODEL PROMPT NUM_PREDICT
"""
import json
import sys

import ollama

url, model, prompt, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
client = ollama.Client(host=url, timeout=300)
opts = {"temperature": 0, "num_predict": n}

out = {}

# generate, not streamed, raw
r = client.generate(model=model, prompt=prompt, raw=True, options=opts, stream=False)
assert r.done and r.done_reason in ("length", "stop"), r
assert 0 < r.eval_count <= n, r
assert (r.done_reason == "length") == (r.eval_count == n), r
assert r.prompt_eval_count and r.prompt_eval_count > 0, r
assert r.total_duration and r.total_duration > 0, r
assert r.context and len(r.context) > n, r
out["generate"] = r.response

# generate, streamed, raw
parts = []
last = None
for chunk in client.generate(model=model, prompt=prompt, raw=True, options=opts, stream=True):
    parts.append(chunk.response)
    last = chunk
assert last is not None and last.done and last.eval_count == r.eval_count, last
out["generate_stream"] = "".join(parts)

# chat, not streamed
messages = [{"role": "user", "content": prompt}]
r = client.chat(model=model, messages=messages, options=opts, stream=False)
assert r.done and r.message.role == "assistant", r
out["chat"] = r.message.content
out["chat_done_reason"] = r.done_reason

# chat, streamed
parts = []
last = None
for chunk in client.chat(model=model, messages=messages, options=opts, stream=True):
    parts.append(chunk.message.content)
    last = chunk
assert last is not None and last.done, last
out["chat_stream"] = "".join(parts)

# errors come back as ResponseError with the status
try:
    client.generate(model="no-such-model", prompt="hi")
    raise AssertionError("an unknown model did not fail")
except ollama.ResponseError as e:
    assert e.status_code == 404, e
    assert "not found" in e.error, e.error

print(json.dumps(out))

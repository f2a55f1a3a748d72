"""hearth serve's embedding endpoints through the official `ollama` and `openai` clients.

Usage: embed_client.py URL MODEL TEXTS_JSON_FILE

Embeds every text of the file (a JSON array of strings) with `ollama.Client.embed` (one
batch), the legacy `ollama.Client.embeddings` (the first text), and
`openai.OpenAI().embeddings.create` (one batch, the client's default base64 encoding,
then float; then `dimensions=64`). Checks the shapes the clients parse and prints one JSON
object on stdout ({"ollama", "legacy", "openai", "openai_float", "openai_dims",
"usage"}) for the Rust test to compare with llama.cpp's embeddings.
"""

import json
import sys

import ollama
import openai


def main():
    url, model, path = sys.argv[1], sys.argv[2], sys.argv[3]
    with open(path, encoding="utf-8") as f:
        texts = json.load(f)
    out = {}

    client = ollama.Client(host=url)
    r = client.embed(model=model, input=texts)
    assert r.model == model, r.model
    assert len(r.embeddings) == len(texts), len(r.embeddings)
    assert r.prompt_eval_count and r.prompt_eval_count > len(texts), r.prompt_eval_count
    assert r.total_duration and r.total_duration > 0
    out["ollama"] = [list(e) for e in r.embeddings]

    legacy = client.embeddings(model=model, prompt=texts[0])
    out["legacy"] = list(legacy.embedding)

    oa = openai.OpenAI(base_url=url + "/v1", api_key="hearth")
    resp = oa.embeddings.create(model=model, input=texts)
    assert resp.object == "list"
    assert [d.index for d in resp.data] == list(range(len(texts)))
    out["openai"] = [d.embedding for d in resp.data]
    out["usage"] = {"prompt_tokens": resp.usage.prompt_tokens, "total_tokens": resp.usage.total_tokens}
    flt = oa.embeddings.create(model=model, input=texts[:2], encoding_format="float")
    out["openai_float"] = [d.embedding for d in flt.data]
    dims = oa.embeddings.create(model=model, input=texts[0], dimensions=64)
    out["openai_dims"] = dims.data[0].embedding

    # An embedding model does not chat: the client raises with the server's 400.
    try:
        client.chat(model=model, messages=[{"role": "user", "content": "hi"}])
        raise AssertionError("chat with an embedding model succeeded")
    except ollama.ResponseError as e:
        assert e.status_code == 400, e
        out["chat_error"] = e.error

    print(json.dumps(out))


if __name__ == "__main__":
    main()

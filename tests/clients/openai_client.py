"""hearth serve through the official `openai` Python client.

Usage: openai_client.py URL MODEL [MODEL...]

For each model: a greedy chat completion (not streamed, then streamed with usage), a
greedy completion, and the model in models.list / models.retrieve. Asserts the shapes
as the client parses them and prints one JSON object per model on stdout
({"model", "chat", "chat_streamed", "completion"}) for the Rust test to compare with
`hearth run`.
"""

import json
import sys

import openai
from openai import OpenAI

CHAT_PROMPT = "Why is the sky blue? Answer in one sentence."
CHAT_TOKENS = 24
COMPLETION_PROMPT = "The three primary colors are"
COMPLETION_TOKENS = 20


def check_usage(usage, prompt_min=1):
    assert usage is not None, "no usage"
    assert usage.prompt_tokens >= prompt_min, usage
    assert usage.completion_tokens >= 1, usage
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens, usage


def chat(client, model):
    r = client.chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": CHAT_PROMPT}],
        temperature=0,
        max_tokens=CHAT_TOKENS,
        seed=1,
    )
    assert r.object == "chat.completion", r
    assert r.id.startswith("chatcmpl-"), r.id
    assert r.model == model, r.model
    assert r.system_fingerprint == "fp_hearth", r
    assert len(r.choices) == 1, r
    c = r.choices[0]
    assert c.index == 0 and c.message.role == "assistant", c
    assert c.finish_reason in ("stop", "length"), c
    check_usage(r.usage)
    if c.finish_reason == "length":
        assert r.usage.completion_tokens == CHAT_TOKENS, r.usage
    return r.choices[0].message.content, r.usage


def chat_streamed(client, model, want_usage):
    stream = client.chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": CHAT_PROMPT}],
        temperature=0,
        max_completion_tokens=CHAT_TOKENS,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    assert len(chunks) >= 3, chunks
    ids = {c.id for c in chunks}
    assert len(ids) == 1, ids
    assert all(c.object == "chat.completion.chunk" for c in chunks), chunks
    first = chunks[0]
    assert first.choices[0].delta.role == "assistant", first
    usage_chunk = chunks[-1]
    assert usage_chunk.choices == [], usage_chunk
    assert usage_chunk.usage is not None
    got = usage_chunk.usage
    for k in ("prompt_tokens", "completion_tokens", "total_tokens"):
        assert getattr(got, k) == getattr(want_usage, k), (got, want_usage)
    # The same prompt again: its prefix comes from the cache.
    cached = got.prompt_tokens_details.cached_tokens
    assert 0 < cached < got.prompt_tokens, got
    finish = chunks[-2]
    assert finish.choices[0].finish_reason in ("stop", "length"), finish
    for c in chunks[:-1]:
        assert c.usage is None, c
    for c in chunks[:-2]:
        assert c.choices[0].finish_reason is None, c
    return "".join(c.choices[0].delta.content or "" for c in chunks[:-1])


def completion(client, model):
    r = client.completions.create(
        model=model,
        prompt=COMPLETION_PROMPT,
        temperature=0,
        max_tokens=COMPLETION_TOKENS,
    )
    assert r.object == "text_completion", r
    assert r.id.startswith("cmpl-"), r.id
    assert len(r.choices) == 1, r
    c = r.choices[0]
    assert c.index == 0 and c.finish_reason in ("stop", "length"), c
    check_usage(r.usage)

    stream = client.completions.create(
        model=model,
        prompt=COMPLETION_PROMPT,
        temperature=0,
        max_tokens=COMPLETION_TOKENS,
        stream=True,
    )
    streamed = "".join(ch.choices[0].text for ch in stream if ch.choices)
    assert streamed == c.text, (streamed, c.text)
    return c.text


def models(client, names):
    listed = {m.id: m for m in client.models.list()}
    for name in names:
        full = name if ":" in name else name + ":latest"
        assert full in listed, (full, listed)
        m = listed[full]
        assert m.object == "model" and m.owned_by == "library" and m.created > 0, m
        r = client.models.retrieve(name)
        assert r.id == full and r.created == m.created, r
    try:
        client.models.retrieve("no-such-model:latest")
    except openai.NotFoundError as e:
        assert "not found" in str(e), e
    else:
        raise AssertionError("retrieving a missing model succeeded")


def errors(client, model):
    try:
        client.chat.completions.create(
            model=model, messages=[{"role": "user", "content": "hi"}], n=2
        )
    except openai.BadRequestError as e:
        assert "n > 1 is not supported" in str(e), e
    else:
        raise AssertionError("n=2 succeeded")
    try:
        client.chat.completions.create(
            model="no-such-model", messages=[{"role": "user", "content": "hi"}]
        )
    except openai.NotFoundError:
        pass
    else:
        raise AssertionError("a missing model succeeded")


def main():
    url, names = sys.argv[1], sys.argv[2:]
    client = OpenAI(base_url=url + "/v1", api_key="hearth", max_retries=0)
    models(client, names)
    errors(client, names[0])
    for model in names:
        content, usage = chat(client, model)
        streamed = chat_streamed(client, model, usage)
        text = completion(client, model)
        print(
            json.dumps(
                {
                    "model": model,
                    "chat": content,
                    "chat_streamed": streamed,
                    "completion": text,
                }
            ),
            flush=True,
        )


if __name__ == "__main__":
    main()

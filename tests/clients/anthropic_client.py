"""hearth serve through the official `anthropic` Python client.

Usage: anthropic_client.py URL MODEL

A greedy messages.create (not streamed, streamed as raw events, and through the
messages.stream helper), count_tokens, a stop sequence, and the errors as the client
raises them. Asserts the shapes as the client parses them and prints one JSON object on
stdout ({"text", "streamed", "helper", "input_tokens", "counted"}) for the Rust test to
compare with `hearth run`.
"""

import json
import sys

import anthropic
from anthropic import Anthropic

PROMPT = "Why is the sky blue? Answer in one sentence."
MAX_TOKENS = 24


def ask(**extra):
    # This client version has no sampling parameters; the API still takes them.
    return dict(
        messages=[{"role": "user", "content": PROMPT}],
        max_tokens=MAX_TOKENS,
        extra_body={"temperature": 0, "top_k": 1},
        **extra,
    )


def check_message(m, model):
    assert m.type == "message" and m.role == "assistant", m
    assert m.id.startswith("msg_"), m.id
    assert m.model == model, m.model
    assert len(m.content) == 1 and m.content[0].type == "text", m.content
    assert m.stop_reason in ("end_turn", "max_tokens"), m
    assert m.usage.input_tokens > 0 and m.usage.output_tokens > 0, m.usage
    if m.stop_reason == "max_tokens":
        assert m.usage.output_tokens == MAX_TOKENS, m.usage
        assert m.stop_sequence is None, m


def create(client, model):
    m = client.messages.create(model=model, metadata={"user_id": "test"}, **ask())
    check_message(m, model)
    return m


def streamed_raw(client, model, want):
    events = list(client.messages.create(model=model, stream=True, **ask()))
    kinds = [e.type for e in events]
    deltas = kinds[2:-3]
    assert kinds[:2] == ["message_start", "content_block_start"], kinds
    assert kinds[-3:] == ["content_block_stop", "message_delta", "message_stop"], kinds
    assert deltas and all(k == "content_block_delta" for k in deltas), kinds
    start = events[0].message
    assert start.id.startswith("msg_") and start.content == [], start
    assert start.usage.input_tokens == want.usage.input_tokens, start.usage
    delta = events[-2]
    assert delta.delta.stop_reason == want.stop_reason, delta
    assert delta.usage.output_tokens == want.usage.output_tokens, delta.usage
    return "".join(e.delta.text for e in events if e.type == "content_block_delta")


def helper(client, model, want):
    with client.messages.stream(model=model, **ask()) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    check_message(final, model)
    assert final.content[0].text == text, (final.content, text)
    assert final.stop_reason == want.stop_reason, final
    assert final.usage.output_tokens == want.usage.output_tokens, final.usage
    return text


def stop_sequence(client, model, text):
    """A word from the middle of the greedy answer as a stop sequence: the answer is
    cut before it and says which one matched."""
    words = text.split()
    assert len(words) >= 4, text
    stop = " " + words[len(words) // 2]
    m = client.messages.create(
        model=model, stop_sequences=["never-appears", stop], **ask()
    )
    assert m.stop_reason == "stop_sequence", m
    assert m.stop_sequence == stop, m
    assert m.content[0].text == text[: text.index(stop)], (m.content, text, stop)
    # The same in a stream: message_delta says so.
    events = list(
        client.messages.create(model=model, stream=True, stop_sequences=[stop], **ask())
    )
    delta = [e for e in events if e.type == "message_delta"][0]
    assert delta.delta.stop_reason == "stop_sequence", delta
    assert delta.delta.stop_sequence == stop, delta


def count(client, model):
    r = client.messages.count_tokens(
        model=model, messages=[{"role": "user", "content": PROMPT}]
    )
    return r.input_tokens


def errors(client, model):
    try:
        client.messages.create(model="no-such-model", **ask())
    except anthropic.NotFoundError as e:
        assert e.body["type"] == "error", e.body
        assert e.body["error"]["type"] == "not_found_error", e.body
        assert "not found" in e.body["error"]["message"], e.body
    else:
        raise AssertionError("a missing model succeeded")
    image = {
        "type": "image",
        "source": {"type": "base64", "media_type": "image/png", "data": "AAAA"},
    }
    try:
        client.messages.create(
            model=model,
            max_tokens=4,
            messages=[{"role": "user", "content": [image, {"type": "text", "text": "?"}]}],
        )
    except anthropic.BadRequestError as e:
        assert e.body["error"]["type"] == "invalid_request_error", e.body
        assert "text-only" in e.body["error"]["message"], e.body
    else:
        raise AssertionError("an image succeeded")
    try:
        client.messages.count_tokens(model="no-such-model", messages=[{"role": "user", "content": "x"}])
    except anthropic.NotFoundError:
        pass
    else:
        raise AssertionError("counting for a missing model succeeded")


def main():
    url, model = sys.argv[1], sys.argv[2]
    client = Anthropic(base_url=url, api_key="hearth", max_retries=0)
    errors(client, model)
    m = create(client, model)
    text = m.content[0].text
    streamed = streamed_raw(client, model, m)
    helped = helper(client, model, m)
    stop_sequence(client, model, text)
    counted = count(client, model)
    print(
        json.dumps(
            {
                "text": text,
                "streamed": streamed,
                "helper": helped,
                "input_tokens": m.usage.input_tokens,
                "counted": counted,
            }
        ),
        flush=True,
    )


if __name__ == "__main__":
    main()

"""hearth serve's /v1/responses through the official `openai` Python client.

Usage: responses_client.py URL MODEL

A greedy responses.create (not streamed, then streamed as raw events), the
responses.stream helper on an answer that ends by itself, input items with
instructions, and the errors as the client raises them. Asserts the shapes as the
client parses them and prints one JSON object on stdout ({"text", "streamed", "short",
"short_helper"}) for the Rust test to compare with `hearth run`.
"""

import json
import sys

import openai
from openai import OpenAI

PROMPT = "Why is the sky blue? Answer in one sentence."
MAX_TOKENS = 24
# SmolLM2 and Qwen answer this in a few tokens, well under SHORT_MAX.
SHORT_PROMPT = "Say hello."
SHORT_MAX = 200


def check_response(r, model, max_tokens):
    assert r.object == "response", r
    assert r.id.startswith("resp_"), r.id
    assert r.model == model, r.model
    assert r.error is None, r
    assert len(r.output) == 1, r.output
    item = r.output[0]
    assert item.type == "message" and item.role == "assistant", item
    assert item.id.startswith("msg_"), item.id
    assert len(item.content) == 1 and item.content[0].type == "output_text", item
    assert item.content[0].annotations == [], item
    u = r.usage
    assert u.input_tokens > 0 and u.output_tokens > 0, u
    assert u.total_tokens == u.input_tokens + u.output_tokens, u
    assert u.output_tokens_details.reasoning_tokens == 0, u
    if r.status == "incomplete":
        assert r.incomplete_details.reason == "max_output_tokens", r
        assert item.status == "incomplete", item
        assert u.output_tokens == max_tokens, u
    else:
        assert r.status == "completed" and r.incomplete_details is None, r
        assert item.status == "completed", item
        assert u.output_tokens < max_tokens, u
    assert r.output_text == item.content[0].text, r
    return r.output_text


def create(client, model, prompt, max_tokens):
    r = client.responses.create(
        model=model, input=prompt, temperature=0, max_output_tokens=max_tokens
    )
    check_response(r, model, max_tokens)
    assert r.temperature == 0 and r.max_output_tokens == max_tokens, r
    return r


def streamed_raw(client, model, want):
    events = list(
        client.responses.create(
            model=model,
            input=PROMPT,
            temperature=0,
            max_output_tokens=MAX_TOKENS,
            stream=True,
        )
    )
    kinds = [e.type for e in events]
    last = "response.completed" if want.status == "completed" else "response.incomplete"
    head = [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
    ]
    tail = [
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        last,
    ]
    assert kinds[:4] == head and kinds[-4:] == tail, kinds
    assert all(k == "response.output_text.delta" for k in kinds[4:-4]), kinds
    assert [e.sequence_number for e in events] == list(range(len(events))), events
    created = events[0].response
    assert created.status == "in_progress" and created.output == [], created
    final = events[-1].response
    assert final.id == created.id, (final.id, created.id)
    check_response(final, model, MAX_TOKENS)
    assert final.usage.output_tokens == want.usage.output_tokens, final.usage
    assert final.usage.input_tokens == want.usage.input_tokens, final.usage
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert events[-4].text == text and final.output_text == text, (events[-4], text)
    return text


def helper(client, model):
    """The stream helper needs `response.completed`: an answer that ends by itself."""
    with client.responses.stream(
        model=model, input=SHORT_PROMPT, temperature=0, max_output_tokens=SHORT_MAX
    ) as stream:
        deltas = [e.delta for e in stream if e.type == "response.output_text.delta"]
        final = stream.get_final_response()
    text = check_response(final, model, SHORT_MAX)
    assert final.status == "completed", final
    assert "".join(deltas) == text, (deltas, text)
    return text


def items(client, model):
    """Items: instructions, a developer message, earlier turns and a function call
    rendered as text; the output is an answer."""
    r = client.responses.create(
        model=model,
        instructions="You are terse.",
        input=[
            {"role": "developer", "content": "Answer in English."},
            {"role": "user", "content": [{"type": "input_text", "text": "What is 2+2?"}]},
            {
                "type": "function_call",
                "call_id": "call_1",
                "name": "add",
                "arguments": '{"a": 2, "b": 2}',
            },
            {"type": "function_call_output", "call_id": "call_1", "output": "4"},
            {"type": "message", "role": "assistant", "content": [
                {"type": "output_text", "text": "4"}]},
            {"role": "user", "content": "And 3+3?"},
        ],
        temperature=0,
        max_output_tokens=8,
        tools=[
            {
                "type": "function",
                "name": "add",
                "description": "Adds.",
                "parameters": {"type": "object", "properties": {}},
                "strict": False,
            }
        ],
        metadata={"k": "v"},
    )
    check_response(r, model, 8)
    assert r.instructions == "You are terse.", r
    assert r.tools[0].name == "add" and r.metadata == {"k": "v"}, r


def errors(client, model):
    try:
        client.responses.create(model="no-such-model", input="hi")
    except openai.NotFoundError as e:
        assert "not found" in str(e), e
    else:
        raise AssertionError("a missing model succeeded")
    try:
        client.responses.create(model=model, input="hi", previous_response_id="resp_x")
    except openai.BadRequestError as e:
        assert "previous_response_id is not supported" in str(e), e
    else:
        raise AssertionError("previous_response_id succeeded")
    image = {"type": "input_image", "image_url": "data:image/png;base64,AAAA"}
    try:
        client.responses.create(
            model=model, input=[{"role": "user", "content": [image]}]
        )
    except openai.BadRequestError as e:
        assert "text-only" in str(e), e
    else:
        raise AssertionError("an image succeeded")


def main():
    url, model = sys.argv[1], sys.argv[2]
    client = OpenAI(base_url=url + "/v1", api_key="hearth", max_retries=0)
    errors(client, model)
    r = create(client, model, PROMPT, MAX_TOKENS)
    streamed = streamed_raw(client, model, r)
    short = create(client, model, SHORT_PROMPT, SHORT_MAX)
    assert short.status == "completed", short
    short_helper = helper(client, model)
    items(client, model)
    print(
        json.dumps(
            {
                "text": r.output_text,
                "streamed": streamed,
                "short": short.output_text,
                "short_helper": short_helper,
            }
        ),
        flush=True,
    )


if __name__ == "__main__":
    main()

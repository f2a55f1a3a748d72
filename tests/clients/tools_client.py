"""Tool calls through the official clients on a model whose template has tools
(Qwen2.5-Coder-0.5B): `tool_choice` required, named and none honoured through
/v1/chat/completions, /v1/responses and /v1/messages (Anthropic's any, tool, none); calls
streamed in each API's way reassemble into arguments that validate against the tool's
schema; a full round trip (the call, its result, a final answer that uses the result)
through each API and /api/chat. Run by tests/serve_tools.rs.

    python tools_client.py URL MODEL
"""
import json
import sys

import anthropic
import jsonschema
import ollama
import openai

url, model = sys.argv[1], sys.argv[2]
ai = openai.OpenAI(base_url=url + "/v1", api_key="unused", timeout=600)
an = anthropic.Anthropic(base_url=url, api_key="unused", timeout=600)
oc = ollama.Client(host=url, timeout=600)

WEATHER = {
    "type": "object",
    "properties": {
        "city": {"type": "string"},
        "unit": {"enum": ["celsius", "fahrenheit"]},
    },
    "required": ["city"],
}
TIME = {
    "type": "object",
    "properties": {"timezone": {"type": "string"}},
    "required": ["timezone"],
}
SCHEMAS = {"get_weather": WEATHER, "get_time": TIME}
DESCRIPTIONS = {
    "get_weather": "Get the current weather in a city",
    "get_time": "Get the current time in a timezone",
}
QUESTION = "What is the weather like in Paris today?"
RESULT = "18 degrees celsius and sunny"
GREEDY = {"temperature": 0}
# This anthropic client has no sampling parameters: the field goes in the body.
A_GREEDY = {"extra_body": {"temperature": 0}}

chat_tools = [
    {"type": "function", "function": {"name": n, "description": DESCRIPTIONS[n], "parameters": s}}
    for n, s in SCHEMAS.items()
]
response_tools = [
    {"type": "function", "name": n, "description": DESCRIPTIONS[n], "parameters": s}
    for n, s in SCHEMAS.items()
]
anthropic_tools = [
    {"name": n, "description": DESCRIPTIONS[n], "input_schema": s} for n, s in SCHEMAS.items()
]
checks = 0


def valid_call(name, arguments, want=None):
    """A call of a known function (of `want` when given) whose arguments validate."""
    global checks
    assert name in SCHEMAS, f"unknown function {name!r}"
    if want:
        assert name == want, f"called {name!r}, want {want!r}"
    args = json.loads(arguments) if isinstance(arguments, str) else arguments
    jsonschema.validate(args, SCHEMAS[name])
    checks += 1
    return args


def final_answer(text):
    """A final answer that used the tool's result."""
    global checks
    assert isinstance(text, str) and text.strip(), f"empty final answer {text!r}"
    assert "18" in text or "sunny" in text.lower(), f"answer ignores the result: {text!r}"
    checks += 1


# --- /v1/chat/completions
msgs = [{"role": "user", "content": QUESTION}]
for choice, want in [("required", None), ({"type": "function", "function": {"name": "get_time"}}, "get_time")]:
    r = ai.chat.completions.create(model=model, messages=msgs, tools=chat_tools, tool_choice=choice, **GREEDY)
    c = r.choices[0]
    assert c.finish_reason == "tool_calls", c
    assert c.message.tool_calls, c
    for call in c.message.tool_calls:
        assert call.id and call.type == "function"
        valid_call(call.function.name, call.function.arguments, want)
r = ai.chat.completions.create(model=model, messages=msgs, tools=chat_tools, tool_choice="none", **GREEDY)
assert not r.choices[0].message.tool_calls and r.choices[0].message.content, r
assert r.choices[0].finish_reason == "stop"
# Streamed: deltas by index reassemble into the calls.
calls, finish = {}, None
for chunk in ai.chat.completions.create(
    model=model, messages=msgs, tools=chat_tools, tool_choice="required", stream=True, **GREEDY
):
    for ch in chunk.choices:
        finish = ch.finish_reason or finish
        for d in ch.delta.tool_calls or []:
            slot = calls.setdefault(d.index, {"id": None, "name": "", "arguments": ""})
            slot["id"] = d.id or slot["id"]
            if d.function and d.function.name:
                slot["name"] += d.function.name
            if d.function and d.function.arguments:
                slot["arguments"] += d.function.arguments
assert finish == "tool_calls" and calls, (finish, calls)
for slot in calls.values():
    assert slot["id"]
    valid_call(slot["name"], slot["arguments"])
# Round trip: the call, its result, the answer.
r = ai.chat.completions.create(
    model=model, messages=msgs, tools=chat_tools,
    tool_choice={"type": "function", "function": {"name": "get_weather"}}, **GREEDY)
call = r.choices[0].message.tool_calls[0]
valid_call(call.function.name, call.function.arguments, "get_weather")
history = msgs + [
    {"role": "assistant", "content": None, "tool_calls": [
        {"id": call.id, "type": "function",
         "function": {"name": call.function.name, "arguments": call.function.arguments}}]},
    {"role": "tool", "tool_call_id": call.id, "content": RESULT},
]
r = ai.chat.completions.create(model=model, messages=history, tools=chat_tools, tool_choice="none", **GREEDY)
final_answer(r.choices[0].message.content)
print("chat completions ok")

# --- /v1/responses
for choice, want in [("required", None), ({"type": "function", "name": "get_time"}, "get_time")]:
    r = ai.responses.create(model=model, input=QUESTION, tools=response_tools, tool_choice=choice, **GREEDY)
    fcs = [o for o in r.output if o.type == "function_call"]
    assert fcs, r.output
    for fc in fcs:
        assert fc.call_id and fc.id
        valid_call(fc.name, fc.arguments, want)
r = ai.responses.create(model=model, input=QUESTION, tools=response_tools, tool_choice="none", **GREEDY)
assert not [o for o in r.output if o.type == "function_call"] and r.output_text, r.output
with ai.responses.stream(
    model=model, input=QUESTION, tools=response_tools, tool_choice="required", **GREEDY
) as stream:
    deltas = {}
    for event in stream:
        if event.type == "response.function_call_arguments.delta":
            deltas[event.item_id] = deltas.get(event.item_id, "") + event.delta
    final = stream.get_final_response()
fcs = [o for o in final.output if o.type == "function_call"]
assert fcs, final.output
for fc in fcs:
    assert deltas[fc.id] == fc.arguments, (deltas, fc)
    valid_call(fc.name, deltas[fc.id])
r = ai.responses.create(
    model=model, input=QUESTION, tools=response_tools,
    tool_choice={"type": "function", "name": "get_weather"}, **GREEDY)
fc = [o for o in r.output if o.type == "function_call"][0]
valid_call(fc.name, fc.arguments, "get_weather")
items = [
    {"role": "user", "content": QUESTION},
    {"type": "function_call", "call_id": fc.call_id, "name": fc.name, "arguments": fc.arguments},
    {"type": "function_call_output", "call_id": fc.call_id, "output": RESULT},
]
r = ai.responses.create(model=model, input=items, tools=response_tools, tool_choice="none", **GREEDY)
final_answer(r.output_text)
print("responses ok")

# --- /v1/messages
amsgs = [{"role": "user", "content": QUESTION}]
for choice, want in [({"type": "any"}, None), ({"type": "tool", "name": "get_time"}, "get_time")]:
    m = an.messages.create(model=model, max_tokens=200, messages=amsgs, tools=anthropic_tools,
                           tool_choice=choice, **A_GREEDY)
    uses = [b for b in m.content if b.type == "tool_use"]
    assert m.stop_reason == "tool_use" and uses, m
    for u in uses:
        assert u.id.startswith("toolu_")
        valid_call(u.name, u.input, want)
m = an.messages.create(model=model, max_tokens=200, messages=amsgs, tools=anthropic_tools,
                       tool_choice={"type": "none"}, **A_GREEDY)
assert not [b for b in m.content if b.type == "tool_use"] and m.stop_reason == "end_turn", m
with an.messages.stream(model=model, max_tokens=200, messages=amsgs, tools=anthropic_tools,
                        tool_choice={"type": "any"}, **A_GREEDY) as stream:
    final = stream.get_final_message()
uses = [b for b in final.content if b.type == "tool_use"]
assert final.stop_reason == "tool_use" and uses, final
for u in uses:
    valid_call(u.name, u.input)
m = an.messages.create(model=model, max_tokens=200, messages=amsgs, tools=anthropic_tools,
                       tool_choice={"type": "tool", "name": "get_weather"}, **A_GREEDY)
u = [b for b in m.content if b.type == "tool_use"][0]
valid_call(u.name, u.input, "get_weather")
history = amsgs + [
    {"role": "assistant", "content": [{"type": "tool_use", "id": u.id, "name": u.name, "input": u.input}]},
    {"role": "user", "content": [{"type": "tool_result", "tool_use_id": u.id, "content": RESULT}]},
]
m = an.messages.create(model=model, max_tokens=200, messages=history, tools=anthropic_tools,
                       tool_choice={"type": "none"}, **A_GREEDY)
final_answer("".join(b.text for b in m.content if b.type == "text"))
print("messages ok")

# --- /api/chat (Ollama has no tool_choice: the model decides)
r = oc.chat(model=model, messages=msgs, tools=chat_tools, options=GREEDY)
assert r.message.tool_calls, r.message
for tc in r.message.tool_calls:
    valid_call(tc.function.name, tc.function.arguments)
calls = []
for part in oc.chat(model=model, messages=msgs, tools=chat_tools, options=GREEDY, stream=True):
    calls.extend(part.message.tool_calls or [])
assert [c.function.name for c in calls] == [c.function.name for c in r.message.tool_calls], calls
tc = r.message.tool_calls[0]
history = msgs + [
    {"role": "assistant", "content": "", "tool_calls": [
        {"function": {"name": tc.function.name, "arguments": dict(tc.function.arguments)}}]},
    {"role": "tool", "tool_name": tc.function.name, "content": RESULT},
]
r = oc.chat(model=model, messages=history, options=GREEDY)
final_answer(r.message.content)
print("ollama ok")
print(f"ok {checks}")

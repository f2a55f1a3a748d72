"""Structured output through the official clients: every answer to a schema parses and
validates (the `jsonschema` package), every `json` answer is a JSON object, and a
keyword outside the supported subset is a 400 that names it. Run by
tests/serve_structured.rs on each model.

    python structured_client.py URL MODEL
"""
import json
import sys
from concurrent.futures import ThreadPoolExecutor

import jsonschema
import ollama
import openai

url, model = sys.argv[1], sys.argv[2]
oc = ollama.Client(host=url, timeout=600)
ai = openai.OpenAI(base_url=url + "/v1", api_key="unused", timeout=600)

# Nested objects, arrays, enums, a pattern, bounds and a format: every length is bounded,
# so a complete document always fits in NUM_PREDICT tokens.
SCHEMA = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "minLength": 1, "maxLength": 24},
        "age": {"type": "integer", "minimum": 0, "maximum": 120},
        "role": {"enum": ["admin", "user", "guest"]},
        "code": {"type": "string", "pattern": "^[A-Z]{2}-[0-9]{3}$"},
        "born": {"type": "string", "format": "date"},
        "tags": {
            "type": "array",
            "items": {"type": "string", "maxLength": 12},
            "minItems": 1,
            "maxItems": 3,
        },
        "address": {
            "type": "object",
            "properties": {
                "city": {"type": "string", "maxLength": 20},
                "country": {"enum": ["FR", "DE", "US", "JP"]},
            },
            "required": ["city", "country"],
            "additionalProperties": False,
        },
        "score": {"anyOf": [{"type": "number", "minimum": 0, "maximum": 10}, {"type": "null"}]},
    },
    "required": ["name", "age", "role", "code", "born", "tags", "address", "score"],
    "additionalProperties": False,
}
NUM_PREDICT = 400

PEOPLE = [
    "a French painter", "a German engineer", "a Japanese chef", "an American pilot",
    "a retired teacher", "a young programmer", "a famous violinist", "a marine biologist",
    "a mountain guide", "a bakery owner", "a chess champion", "a night-shift nurse",
    "an astronaut", "a jazz drummer", "a librarian", "a race car driver",
    "a beekeeper", "a lighthouse keeper", "a museum curator", "a bus driver",
]


def prompt(who):
    return f"Describe {who} as a JSON record with name, age, role, code, born, tags, address and score."


def ollama_chat(i, who):
    r = oc.chat(
        model=model,
        messages=[{"role": "user", "content": prompt(who)}],
        format=SCHEMA,
        options={"temperature": 0.8, "seed": i, "num_predict": NUM_PREDICT},
    )
    return r.message.content, r.done_reason


def ollama_generate(i, who):
    r = oc.generate(
        model=model,
        prompt=prompt(who),
        format=SCHEMA,
        options={"temperature": 0.8, "seed": i, "num_predict": NUM_PREDICT},
    )
    return r.response, r.done_reason


def openai_chat(i, who):
    r = ai.chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": prompt(who)}],
        response_format={
            "type": "json_schema",
            "json_schema": {"name": "person", "schema": SCHEMA, "strict": True},
        },
        temperature=0.8,
        seed=i,
        max_tokens=NUM_PREDICT,
    )
    c = r.choices[0]
    return c.message.content, c.finish_reason


def openai_chat_stream(i, who):
    parts, finish = [], None
    for chunk in ai.chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": prompt(who)}],
        response_format={"type": "json_schema", "json_schema": {"name": "person", "schema": SCHEMA}},
        temperature=0.8,
        seed=i,
        max_tokens=NUM_PREDICT,
        stream=True,
    ):
        if chunk.choices:
            parts.append(chunk.choices[0].delta.content or "")
            finish = chunk.choices[0].finish_reason or finish
    return "".join(parts), finish


CALLS = [ollama_chat, ollama_generate, openai_chat, openai_chat_stream]


def one(i):
    call = CALLS[i % len(CALLS)]
    text, reason = call(i, PEOPLE[i])
    assert reason == "stop", (call.__name__, reason, text)
    doc = json.loads(text)
    jsonschema.validate(doc, SCHEMA, format_checker=jsonschema.FormatChecker())
    return call.__name__, doc


with ThreadPoolExecutor(max_workers=4) as pool:
    results = list(pool.map(one, range(len(PEOPLE))))
for name, doc in results:
    print(name, json.dumps(doc))

# format "json" / json_object: any JSON object. (Greedy, with prompts these small models
# finish: "any JSON" has no bound, and a 135M model can nest until the budget is spent.)
JSON_PROMPTS = [
    "Return a JSON object with the keys name and age for a person called Bob, aged 30.",
    "Give the capital of France as a JSON object with the key capital.",
]
for p in JSON_PROMPTS:
    r = oc.chat(
        model=model,
        messages=[{"role": "user", "content": p}],
        format="json",
        options={"temperature": 0, "num_predict": 300},
    )
    assert r.done_reason == "stop", r
    assert isinstance(json.loads(r.message.content), dict), r.message.content
    r = ai.chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": p}],
        response_format={"type": "json_object"},
        temperature=0,
        max_tokens=300,
    )
    assert r.choices[0].finish_reason == "stop", r
    assert isinstance(json.loads(r.choices[0].message.content), dict), r

# A keyword outside the subset: a 400 naming it, from both APIs.
bad = {"type": "object", "properties": {"n": {"type": "number", "multipleOf": 5}}}
try:
    oc.chat(model=model, messages=[{"role": "user", "content": "hi"}], format=bad)
    raise AssertionError("ollama: unsupported keyword accepted")
except ollama.ResponseError as e:
    assert e.status_code == 400 and "multipleOf" in e.error, e
try:
    ai.chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": "hi"}],
        response_format={"type": "json_schema", "json_schema": {"name": "x", "schema": bad}},
    )
    raise AssertionError("openai: unsupported keyword accepted")
except openai.BadRequestError as e:
    assert "multipleOf" in str(e), e
print("ok", len(results))

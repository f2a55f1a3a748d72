"""hearth serve with API keys, through the official `ollama` and `openai` Python clients.

Usage: auth_client.py URL MODEL GOOD_KEY BAD_KEY

With GOOD_KEY each client lists the models and has a short greedy chat, the key passed
through the client's usual setting (ollama: `headers`, openai: `api_key`); with BAD_KEY
(or none) the ollama client raises ResponseError with status 401 and the openai client
AuthenticationError. Prints "ok" at the end.
"""

import sys

import ollama
import openai

url, model, good, bad = sys.argv[1:5]
messages = [{"role": "user", "content": "Say hi."}]

# ollama
c = ollama.Client(host=url, headers={"Authorization": f"Bearer {good}"})
names = [m.model for m in c.list().models]
assert any(n.startswith(model) for n in names), names
r = c.chat(model=model, messages=messages, options={"temperature": 0, "num_predict": 3})
assert r.message.content, r
for headers in [{"Authorization": f"Bearer {bad}"}, {}]:
    try:
        ollama.Client(host=url, headers=headers).chat(
            model=model, messages=messages, options={"num_predict": 1}
        )
        raise AssertionError(f"ollama client with {headers} was not refused")
    except ollama.ResponseError as e:
        assert e.status_code == 401, (e.status_code, e.error)
        assert "unauthorized" in e.error, e.error

# openai
o = openai.OpenAI(base_url=f"{url}/v1", api_key=good, max_retries=0)
ids = [m.id for m in o.models.list()]
assert any(i.startswith(model) for i in ids), ids
r = o.chat.completions.create(model=model, messages=messages, max_tokens=3, temperature=0)
assert r.choices[0].message.content, r
try:
    openai.OpenAI(base_url=f"{url}/v1", api_key=bad, max_retries=0).chat.completions.create(
        model=model, messages=messages, max_tokens=1
    )
    raise AssertionError("openai client with a wrong key was not refused")
except openai.AuthenticationError as e:
    assert e.status_code == 401, e
    assert e.code == "invalid_api_key", (e.code, e.body)

print("ok")

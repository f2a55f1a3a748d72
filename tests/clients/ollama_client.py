"""hearth serve's model-information endpoints through the official `ollama` Python client.

Usage: ollama_client.py URL MODEL

Lists the store, shows MODEL, checks that `ps` is empty, generates two tokens, checks
that `ps` then shows MODEL, and that showing a missing model raises a 404. Asserts the
fields as the client's typed models parse them and prints one JSON object on stdout
({"list", "show", "ps"}) for the Rust test to compare with the raw API.
"""

import datetime
import json
import sys

import ollama


def is_hex_digest(s):
    return isinstance(s, str) and len(s) == 64 and all(c in "0123456789abcdef" for c in s)


def check_details(d):
    assert d is not None, "no details"
    assert d.format == "gguf", d
    assert d.family, d
    assert d.families and d.family in d.families, d
    assert d.parameter_size, d
    assert d.quantization_level, d
    return d.model_dump()


def main():
    url, model = sys.argv[1], sys.argv[2]
    full = model if ":" in model else model + ":latest"
    client = ollama.Client(host=url)
    out = {}

    listed = client.list()
    entry = next((m for m in listed.models if m.model == full), None)
    assert entry is not None, f"{full} not in {[m.model for m in listed.models]}"
    assert isinstance(entry.modified_at, datetime.datetime), entry
    assert entry.modified_at.tzinfo is not None, entry
    assert is_hex_digest(entry.digest), entry
    assert entry.size > 0, entry
    out["list"] = {
        "model": entry.model,
        "digest": entry.digest,
        "size": int(entry.size),
        "modified_at": entry.modified_at.isoformat(),
        "details": check_details(entry.details),
    }

    shown = client.show(model)
    assert isinstance(shown.modified_at, datetime.datetime), shown.modified_at
    assert shown.modelfile and "FROM " in shown.modelfile, shown.modelfile
    assert shown.template, "no template"
    assert shown.capabilities and "completion" in shown.capabilities, shown.capabilities
    info = shown.modelinfo
    assert info is not None and info.get("general.architecture") == shown.details.family, info
    assert "general.name" not in info and "tokenizer.chat_template" not in info
    assert info.get("tokenizer.ggml.tokens") == [], "a long array was not emptied"
    out["show"] = {
        "details": check_details(shown.details),
        "capabilities": list(shown.capabilities),
        "parameters": shown.parameters,
        "template": shown.template,
        "architecture": info["general.architecture"],
        "model_info_keys": sorted(info.keys()),
    }

    try:
        client.show("no-such-model")
        raise AssertionError("showing a missing model did not fail")
    except ollama.ResponseError as e:
        assert e.status_code == 404, e
        assert e.error == "model 'no-such-model' not found", e.error

    before = client.ps()
    assert list(before.models) == [], before

    r = client.generate(model=model, prompt="hi", options={"num_predict": 2})
    assert r.done, r

    running = client.ps()
    assert len(running.models) == 1, running
    p = running.models[0]
    assert p.model == full and p.name == full, p
    assert p.digest == entry.digest, (p.digest, entry.digest)
    assert p.size > 0 and p.size_vram == 0, p
    assert p.context_length and p.context_length > 0, p
    assert isinstance(p.expires_at, datetime.datetime), p
    assert p.expires_at > datetime.datetime.now(datetime.timezone.utc), p.expires_at
    out["ps"] = {
        "model": p.model,
        "digest": p.digest,
        "size": int(p.size),
        "size_vram": int(p.size_vram),
        "context_length": p.context_length,
        "expires_at": p.expires_at.isoformat(),
        "details": check_details(p.details),
    }

    client.generate(model=model, keep_alive=0)
    after = client.ps()
    assert list(after.models) == [], after

    print(json.dumps(out))


if __name__ == "__main__":
    main()

"""hearth serve's store endpoints through the official `ollama` Python client.

Usage: ollama_store.py URL REGISTRY_PORT GGUF

With the server's store holding `smol` (the GGUF file's model) and an empty
docker-registry on 127.0.0.1:REGISTRY_PORT:
1. copy smol to 127.0.0.1:PORT/library/smol:latest and push it (streamed progress);
2. delete both names (the store is then empty) and pull it back (streamed progress, a
   real download), list it and generate with it; delete it again;
3. upload GGUF with create_blob, create `mine` from it (files=, system, parameters),
   show it and generate with it; replace it (from=mine, a new system) while loaded;
4. copy mine, delete the copy, and delete a missing model (ResponseError 404).
Leaves `mine` in the store. Prints one JSON object on stdout for the Rust test.
"""

import json
import sys

import ollama


def statuses(events):
    return [e.status for e in events]


def check_progress(events, verb):
    """Layer progress objects (digest, total, completed) arrive, and the last is success."""
    assert events, "no events"
    assert events[-1].status == "success", statuses(events)
    layers = [e for e in events if e.digest]
    assert layers, f"no layer progress in {statuses(events)}"
    for e in layers:
        assert e.status == f"{verb} {e.digest[len('sha256:'):][:12]}", e
        assert e.total and e.total > 0, e
    # Every layer ends complete.
    last = {}
    for e in layers:
        last[e.digest] = e
    for d, e in last.items():
        assert e.completed == e.total, f"{d}: {e}"


def main():
    url, port, gguf = sys.argv[1], sys.argv[2], sys.argv[3]
    client = ollama.Client(host=url)
    remote = f"127.0.0.1:{port}/library/smol:latest"
    out = {}

    # 1. copy and push.
    assert client.copy("smol", remote).status == "success"
    names = [m.model for m in client.list().models]
    assert remote in names, names
    pushed = list(client.push(remote, insecure=True, stream=True))
    check_progress(pushed, "pushing")
    st = statuses(pushed)
    assert st[0] == "retrieving manifest", st
    assert "pushing manifest" in st, st
    out["push"] = st

    # 2. delete, pull back, generate.
    client.delete(remote)
    client.delete("smol")
    assert client.list().models == [], client.list()
    pulled = list(client.pull(remote, insecure=True, stream=True))
    check_progress(pulled, "pulling")
    st = statuses(pulled)
    assert st[0] == "pulling manifest", st
    i, j = st.index("verifying sha256 digest"), st.index("writing manifest")
    assert i < j < len(st) - 1, st
    out["pull"] = st
    names = [m.model for m in client.list().models]
    assert names == [remote], names
    g = client.generate(model=remote, prompt="Hello", options={"num_predict": 3, "temperature": 0})
    assert g.done and g.eval_count and g.eval_count <= 3, g
    client.delete(remote)

    # 3. create from an uploaded GGUF.
    digest = client.create_blob(gguf)
    assert digest.startswith("sha256:") and len(digest) == 71, digest
    created = list(
        client.create(
            model="mine",
            files={"smol.gguf": digest},
            system="You are a terse assistant.",
            parameters={"temperature": 0.25, "num_predict": 4, "stop": ["<|im_end|>", "STOP"]},
            license="MIT",
            stream=True,
        )
    )
    st = statuses(created)
    assert st[0] == "parsing GGUF", st
    assert f"using existing layer {digest}" in st, st
    assert st[-2:] == ["writing manifest", "success"], st
    out["create"] = st
    shown = client.show("mine")
    assert "SYSTEM" in shown.modelfile and "You are a terse assistant." in shown.modelfile, shown.modelfile
    assert "temperature" in shown.parameters and "0.25" in shown.parameters, shown.parameters
    assert "num_predict" in shown.parameters, shown.parameters
    assert shown.parameters.count("stop") == 2, shown.parameters
    assert shown.license == "MIT", shown.license
    assert shown.details.family == "llama", shown.details
    g = client.generate(model="mine", prompt="Hello")
    # num_predict 4 comes from the model's parameters.
    assert g.done and g.eval_count and g.eval_count <= 4, g
    out["parameters"] = shown.parameters

    # Replace the loaded model (stream=False: the last status alone): the old one is
    # unloaded once idle, and the next request uses the new one.
    r = client.create(model="mine", from_="mine", system="Be brief.", stream=False)
    assert r.status == "success", r
    shown = client.show("mine")
    assert "Be brief." in shown.modelfile and "terse" not in shown.modelfile, shown.modelfile
    assert "0.25" in shown.parameters, shown.parameters
    g = client.generate(model="mine", prompt="Hello")
    assert g.done and g.eval_count and g.eval_count <= 4, g

    # 4. copy, delete, delete a missing model.
    client.copy("mine", "mine2")
    assert client.delete("mine2").status == "success"
    try:
        client.delete("mine2")
        raise AssertionError("deleting a missing model did not raise")
    except ollama.ResponseError as e:
        assert e.status_code == 404, e
        assert "not found" in e.error, e.error
    try:
        client.copy("nosuch", "other")
        raise AssertionError("copying a missing model did not raise")
    except ollama.ResponseError as e:
        assert e.status_code == 404, e
    names = [m.model for m in client.list().models]
    assert names == ["mine:latest"], names

    print(json.dumps(out))


if __name__ == "__main__":
    main()

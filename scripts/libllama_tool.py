"""Compiles one of our small C++ programs (scripts/*.cpp) against the static libraries of
the peer's build (scripts/build-llamacpp), for the reference-data generators. The binary is
cached in the peer's build directory and recompiled only when the source, the command or a
library changes."""

import hashlib
import os
import subprocess
import sys


def compiled(llama_src, source, name):
    """The binary of `source` (a path), built into <llama_src>/build/hearth-<name>/<name>."""
    build = os.path.join(llama_src, "build")
    libs = [os.path.join(build, "src/libllama.a"), os.path.join(build, "ggml/src/libggml.a"),
            os.path.join(build, "ggml/src/libggml-cpu.a"),
            os.path.join(build, "ggml/src/libggml-base.a")]
    for lib in libs:
        if not os.path.exists(lib):
            sys.exit(f"{lib} is missing (run scripts/build-llamacpp)")
    cache = os.path.join(build, f"hearth-{name}")
    exe = os.path.join(cache, name)
    # The build links OpenMP (GGML_OPENMP=ON, the default): -fopenmp brings libgomp.
    cmd = ["g++", "-O2", "-std=c++17", "-I", os.path.join(llama_src, "include"),
           "-I", os.path.join(llama_src, "ggml/include"), source, "-o", exe] + libs + \
          ["-fopenmp", "-lpthread", "-ldl", "-lm"]
    key = hashlib.sha256()
    key.update(open(source, "rb").read())
    key.update(repr(cmd).encode())
    for lib in libs:
        st = os.stat(lib)
        key.update(f"{lib} {st.st_size} {st.st_mtime_ns}".encode())
    stamp = os.path.join(cache, "stamp")
    if os.path.exists(exe) and os.path.exists(stamp) and open(stamp).read() == key.hexdigest():
        return exe
    os.makedirs(cache, exist_ok=True)
    print(f"compiling {exe}", file=sys.stderr)
    subprocess.run(cmd, check=True)
    with open(stamp, "w") as f:
        f.write(key.hexdigest())
    return exe

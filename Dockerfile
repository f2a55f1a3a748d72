# hearth in a container: a multi-stage build (the Rust toolchain stays in the builder),
# a small Debian runtime, a non-root user, the store on a volume, the server on 11434.
#
#   docker build -t hearth .
#   docker run -d -p 11434:11434 -v hearth:/home/hearth/.hearth --name hearth hearth
#   docker exec -it hearth hearth run qwen2.5:0.5b
#
# Needs BuildKit (Docker 23 and later use it by default) or Podman/Buildah, for the cache
# mounts. scripts/container-smoke builds this file with Podman and answers a prompt
# through the image; RUST_IMAGE and RUNTIME_IMAGE let it use local stand-ins for the two
# base images where Docker Hub cannot be reached.

ARG RUST_IMAGE=rust:1-bookworm
ARG RUNTIME_IMAGE=debian:bookworm-slim

FROM ${RUST_IMAGE} AS builder
WORKDIR /src
# Only what the binary is built from: editing docs or manifests keeps the layer cache.
COPY Cargo.toml Cargo.lock ./
COPY src ./src
# The kernels are chosen at run time from the CPU's features, so one portable build
# serves every x86-64 (or aarch64) machine. The crates and the target directory are
# cached across builds; the binary is stripped (9 MB instead of 54).
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin hearth \
    && install -D -s -m 755 target/release/hearth /out/hearth

FROM ${RUNTIME_IMAGE}
# TLS roots are built into the binary (ureq with webpki-roots): no packages needed.
RUN useradd --create-home --uid 1000 --shell /usr/sbin/nologin hearth \
    && mkdir -p /home/hearth/.hearth/models \
    && chown -R hearth:hearth /home/hearth/.hearth
COPY --from=builder /out/hearth /usr/local/bin/hearth
# Numeric, so that Kubernetes' runAsNonRoot can check it.
USER 1000:1000
# Inside the image only: listen on every interface so a published port reaches the
# server (the binary's own default stays 127.0.0.1).
ENV HEARTH_HOST=0.0.0.0:11434 \
    HEARTH_HOME=/home/hearth/.hearth \
    HEARTH_MODELS=/home/hearth/.hearth/models
VOLUME /home/hearth/.hearth
EXPOSE 11434
# GET / answers "Ollama is running"; bash's /dev/tcp avoids installing curl.
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
    CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/11434 && printf 'GET / HTTP/1.0\\r\\n\\r\\n' >&3 && grep -q 'is running' <&3"]
ENTRYPOINT ["hearth"]
CMD ["serve"]

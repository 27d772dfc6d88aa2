"""Validation of message, embed, webhook-name and image-data payloads, with Discord's error answers."""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any

from .errors import ApiError, form_error
from .mentions import validate_allowed_mentions

__all__ = [
    "MAX_CONTENT",
    "MAX_EMBED_DESCRIPTION",
    "validate_message_fields",
    "ensure_not_empty",
    "validate_webhook_name",
    "MAX_IMAGE_DATA",
    "decode_image_data",
]

MAX_CONTENT = 2000
MAX_EMBED_DESCRIPTION = 4096
MAX_EMBEDS_TOTAL = 6000
_EMBED_LIMITS = {"title": 256, "description": MAX_EMBED_DESCRIPTION}
#: the largest image Discord takes as image data (avatars, icons): 10 MiB, refused with BINARY_TYPE_MAX_SIZE
MAX_IMAGE_DATA = 10 * 1024 * 1024
_IMAGE_DATA = re.compile(r"data:(?P<type>image/(?:png|jpeg|gif|webp));base64,(?P<data>.*)", re.DOTALL)
_IMAGE_SIGNATURES: dict[str, tuple[tuple[int, bytes], ...]] = {  # (offset, bytes) that must all match
    "image/png": ((0, b"\x89PNG\r\n\x1a\n"),),
    "image/jpeg": ((0, b"\xff\xd8\xff"),),
    "image/gif": ((0, b"GIF8"),),
    "image/webp": ((0, b"RIFF"), (8, b"WEBP")),
}


def _check_length(field: str, value: Any, limit: int) -> int:
    if value is None:
        return 0
    if not isinstance(value, str):
        raise form_error(field, "BASE_TYPE_STRING", "Must be a string.")
    if len(value) > limit:
        raise form_error(field, "BASE_TYPE_MAX_LENGTH", f"Must be {limit} or fewer in length.")
    return len(value)


def _validate_embed(index: int, embed: Any) -> int:
    prefix = f"embeds.{index}"
    if not isinstance(embed, dict):
        raise form_error(prefix, "MODEL_TYPE_CONVERT", "Only dictionaries may be used in a ModelType")
    total = sum(_check_length(f"{prefix}.{key}", embed.get(key), limit) for key, limit in _EMBED_LIMITS.items())
    fields = embed.get("fields") or []
    if len(fields) > 25:
        raise form_error(f"{prefix}.fields", "BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer in length.")
    for i, item in enumerate(fields):
        for key, limit in (("name", 256), ("value", 1024)):
            value = item.get(key) if isinstance(item, dict) else None
            if not value:
                raise form_error(f"{prefix}.fields.{i}.{key}", "BASE_TYPE_REQUIRED", "This field is required")
            total += _check_length(f"{prefix}.fields.{i}.{key}", value, limit)
    footer = embed.get("footer") or {}
    total += _check_length(f"{prefix}.footer.text", footer.get("text"), 2048)
    author = embed.get("author") or {}
    total += _check_length(f"{prefix}.author.name", author.get("name"), 256)
    return total


def validate_message_fields(body: dict[str, Any], field_prefix: str = "") -> None:
    """Check content length, embeds, nonce and ``allowed_mentions`` of a create/edit body."""
    _check_length(f"{field_prefix}content", body.get("content"), MAX_CONTENT)
    embeds = body.get("embeds")
    if embeds is not None:
        if not isinstance(embeds, list) or len(embeds) > 10:
            raise form_error(f"{field_prefix}embeds", "BASE_TYPE_MAX_LENGTH", "Must be 10 or fewer in length.")
        total = sum(_validate_embed(i, e) for i, e in enumerate(embeds))
        if total > MAX_EMBEDS_TOTAL:
            raise form_error(f"{field_prefix}embeds", "MAX_EMBED_SIZE_EXCEEDED", "Embed size exceeds maximum size of 6000")
    nonce = body.get("nonce")
    if nonce is not None and len(str(nonce)) > 25:
        raise form_error(f"{field_prefix}nonce", "BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer in length.")
    validate_allowed_mentions(body.get("allowed_mentions"), f"{field_prefix}allowed_mentions")


def ensure_not_empty(
    content: str | None,
    *,
    embeds: list[Any] | None = None,
    attachments: int = 0,
    stickers: list[Any] | None = None,
    components: list[Any] | None = None,
    poll: Any = None,
) -> None:
    """Refuse a message with nothing to show: 400 code 50006 "Cannot send an empty message"."""
    has_text = bool(content and content.strip())
    if not (has_text or embeds or attachments or stickers or components or poll):
        raise ApiError(400, 50006, "Cannot send an empty message")


def validate_webhook_name(name: Any, field: str = "name") -> None:
    """Webhook names are 1-80 characters and may not contain "clyde" or "discord"."""
    if not isinstance(name, str) or not name.strip():
        raise form_error(field, "BASE_TYPE_REQUIRED", "This field is required")
    if len(name) > 80:
        raise form_error(field, "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 80 in length.")
    lowered = name.lower()
    for banned in ("clyde", "discord"):
        if banned in lowered:
            raise form_error(field, "USERNAME_INVALID_CONTAINS", f'Username cannot contain "{banned}"')
    if lowered.strip() in ("everyone", "here"):
        raise form_error(field, "USERNAME_INVALID", "Username is invalid")


def _invalid_image(field: str) -> ApiError:
    return form_error(field, "IMAGE_INVALID", "Invalid image data")


def decode_image_data(value: Any, field: str) -> bytes:
    """The bytes of Discord "image data": a ``data:image/{png,jpeg,gif,webp};base64,...`` URI whose
    base64 decodes to an image of the stated type, at most :data:`MAX_IMAGE_DATA` bytes."""
    match = _IMAGE_DATA.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        raise _invalid_image(field)
    try:
        data = base64.b64decode(match.group("data"), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise _invalid_image(field) from exc
    if len(data) > MAX_IMAGE_DATA:
        raise form_error(field, "BINARY_TYPE_MAX_SIZE", f"File cannot be larger than {MAX_IMAGE_DATA / 1024:.1f} kb.")
    signature = _IMAGE_SIGNATURES[match.group("type")]
    if not all(data[offset:offset + len(magic)] == magic for offset, magic in signature):
        raise _invalid_image(field)
    return data

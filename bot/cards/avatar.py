"""Avatar handling: URL checks, image files next to a card, and a placeholder image.

An avatar is either an ``http(s)`` URL (Discord fetches it) or PNG bytes the bot
uploads itself. Any other URL scheme (``javascript:``, ``file:``, ``data:``) is
dropped with a warning; a path must stay inside the card's folder.
"""

from __future__ import annotations

import functools
import hashlib
import io
import logging
from urllib.parse import urlsplit

from PIL import Image, ImageDraw, ImageFont, UnidentifiedImageError

from bot.cards.fields import LoadContext
from bot.cards.limits import MAX_IMAGE_BYTES, MAX_IMAGE_PIXELS, format_size

__all__ = ["ImageProblem", "is_http_url", "image_to_png", "resolve_avatar", "placeholder_png", "webhook_avatar"]

log = logging.getLogger(__name__)

_MAX_URL_LENGTH = 2048
#: the largest side of a picture uploaded as a webhook avatar (Discord shows avatars at 128 px at most)
WEBHOOK_AVATAR_SIZE = 256


class ImageProblem(ValueError):
    """Bytes that are not a usable image; the message says why."""


@functools.lru_cache(maxsize=64)
def webhook_avatar(png: bytes) -> bytes:
    """A card's picture as it is uploaded for a webhook avatar: fitted into a
    :data:`WEBHOOK_AVATAR_SIZE` square, as a plain PNG (a PNG card's own image also
    carries the whole card in text chunks). A picture that already fits is sent as it is;
    one Pillow cannot read is sent as it is too, for Discord to judge."""
    try:
        with Image.open(io.BytesIO(png)) as image:
            if max(image.size) <= WEBHOOK_AVATAR_SIZE and image.format == "PNG" and not image.text:
                return png
            small = image.convert("RGBA")
            small.thumbnail((WEBHOOK_AVATAR_SIZE, WEBHOOK_AVATAR_SIZE))
            out = io.BytesIO()
            small.save(out, format="PNG", optimize=True)
            return out.getvalue()
    except (OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError) as exc:
        log.debug("Avatar picture not resized (%s); uploading it as it is", exc)
        return png


def is_http_url(value: str) -> bool:
    """True for an absolute ``http://`` or ``https://`` URL with a host."""
    try:
        parts = urlsplit(value)
    except ValueError:
        return False
    return parts.scheme.lower() in ("http", "https") and bool(parts.netloc) and not any(
        ch.isspace() for ch in value
    )


def image_to_png(data: bytes) -> bytes:
    """Check that ``data`` is a decodable image and return it as PNG bytes.

    A PNG is returned unchanged; other formats (JPEG, WebP, GIF) are converted.
    Raises :class:`ImageProblem`.
    """
    if len(data) > MAX_IMAGE_BYTES:
        raise ImageProblem(f"the image is {format_size(len(data))}, over the {format_size(MAX_IMAGE_BYTES)} limit")
    try:
        with Image.open(io.BytesIO(data)) as image:
            width, height = image.size
            if width * height > MAX_IMAGE_PIXELS:
                raise ImageProblem(
                    f"the image is {width}x{height} pixels, over the limit of {MAX_IMAGE_PIXELS} pixels"
                )
            image.load()
            if image.format == "PNG":
                return data
            out = io.BytesIO()
            converted = image.convert("RGBA" if "A" in image.getbands() or "transparency" in image.info else "RGB")
            converted.save(out, format="PNG")
            return out.getvalue()
    except ImageProblem:
        raise
    except UnidentifiedImageError as exc:
        raise ImageProblem("not an image Pillow can read") from exc
    except (OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError) as exc:
        raise ImageProblem(f"broken image ({exc})") from exc


def resolve_avatar(value: str, ctx: LoadContext, where: str = "avatar") -> tuple[str | None, bytes | None]:
    """Turn a card's ``avatar`` value into ``(url, png_bytes)``; at most one is set.

    Problems (bad scheme, missing file, not an image) become warnings, never errors:
    a card without its picture still works.
    """
    text = value.strip()
    if not text:
        return None, None
    shown = text if len(text) <= 60 else text[:57] + "..."
    scheme = urlsplit(text).scheme.lower() if ":" in text else ""
    if scheme in ("http", "https"):
        if len(text) > _MAX_URL_LENGTH or not is_http_url(text):
            ctx.warn(f"{where} {shown!r} dropped: not a valid http(s) URL")
            return None, None
        return text, None
    if len(scheme) > 1:  # a one-letter "scheme" is a Windows drive letter, i.e. a path
        ctx.warn(f"{where} {shown!r} dropped: only http(s) URLs or image files next to the card are allowed")
        return None, None
    return None, _read_avatar_file(text, shown, ctx, where)


def _read_avatar_file(text: str, shown: str, ctx: LoadContext, where: str) -> bytes | None:
    if ctx.base_dir is None:
        ctx.warn(f"{where} file {shown!r} ignored: the card was not loaded from a folder")
        return None
    folder = ctx.base_dir.resolve()
    path = (folder / text).resolve()
    if not path.is_relative_to(folder):
        ctx.warn(f"{where} file {shown!r} ignored: it is outside the card's folder")
        return None
    if not path.is_file():
        ctx.warn(f"{where} file {shown!r} not found")
        return None
    try:
        if path.stat().st_size > MAX_IMAGE_BYTES:
            ctx.warn(f"{where} file {shown!r} ignored: over the {format_size(MAX_IMAGE_BYTES)} limit")
            return None
        data = path.read_bytes()
    except OSError as exc:
        ctx.warn(f"{where} file {shown!r} cannot be read: {exc.strerror or exc}")
        return None
    try:
        png = image_to_png(data)
    except ImageProblem as exc:
        ctx.warn(f"{where} file {shown!r} ignored: {exc}")
        return None
    ctx.files_used.append(path)
    return png


def placeholder_png(name: str, size: int = 256) -> bytes:
    """A plain square avatar: the name's initial on a colour derived from the name."""
    digest = hashlib.sha256(name.encode("utf-8")).digest()
    hue_colour = (64 + digest[0] % 128, 64 + digest[1] % 128, 64 + digest[2] % 128)
    image = Image.new("RGB", (size, size), hue_colour)
    draw = ImageDraw.Draw(image)
    margin = size // 10
    lighter = tuple(min(255, c + 60) for c in hue_colour)
    draw.ellipse((margin, margin, size - margin, size - margin), fill=lighter)
    initial = (name.strip()[:1] or "?").upper()
    try:
        font = ImageFont.load_default(size=size // 2)
        draw.text((size / 2, size / 2), initial, fill=(255, 255, 255), font=font, anchor="mm")
    except (OSError, TypeError, ValueError, ImportError):  # Pillow built without FreeType
        log.debug("no scalable font available; placeholder avatar without an initial")
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()

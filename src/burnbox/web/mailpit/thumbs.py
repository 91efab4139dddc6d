"""Mailpit's attachment thumbnails: a 180x120 JPEG of an image part, cropped to fill it when
larger and padded when smaller; a blank one for a part that is not an image. Pure; run in
the parse pool, since decoding an image is CPU work on untrusted bytes (bounded in pixels:
Pillow refuses a larger image as a decompression bomb)."""

from __future__ import annotations

import io
import warnings

from PIL import Image, ImageOps

SIZE = (180, 120)
MAX_PIXELS = 40_000_000  # an image larger than this is not decoded (a blank thumbnail)


def thumbnail(data: bytes) -> bytes:
    picture = _decoded(data)
    canvas = Image.new("RGB", SIZE, "white")
    if picture is not None:
        if picture.width >= SIZE[0] and picture.height >= SIZE[1]:
            canvas = ImageOps.fit(picture, SIZE, Image.Resampling.LANCZOS)
        else:
            picture.thumbnail(SIZE)
            offset = ((SIZE[0] - picture.width) // 2, (SIZE[1] - picture.height) // 2)
            canvas.paste(picture, offset)
    out = io.BytesIO()
    canvas.save(out, "JPEG", quality=85)
    return out.getvalue()


def _decoded(data: bytes) -> Image.Image | None:
    Image.MAX_IMAGE_PIXELS = MAX_PIXELS
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            picture = Image.open(io.BytesIO(data))
            picture.load()
        return _flattened(picture)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError, Warning):
        return None  # not an image Pillow can read, or too large: the blank thumbnail


def _flattened(picture: Image.Image) -> Image.Image:
    """RGB on white: JPEG has no transparency."""
    if picture.mode in ("RGBA", "LA", "P"):
        rgba = picture.convert("RGBA")
        flat = Image.new("RGB", rgba.size, "white")
        flat.paste(rgba, mask=rgba.getchannel("A"))
        return flat
    return picture.convert("RGB")

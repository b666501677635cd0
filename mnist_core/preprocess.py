"""Turn a picture of one handwritten digit into the 28x28 image MNIST would have made of it.

MNIST's recipe: crop the digit to its ink, fit the longer side into a 20x20 box keeping the aspect ratio
(anti-aliased), then place it in a 28x28 frame so that its centre of mass sits at the centre (14, 14).
A classifier trained on MNIST has only seen digits prepared this way, so drawings and photos must go through
the same steps before it can read them. One step more than MNIST's: most of MNIST's pens come out 2.3-3.2 px wide
in the 20x20 box, while a canvas pen of fixed width comes out anywhere from under 1 px (a large digit)
to 5 px (a small one); the pen width is brought into MNIST's usual range before the fit (`normalise_pen`).

Before the recipe, `ink_map` turns whatever came in (a transparent drawing canvas, white ink on black, a photo of
dark ink on paper; 8-bit, 16-bit, bool or float pixels; a PIL image) into one map of ink: float32 in [0, 1], where
ink is 1 and background is 0. `decode_upload` (a picture file) and `decode_canvas` (the Draw page's canvas value)
are the checks for what a visitor sends: they decode only the formats this app accepts, at bounded cost.

Only `ValueError`s leave this module: `BlankImageError` when there is no ink, `UnreadableImageError` for a file
that is not a usable image, and a plain `ValueError` for an array that is not a picture.
"""

import base64
import binascii
import functools
import hashlib
import io
import logging
import math
import re
import threading
import warnings
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass

import numpy as np
from PIL import ExifTags, Image, ImageOps
from zlib_ng import zlib_ng

from mnist_core.constants import CANVAS_SIZE, IMAGE_SIZE, MNIST_BOX
from mnist_core.hardware import usable_cores
from mnist_core.i18n import N_

MAX_PIXELS = 25_000_000

# Pillow's decompression-bomb guard then refuses oversized uploads from their header, before decoding any pixels.
Image.MAX_IMAGE_PIXELS = MAX_PIXELS

# What the Draw page's uploader names, as Pillow calls them; Pillow is never asked to try any other of its formats.
UPLOAD_FORMATS = ("PNG", "JPEG", "GIF", "BMP", "WEBP")
# The canvas sends a PNG of its own size (streamlit-drawable-canvas: toDataURL, multiplier 1).
CANVAS_FORMATS = ("PNG",)
CANVAS_PNG_PREFIX = "data:image/png;base64,"
MAX_STROKES = 500
MAX_STROKE_POINTS = 50_000  # all strokes together
MAX_STROKE_WIDTH = 200
MAX_CANVAS_SIDE = 4 * CANVAS_SIZE  # room for a larger canvas or a retina multiplier; a forged 49 MP PNG is not
MAX_UPLOAD_BYTES = 20_000_000  # beyond Streamlit's own upload limit (.streamlit/config.toml), for other callers
MAX_CANVAS_BYTES = 8_000_000  # a MAX_CANVAS_SIDE RGBA PNG that does not compress at all is ~5 MB
# Pictures above this are shrunk while they are decoded: the digit ends up 20 x 20, and the float steps of the recipe
# cost 4-16 bytes a pixel, so a megapixel keeps every detail that matters at a bounded cost.
DECODE_PIXELS = 1_000_000
DECODE_WAIT_SECONDS = 30.0  # a visitor waits this long for a decoder thread before being told to retry
DECODED_CACHE_BYTES = 64_000_000

_log = logging.getLogger(__name__)
# Messages in English, marked (N_) for the catalog and translated by the page that shows them: a decoded picture or
# its error is cached for every visitor (_decode_once), so it cannot carry one visitor's language.
_UPLOAD_UNREADABLE = N_("The file could not be read as an image: only PNG, JPEG, GIF, BMP and WebP files are accepted.")
_CANVAS_GREY_UNREADABLE = N_("The drawing could not be read: the canvas sent something that is not a picture.")
_CANVAS_GREY_WRONG_SIZE = N_("The drawing could not be read: the canvas sent a picture of another size than "
                             "itself.")
_CANVAS_UNREADABLE = N_("The drawing could not be read: the canvas sent something that is not a PNG picture.")

# Ink must differ from the background by at least this much of the full scale; anything fainter is a blank
# picture (an empty canvas, a uniform photo), not a digit.
MIN_CONTRAST = 0.1

# After scaling the strongest ink to 1, weaker values are background: paper texture, uneven lighting, JPEG noise.
INK_THRESHOLD = 0.25

_OPAQUE_ALPHA = 0.99
_FLOAT_UNIT_MAX = 1.5  # float pixels up to this are read as [0, 1], above it as [0, 255]
_LUMA_WEIGHTS = (0.299, 0.587, 0.114)  # ITU-R 601, the weights of Pillow's convert("L")
_ALPHA_MODES = {"LA", "La", "PA", "RGBa"}
# Modes Image.reduce averages meaningfully (it also takes "PA", but averaging palette indices is nonsense).
_REDUCIBLE_MODES = {"L", "LA", "La", "RGB", "RGBA", "RGBa", "CMYK", "YCbCr", "I", "F"}


class BlankImageError(ValueError):
    """The picture has no ink to read a digit from."""

    def __init__(self, message: str = N_("The picture is blank: draw or upload a digit first.")) -> None:
        super().__init__(message)


class UnreadableImageError(ValueError):
    """An uploaded file is empty, corrupt, too large, or not an image."""


@dataclass(frozen=True)
class PreprocessSteps:
    """Every intermediate image of `preprocess_steps`, so a page can show how a picture became MNIST-like."""

    ink: np.ndarray  # (H, W) float32 in [0, 1], ink = 1: the whole picture after colour and polarity handling
    bbox: tuple[int, int, int, int]  # (top, left, bottom, right), bottom/right exclusive, of the ink in `ink`
    cropped: np.ndarray  # `ink` cropped to `bbox`
    pen: np.ndarray  # `cropped` at 4x MNIST's scale (longer side 80), its strokes thickened or thinned to MNIST's pen
    pen_width: tuple[float, float]  # the strokes' width before and after, in pixels of the 20x20 box
    fitted: np.ndarray  # `pen` resized so its longer side is MNIST_BOX (20), float32 in [0, 1]
    centered: np.ndarray  # (28, 28) float32 in [0, 1]: the final MNIST-like image
    center_of_mass: tuple[float, float]  # (row, col) of the ink's centre of mass in `centered`, close to (14, 14)


def to_mnist(image) -> np.ndarray:
    """Return the picture as MNIST would have it: (28, 28) float32 in [0, 1], ink = 1, centred by mass."""
    return preprocess_steps(image).centered


def preprocess_steps(image) -> PreprocessSteps:
    """Run the MNIST recipe on a picture (see `ink_map` for the inputs accepted) and keep every step."""
    ink, bbox = _ink_and_bbox(image)
    top, left, bottom, right = bbox
    cropped = ink[top:bottom, left:right]
    as_drawn, pen, pen_width = _normalise_pen(cropped)
    fitted = _fit_into_box(pen)
    # Placed where the drawing's own strokes put it: a thicker or thinner pen must not move the digit by a pixel
    # (the placement rounds to whole pixels, so a mass shifted by a hundredth of one can tip it). The strokes as
    # drawn at 80 px fitted into the box: the same shape as `fitted`, and 0.01 ms where the crop took 0.1.
    as_drawn = fitted if pen is as_drawn else _fit_into_box(as_drawn)
    centered, center_of_mass = _place_by_center_of_mass(fitted, placed_as=as_drawn)
    return PreprocessSteps(
        ink=ink,
        bbox=bbox,
        cropped=cropped,
        pen=pen,
        pen_width=pen_width,
        fitted=fitted,
        centered=centered,
        center_of_mass=center_of_mass,
    )


def ink_map(image) -> np.ndarray:
    """Return the picture's ink as (H, W) float32 in [0, 1], ink = 1, background = 0, whatever its colours.

    Accepts numpy arrays of shape (H, W), (H, W, 1), (H, W, 3) or (H, W, 4) with uint8, uint16, other integer,
    bool or float pixels (float is read as [0, 1] if its maximum is at most 1.5, else as [0, 255]), and PIL images.
    With an alpha channel and a transparent border, the ink is the alpha channel (a drawing canvas without a
    background). Otherwise the ink is the luminance, inverted when the border is light (dark ink on paper).
    Raises BlankImageError when there is no ink, ValueError when the input is not a picture.
    """
    return _ink_and_bbox(image)[0]


def _ink_and_bbox(image) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """`ink_map(image)` and the box around its ink. 8-bit grey levels (every canvas and most uploads) go through a
    table of the 256 levels (`_level_ink`: the same numbers as the float path); the box is found on the levels
    themselves and only the pixels inside it are looked up: outside it every level's ink is 0, so the map is the
    same to the last bit as a whole-picture lookup, and a drawing in a corner of the canvas costs a fraction of one
    (0.09 instead of 0.14 ms for the bench's drawings)."""
    pixels = _as_pixels(image)
    levels = _grey_levels(pixels)
    if levels is None:
        ink = _normalise_ink(_ink_signal(pixels))
        return ink, _ink_bbox(ink)
    table = _level_ink(levels)
    inked = np.flatnonzero(table)  # the levels that are ink: one run of them, as the table rises or falls
    if inked.size == 0:
        raise BlankImageError()
    lowest, highest = int(inked[0]), int(inked[-1])
    if lowest == 0:
        mask = levels <= highest
    elif highest == 255:
        mask = levels >= lowest
    else:
        mask = (levels >= lowest) & (levels <= highest)
    top, left, bottom, right = bbox = _ink_bbox(mask)
    ink = np.zeros(levels.shape, dtype=np.float32)
    # np.take: the same lookup as indexing, in half the time
    ink[top:bottom, left:right] = np.take(table, levels[top:bottom, left:right])
    return ink, bbox


def decode_upload(data: bytes) -> np.ndarray:
    """Decode an uploaded picture file into uint8 pixels (H, W), (H, W, 3) or (H, W, 4), ready for `to_mnist`.

    The one check for uploaded pictures: only PNG, JPEG, GIF, BMP and WebP are decoded (Pillow's other 40-odd
    formats are refused from the first bytes, so no Ghostscript or slow pure-Python decoder ever sees them), and
    pictures over DECODE_PIXELS are shrunk while decoding (JPEG at a reduced scale, others right after), so what
    comes back has at most about a megapixel. Uses the first frame of an animation and applies the EXIF orientation;
    16-bit greys are scaled to 0-255, palette and CMYK pictures become RGB, or RGBA when they carry transparency.
    The same bytes are decoded once: later calls (the page's reruns) get the same read-only array, or the same error.
    Raises UnreadableImageError (a short message, no internals) for an empty, damaged, foreign or oversized file.
    """
    return _decode_once(data, UPLOAD_FORMATS, _UPLOAD_LIMITS)


def decode_canvas(data_url, size: int) -> np.ndarray:
    """The Draw page's canvas value, a `data:image/png;base64,...` URL, as uint8 RGBA pixels (size, size, 4).

    The browser sends it, so it is hostile until checked: only a PNG of exactly the canvas' size is accepted (its
    size read from the header before any pixel is decoded), through the same bounded decoder as uploads. Anything
    else raises UnreadableImageError with a short message.
    """
    if not isinstance(data_url, str) or not data_url.startswith(CANVAS_PNG_PREFIX):
        raise UnreadableImageError(_CANVAS_UNREADABLE)
    encoded = data_url[len(CANVAS_PNG_PREFIX):]  # its length is bounded by Streamlit's message limit (25 MB)
    try:
        data = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        _log.warning("refused a canvas value that is not base64 (%d characters)", len(encoded))
        raise UnreadableImageError(_CANVAS_UNREADABLE) from None
    pixels = _decode_once(data, CANVAS_FORMATS, _CANVAS_LIMITS)
    if pixels.shape[:2] != (size, size) or pixels.ndim != 3 or pixels.shape[2] != 4:
        raise UnreadableImageError(
            f"The canvas sent a {pixels.shape[1]} x {pixels.shape[0]} picture, not a {size} x {size} drawing.")
    return pixels


def decode_canvas_grey(encoded, size: int) -> np.ndarray:
    """The Draw page's canvas value in its compact form, as uint8 grey pixels (size, size), read-only.

    The canvas sends its picture this way where the browser can deflate (CompressionStream): base64 of the
    zlib-deflated 8-bit grey levels, row by row (white strokes on black: the canvas' red channel, which equals its
    green and blue). It holds the same pixels as the canvas' PNG, and `to_mnist` makes the same 28x28 image of them,
    but it is read in a sixth of the time (no PNG unfiltering) and one channel skips the RGBA-to-grey work of the
    preprocessing (BENCHMARKS.md, "fourth session": canvas -> probabilities 0.85 ms for cnn, 1.7 from the PNG).

    Hostile until checked: its length is bounded before decoding, and inflating stops one byte past size x size,
    so a small value that would inflate to gigabytes is refused after that many. Anything but exactly size x size
    pixels raises UnreadableImageError.
    """
    pixels = size * size
    if not isinstance(encoded, str) or not encoded or len(encoded) > _canvas_grey_max_chars(size):
        raise UnreadableImageError(_CANVAS_GREY_UNREADABLE)
    try:
        data = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise UnreadableImageError(_CANVAS_GREY_UNREADABLE) from None
    inflater = zlib_ng.decompressobj()  # zlib's interface, a fifth of its time (0.017 ms for a canvas)
    try:
        grey = inflater.decompress(data, pixels + 1)
    except zlib_ng.error:
        raise UnreadableImageError(_CANVAS_GREY_UNREADABLE) from None
    if len(grey) != pixels or not inflater.eof:  # fewer pixels, or more (inflating stopped before the end)
        raise UnreadableImageError(_CANVAS_GREY_WRONG_SIZE)
    if inflater.unused_data:  # something after the pixels' stream
        raise UnreadableImageError(_CANVAS_GREY_UNREADABLE)
    return np.frombuffer(grey, dtype=np.uint8).reshape(size, size)  # over bytes: read-only, like decoded PNGs


def _canvas_grey_max_chars(size: int) -> int:
    # Deflate never grows data by more than 5 bytes a 16 KB block (plus 6 of zlib's own); base64 adds a third.
    raw = size * size
    return 4 * ((raw + 5 * (raw // 16_384 + 1) + 6 + 2) // 3) + 4


def checked_strokes(value) -> list[dict]:
    """The canvas' strokes ([{"width": w, "points": [[x, y], ...]}, ...]) after checking their shape and size, as
    plain lists of floats (they are sent back to the browser to draw the picture again). Raises ValueError."""
    if value is None:
        return []
    if not isinstance(value, list) or len(value) > MAX_STROKES:
        raise ValueError(N_("The canvas sent strokes in a form it never sends."))
    strokes, total = [], 0
    for stroke in value:
        if not isinstance(stroke, dict):
            raise ValueError(N_("The canvas sent strokes in a form it never sends."))
        width, points = stroke.get("width"), stroke.get("points")
        if isinstance(width, bool) or not isinstance(width, (int, float)) or not 0 < width <= MAX_STROKE_WIDTH:
            raise ValueError(N_("The canvas sent a stroke with an impossible width."))
        if not isinstance(points, list) or not points:
            raise ValueError(N_("The canvas sent a stroke without points."))
        total += len(points)
        if total > MAX_STROKE_POINTS:
            raise ValueError(N_("The canvas sent more stroke points than any drawing has."))
        checked = []
        for point in points:
            if (not isinstance(point, list) or len(point) != 2
                    or not all(isinstance(c, (int, float)) and not isinstance(c, bool) and math.isfinite(c)
                               for c in point)):
                raise ValueError(N_("The canvas sent a stroke point that is not a pair of numbers."))
            checked.append([float(point[0]), float(point[1])])
        strokes.append({"width": float(width), "points": checked})
    return strokes


@dataclass(frozen=True)
class _Limits:
    """What one kind of picture may be, and what its refusals say."""

    max_bytes: int
    max_pixels: int
    max_side: int
    what: str  # "file" or "drawing", in messages
    empty: str
    too_large: str  # formatted with size: ' (W x H pixels)', or '' when unknown
    unreadable: str  # bytes that are not a picture of the accepted formats
    damaged: str  # an accepted format whose decoder failed


_UPLOAD_LIMITS = _Limits(
    max_bytes=MAX_UPLOAD_BYTES,
    max_pixels=MAX_PIXELS,
    max_side=MAX_PIXELS,
    what="file",
    empty=N_("The file is empty."),
    too_large=f"The image is too large{{size}}; the limit is {MAX_PIXELS // 1_000_000} megapixels.",
    unreadable=_UPLOAD_UNREADABLE,
    damaged=N_("The file could not be read as an image: it is damaged or incomplete."),
)
_CANVAS_LIMITS = _Limits(
    max_bytes=MAX_CANVAS_BYTES,
    max_pixels=MAX_CANVAS_SIDE**2,
    max_side=MAX_CANVAS_SIDE,
    what="drawing",
    empty=_CANVAS_UNREADABLE,
    too_large=f"The drawing is too large{{size}}; the canvas is at most {MAX_CANVAS_SIDE} x {MAX_CANVAS_SIDE} pixels.",
    unreadable=_CANVAS_UNREADABLE,
    damaged=N_("The drawing could not be read: its PNG is damaged or incomplete."),
)


class _DecodedPictures:
    """The last decoded pictures by content hash (bounded in bytes), so a rerun does not decode an upload again.

    Shared by every session of the server: the same bytes give the same pixels whoever sent them. Refusals are
    kept too (as their message), so a damaged 25-megapixel file is not decoded again on every rerun either.
    """

    def __init__(self, max_bytes: int = DECODED_CACHE_BYTES) -> None:
        self._max_bytes = max_bytes
        self._entries: OrderedDict[bytes, np.ndarray | str] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, key: bytes) -> np.ndarray | str | None:
        with self._lock:
            found = self._entries.get(key)
            if found is not None:
                self._entries.move_to_end(key)
            return found

    def put(self, key: bytes, value: np.ndarray | str) -> None:
        size = value.nbytes if isinstance(value, np.ndarray) else len(value)
        if size > self._max_bytes:
            return
        with self._lock:
            if key in self._entries:
                return
            self._entries[key] = value
            self._bytes += size
            while self._bytes > self._max_bytes:
                _, dropped = self._entries.popitem(last=False)
                self._bytes -= dropped.nbytes if isinstance(dropped, np.ndarray) else len(dropped)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._bytes = 0


_decoded = _DecodedPictures()
# Pictures are decoded on these few threads, never on the visitors' own: at most one decode per core at once, however
# many visitors upload (a decode is CPU-bound and holds up to ~100 MB until it is shrunk, so more at once would add
# memory, not speed). Fixed threads also keep that memory in their few malloc arenas: decoding on each visitor's own
# thread left ~100 MB in each thread's arena (8 visitors at once: +911 MiB that way, +495 MiB on two decoder threads;
# bench/bench_decode.py).
_decoder = ThreadPoolExecutor(max_workers=max(1, usable_cores()), thread_name_prefix="picture-decoder")


class DecoderBusyError(UnreadableImageError):
    """No decoder thread was free for DECODE_WAIT_SECONDS; the file itself may be fine."""


def _decode_once(data, formats: tuple[str, ...], limits: _Limits) -> np.ndarray:
    if not data:
        raise UnreadableImageError(limits.empty)
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise UnreadableImageError(limits.unreadable)
    if len(data) > limits.max_bytes:
        raise UnreadableImageError(
            f"The {limits.what} is too large ({len(data) / 1e6:.1f} MB); the limit is {limits.max_bytes / 1e6:.0f} MB."
        )
    data = bytes(data)
    key = hashlib.sha256(data).digest() + ",".join(formats).encode()
    decoded = _decoded.get(key)
    if decoded is None:
        pending = _decoder.submit(_decode_and_keep, key, data, formats, limits)
        try:
            decoded = pending.result(timeout=DECODE_WAIT_SECONDS)
        except FutureTimeout:
            pending.cancel()  # still queued: dropped; already decoding: kept for this visitor's next rerun
            raise DecoderBusyError(N_("The server is busy reading other pictures: try again in a moment.")) from None
    if isinstance(decoded, str):
        raise UnreadableImageError(decoded)
    return decoded


def _decode_and_keep(key: bytes, data: bytes, formats: tuple[str, ...], limits: _Limits) -> np.ndarray | str:
    """On a decoder thread: the pixels (read-only) or the refusal's message, kept in the cache either way."""
    try:
        decoded = _decode_checked(data, formats, limits)
        decoded.flags.writeable = False  # shared between reruns and sessions
    except UnreadableImageError as error:
        decoded = str(error)
    _decoded.put(key, decoded)
    return decoded


def _decode_checked(data: bytes, formats: tuple[str, ...], limits: _Limits) -> np.ndarray:
    """Decode `data` as one of `formats` with Pillow, shrinking it early; UnreadableImageError for anything else."""
    try:
        with warnings.catch_warnings():
            # Pillow only warns between 1x and 2x its pixel limit; such an upload must be refused, not decoded.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=list(formats)) as picture:
                width, height = picture.size
                # Checked again here because warning filters are process-wide, and another thread (another
                # Streamlit session) may change them while this one decodes.
                if width * height > limits.max_pixels or max(width, height) > limits.max_side:
                    raise UnreadableImageError(limits.too_large.format(size=f" ({width} x {height} pixels)"))
                if width * height == 0:
                    raise UnreadableImageError(limits.damaged)
                picture.seek(0)
                factor = _shrink_factor(width, height)
                if factor > 1:
                    # JPEG decodes at 1/2, 1/4 or 1/8 scale, no larger than asked: a fraction of the work and memory.
                    picture.draft(picture.mode, (max(1, width // factor), max(1, height // factor)))
                picture.load()
                return _pil_to_pixels(_upright(_shrunk(picture)))
    except UnreadableImageError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise UnreadableImageError(_bomb_message(error, limits)) from None
    except Image.UnidentifiedImageError:
        # Not one of `formats`: refused from its first bytes, no decoder ran.
        raise UnreadableImageError(limits.unreadable) from None
    except Exception as error:
        # Decoders of untrusted bytes fail in many ways (OSError, SyntaxError, struct.error, MemoryError...); every
        # one of them means the same thing to the person who sent the file, and the details are for the log only.
        _log.warning("refused a picture its decoder failed on: %s: %s", type(error).__name__, error)
        raise UnreadableImageError(limits.damaged) from None


def _shrink_factor(width: int, height: int) -> int:
    """The whole-number factor that brings width x height to at most DECODE_PIXELS (1 when it already is)."""
    return max(1, math.ceil(math.sqrt(width * height / DECODE_PIXELS)))


def _shrunk(picture: Image.Image) -> Image.Image:
    """The picture box-averaged down to at most DECODE_PIXELS; pictures already that small are returned as they are."""
    width, height = picture.size
    factor = _shrink_factor(width, height)
    if factor == 1:
        return picture
    if picture.mode in ("1", "P", "PA"):
        # Averaging palette indices or 1-bit pixels means nothing: first the colours they stand for.
        picture = picture.convert("L" if picture.mode == "1" else _colour_mode(picture))
    elif picture.mode not in _REDUCIBLE_MODES:  # 16-bit greys, which Image.reduce does not take: 8-bit first
        picture = Image.fromarray(_pil_to_pixels(picture))
    return picture.reduce(factor)


def _as_pixels(image) -> np.ndarray:
    if isinstance(image, Image.Image):
        width, height = image.size
        if width * height == 0:
            raise ValueError("The picture has no pixels.")
        if width * height > MAX_PIXELS:
            raise ValueError(_too_large_message(width, height, "picture"))
        try:
            image = _pil_to_pixels(_upright(image))
        except Exception as error:
            raise ValueError(f"The picture could not be turned into pixels: {error}") from error

    try:
        pixels = np.asarray(image)
    except Exception as error:  # ragged nested lists and the like
        raise ValueError(f"Expected a picture as a numpy array or a PIL image, got {type(image).__name__}.") from error
    if pixels.dtype.kind not in "biuf":
        raise ValueError(f"Expected a picture with bool, integer or float pixels, got dtype {pixels.dtype}.")
    if pixels.size == 0:
        raise ValueError("The picture has no pixels.")
    if pixels.ndim not in (2, 3) or (pixels.ndim == 3 and pixels.shape[2] not in (1, 3, 4)):
        raise ValueError(f"Expected a picture of shape (H, W), (H, W, 3) or (H, W, 4), got {pixels.shape}.")
    height, width = pixels.shape[:2]
    if width * height > MAX_PIXELS:
        raise ValueError(_too_large_message(width, height, "picture"))
    if pixels.dtype.kind == "f" and not np.isfinite(pixels).all():
        raise ValueError("The picture contains NaN or infinite values.")
    return pixels


def _ink_signal(pixels: np.ndarray) -> np.ndarray:
    """The (H, W) float32 channel in [0, 1] that carries the ink, still in the picture's own polarity."""
    full_scale = _full_scale(pixels)
    if pixels.ndim == 2:
        return _to_unit(pixels, full_scale)
    if pixels.shape[2] == 1:
        return _to_unit(pixels[..., 0], full_scale)
    # The alpha test on the raw values: converting a whole opaque canvas' alpha to float first cost 0.1 ms.
    if pixels.shape[2] == 4 and float(pixels[..., 3].min()) < _OPAQUE_ALPHA * full_scale:
        alpha = _to_unit(pixels[..., 3], full_scale)
        if np.median(_border(alpha)) < 0.5:
            # A canvas without a background keeps its strokes in alpha alone; the RGB under
            # transparent pixels is arbitrary (often black, the same as a black stroke).
            return alpha
        # Transparent holes in an opaque picture show that picture's background through them.
        luminance = _luminance(pixels, full_scale)
        background = float(np.median(_border(luminance)))
        return luminance * alpha + background * (1.0 - alpha)
    return _luminance(pixels, full_scale)


def _normalise_ink(signal: np.ndarray) -> np.ndarray:
    """Background to 0 and the strongest ink to 1, deciding polarity from the picture's border."""
    # The border is nearly all background even when a stroke touches the edge, so its median is the
    # background level: light means paper with dark ink, dark means light ink (MNIST, a black canvas).
    background = float(np.median(_border(signal)))
    if background > 0.5:
        signal = 1.0 - signal
        background = 1.0 - background
    contrast = float(signal.max()) - background
    if contrast < MIN_CONTRAST:
        raise BlankImageError()
    return _scaled_ink(signal, background, contrast)


def _scaled_ink(signal: np.ndarray, background: float, contrast: float) -> np.ndarray:
    ink = signal - background
    ink *= 1.0 / contrast
    ink[ink < INK_THRESHOLD] = 0.0
    np.minimum(ink, 1.0, out=ink)
    return ink


def _grey_levels(pixels: np.ndarray) -> np.ndarray | None:
    """The (H, W) uint8 grey levels of an 8-bit picture without transparency (None for any other picture)."""
    if pixels.dtype != np.uint8:
        return None
    if pixels.ndim == 2:
        return pixels
    if pixels.shape[2] == 1:
        return pixels[..., 0]
    if pixels.shape[2] == 4 and float(pixels[..., 3].min()) < _OPAQUE_ALPHA * 255:
        return None
    # Pillow's integer convert("L"): the luminance of _LUMA_WEIGHTS, in whole levels as fine as the input.
    mode = "RGBA" if pixels.shape[2] == 4 else "RGB"
    return np.asarray(Image.fromarray(np.ascontiguousarray(pixels), mode).convert("L"))


def _level_ink(levels: np.ndarray) -> np.ndarray:
    """The ink of each of the 256 grey levels in the picture `levels`: `_normalise_ink`'s arithmetic done on the
    levels once, to the same numbers, so that each pixel is a lookup (one pass over a 280x280 canvas instead of
    eight; 0.1 instead of 0.6 ms and more on a busy machine, where every fresh whole-canvas float array costs its
    page faults)."""
    unit = _UNIT_LEVELS
    background = float(np.median(unit[_border(levels)]))
    if background > 0.5:
        unit = 1.0 - unit
        background = 1.0 - background
        peak = unit[levels.min()]
    else:
        peak = unit[levels.max()]
    contrast = float(peak) - background
    if contrast < MIN_CONTRAST:
        raise BlankImageError()
    return _scaled_ink(unit, background, contrast)


def _ink_bbox(ink: np.ndarray) -> tuple[int, int, int, int]:
    rows = np.flatnonzero(ink.any(axis=1))
    cols = np.flatnonzero(ink.any(axis=0))
    if rows.size == 0:
        raise BlankImageError()
    return int(rows[0]), int(cols[0]), int(rows[-1]) + 1, int(cols[-1]) + 1


def _fit_into_box(image: np.ndarray) -> np.ndarray:
    """Resize so the longer side is MNIST_BOX, keeping the aspect ratio; the strongest ink stays 1."""
    return _resize_longer_side(image, MNIST_BOX)


# MNIST's pens, measured with `pen_width` on 3,000 training digits (in their 20x20 box, at 4x): median 2.7 px, half
# of them 2.35-3.15 px, 90% 1.95-4.3 px. Drawn strokes outside this band are brought to its nearer edge; strokes
# inside it are left alone, so an MNIST-like picture passes unchanged.
PEN_RANGE = (2.3, 3.2)
PEN_SCALE = 4  # the pen is adjusted at 4x the box's resolution (80 px), in steps of a quarter of an MNIST pixel


def pen_width(ink: np.ndarray) -> float:
    """The mean width of the strokes in `ink`, in its pixels, from the ink's area and its outline's length.

    A stroke of width w and length L has area A = w * L and an outline P = 2 * (w + L) long, so
    w = (P / 2 - sqrt(P^2 / 4 - 4 * A)) / 2 (the ends counted exactly for one straight stroke, roughly for several).
    The outline's length is the sum of the gradient's magnitude (an anti-aliased edge of full contrast adds 1 per
    pixel of length, whatever its direction).
    """
    # A frame of background first: a crop's ink touches its edges, and that outline counts too. The gradient as
    # np.gradient computes it (central differences, one-sided at the frame), written out: its generic code cost
    # more than the arithmetic on an 80 px picture, and this runs twice a drawing.
    framed = _framed(ink, 1)
    grad_rows, grad_cols = np.empty_like(framed), np.empty_like(framed)
    np.subtract(framed[2:], framed[:-2], out=grad_rows[1:-1])
    grad_rows[1:-1] /= 2.0
    np.subtract(framed[1], framed[0], out=grad_rows[0])
    np.subtract(framed[-1], framed[-2], out=grad_rows[-1])
    np.subtract(framed[:, 2:], framed[:, :-2], out=grad_cols[:, 1:-1])
    grad_cols[:, 1:-1] /= 2.0
    np.subtract(framed[:, 1], framed[:, 0], out=grad_cols[:, 0])
    np.subtract(framed[:, -1], framed[:, -2], out=grad_cols[:, -1])
    outline = float(np.hypot(grad_rows, grad_cols, out=grad_rows).sum(dtype=np.float64))
    area = float(ink.sum(dtype=np.float64))
    if outline <= 0:
        return 0.0
    half = outline / 2
    return (half - math.sqrt(max(half * half - 4 * area, 0.0))) / 2


def normalise_pen(cropped: np.ndarray) -> tuple[np.ndarray, tuple[float, float]]:
    """`cropped` at PEN_SCALE x MNIST's box (longer side 80 px) with its strokes made as wide as MNIST's pens
    (within PEN_RANGE, in pixels of the 20x20 box), and the width before and after.

    Thick strokes are eroded and thin ones dilated with a disk (grey-level morphology, so anti-aliasing survives;
    a fractional radius blends the two whole radii around it, so the result changes smoothly with the width).
    The result has the crop's exact size and proportions: a dilated digit, which grows by the radius on every
    side, is scaled back into the crop's frame (the radius allows for that), so the same digit drawn larger or
    smaller, with any pen, is fitted and centred the same way afterwards.
    """
    _, pen, widths = _normalise_pen(cropped)
    return pen, widths


def _normalise_pen(cropped: np.ndarray) -> tuple[np.ndarray, np.ndarray, tuple[float, float]]:
    """`normalise_pen`, with the crop at 80 px as drawn first (the same array as the pen when it is unchanged)."""
    box = MNIST_BOX * PEN_SCALE
    work = _resize_longer_side(cropped, box)
    width = pen_width(work) / PEN_SCALE
    target = float(np.clip(width, *PEN_RANGE))
    wide, goal = width * PEN_SCALE, target * PEN_SCALE
    if goal > wide:
        # (w + 2r) * box / (box + 2r) = goal: the width after scaling the grown digit back into the frame.
        radius = box * (goal - wide) / (2 * (box - goal))
    else:
        radius = (wide - goal) / 2  # eroding shrinks the ink inside the frame; nothing to scale back
    if radius < 0.25:
        return work, work, (width, width)
    whole = int(radius)
    share = radius - whole
    if goal > wide:
        margin = whole + 1
        padded = _framed(work, margin)
        smaller, larger = _disk_morphology(padded, whole, np.maximum)
        grown = (1 - share) * smaller + share * larger
        edge = margin - round(radius)
        grown = grown[edge : grown.shape[0] - edge, edge : grown.shape[1] - edge]
        changed = _resize_to(grown, work.shape)
    else:
        smaller, larger = _disk_morphology(work, whole, np.minimum)
        changed = (1 - share) * smaller + share * larger
    peak = float(changed.max())
    if peak <= 0.0:  # a dot or a hairline: eroding would leave nothing to read
        return work, work, (width, width)
    changed *= 1.0 / peak
    return work, changed, (width, pen_width(changed) / PEN_SCALE)


def _resize_to(image: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    return np.clip(_lanczos(image, (shape[1], shape[0])), 0.0, 1.0)


def _resize_longer_side(image: np.ndarray, longer: int) -> np.ndarray:
    """`image` resized (anti-aliased) so its longer side is `longer` px, keeping the aspect; the peak stays 1."""
    height, width = image.shape
    scale = longer / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    # reducing_gap first box-averages very large crops (photos), which is much faster and looks the same.
    resized = np.clip(_lanczos(image, size, reducing_gap=3.0), 0.0, 1.0)
    peak = float(resized.max())
    if peak <= 0.0:
        raise BlankImageError()
    # Strokes much thinner than the picture (a pen on a big photo) shrink to faint lines; MNIST's strokes are
    # saturated, so the strongest ink is brought back to 1.
    resized *= 1.0 / peak
    return resized


# Pictures up to this side are resized by `_lanczos` itself: the pen step's 80 px and its dilated margin. Not a
# canvas crop (up to 280 px): tried on 2026-11-30, kept weights made 50 canvases met again and again faster (0.41
# instead of 0.55 ms) but 196 drawings never seen slower (0.65 instead of 0.60 ms), and every stroke is new.
_PRODUCT_MAX_SIDE = 100
# Products of up to this many multiply-adds stay on the calling thread in OpenBLAS (measured: from ~1.5 M it hands
# part to a second thread, which on a server's shared cores waits its turn and then spins).
_ONE_THREAD_PRODUCT = 500_000


def _lanczos(image: np.ndarray, size: tuple[int, int], reducing_gap: float | None = None) -> np.ndarray:
    """`image` (2-D float) resized to `size` (width, height) with Pillow's LANCZOS filter, as float32 (unclipped).

    Pillow's float resampling takes 0.03-0.1 ms for the pen step's pictures (80 px and a little more, to 80 or 20
    px); the same filter as two small matrix products takes a fraction of that once the weights are known: they are
    Pillow's (`_lanczos_weights`), the sums in float32 instead of Pillow's float64 (within 1e-5 of Pillow's result,
    a test checks). Larger pictures go to Pillow itself: a drawing's crop comes in too many sizes for their weights
    to be kept (measured: computing them each time cost as much as Pillow's whole resize), and so do pictures
    Pillow would first box-reduce at `reducing_gap`.
    """
    height, width = image.shape
    out_width, out_height = size
    if max(height, width) > _PRODUCT_MAX_SIDE or (reducing_gap is not None and (
            int(width / out_width / reducing_gap) > 1 or int(height / out_height / reducing_gap) > 1)):
        patch = Image.fromarray(np.ascontiguousarray(image, dtype=np.float32))
        return np.asarray(patch.resize(size, Image.Resampling.LANCZOS, reducing_gap=reducing_gap), dtype=np.float32)
    resized = np.asarray(image, dtype=np.float32)
    if out_width != width:  # Pillow's order: across first, then down; a side that keeps its size is not filtered
        resized = _product(resized, _lanczos_weights(width, out_width).T)
    if out_height != height:
        resized = _product(_lanczos_weights(height, out_height), resized)
    return resized.copy() if resized is image else resized


def _product(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """left @ right in row bands small enough that OpenBLAS keeps each on this thread."""
    rows = max(1, _ONE_THREAD_PRODUCT // max(1, left.shape[1] * right.shape[1]))
    if rows >= left.shape[0]:
        return left @ right
    out = np.empty((left.shape[0], right.shape[1]), dtype=np.float32)
    for top in range(0, left.shape[0], rows):
        np.matmul(left[top : top + rows], right, out=out[top : top + rows])
    return out


@functools.lru_cache(maxsize=256)
def _lanczos_weights(size_in: int, size_out: int) -> np.ndarray:
    """The (size_out, size_in) float32 matrix of Pillow's LANCZOS resampling along one side (Pillow's
    libImaging/Resample.c, precompute_coeffs: a 3-lobed windowed sinc, widened by the reduction, each row
    normalised to sum 1). Read-only, as it is shared.

    Only each row's band of taps is evaluated. The cache holds at most 256 matrices of at most 80 x 100 (8 MB;
    3 MB after 1,500 drawings, with 0.2 new matrices a drawing by then).
    """
    scale = size_in / size_out
    filter_scale = max(scale, 1.0)
    support = 3.0 * filter_scale
    centres = (np.arange(size_out) + 0.5) * scale
    # C's (int) cast truncates towards zero, as astype(int) does
    first = np.maximum((centres - support + 0.5).astype(np.int64), 0)
    last = np.minimum((centres + support + 0.5).astype(np.int64), size_in)
    columns = first[:, None] + np.arange(int(math.ceil(support)) * 2 + 1)
    inside = columns < last[:, None]
    x = (columns - centres[:, None] + 0.5) / filter_scale
    taps = np.where(inside & (x >= -3.0) & (x < 3.0), np.sinc(x) * np.sinc(x / 3.0), 0.0)
    totals = taps.sum(axis=1, keepdims=True)
    taps = np.divide(taps, totals, out=taps, where=totals != 0.0)
    weights = np.zeros((size_out, size_in), dtype=np.float32)
    rows = np.broadcast_to(np.arange(size_out)[:, None], columns.shape)
    weights[rows[inside], columns[inside]] = taps[inside]
    weights.flags.writeable = False
    return weights


def _disk_morphology(image: np.ndarray, radius: int, pick) -> tuple[np.ndarray, np.ndarray]:
    """Grey-level dilation (`pick` = np.maximum) or erosion (np.minimum) of `image` with the disks of `radius` and
    `radius` + 1 px (outside the image counts as background, 0).

    A disk is a stack of horizontal segments, one a row: each row of the result picks over segments of the
    image picked once per half-width, 4 r array operations for both disks instead of one a disk offset (~3 r^2 each);
    a maximum or minimum is exact, so the result is the same as picking over every offset.
    """
    height, width = image.shape
    reach = radius + 1
    padded = _framed(image, reach)
    # segments[k]: each pixel picked with its neighbours up to k px left and right, on every row of `padded`
    segments = [padded[:, reach : reach + width]]
    for k in range(1, reach + 1):
        segments.append(pick(segments[-1], pick(padded[:, reach - k : reach - k + width],
                                                padded[:, reach + k : reach + k + width])))
    disks = []
    for size in (radius, reach):
        if size == 0:
            disks.append(image)
            continue
        out = segments[_half_width(size, 0)][reach : reach + height].copy()
        for dy in range(1, size + 1):
            segment = segments[_half_width(size, dy)]
            pick(out, segment[reach - dy : reach - dy + height], out=out)
            pick(out, segment[reach + dy : reach + dy + height], out=out)
        disks.append(out)
    return disks[0], disks[1]


def _framed(image: np.ndarray, margin: int) -> np.ndarray:
    """`image` as float32 in a frame of `margin` zeros: np.pad's result, without its generic code (~0.02 ms)."""
    height, width = image.shape
    framed = np.zeros((height + 2 * margin, width + 2 * margin), dtype=np.float32)
    framed[margin : margin + height, margin : margin + width] = image
    return framed


def _half_width(radius: int, dy: int) -> int:
    """How far the disk of `radius` reaches sideways `dy` rows from its centre: dx^2 + dy^2 <= r^2 + r (the + r
    makes small disks rounder)."""
    return math.isqrt(radius * radius + radius - dy * dy)


def _mass_centre(image: np.ndarray) -> tuple[float, float]:
    height, width = image.shape
    mass = float(image.sum(dtype=np.float64))
    row_of_mass = float(image.sum(axis=1, dtype=np.float64) @ np.arange(height)) / mass
    col_of_mass = float(image.sum(axis=0, dtype=np.float64) @ np.arange(width)) / mass
    return row_of_mass, col_of_mass


def _place_by_center_of_mass(fitted: np.ndarray, placed_as: np.ndarray | None = None):
    """`fitted` in a 28x28 frame with the centre of mass of `placed_as` (a patch of the same shape; `fitted` itself
    by default) on the frame's centre; returns the frame and `fitted`'s centre of mass in it."""
    height, width = fitted.shape
    if placed_as is None or placed_as.shape != fitted.shape:
        placed_as = fitted
    row_of_mass, col_of_mass = _mass_centre(placed_as)
    centre = IMAGE_SIZE / 2
    # Clipping keeps the whole patch inside the frame even when its mass sits far off its middle.
    top = int(np.clip(round(centre - row_of_mass), 0, IMAGE_SIZE - height))
    left = int(np.clip(round(centre - col_of_mass), 0, IMAGE_SIZE - width))
    centered = np.zeros((IMAGE_SIZE, IMAGE_SIZE), dtype=np.float32)
    centered[top : top + height, left : left + width] = fitted
    row_of_mass, col_of_mass = _mass_centre(fitted)
    return centered, (top + row_of_mass, left + col_of_mass)


def _full_scale(pixels: np.ndarray) -> float:
    """The pixel value that means full intensity for this array's dtype (and, for floats, its range)."""
    if pixels.dtype.kind == "b":
        return 1.0
    if pixels.dtype == np.uint8:
        return 255.0
    if pixels.dtype == np.uint16:
        return 65535.0
    peak = float(pixels.max())
    if pixels.dtype.kind == "f":
        # A little above 1 is still [0, 1]: resampling overshoots; a [0, 255] picture that dark would be blank anyway.
        return 1.0 if peak <= _FLOAT_UNIT_MAX else 255.0
    if peak <= 255:
        return 255.0
    return 65535.0 if peak <= 65535 else peak


def _to_unit(channel: np.ndarray, full_scale: float) -> np.ndarray:
    if channel.dtype.kind == "f":
        # Clip before narrowing to float32, so huge float64 values cannot overflow to inf.
        channel = np.clip(channel, 0.0, full_scale)
    unit = channel.astype(np.float32)
    if full_scale != 1.0:
        unit *= np.float32(1.0 / full_scale)
    return np.clip(unit, 0.0, 1.0, out=unit)


_UNIT_LEVELS = np.arange(256, dtype=np.float32) * np.float32(1.0 / 255.0)  # as _to_unit makes the 8-bit levels


def _luminance(pixels: np.ndarray, full_scale: float) -> np.ndarray:
    if pixels.dtype == np.uint8:  # an 8-bit picture with transparent parts (opaque ones never get here)
        return _to_unit(_grey_levels(pixels[..., :3]), full_scale)
    red, green, blue = _LUMA_WEIGHTS
    luminance = _to_unit(pixels[..., 0], full_scale)
    luminance *= red
    luminance += green * _to_unit(pixels[..., 1], full_scale)
    luminance += blue * _to_unit(pixels[..., 2], full_scale)
    return luminance


def _border(values: np.ndarray) -> np.ndarray:
    return np.concatenate((values[0], values[-1], values[:, 0], values[:, -1]))


_TURNING_ORIENTATIONS = range(2, 9)  # EXIF orientations 2-8 flip or turn the picture; 1 (or none) leaves it


def _upright(picture: Image.Image) -> Image.Image:
    """Apply the EXIF orientation, so a phone photo is read the way it is shown."""
    try:
        # exif_transpose copies a picture it does not turn (every canvas): only pictures that say so are turned.
        if picture.getexif().get(ExifTags.Base.Orientation, 1) not in _TURNING_ORIENTATIONS:
            return picture
        return ImageOps.exif_transpose(picture)
    except Exception:
        # A broken orientation tag should not make an otherwise readable picture unreadable.
        return picture


def _pil_to_pixels(picture: Image.Image) -> np.ndarray:
    """Pixels of a PIL image as uint8 (H, W), (H, W, 3) or (H, W, 4), keeping alpha when there is any."""
    mode = picture.mode
    if mode in ("L", "RGB", "RGBA"):
        return np.asarray(picture)  # read-only (Pillow hands numpy a copy of its pixels): one copy, not two
    if mode.startswith("I"):  # 16- or 32-bit integer greys ('I;16', 'I;16B', 'I', ...)
        values = np.asarray(picture)
        # 'I' also holds 8-bit greys converted up; only values beyond 255 mean a 16-bit range.
        full_scale = 255.0 if mode == "I" and values.max() <= 255 else 65535.0
        pixels = np.empty(values.shape, np.uint8)
        # A band of rows at a time: float64 copies of a whole 25-megapixel grey would take 200 MB each.
        band = max(1, DECODE_PIXELS // max(1, values.shape[1]))
        for top in range(0, values.shape[0], band):
            rows = np.clip(values[top : top + band].astype(np.float64), 0.0, full_scale)
            pixels[top : top + band] = np.rint(rows * (255.0 / full_scale))
        return pixels
    if mode == "F":
        values = np.nan_to_num(np.asarray(picture, dtype=np.float64), nan=0.0, posinf=0.0, neginf=0.0)
        full_scale = 1.0 if values.max() <= 1.0 else 255.0
        return np.rint(np.clip(values, 0.0, full_scale) * (255.0 / full_scale)).astype(np.uint8)
    if mode == "1":
        return np.array(picture.convert("L"))
    return np.array(picture.convert(_colour_mode(picture)))


def _colour_mode(picture: Image.Image) -> str:
    """"RGBA" for a picture with any transparency, else "RGB"."""
    return "RGBA" if picture.mode in _ALPHA_MODES or "transparency" in picture.info else "RGB"


def _too_large_message(width: int, height: int, noun: str) -> str:
    return f"The {noun} is too large ({width} x {height} pixels); the limit is {MAX_PIXELS // 1_000_000} megapixels."


def _bomb_message(error: Exception, limits: _Limits) -> str:
    # Pillow refuses the file inside Image.open, before it hands back the size; its message has the pixel count.
    found = re.search(r"\((\d+) pixels\)", str(error))
    return limits.too_large.format(size=f" ({int(found.group(1)):,} pixels)" if found else "")

"""Turn a picture of one handwritten digit into the 28x28 image MNIST would have made of it.

MNIST's recipe: crop the digit to its ink, fit the longer side into a 20x20 box keeping the aspect ratio
(anti-aliased), then place it in a 28x28 frame so that its centre of mass sits at the centre (14, 14).
A classifier trained on MNIST has only seen digits prepared this way, so drawings and photos must go through
the same steps before it can read them. One step more than MNIST's: most of MNIST's pens come out 2.3-3.2 px wide
in the 20x20 box, while a canvas pen of fixed width comes out anywhere from under 1 px (a large digit)
to 5 px (a small one); the pen width is brought into MNIST's usual range before the fit (`normalise_pen`).

Before the recipe, `ink_map` turns whatever came in (a transparent drawing canvas, white ink on black, a photo of
dark ink on paper; 8-bit, 16-bit, bool or float pixels; a PIL image) into one map of ink: float32 in [0, 1], where
ink is 1 and background is 0. `decode_upload` turns an uploaded file's bytes into pixels for it.

Only `ValueError`s leave this module: `BlankImageError` when there is no ink, `UnreadableImageError` for a file
that is not a usable image, and a plain `ValueError` for an array that is not a picture.
"""

import io
import math
import re
import warnings
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps

from mnist_core.constants import IMAGE_SIZE, MNIST_BOX

MAX_PIXELS = 25_000_000

# Pillow's decompression-bomb guard then refuses oversized uploads from their header, before decoding any pixels.
Image.MAX_IMAGE_PIXELS = MAX_PIXELS

# Ink must differ from the background by at least this much of the full scale; anything fainter is a blank
# picture (an empty canvas, a uniform photo), not a digit.
MIN_CONTRAST = 0.1

# After scaling the strongest ink to 1, weaker values are background: paper texture, uneven lighting, JPEG noise.
INK_THRESHOLD = 0.25

_OPAQUE_ALPHA = 0.99
_FLOAT_UNIT_MAX = 1.5  # float pixels up to this are read as [0, 1], above it as [0, 255]
_LUMA_WEIGHTS = (0.299, 0.587, 0.114)  # ITU-R 601, the weights of Pillow's convert("L")
_ALPHA_MODES = {"LA", "La", "PA", "RGBa"}


class BlankImageError(ValueError):
    """The picture has no ink to read a digit from."""

    def __init__(self, message: str = "The picture is blank: draw or upload a digit first.") -> None:
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
    ink = ink_map(image)
    top, left, bottom, right = bbox = _ink_bbox(ink)
    cropped = ink[top:bottom, left:right]
    pen, pen_width = normalise_pen(cropped)
    fitted = _fit_into_box(pen)
    # Placed where the drawing's own strokes put it: a thicker or thinner pen must not move the digit by a pixel
    # (the placement rounds to whole pixels, so a mass shifted by a hundredth of one can tip it).
    as_drawn = fitted if pen_width[0] == pen_width[1] else _fit_into_box(cropped)
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
    pixels = _as_pixels(image)
    signal = _ink_signal(pixels)
    return _normalise_ink(signal)


def decode_upload(data: bytes) -> np.ndarray:
    """Decode an uploaded image file into uint8 pixels (H, W), (H, W, 3) or (H, W, 4), ready for `to_mnist`.

    Uses the first frame of an animated image and applies the EXIF orientation. 16-bit greys are scaled to
    0-255; palette, CMYK and other modes become RGB, or RGBA when they carry transparency.
    Raises UnreadableImageError for an empty, corrupt, unsupported or oversized (> MAX_PIXELS) file.
    """
    if not data:
        raise UnreadableImageError("The file is empty.")
    try:
        with warnings.catch_warnings():
            # Pillow only warns between 1x and 2x its pixel limit; such an upload must be refused, not decoded.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as picture:
                width, height = picture.size
                # Checked again here because warning filters are process-wide, and another thread (another
                # Streamlit session) may change them while this one decodes.
                if width * height > MAX_PIXELS:
                    raise UnreadableImageError(_too_large_message(width, height, "image"))
                picture.seek(0)
                picture.load()
                return _pil_to_pixels(_upright(picture))
    except UnreadableImageError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise UnreadableImageError(_bomb_message(error)) from error
    except Image.UnidentifiedImageError as error:
        raise UnreadableImageError(
            "The file could not be read as an image: its format is not one Pillow knows (PNG, JPEG, GIF, BMP, WebP...)."
        ) from error
    except Exception as error:
        # Decoders of untrusted bytes fail in many ways (OSError, SyntaxError, struct.error, MemoryError...);
        # every one of them means the same thing to the person who uploaded the file.
        raise UnreadableImageError(f"The file could not be read as an image: {error}") from error


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
    if pixels.shape[2] == 4:
        alpha = _to_unit(pixels[..., 3], full_scale)
        if alpha.min() < _OPAQUE_ALPHA:
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
    ink = signal - background
    ink *= 1.0 / contrast
    ink[ink < INK_THRESHOLD] = 0.0
    np.minimum(ink, 1.0, out=ink)
    return ink


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
    # A frame of background first: a crop's ink touches its edges, and that outline counts too.
    grad_rows, grad_cols = np.gradient(np.pad(ink.astype(np.float32), 1))
    outline = float(np.hypot(grad_rows, grad_cols).sum(dtype=np.float64))
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
        return work, (width, width)
    whole = int(radius)
    share = radius - whole
    if goal > wide:
        margin = whole + 1
        padded = np.pad(work, margin)
        grown = (1 - share) * _morphology(padded, whole, np.maximum) + share * _morphology(padded, whole + 1, np.maximum)
        edge = margin - round(radius)
        grown = grown[edge : grown.shape[0] - edge, edge : grown.shape[1] - edge]
        changed = _resize_to(grown, work.shape)
    else:
        changed = (1 - share) * _morphology(work, whole, np.minimum) + share * _morphology(work, whole + 1, np.minimum)
    peak = float(changed.max())
    if peak <= 0.0:  # a dot or a hairline: eroding would leave nothing to read
        return work, (width, width)
    changed *= 1.0 / peak
    return changed, (width, pen_width(changed) / PEN_SCALE)


def _resize_to(image: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    patch = Image.fromarray(np.ascontiguousarray(image, dtype=np.float32))
    resized = patch.resize((shape[1], shape[0]), Image.Resampling.LANCZOS)
    return np.clip(np.asarray(resized, dtype=np.float32), 0.0, 1.0)


def _resize_longer_side(image: np.ndarray, longer: int) -> np.ndarray:
    """`image` resized (anti-aliased) so its longer side is `longer` px, keeping the aspect; the peak stays 1."""
    height, width = image.shape
    scale = longer / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    patch = Image.fromarray(np.ascontiguousarray(image, dtype=np.float32))
    # reducing_gap first box-averages very large crops (photos), which is much faster and looks the same.
    resized = np.clip(np.asarray(patch.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0), dtype=np.float32),
                      0.0, 1.0)
    peak = float(resized.max())
    if peak <= 0.0:
        raise BlankImageError()
    # Strokes much thinner than the picture (a pen on a big photo) shrink to faint lines; MNIST's strokes are
    # saturated, so the strongest ink is brought back to 1.
    resized *= 1.0 / peak
    return resized


def _morphology(image: np.ndarray, radius: int, pick) -> np.ndarray:
    """Grey-level dilation (`pick` = np.maximum) or erosion (np.minimum) of `image` with a disk of `radius` px."""
    if radius == 0:
        return image
    height, width = image.shape
    padded = np.pad(image, radius)
    out = image.copy()
    for dy in range(-radius, radius + 1):
        for dx in range(-radius, radius + 1):
            if dx * dx + dy * dy <= radius * radius + radius:  # + radius: a rounder disk for small radii
                pick(out, padded[radius + dy : radius + dy + height, radius + dx : radius + dx + width], out=out)
    return out


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


def _luminance(pixels: np.ndarray, full_scale: float) -> np.ndarray:
    red, green, blue = _LUMA_WEIGHTS
    luminance = _to_unit(pixels[..., 0], full_scale)
    luminance *= red
    luminance += green * _to_unit(pixels[..., 1], full_scale)
    luminance += blue * _to_unit(pixels[..., 2], full_scale)
    return luminance


def _border(values: np.ndarray) -> np.ndarray:
    return np.concatenate((values[0], values[-1], values[:, 0], values[:, -1]))


def _upright(picture: Image.Image) -> Image.Image:
    """Apply the EXIF orientation, so a phone photo is read the way it is shown."""
    try:
        return ImageOps.exif_transpose(picture)
    except Exception:
        # A broken orientation tag should not make an otherwise readable picture unreadable.
        return picture


def _pil_to_pixels(picture: Image.Image) -> np.ndarray:
    """Pixels of a PIL image as uint8 (H, W), (H, W, 3) or (H, W, 4), keeping alpha when there is any."""
    mode = picture.mode
    if mode in ("L", "RGB", "RGBA"):
        return np.array(picture)
    if mode.startswith("I"):  # 16- or 32-bit integer greys ('I;16', 'I;16B', 'I', ...)
        values = np.asarray(picture).astype(np.float64)
        # 'I' also holds 8-bit greys converted up; only values beyond 255 mean a 16-bit range.
        full_scale = 255.0 if mode == "I" and values.max() <= 255 else 65535.0
        return np.rint(np.clip(values, 0.0, full_scale) * (255.0 / full_scale)).astype(np.uint8)
    if mode == "F":
        values = np.nan_to_num(np.asarray(picture, dtype=np.float64), nan=0.0, posinf=0.0, neginf=0.0)
        full_scale = 1.0 if values.max() <= 1.0 else 255.0
        return np.rint(np.clip(values, 0.0, full_scale) * (255.0 / full_scale)).astype(np.uint8)
    if mode == "1":
        return np.array(picture.convert("L"))
    has_alpha = mode in _ALPHA_MODES or "transparency" in picture.info
    return np.array(picture.convert("RGBA" if has_alpha else "RGB"))


def _too_large_message(width: int, height: int, noun: str) -> str:
    return f"The {noun} is too large ({width} x {height} pixels); the limit is {MAX_PIXELS // 1_000_000} megapixels."


def _bomb_message(error: Exception) -> str:
    # Pillow refuses the file inside Image.open, before it hands back the size; its message has the pixel count.
    found = re.search(r"\((\d+) pixels\)", str(error))
    size = f" ({int(found.group(1)):,} pixels)" if found else ""
    return f"The image is too large{size}; the limit is {MAX_PIXELS // 1_000_000} megapixels."

"""Tests for mnist_core.preprocess: any picture of a digit becomes the 28x28 image MNIST would have made of it."""

import io
import time
import struct
import zlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from PIL import Image, ImageDraw

from mnist_core.constants import IMAGE_SIZE, MNIST_BOX
from mnist_core.preprocess import (
    MAX_PIXELS,
    BlankImageError,
    PreprocessSteps,
    UnreadableImageError,
    decode_upload,
    ink_map,
    preprocess_steps,
    to_mnist,
)

CANVAS = 280


# --- Synthetic digits: white ink on black, uint8 (H, W), like the Draw page's canvas -------------------------


def draw_seven(
    left: int = 40, top: int = 30, height: int = 220, size: int = CANVAS, stroke: int | None = None
) -> np.ndarray:
    """A "7" whose strokes scale with it (unless `stroke` is given), so a small and a large one are the same digit."""
    picture = Image.new("L", (size, size), 0)
    pen = ImageDraw.Draw(picture)
    pen.line(
        [(left, top), (left + 0.7 * height, top), (left + 0.3 * height, top + height)],
        fill=255,
        width=stroke or max(1, round(0.1 * height)),
        joint="curve",
    )
    return np.array(picture)


def draw_zero(left: int = 70, top: int = 30, height: int = 220, size: int = CANVAS) -> np.ndarray:
    picture = Image.new("L", (size, size), 0)
    ImageDraw.Draw(picture).ellipse(
        [left, top, left + 0.6 * height, top + height], outline=255, width=max(1, round(0.1 * height))
    )
    return np.array(picture)


def center_of_mass(image: np.ndarray) -> tuple[float, float]:
    rows, cols = np.indices(image.shape)
    mass = image.sum()
    return float((rows * image).sum() / mass), float((cols * image).sum() / mass)


def assert_same_digit(result: np.ndarray, expected: np.ndarray, max_mean_diff: float = 0.05) -> None:
    assert result.shape == (IMAGE_SIZE, IMAGE_SIZE)
    assert np.abs(result - expected).mean() < max_mean_diff
    assert np.corrcoef(result.ravel(), expected.ravel())[0, 1] > 0.9


def png_bytes(picture: Image.Image, **options) -> bytes:
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG", **options)
    return buffer.getvalue()


def encoded(picture: Image.Image, file_format: str, **options) -> bytes:
    buffer = io.BytesIO()
    picture.save(buffer, format=file_format, **options)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def seven() -> np.ndarray:
    return draw_seven()


@pytest.fixture(scope="module")
def reference(seven) -> np.ndarray:
    return to_mnist(seven)


# --- The MNIST recipe ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "digit",
    [
        draw_seven(),
        draw_zero(),
        draw_seven(left=100, top=120, height=40),
        draw_seven(left=50, top=50, height=900, size=1000, stroke=3),  # a fine pen on a big photo
    ],
    ids=["seven", "zero", "small seven", "thin strokes"],
)
def test_output_is_an_mnist_image(digit):
    result = to_mnist(digit)

    assert result.shape == (IMAGE_SIZE, IMAGE_SIZE)
    assert result.dtype == np.float32
    assert result.min() >= 0.0
    assert result.max() == pytest.approx(1.0)


@pytest.mark.parametrize("digit", [draw_seven(), draw_zero()])
def test_digit_fits_the_20_pixel_box_and_is_centred_by_mass(digit):
    result = to_mnist(digit)

    rows = np.flatnonzero(result.any(axis=1))
    cols = np.flatnonzero(result.any(axis=0))
    height, width = rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1
    assert max(height, width) in (MNIST_BOX - 1, MNIST_BOX, MNIST_BOX + 1)
    assert min(height, width) <= MNIST_BOX
    row, col = center_of_mass(result)
    assert abs(row - IMAGE_SIZE / 2) <= 1.0
    assert abs(col - IMAGE_SIZE / 2) <= 1.0


def test_steps_describe_the_pipeline(seven):
    steps = preprocess_steps(seven)

    assert isinstance(steps, PreprocessSteps)
    assert steps.ink.shape == seven.shape and steps.ink.dtype == np.float32
    top, left, bottom, right = steps.bbox
    inked_rows = np.flatnonzero(seven.any(axis=1))
    inked_cols = np.flatnonzero(seven.any(axis=0))
    assert (top, left) == (inked_rows[0], inked_cols[0])
    assert (bottom, right) == (inked_rows[-1] + 1, inked_cols[-1] + 1)
    assert steps.cropped.shape == (bottom - top, right - left)
    assert max(steps.fitted.shape) == MNIST_BOX
    aspect_in, aspect_out = steps.cropped.shape[1] / steps.cropped.shape[0], steps.fitted.shape[1] / MNIST_BOX
    assert aspect_out == pytest.approx(aspect_in, abs=1 / MNIST_BOX)
    assert steps.fitted.dtype == np.float32
    np.testing.assert_array_equal(steps.centered, to_mnist(seven))
    assert steps.center_of_mass == pytest.approx(center_of_mass(steps.centered), abs=1e-4)
    assert steps.center_of_mass == pytest.approx((14, 14), abs=0.51)


def test_position_and_size_of_the_digit_do_not_matter(reference):
    small_in_a_corner = draw_seven(left=5, top=210, height=60)
    large_off_centre = draw_seven(left=75, top=20, height=245)

    assert_same_digit(to_mnist(small_in_a_corner), reference)
    assert_same_digit(to_mnist(large_off_centre), reference)


def test_different_digits_stay_different(reference):
    assert np.corrcoef(to_mnist(draw_zero()).ravel(), reference.ravel())[0, 1] < 0.6


def test_an_mnist_image_is_left_nearly_unchanged(reference):
    assert_same_digit(to_mnist(reference), reference, max_mean_diff=0.03)


def test_a_single_dot_and_thin_lines_still_give_an_image():
    dot = np.zeros((50, 50), np.uint8)
    dot[10, 30] = 255
    horizontal = np.zeros((50, 50), np.uint8)
    horizontal[25, 5:45] = 255

    for picture in (dot, horizontal):
        result = to_mnist(picture)
        assert result.shape == (IMAGE_SIZE, IMAGE_SIZE) and result.max() == pytest.approx(1.0)
    assert to_mnist(dot)[14, 14] == pytest.approx(1.0)


# --- Every kind of input gives the same digit ----------------------------------------------------------------


def as_photo(ink: np.ndarray, seed: int = 0) -> np.ndarray:
    """Dark blue-black ink on slightly uneven, noisy paper, as a phone photo would give (H, W, 3) uint8."""
    rng = np.random.default_rng(seed)
    height, width = ink.shape
    lighting = np.linspace(0.78, 0.95, width)[None, :] * np.linspace(0.97, 1.0, height)[:, None]
    paper = lighting[..., None] * np.array([1.0, 0.98, 0.94])
    ink_colour = np.array([0.10, 0.12, 0.25])
    strength = ink[..., None] / 255.0 * 0.9
    photo = paper * (1 - strength) + ink_colour * strength + rng.normal(0, 0.02, (height, width, 3))
    return np.clip(np.rint(photo * 255), 0, 255).astype(np.uint8)


def picture_kinds(grey: np.ndarray) -> dict[str, object]:
    """The same white-on-black digit as every kind of input `to_mnist` accepts."""
    zeros = np.zeros_like(grey)
    opaque = np.full_like(grey, 255)
    rng = np.random.default_rng(1)
    return {
        "grey uint8": grey,
        "grey (H, W, 1)": grey[..., None],
        "canvas, transparent background": np.dstack([zeros, zeros, zeros, grey]),
        "canvas, transparent, any RGB": np.dstack([rng.integers(0, 256, (*grey.shape, 3), dtype=np.uint8), grey]),
        "canvas, black background": np.dstack([grey, grey, grey, opaque]),
        "canvas, white background": np.dstack([255 - grey, 255 - grey, 255 - grey, opaque]),
        "RGB white on black": np.dstack([grey, grey, grey]),
        "dark on light paper": 255 - grey,
        "photo of paper": as_photo(grey),
        "float32 in [0, 1]": grey.astype(np.float32) / 255,
        "float64 in [0, 255]": grey.astype(np.float64),
        "RGBA float in [0, 1]": np.dstack([zeros, zeros, zeros, grey]).astype(np.float64) / 255,
        "bool": grey > 127,
        "uint16": grey.astype(np.uint16) * 257,
        "int64": grey.astype(np.int64),
        "nested lists": (grey[::4, ::4]).tolist(),
        "PIL L": Image.fromarray(grey),
        "PIL RGB": Image.fromarray(np.dstack([grey, grey, grey])),
        "PIL RGBA": Image.fromarray(np.dstack([zeros, zeros, zeros, grey])),
        "PIL 1": Image.fromarray(grey).convert("1"),
        "PIL P": Image.fromarray(255 - grey).convert("RGB").convert("P"),
        "PIL I;16": Image.fromarray(grey.astype(np.uint16) * 257),
        "PIL LA": Image.fromarray(np.dstack([zeros, zeros, zeros, grey])).convert("LA"),
    }


KIND_NAMES = list(picture_kinds(np.zeros((2, 2), np.uint8)))


@pytest.mark.parametrize("kind", KIND_NAMES)
def test_every_kind_of_input_gives_the_same_digit(kind, seven, reference):
    picture = picture_kinds(seven)[kind]

    result = to_mnist(picture)

    assert result.dtype == np.float32
    assert 0.0 <= result.min() and result.max() <= 1.0
    assert_same_digit(result, reference, max_mean_diff=0.06 if kind == "photo of paper" else 0.03)


def test_float_pictures_slightly_over_one_are_still_unit_range(seven, reference):
    overshooting = seven.astype(np.float32) / 255 * 1.02 - 0.01  # as after resampling: a little outside [0, 1]

    assert_same_digit(to_mnist(overshooting), reference, max_mean_diff=0.03)


def test_ink_map_finds_dark_ink_on_paper(seven):
    ink = ink_map(as_photo(seven))

    assert ink.shape == seven.shape and ink.dtype == np.float32
    strokes, paper = seven == 255, seven == 0
    assert ink[strokes].mean() > 0.7
    assert (ink[paper] == 0).mean() > 0.99


def test_ink_map_of_a_transparent_canvas_is_its_alpha(seven):
    canvas = np.dstack([np.zeros_like(seven)] * 3 + [seven])

    ink = ink_map(canvas)

    np.testing.assert_allclose(ink[seven == 255], 1.0)
    np.testing.assert_array_equal(ink[seven == 0], 0.0)


def test_polarity_holds_when_the_digit_touches_the_edge(seven, reference):
    rows = np.flatnonzero(seven.any(axis=1))
    cols = np.flatnonzero(seven.any(axis=0))
    tight_photo = as_photo(seven)[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]

    assert_same_digit(to_mnist(tight_photo), reference, max_mean_diff=0.06)


# --- Blank and absurd inputs ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "blank",
    [
        np.zeros((CANVAS, CANVAS, 4), np.uint8),
        np.full((CANVAS, CANVAS, 4), [255, 255, 255, 0], np.uint8),
        np.full((100, 120, 3), 255, np.uint8),
        np.zeros((28, 28), np.uint8),
        np.full((50, 50), 128, np.uint8),
        np.full((50, 50), 0.5, np.float32),
        np.ones((40, 40), bool),
        np.full((1, 1), 255, np.uint8),
        Image.new("RGB", (64, 64), "white"),
    ],
    ids=["empty canvas", "fully transparent", "all white", "all black", "uniform grey", "grey float", "all ink",
         "one pixel", "white PIL"],
)
def test_blank_pictures_raise_blank_image_error(blank):
    with pytest.raises(BlankImageError, match="blank"):
        to_mnist(blank)


def test_faint_paper_texture_is_blank():
    rng = np.random.default_rng(2)
    paper = np.clip(rng.normal(230, 3, (200, 200)), 0, 255).astype(np.uint8)

    with pytest.raises(BlankImageError):
        to_mnist(paper)


def test_blank_image_error_is_a_value_error():
    assert issubclass(BlankImageError, ValueError)
    assert issubclass(UnreadableImageError, ValueError)


@pytest.mark.parametrize(
    ("picture", "message"),
    [
        (np.zeros((0, 0), np.uint8), "has no pixels"),
        (np.zeros((0, 5), np.uint8), "has no pixels"),
        (np.zeros((5, 5, 0), np.uint8), "has no pixels"),
        (np.zeros((3, 3, 3, 3), np.uint8), r"Expected a picture of shape \(H, W\), \(H, W, 3\) or \(H, W, 4\)"),
        (np.arange(10, dtype=np.uint8), r"got \(10,\)"),
        (np.zeros((8, 8, 2), np.uint8), r"got \(8, 8, 2\)"),
        (np.zeros((8, 8, 5), np.uint8), r"got \(8, 8, 5\)"),
        (np.full((8, 8), np.nan), "NaN or infinite"),
        (np.where(np.eye(8, dtype=bool), np.inf, 0.0), "NaN or infinite"),
        (np.where(np.eye(8, dtype=bool), -np.inf, 0.5).astype(np.float32), "NaN or infinite"),
        (np.broadcast_to(np.uint8(0), (5001, 5001)), "too large .*25 megapixels"),
        (np.full((8, 8), None, dtype=object), "dtype object"),
        (np.zeros((8, 8), np.complex64), "dtype complex64"),
        (np.array([["a", "b"]]), "dtype <U1"),
        ([[1, 2], [3]], "Expected a picture"),
        (Image.new("L", (0, 0)), "has no pixels"),
    ],
)
def test_absurd_inputs_raise_value_error_with_a_clear_message(picture, message):
    with pytest.raises(ValueError, match=message) as raised:
        to_mnist(picture)

    assert not isinstance(raised.value, BlankImageError)


def test_pictures_up_to_the_pixel_limit_are_accepted():
    assert MAX_PIXELS == 25_000_000
    with pytest.raises(ValueError, match="too large"):
        to_mnist(np.broadcast_to(np.uint8(0), (MAX_PIXELS // 1000 + 1, 1000)))
    # A long thin picture is not too large; it just needs to hold a digit.
    strip = np.zeros((1, 10_000), np.uint8)
    strip[0, 4000:6000] = 255
    assert to_mnist(strip).shape == (IMAGE_SIZE, IMAGE_SIZE)


# --- Uploaded files ------------------------------------------------------------------------------------------


def test_decode_png_round_trips(seven):
    for picture in (seven, np.dstack([seven] * 3), np.dstack([seven] * 3 + [seven])):
        decoded = decode_upload(png_bytes(Image.fromarray(picture)))

        assert decoded.dtype == np.uint8
        np.testing.assert_array_equal(decoded, picture)


def test_decode_jpeg_round_trips(seven, reference):
    decoded = decode_upload(encoded(Image.fromarray(255 - seven).convert("RGB"), "JPEG", quality=90))

    assert decoded.shape == (*seven.shape, 3) and decoded.dtype == np.uint8
    assert np.abs(decoded.astype(int) - (255 - seven.astype(int))[..., None]).mean() < 3
    assert_same_digit(to_mnist(decoded), reference)


@pytest.mark.parametrize("empty", [b"", None])
def test_decode_empty_file(empty):
    with pytest.raises(UnreadableImageError, match="The file is empty."):
        decode_upload(empty)


def test_decode_random_bytes():
    junk = np.random.default_rng(3).integers(0, 256, 2000, dtype=np.uint8).tobytes()

    with pytest.raises(UnreadableImageError, match="could not be read as an image"):
        decode_upload(junk)


def test_decode_text_file():
    with pytest.raises(UnreadableImageError, match="could not be read as an image"):
        decode_upload(b"7,0,0,255\n" * 50)


@pytest.mark.parametrize("file_format", ["PNG", "JPEG", "GIF", "BMP", "WEBP"])
def test_decode_truncated_file(seven, file_format):
    picture = Image.fromarray(draw_zero()).convert("RGB") if file_format != "GIF" else Image.fromarray(seven)
    data = encoded(picture, file_format)

    with pytest.raises(UnreadableImageError, match="could not be read as an image"):
        decode_upload(data[: len(data) // 2])


@pytest.mark.parametrize("file_format", ["GIF", "WEBP", "PNG"])
def test_decode_animation_uses_the_first_frame(file_format, seven, reference):
    first, second = Image.fromarray(seven).convert("RGB"), Image.fromarray(draw_zero()).convert("RGB")
    data = encoded(first, file_format, save_all=True, append_images=[second], duration=100, loop=0)

    decoded = decode_upload(data)

    assert_same_digit(to_mnist(decoded), reference)


def test_decode_16_bit_png_is_scaled_to_8_bits(seven):
    data = png_bytes(Image.fromarray(seven.astype(np.uint16) * 257))
    assert Image.open(io.BytesIO(data)).mode.startswith("I")

    decoded = decode_upload(data)

    assert decoded.dtype == np.uint8
    np.testing.assert_array_equal(decoded, seven)


def test_decode_cmyk_jpeg(seven, reference):
    data = encoded(Image.fromarray(255 - seven).convert("RGB").convert("CMYK"), "JPEG", quality=95)

    decoded = decode_upload(data)

    assert decoded.ndim == 3 and decoded.shape[2] == 3 and decoded.dtype == np.uint8
    assert_same_digit(to_mnist(decoded), reference)


def test_decode_palette_png(seven, reference):
    decoded = decode_upload(png_bytes(Image.fromarray(255 - seven).convert("RGB").convert("P")))

    assert decoded.shape == (*seven.shape, 3)
    assert_same_digit(to_mnist(decoded), reference)


def test_decode_palette_png_with_transparency_keeps_alpha(seven, reference):
    palette = Image.fromarray(np.where(seven > 127, 1, 0).astype(np.uint8), mode="P")
    palette.putpalette([255, 255, 255, 0, 0, 0])

    decoded = decode_upload(png_bytes(palette, transparency=0))

    assert decoded.shape == (*seven.shape, 4)
    assert_same_digit(to_mnist(decoded), reference)


@pytest.mark.parametrize(("mode", "channels"), [("LA", 4), ("1", None), ("L", None)])
def test_decode_other_modes(mode, channels, seven, reference):
    picture = Image.fromarray(np.dstack([seven] * 3 + [seven])).convert(mode)

    decoded = decode_upload(png_bytes(picture))

    assert decoded.dtype == np.uint8
    assert decoded.shape == (seven.shape if channels is None else (*seven.shape, channels))
    assert_same_digit(to_mnist(decoded), reference)


def test_decode_applies_exif_orientation():
    tall = np.zeros((60, 30), np.uint8)
    tall[5:55, 10:20] = 255
    exif = Image.Exif()
    exif[0x0112] = 6  # shown rotated 90 degrees clockwise

    decoded = decode_upload(encoded(Image.fromarray(tall), "JPEG", exif=exif))

    assert decoded.shape[:2] == (30, 60)


def with_claimed_size(png: bytes, width: int, height: int) -> bytes:
    """The PNG with its IHDR header saying width x height (and a valid checksum), pixel data unchanged."""
    ihdr_start = 8  # after the PNG signature
    length = struct.unpack(">I", png[ihdr_start : ihdr_start + 4])[0]
    chunk = bytearray(png[ihdr_start + 4 : ihdr_start + 8 + length])  # type + data
    chunk[4:12] = struct.pack(">II", width, height)
    checksum = struct.pack(">I", zlib.crc32(bytes(chunk)) & 0xFFFFFFFF)
    return png[: ihdr_start + 4] + bytes(chunk) + checksum + png[ihdr_start + 8 + length + 4 :]


@pytest.mark.parametrize(("width", "height"), [(6000, 6000), (10_000, 10_000), (100_000, 300)])
def test_decode_refuses_images_over_the_pixel_limit(width, height):
    data = with_claimed_size(png_bytes(Image.new("L", (8, 8))), width, height)

    with pytest.raises(UnreadableImageError, match="too large.*the limit is 25 megapixels") as raised:
        decode_upload(data)

    assert f"{width * height:,}" in str(raised.value) or f"{width} x {height}" in str(raised.value)


def test_decode_refuses_a_real_36_megapixel_png():
    data = png_bytes(Image.new("L", (6000, 6000)), optimize=False, compress_level=9)

    with pytest.raises(UnreadableImageError, match="too large"):
        decode_upload(data)


def test_decode_header_at_the_limit_is_not_called_too_large():
    data = with_claimed_size(png_bytes(Image.new("L", (8, 8))), 5000, 5000)

    # The header passes the size check; the pixel data is then missing, so it is unreadable, not too large.
    with pytest.raises(UnreadableImageError, match="could not be read as an image"):
        decode_upload(data)


# --- Property: nothing but a valid image or a ValueError ----------------------------------------------------

shapes = st.one_of(
    hnp.array_shapes(min_dims=2, max_dims=2, min_side=1, max_side=64),
    st.tuples(st.integers(1, 64), st.integers(1, 64), st.sampled_from([3, 4])),
)
any_pixels = hnp.arrays(dtype=st.sampled_from([np.uint8, np.float32, np.float64]), shape=shapes)
unit_pixels = hnp.arrays(
    dtype=st.sampled_from([np.float32, np.float64]),
    shape=shapes,
    elements=st.floats(0.0, 1.0, width=32),
)
sparse_pixels = hnp.arrays(
    dtype=np.uint8, shape=shapes, elements=st.sampled_from([0, 255]), fill=st.just(0)
)


@settings(max_examples=200, deadline=None)
@given(st.one_of(any_pixels, unit_pixels, sparse_pixels))
def test_any_array_gives_a_valid_image_or_a_value_error(pixels):
    try:
        result = to_mnist(pixels)
    except ValueError:
        return

    assert result.shape == (IMAGE_SIZE, IMAGE_SIZE)
    assert result.dtype == np.float32
    assert np.isfinite(result).all()
    assert result.min() >= 0.0 and result.max() <= 1.0


# --- the Draw page's canvas value ----------------------------------------------------------------------------------


def drawn_canvas_url(size: int = 280, draw=None) -> str:
    """A data URL as the canvas sends it: white strokes on opaque black, PNG, base64."""
    import base64

    from PIL import ImageDraw

    picture = Image.new("RGBA", (size, size), (0, 0, 0, 255))
    if draw is not None:
        draw(ImageDraw.Draw(picture))
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def test_decode_canvas_gives_the_drawing_as_rgba_and_the_digit_survives_preprocessing():
    from mnist_core.preprocess import decode_canvas

    url = drawn_canvas_url(draw=lambda pen: pen.line([(140, 50), (140, 230)], fill=(255, 255, 255, 255), width=20))
    pixels = decode_canvas(url, 280)
    assert pixels.shape == (280, 280, 4) and pixels.dtype == np.uint8
    assert pixels[140, 140, :3].tolist() == [255, 255, 255] and pixels[10, 10, :3].tolist() == [0, 0, 0]
    centred = to_mnist(pixels)
    assert centred.shape == (28, 28) and centred.max() > 0.9


def test_decode_canvas_refuses_another_format_or_another_size():
    import base64

    from mnist_core.preprocess import UnreadableImageError, decode_canvas

    gif = io.BytesIO()
    Image.new("L", (280, 280)).save(gif, format="GIF")
    disguised = "data:image/png;base64," + base64.b64encode(gif.getvalue()).decode("ascii")
    with pytest.raises(UnreadableImageError, match="not a PNG picture"):
        decode_canvas(disguised, 280)
    # A PNG of another size than the canvas' is not a drawing it sent.
    with pytest.raises(UnreadableImageError, match="a 300 x 300 picture, not a 280 x 280 drawing"):
        decode_canvas(drawn_canvas_url(size=300), 280)


def test_checked_strokes_keeps_good_strokes_as_plain_numbers():
    from mnist_core.preprocess import checked_strokes

    strokes = [{"width": 20, "points": [[1, 2], [3.5, 4]]}, {"width": 8.5, "points": [[5, 6]]}]
    assert checked_strokes(strokes) == [{"width": 20.0, "points": [[1.0, 2.0], [3.5, 4.0]]},
                                        {"width": 8.5, "points": [[5.0, 6.0]]}]
    assert checked_strokes(None) == [] and checked_strokes([]) == []


@pytest.mark.parametrize(
    "value",
    [
        "strokes",
        {"width": 20},
        [["not", "a", "stroke"]],
        [{"width": 0, "points": [[1, 2]]}],
        [{"width": True, "points": [[1, 2]]}],
        [{"width": 1e9, "points": [[1, 2]]}],
        [{"width": 20, "points": []}],
        [{"width": 20, "points": [[1, 2, 3]]}],
        [{"width": 20, "points": [[float("nan"), 2]]}],
        [{"width": 20, "points": [["1", 2]]}],
        [{"width": 20, "points": [[1, 2]] * 50_001}],
        [{"width": 20, "points": [[1, 2]]}] * 501,
    ],
)
def test_checked_strokes_refuses_what_the_canvas_never_sends(value):
    from mnist_core.preprocess import checked_strokes

    with pytest.raises(ValueError, match="canvas sent"):
        checked_strokes(value)
# --- Only the accepted formats, at bounded cost (issue 17, part 1) -------------------------------------------

import base64  # noqa: E402  (kept beside the tests that use them)
import gzip  # noqa: E402
import threading  # noqa: E402

import mnist_core.preprocess as preprocess  # noqa: E402
from mnist_core.preprocess import (  # noqa: E402
    DECODE_PIXELS,
    MAX_CANVAS_SIDE,
    DecoderBusyError,
    decode_canvas,
    decode_canvas_grey,
)

ACCEPTED = "only PNG, JPEG, GIF, BMP and WebP files are accepted"


def fits_file() -> bytes:
    """A tiny FITS image (the astronomy format Pillow decodes in pure Python), as a visitor could send it."""
    cards = ["SIMPLE  =                    T", "BITPIX  =                    8", "NAXIS   =                    2",
             "NAXIS1  =                    8", "NAXIS2  =                    8", "END"]
    header = "".join(card.ljust(80) for card in cards).ljust(2880).encode("ascii")
    return header + bytes(range(64)).ljust(2880, b"\0")


def foreign_files() -> dict[str, bytes]:
    """Real files of formats Pillow reads but the app does not accept, each one named like a PNG by the visitor."""
    digit = Image.fromarray(draw_seven(size=64))
    files = {name: encoded(digit, name) for name in ("TIFF", "EPS", "PPM", "PCX", "TGA", "SGI", "ICO", "DDS")}
    files["FITS"] = fits_file()
    files["FITS, gzip-compressed"] = gzip.compress(fits_file())
    return files


@pytest.mark.parametrize("name", list(foreign_files()))
def test_formats_the_app_does_not_accept_are_refused_before_any_decoder_runs(name, monkeypatch):
    data = foreign_files()[name]
    if name != "FITS, gzip-compressed":  # Pillow finds that one only through the FITS plugin's gzip sniffing
        assert Image.open(io.BytesIO(data)).format, "the sample is a real file of its format"

    def no_decoder(*args, **kwargs):
        raise AssertionError("a decoder ran on a refused format")

    monkeypatch.setattr(Image.core, "_decoder", no_decoder, raising=False)
    monkeypatch.setattr(Image, "_getdecoder", no_decoder)
    with pytest.raises(UnreadableImageError, match=ACCEPTED):
        decode_upload(data)


def test_an_eps_upload_never_runs_ghostscript(tmp_path, monkeypatch):
    from PIL import EpsImagePlugin

    marker = tmp_path / "ghostscript-ran"
    fake_gs = tmp_path / "gs"
    fake_gs.write_text(f"#!/bin/sh\ntouch {marker}\nexit 1\n")
    fake_gs.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:{__import__('os').environ['PATH']}")
    monkeypatch.setattr(EpsImagePlugin, "gs_binary", None)  # Pillow looks for gs again, and finds the stand-in
    eps = encoded(Image.fromarray(draw_seven(size=64)), "EPS")

    with pytest.raises(Exception):  # Pillow left to itself: it runs "gs" on the visitor's bytes
        Image.open(io.BytesIO(eps)).load()
    assert marker.exists()
    marker.unlink()

    with pytest.raises(UnreadableImageError) as raised:
        decode_upload(eps)
    assert str(raised.value) == f"The file could not be read as an image: {ACCEPTED}."
    assert not marker.exists()


def test_a_damaged_file_is_refused_without_internals(seven):
    data = encoded(Image.fromarray(seven), "PNG")
    with pytest.raises(UnreadableImageError) as raised:
        decode_upload(data[:-40])  # the pixel data and the end marker cut off
    assert str(raised.value) == "The file could not be read as an image: it is damaged or incomplete."


def test_a_file_over_the_byte_limit_is_refused_unread():
    with pytest.raises(UnreadableImageError, match=r"The file is too large \(20.0 MB\); the limit is 20 MB"):
        decode_upload(b"\x89PNG" + bytes(preprocess.MAX_UPLOAD_BYTES))


def big_photo_of_a_seven(width: int, height: int, mode: str = "L") -> Image.Image:
    """Dark ink on white paper, the digit filling the middle of a large picture."""
    small = Image.fromarray(255 - draw_seven(size=280))
    return small.resize((width, height), Image.Resampling.BILINEAR).convert(mode)


@pytest.mark.parametrize(
    ("file_format", "mode"),
    [("PNG", "L"), ("PNG", "RGBA"), ("PNG", "P"), ("JPEG", "RGB"), ("JPEG", "CMYK"), ("BMP", "RGB"), ("WEBP", "RGB")],
)
def test_a_large_picture_is_shrunk_while_decoding_and_reads_the_same(file_format, mode):
    data = encoded(big_photo_of_a_seven(3000, 2000, mode), file_format)
    with Image.open(io.BytesIO(data)) as full_size:  # what the recipe made of the whole picture
        unshrunk = to_mnist(np.asarray(full_size.convert("RGBA" if mode in ("RGBA", "P") else "RGB")))

    decoded = decode_upload(data)

    assert decoded.shape[0] * decoded.shape[1] <= DECODE_PIXELS
    assert abs(decoded.shape[1] / decoded.shape[0] - 1.5) < 0.01  # aspect ratio kept
    assert decoded.dtype == np.uint8
    assert_same_digit(to_mnist(decoded), unshrunk, max_mean_diff=0.02)


def test_a_large_16_bit_png_is_shrunk_and_scaled(reference):
    grey = np.asarray(big_photo_of_a_seven(2400, 2400), np.uint16) * 257
    decoded = decode_upload(png_bytes(Image.fromarray(grey)))

    assert decoded.dtype == np.uint8 and decoded.ndim == 2 and decoded.size <= DECODE_PIXELS
    assert decoded.max() == 255
    assert_same_digit(to_mnist(decoded), reference)


def test_a_large_transparent_palette_png_keeps_its_transparency(seven, reference):
    ink = Image.fromarray(np.where(seven > 127, 1, 0).astype(np.uint8), mode="P").resize((2800, 2800))
    ink.putpalette([255, 255, 255, 0, 0, 0])

    decoded = decode_upload(png_bytes(ink, transparency=0))

    assert decoded.shape[2] == 4 and decoded.shape[0] * decoded.shape[1] <= DECODE_PIXELS
    assert_same_digit(to_mnist(decoded), reference)


def test_a_large_jpeg_keeps_its_exif_orientation():
    tall = np.zeros((3000, 1500), np.uint8)
    tall[100:2900, 600:900] = 255
    exif = Image.Exif()
    exif[0x0112] = 6  # shown rotated 90 degrees clockwise

    decoded = decode_upload(encoded(Image.fromarray(tall), "JPEG", exif=exif))

    assert decoded.shape[1] > decoded.shape[0]  # lying on its side, as the phone showed it


class CountingDecodes:
    """Wraps the decoder behind decode_upload/decode_canvas and counts how often it really decodes."""

    def __init__(self, monkeypatch, hold: threading.Event | None = None):
        self.calls = 0
        self.in_flight = 0
        self.most_at_once = 0
        self.hold = hold
        self._lock = threading.Lock()
        self._real = preprocess._decode_checked
        monkeypatch.setattr(preprocess, "_decode_checked", self)
        preprocess._decoded.clear()
        monkeypatch.setattr(preprocess, "_decoded", preprocess._DecodedPictures())

    def __call__(self, *args):
        with self._lock:
            self.calls += 1
            self.in_flight += 1
            self.most_at_once = max(self.most_at_once, self.in_flight)
        try:
            if self.hold is not None:
                assert self.hold.wait(60), "the test never released the held decodes"
            return self._real(*args)
        finally:
            with self._lock:
                self.in_flight -= 1


def test_the_same_upload_is_decoded_once_however_often_the_page_reruns(seven, monkeypatch):
    decodes = CountingDecodes(monkeypatch)
    data = png_bytes(Image.fromarray(seven))
    damaged = data[:-40]

    first = decode_upload(data)
    for _ in range(5):
        again = decode_upload(bytes(data))  # a rerun hands over an equal, new bytes object
        assert again is first
    for _ in range(3):
        with pytest.raises(UnreadableImageError, match="damaged"):
            decode_upload(damaged)

    assert decodes.calls == 2
    assert not first.flags.writeable  # shared between reruns and sessions: nobody may draw on it
    np.testing.assert_array_equal(first, seven)


def test_at_most_one_decode_per_core_runs_at_once_whoever_asks(monkeypatch):
    from concurrent.futures import ThreadPoolExecutor

    release = threading.Event()
    decodes = CountingDecodes(monkeypatch, hold=release)
    monkeypatch.setattr(preprocess, "_decoder", ThreadPoolExecutor(max_workers=2))
    files = [png_bytes(Image.fromarray(draw_seven(left=10 + index, size=100))) for index in range(6)]
    results = []
    visitors = [threading.Thread(target=lambda data=data: results.append(decode_upload(data))) for data in files]
    for visitor in visitors:
        visitor.start()
    deadline = time.monotonic() + 60
    while decodes.in_flight < 2:  # two decode (held here); the other four wait for a decoder thread
        assert time.monotonic() < deadline, "no decode started"
        time.sleep(0.01)
    release.set()
    for visitor in visitors:
        visitor.join(60)

    assert len(results) == 6 and decodes.calls == 6
    assert decodes.most_at_once == 2


def test_a_visitor_is_told_to_retry_when_no_decoder_is_free_in_time(seven, monkeypatch):
    from concurrent.futures import ThreadPoolExecutor

    decoder = ThreadPoolExecutor(max_workers=1)
    monkeypatch.setattr(preprocess, "_decoder", decoder)
    monkeypatch.setattr(preprocess, "DECODE_WAIT_SECONDS", 0.01)
    monkeypatch.setattr(preprocess, "_decoded", preprocess._DecodedPictures())
    someone_elses_decode = threading.Event()
    decoder.submit(someone_elses_decode.wait, 60)
    try:
        with pytest.raises(DecoderBusyError, match="The server is busy reading other pictures: try again"):
            decode_upload(png_bytes(Image.fromarray(seven)))
    finally:
        someone_elses_decode.set()
    monkeypatch.setattr(preprocess, "DECODE_WAIT_SECONDS", 60)
    assert decode_upload(png_bytes(Image.fromarray(seven))).shape == seven.shape  # and the next try works


# --- The canvas value: what the browser sends, checked like an upload ---------------------------------------


def data_url(data: bytes, mime: str = "image/png") -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def canvas_png(picture: np.ndarray) -> bytes:
    return png_bytes(Image.fromarray(picture))


def test_a_drawn_canvas_decodes_to_its_rgba_pixels(seven, reference):
    rgba = np.dstack([seven] * 3 + [np.full_like(seven, 255)])

    pixels = decode_canvas(data_url(canvas_png(rgba)), rgba.shape[0])
    np.testing.assert_array_equal(pixels, rgba)
    assert_same_digit(to_mnist(pixels), reference)


def grey_value(grey: np.ndarray | bytes, level: int = 6) -> str:
    """A canvas value in its compact form, as digit_canvas.js sends it: base64 of the deflated grey pixels."""
    raw = grey if isinstance(grey, bytes) else np.ascontiguousarray(grey, dtype=np.uint8).tobytes()
    return base64.b64encode(zlib.compress(raw, level)).decode("ascii")


def test_the_compact_canvas_value_gives_the_same_28x28_image_as_its_png(seven, reference):
    # What the browser sends either way for one drawing: the same pixels, the same image for the model.
    rgba = np.dstack([seven] * 3 + [np.full_like(seven, 255)])
    from_png = decode_canvas(data_url(canvas_png(rgba)), rgba.shape[0])
    grey = decode_canvas_grey(grey_value(seven), seven.shape[0])

    assert grey.shape == seven.shape and grey.dtype == np.uint8 and not grey.flags.writeable
    np.testing.assert_array_equal(grey, from_png[..., 0])
    np.testing.assert_array_equal(to_mnist(grey), to_mnist(from_png))
    assert_same_digit(to_mnist(grey), reference)


@pytest.mark.parametrize(
    ("kind", "forged", "message"),
    [
        ("nothing", None, "the canvas sent something that is not a picture"),
        ("empty", "", "the canvas sent something that is not a picture"),
        ("not text", 12345, "the canvas sent something that is not a picture"),
        ("bad base64", "@@@=", "the canvas sent something that is not a picture"),
        ("not deflated", base64.b64encode(bytes(280 * 280)).decode(), "something that is not a picture"),
        ("a PNG data URL", "data:image/png;base64,iVBORw0KGgo=", "something that is not a picture"),
        ("too few pixels", grey_value(bytes(280 * 279)), "a picture of another size than itself"),
        ("one pixel more", grey_value(bytes(280 * 280 + 1)), "a picture of another size than itself"),
        ("a wrong checksum", grey_value(bytes(280 * 280))[:-4] + "AAAA", "something that is not a picture"),
        ("bytes after the pixels", base64.b64encode(zlib.compress(bytes(280 * 280)) * 2).decode(),
         "something that is not a picture"),
        ("cut short", base64.b64encode(zlib.compress(bytes(range(256)) * 307)[:-9]).decode(),
         "a picture of another size than itself"),
        ("longer than any canvas' value", "A" * 200_000, "something that is not a picture"),
    ],
)
def test_a_forged_compact_canvas_value_is_refused_with_a_clear_message(kind, forged, message):
    with pytest.raises(UnreadableImageError, match=message):
        decode_canvas_grey(forged, 280)


def test_a_compact_canvas_value_that_inflates_to_gigabytes_stops_one_byte_past_the_canvas(monkeypatch):
    from zlib_ng import zlib_ng

    inflated = []
    real = zlib_ng.decompressobj

    class Watched:
        def __init__(self):
            self._inner = real()

        def decompress(self, data, max_length=0):
            out = self._inner.decompress(data, max_length)
            inflated.append(len(out))
            return out

        def __getattr__(self, name):
            return getattr(self._inner, name)

    monkeypatch.setattr(zlib_ng, "decompressobj", Watched)
    bomb = zlib.compress(bytes(50 * 2**20), 9)  # 50 MB of zeros in about 50 KB: within the length bound
    with pytest.raises(UnreadableImageError, match="another size than itself"):
        decode_canvas_grey(base64.b64encode(bomb).decode(), 280)
    assert inflated == [280 * 280 + 1]


@pytest.mark.parametrize(
    ("kind", "forged", "message"),
    [
        ("no data URL", "hello", "The drawing could not be read: the canvas sent something that is not a PNG"),
        ("nothing", None, "The drawing could not be read: the canvas sent something that is not a PNG"),
        ("another type", data_url(b"<b>hi</b>", mime="text/html"), "The drawing could not be read"),
        ("not text", 12345, "The drawing could not be read: the canvas sent something that is not a PNG"),
        ("bad base64", "data:image/png;base64,@@@=", "The drawing could not be read: the canvas sent something"),
        ("junk bytes", data_url(b"\x00junk" * 100), "The drawing could not be read: the canvas sent something"),
        ("empty", "data:image/png;base64,", "The drawing could not be read: the canvas sent something"),
        ("EPS", data_url(encoded(Image.new("L", (8, 8)), "EPS")), "The drawing could not be read: the canvas sent"),
        ("JPEG", data_url(encoded(Image.new("RGB", (8, 8)), "JPEG")), "The drawing could not be read: the canvas"),
        ("TIFF", data_url(encoded(Image.new("L", (8, 8)), "TIFF")), "The drawing could not be read: the canvas"),
        ("49 MP PNG header", data_url(with_claimed_size(png_bytes(Image.new("L", (8, 8))), 7000, 7000)),
         r"The drawing is too large \(49,000,000 pixels\); the canvas is at most 1120 x 1120 pixels."),
        ("a strip wider than any canvas", data_url(png_bytes(Image.new("RGBA", (MAX_CANVAS_SIDE + 1, 1)))),
         r"The drawing is too large \(1121 x 1 pixels\)"),
        ("damaged PNG", data_url(png_bytes(Image.new("RGBA", (280, 280), (9, 9, 9, 255)))[:-30]),
         "The drawing could not be read: its PNG is damaged or incomplete."),
        ("too many bytes", data_url(b"\x89PNG" + bytes(preprocess.MAX_CANVAS_BYTES)),
         r"The drawing is too large \(8.0 MB\); the limit is 8 MB."),
    ],
)
def test_a_forged_canvas_value_is_refused_with_a_clear_message(kind, forged, message):
    with pytest.raises(UnreadableImageError, match=message):
        decode_canvas(forged, 280)


def test_a_forged_canvas_png_is_refused_before_its_pixels_are_decoded(monkeypatch):
    decodes = CountingDecodes(monkeypatch)
    monkeypatch.setattr(Image, "_getdecoder", lambda *args: pytest.fail("pixels were decoded"))
    huge = with_claimed_size(png_bytes(Image.new("L", (8, 8))), 7000, 7000)

    with pytest.raises(UnreadableImageError, match="too large"):
        decode_canvas(data_url(huge), 280)
    assert decodes.calls == 1


@st.composite
def grey_drawings(draw):
    """8-bit grey pictures of a background level with a patch of other levels somewhere (ink on paper or on a black
    canvas, a stroke at an edge or in a corner), now and then all one level."""
    height, width = draw(st.integers(3, 60)), draw(st.integers(3, 60))
    picture = np.full((height, width), draw(st.sampled_from([0, 255, 30, 220])), dtype=np.uint8)
    top, left = draw(st.integers(0, height - 1)), draw(st.integers(0, width - 1))
    bottom, right = draw(st.integers(top, height)), draw(st.integers(left, width))
    patch = draw(hnp.arrays(np.uint8, (bottom - top, right - left), elements=st.integers(0, 255)))
    picture[top:bottom, left:right] = patch
    return picture


@settings(max_examples=120, deadline=None)
@given(picture=grey_drawings())
def test_the_steps_find_the_box_on_the_levels_and_look_up_only_its_pixels(picture):
    """preprocess_steps finds the ink's box on the 8-bit levels and looks up only the pixels inside it
    (preprocess._ink_and_bbox): the same ink map as a lookup of every pixel, to the last bit, and the same box."""
    from mnist_core import preprocess

    try:
        expected = preprocess._level_ink(picture)[picture]
        expected_box = preprocess._ink_bbox(expected)
    except BlankImageError:
        with pytest.raises(BlankImageError):
            preprocess._ink_and_bbox(picture)
        return
    ink, box = preprocess._ink_and_bbox(picture)
    np.testing.assert_array_equal(ink, expected)
    assert box == expected_box


@settings(max_examples=60, deadline=None)
@given(
    picture=hnp.arrays(np.uint8, st.tuples(st.integers(3, 40), st.integers(3, 40), st.sampled_from([1, 3, 4])),
                       elements=st.integers(0, 255)),
    opaque=st.booleans(),
)
def test_the_8_bit_shortcut_gives_the_same_ink_as_the_float_path(picture, opaque):
    """ink_map reads 8-bit pictures through a table of the 256 levels (preprocess._level_ink): the same
    numbers, to the last bit, as the arithmetic on every pixel it replaced (the float path, still used for other
    pictures)."""
    from mnist_core import preprocess

    if picture.shape[2] == 4 and opaque:
        picture[..., 3] = 255
    picture = picture[..., 0] if picture.shape[2] == 1 else picture
    try:
        expected = preprocess._normalise_ink(preprocess._ink_signal(picture))
    except BlankImageError:
        with pytest.raises(BlankImageError):
            ink_map(picture)
        return
    np.testing.assert_array_equal(ink_map(picture), expected)

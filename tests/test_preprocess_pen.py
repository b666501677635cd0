"""The pen-width step of the preprocessing: drawn strokes of any width come out as wide as MNIST's pens."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from PIL import Image, ImageDraw

from mnist_core import preprocess
from mnist_core.constants import MNIST_BOX
from mnist_core.preprocess import PEN_RANGE, PEN_SCALE, normalise_pen, pen_width, preprocess_steps, to_mnist


def stroke_picture(pen: int, size: int = 280, height: int = 200) -> np.ndarray:
    """A '4' of three straight strokes drawn with a round pen `pen` px wide, white on black."""
    picture = Image.new("L", (size, size), 0)
    draw = ImageDraw.Draw(picture)
    left, top = (size - 0.7 * height) / 2, (size - height) / 2
    for points in ([(left + 0.5 * height, top), (left, top + 0.65 * height), (left + 0.7 * height, top + 0.65 * height)],
                   [(left + 0.5 * height, top + 0.2 * height), (left + 0.5 * height, top + height)]):
        draw.line(points, fill=255, width=pen, joint="curve")
        for x, y in (points[0], points[-1]):
            draw.ellipse((x - pen / 2, y - pen / 2, x + pen / 2, y + pen / 2), fill=255)
    return np.asarray(picture)


@pytest.mark.parametrize("width", [2, 5, 12, 30, 60])
def test_pen_width_reads_the_width_of_a_stroke(width):
    ink = np.zeros((200, 200), np.float32)
    ink[20:180, 100 - width // 2 : 100 - width // 2 + width] = 1.0
    assert pen_width(ink) == pytest.approx(width, rel=0.05)


def test_pen_width_of_a_ring():
    picture = Image.new("L", (200, 200), 0)
    ImageDraw.Draw(picture).ellipse((20, 20, 180, 180), outline=255, width=10)
    assert pen_width(np.asarray(picture, np.float32) / 255) == pytest.approx(10, rel=0.1)


def test_pen_width_of_a_blank_picture_is_zero():
    assert pen_width(np.zeros((5, 5), np.float32)) == 0.0


@pytest.mark.parametrize("pen", [4, 8, 20, 40])
def test_every_pen_comes_out_in_mnist_range(pen):
    steps = preprocess_steps(stroke_picture(pen))
    before, after = steps.pen_width
    # the 4 is 200 px tall, 20 px in the box; thin pens read a little wide once anti-aliased at the box's 4x scale
    assert before == pytest.approx(pen * MNIST_BOX / 200, rel=0.25, abs=0.15)
    assert PEN_RANGE[0] - 0.25 <= after <= PEN_RANGE[1] + 0.25
    assert steps.pen.shape[0] == MNIST_BOX * PEN_SCALE  # taller than wide: its height is the box's 80 px


def test_thin_and_thick_pens_come_out_alike():
    """A 4 drawn with the slider's thinnest and thickest pens: 0.6 and 3.5 px in the box, then both MNIST-like."""
    thin, thick = preprocess_steps(stroke_picture(6)), preprocess_steps(stroke_picture(40))
    assert thick.pen_width[0] - thin.pen_width[0] > 2.5
    assert abs(thick.pen_width[1] - thin.pen_width[1]) <= PEN_RANGE[1] - PEN_RANGE[0] + 0.25
    assert np.corrcoef(thin.centered.ravel(), thick.centered.ravel())[0, 1] > 0.85


def test_a_pen_already_in_range_is_left_alone():
    cropped = np.zeros((80, 40), np.float32)
    cropped[:, 15:26] = 1.0  # 11 px of 80: 2.75 px in the 20 px box
    image, (before, after) = normalise_pen(cropped)
    assert before == after
    np.testing.assert_allclose(image, cropped, atol=1e-5)


def test_the_pen_step_keeps_the_digit_in_its_frame():
    """Thickening never moves or resizes the digit: the fit into 20 x 20 and the centring see the same shape."""
    steps = preprocess_steps(stroke_picture(8))
    cropped_aspect = steps.cropped.shape[1] / steps.cropped.shape[0]
    assert steps.pen.shape[1] / steps.pen.shape[0] == pytest.approx(cropped_aspect, abs=1 / 80)


def test_a_dot_survives_the_pen_step():
    dot = np.zeros((50, 50), np.uint8)
    dot[20:23, 20:23] = 255
    result = to_mnist(dot)
    assert result.max() == pytest.approx(1.0)


# The fast forms of the pen step's building blocks against the plain definitions they replaced (the same numbers).

def reference_pen_width(ink: np.ndarray) -> float:
    grad_rows, grad_cols = np.gradient(np.pad(ink.astype(np.float32), 1))
    outline = float(np.hypot(grad_rows, grad_cols).sum(dtype=np.float64))
    area = float(ink.sum(dtype=np.float64))
    if outline <= 0:
        return 0.0
    half = outline / 2
    return (half - np.sqrt(max(half * half - 4 * area, 0.0))) / 2


def reference_morphology(image: np.ndarray, radius: int, pick) -> np.ndarray:
    """Pick over every offset of the disk dx^2 + dy^2 <= r^2 + r, outside the image 0."""
    height, width = image.shape
    padded = np.pad(image, radius)
    out = image.copy()
    for dy in range(-radius, radius + 1):
        for dx in range(-radius, radius + 1):
            if dx * dx + dy * dy <= radius * radius + radius:
                pick(out, padded[radius + dy : radius + dy + height, radius + dx : radius + dx + width], out=out)
    return out


unit_pictures = hnp.arrays(np.float32, st.tuples(st.integers(1, 30), st.integers(1, 30)),
                           elements=st.floats(0, 1, width=32))


@settings(max_examples=80, deadline=None)
@given(ink=unit_pictures)
def test_pen_width_is_the_gradient_formula(ink):
    assert pen_width(ink) == reference_pen_width(ink)


@settings(max_examples=80, deadline=None)
@given(image=unit_pictures, radius=st.integers(0, 6), dilate=st.booleans())
def test_disk_morphology_picks_over_every_offset_of_the_disk(image, radius, dilate):
    pick = np.maximum if dilate else np.minimum
    smaller, larger = preprocess._disk_morphology(image, radius, pick)
    np.testing.assert_array_equal(smaller, reference_morphology(image, radius, pick))
    np.testing.assert_array_equal(larger, reference_morphology(image, radius + 1, pick))


@settings(max_examples=80, deadline=None)
@given(image=hnp.arrays(np.float32, st.tuples(st.integers(1, 100), st.integers(1, 100)), elements=st.floats(0, 1, width=32)),
       out_width=st.integers(1, 90), out_height=st.integers(1, 90))
def test_the_pen_steps_resize_is_pillows_lanczos(image, out_width, out_height):
    """preprocess._lanczos resizes the pen step's pictures with Pillow's own LANCZOS weights as matrix products:
    the same picture as Pillow's resize, to float32 rounding."""
    expected = np.asarray(Image.fromarray(image).resize((out_width, out_height), Image.Resampling.LANCZOS))
    resized = preprocess._lanczos(image, (out_width, out_height))
    assert resized.shape == expected.shape
    np.testing.assert_allclose(resized, expected, rtol=0, atol=1e-5)


def test_larger_pictures_are_resized_by_pillow_itself():
    crop = np.zeros((250, 170), np.float32)
    crop[20:230, 60:90] = 1.0
    expected = np.asarray(Image.fromarray(crop).resize((54, 80), Image.Resampling.LANCZOS, reducing_gap=3.0))
    np.testing.assert_array_equal(preprocess._lanczos(crop, (54, 80), reducing_gap=3.0), expected)

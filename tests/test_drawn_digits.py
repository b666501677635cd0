"""The shipped models read digits drawn the way people draw them on the canvas (issue 10).

A small, fixed sample of tests/drawn_digits.py's scripted drawings (every style, a few hands each) through
`preprocess.to_mnist` and the shipped models; bench/bench_drawn_digits.py runs the full check and prints the
figures per style and per confusion.
"""

import collections

import numpy as np
import pytest

from drawn_digits import STYLES, Style, drawn_digits, line, random_hand, render
from mnist_core.constants import PROJECT_ROOT
from mnist_core.preprocess import PEN_RANGE, preprocess_steps, to_mnist

SHIPPED_DIR = PROJECT_ROOT / "models"
PER_STYLE = 6
# What the shipped models reach on this sample (BENCHMARKS.md has the full check), less a drawing or two: a guard
# against a retrained model that reads drawn digits worse. Issue 10's goals (98.5% and 97.5% on its hidden test)
# are not all met yet.
REQUIRED = {"strong-cnn": 0.97, "cnn": 0.97}
# Styles the shipped models still misread most of the time (BENCHMARKS.md, "Drawn digits"): a 1 with a long, flat
# flag and no foot is a 7 turned by 30 degrees, and MNIST has almost no such 1s to learn from.
KNOWN_WEAK = {(1, "long shallow flag")}


@pytest.fixture(scope="module")
def drawn_sample():
    samples = list(drawn_digits(PER_STYLE, seed=7))
    return samples, np.stack([to_mnist(sample.picture) for sample in samples]), np.array([s.label for s in samples])


def test_the_drawings_cover_every_digit_and_the_known_hard_cases():
    assert {style.digit for style in STYLES} == set(range(10))
    hard = {style.hard for style in STYLES}
    assert {"1 as 7", "7 with and without a bar", "open and closed 4", "6 and 5", "6 and 8", "9 and 8",
            "2 as 9"} <= hard
    flag_and_foot = [style for style in STYLES if style.digit == 1 and len(style.strokes) == 2]
    assert flag_and_foot, "a 1 with a flag and a separate foot stroke"


def test_drawings_look_like_canvas_pictures():
    rng = np.random.default_rng(0)
    for style in STYLES[:: len(STYLES) // 8]:
        hand = random_hand(rng)
        picture = render(style, hand)
        assert picture.shape == (280, 280, 4) and picture.dtype == np.uint8
        ink = picture[..., 3] if hand.alpha_canvas else picture[..., 0]
        assert ink.max() == 255 and 0 < (ink > 127).mean() < 0.5
        # nothing touches the border: the whole digit is on the canvas
        assert not ink[0].any() and not ink[-1].any() and not ink[:, 0].any() and not ink[:, -1].any()


def test_the_same_seed_draws_the_same_digits():
    first = [sample.picture for sample in drawn_digits(1, seed=3, styles=STYLES[:3])]
    again = [sample.picture for sample in drawn_digits(1, seed=3, styles=STYLES[:3])]
    assert all(np.array_equal(a, b) for a, b in zip(first, again))


def test_thick_and_thin_pens_come_out_with_mnist_like_strokes():
    """The preprocessing brings every pen width into MNIST's range, so a thin and a thick 7 look alike."""
    seven = Style(7, "plain", (tuple(line((0.0, 0.0), (1.0, 0.0), (0.35, 1.0))),))
    rng = np.random.default_rng(1)
    base = random_hand(rng)
    images = []
    for pen in (8, 16, 40):
        hand = base.__class__(**{**base.__dict__, "pen_px": pen, "height_px": 200})
        steps = preprocess_steps(render(seven, hand))
        before, after = steps.pen_width
        assert PEN_RANGE[0] - 0.3 <= after <= PEN_RANGE[1] + 0.3, (pen, before, after)
        images.append(steps.centered)
    assert np.abs(images[0] - images[2]).mean() < 0.06  # the 8 px and the 40 px pen give nearly the same digit


@pytest.mark.parametrize("name", sorted(REQUIRED))
def test_shipped_models_read_drawn_digits(name, drawn_sample):
    from mnist_core.inference import Classifier

    samples, images, labels = drawn_sample
    predicted = Classifier.load(name, SHIPPED_DIR).predict(images)
    right = predicted == labels
    mistakes = collections.Counter((int(t), int(p)) for t, p in zip(labels[~right], predicted[~right]))
    assert right.mean() >= REQUIRED[name], (
        f"{name} reads {right.mean():.1%} of {len(right)} drawn digits; mistakes (drawn, read): {mistakes}"
    )
    # No style may be a lost cause: each is read right most of the time.
    per_style = collections.defaultdict(list)
    for sample, ok in zip(samples, right):
        per_style[(sample.label, sample.style.name)].append(ok)
    weak = {style: f"{np.mean(oks):.0%}" for style, oks in per_style.items()
            if np.mean(oks) < 0.5 and style not in KNOWN_WEAK}
    assert not weak, f"{name} misreads these drawn styles most of the time: {weak}"

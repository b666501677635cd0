"""Junk people draw on the canvas instead of one digit: dots, tiny scribbles, small thick digits in a corner,
zigzags and scribbles over the whole canvas, two digits side by side. A TEST set for the ink hints (mnist_core/ink.py).

Drawn like tests/drawn_digits.py draws digits (round pens of 8-40 px, anti-aliased at 4x, white on black or in the
alpha channel), so they reach `preprocess` as a canvas picture would. Used by tests/test_ink.py (a few of each)
and bench/bench_ink.py (hundreds of each).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, replace

import numpy as np
from PIL import Image, ImageDraw

from drawn_digits import CANVAS, PEN_WIDTHS, STYLES, SUPERSAMPLE, Style, random_hand, render

KINDS = ("dot", "tiny scribble", "small thick digit", "zigzag", "big scribble", "two digits")


@dataclass(frozen=True)
class Junk:
    picture: np.ndarray  # (280, 280, 4) uint8, as the canvas sends it
    kind: str  # one of KINDS


def draw(strokes: list[np.ndarray], pen: float, alpha_canvas: bool) -> np.ndarray:
    """Strokes (each (N, 2) canvas pixels) drawn with a round pen, as the canvas does: (280, 280, 4) uint8."""
    big = CANVAS * SUPERSAMPLE
    ink = Image.new("L", (big, big), 0)
    pen_draw = ImageDraw.Draw(ink)
    radius = pen * SUPERSAMPLE / 2
    for stroke in strokes:
        points = np.clip(stroke, 0, CANVAS - 1) * SUPERSAMPLE
        if len(points) > 1:
            pen_draw.line([tuple(p) for p in points], fill=255, width=max(1, round(2 * radius)), joint="curve")
        for px, py in (points[0], points[-1]):
            pen_draw.ellipse((px - radius, py - radius, px + radius, py + radius), fill=255)
    grey = np.asarray(ink.resize((CANVAS, CANVAS), Image.Resampling.BOX))
    full = np.full_like(grey, 255)
    return np.dstack([full, full, full, grey]) if alpha_canvas else np.dstack([grey, grey, grey, full])


def _wobbly(rng: np.random.Generator, corners: np.ndarray, per_segment: int = 12) -> np.ndarray:
    """A path through `corners` with points along each segment and a little hand tremor."""
    out = [corners[0]]
    for a, b in zip(corners, corners[1:]):
        for t in np.linspace(0, 1, per_segment)[1:]:
            out.append(a + (b - a) * t)
    path = np.array(out, dtype=float)
    return path + rng.normal(0, 0.8, path.shape)


def dot(rng: np.random.Generator) -> np.ndarray:
    """A click, or a click with a tiny slip of the mouse."""
    pen = rng.uniform(*PEN_WIDTHS)
    centre = rng.uniform(30, CANVAS - 30, 2)
    slip = rng.uniform(0, pen * 0.6) * np.array([math.cos(a := rng.uniform(0, 2 * math.pi)), math.sin(a)])
    return draw([np.array([centre, centre + slip])], pen, bool(rng.integers(2)))


def tiny_scribble(rng: np.random.Generator) -> np.ndarray:
    """A few random turns inside a box of 15-45 px, with a thin to middling pen."""
    pen = rng.uniform(8, 20)
    side = rng.uniform(15, 45)
    origin = rng.uniform(10, CANVAS - side - 10, 2)
    corners = origin + rng.uniform(0, side, (int(rng.integers(4, 9)), 2))
    return draw([_wobbly(rng, corners, 6)], pen, bool(rng.integers(2)))


def small_thick_digit(rng: np.random.Generator) -> np.ndarray:
    """A digit 35-70 px tall near a corner with a 25-40 px pen: after cropping, a blob."""
    style = STYLES[int(rng.integers(len(STYLES)))]
    hand = replace(random_hand(rng), height_px=float(rng.uniform(35, 70)), pen_px=float(rng.uniform(25, 40)),
                   place=(float(rng.choice([rng.uniform(0, 0.1), rng.uniform(0.9, 1)])),
                          float(rng.choice([rng.uniform(0, 0.1), rng.uniform(0.9, 1)]))))
    return render(style, hand)


def zigzag(rng: np.random.Generator) -> np.ndarray:
    """Back and forth across most of the canvas, 4-10 times, horizontally or vertically."""
    pen = rng.uniform(*PEN_WIDTHS)
    low, high = rng.uniform(5, 50), rng.uniform(CANVAS - 50, CANVAS - 5)
    turns = int(rng.integers(4, 11))
    along = np.linspace(rng.uniform(10, 50), rng.uniform(CANVAS - 50, CANVAS - 10), turns + 1)
    across = np.where(np.arange(turns + 1) % 2 == 0, low, high)
    corners = np.stack([across, along], axis=1)
    if rng.integers(2):
        corners = corners[:, ::-1]
    return draw([_wobbly(rng, corners)], pen, bool(rng.integers(2)))


def big_scribble(rng: np.random.Generator) -> np.ndarray:
    """A random path through 8-16 points anywhere on the canvas."""
    pen = rng.uniform(*PEN_WIDTHS)
    corners = rng.uniform(20, CANVAS - 20, (int(rng.integers(8, 17)), 2))
    return draw([_wobbly(rng, corners)], pen, bool(rng.integers(2)))


def two_digits(rng: np.random.Generator) -> np.ndarray:
    """Two scripted digits written next to each other, a small gap between them, one hand for both."""
    first, second = (STYLES[int(i)] for i in rng.integers(len(STYLES), size=2))
    gap = rng.uniform(0.1, 0.35)
    strokes = tuple(tuple((x * first.width, y) for x, y in stroke) for stroke in first.strokes)
    shift = first.width + gap
    strokes += tuple(tuple((x * second.width + shift, y) for x, y in stroke) for stroke in second.strokes)
    pair = Style(-1, f"{first.digit}{second.digit}", strokes, width=1.0)
    hand = replace(random_hand(rng), rotation=float(rng.uniform(-5, 5)), width_ratio=1.0)
    return render(pair, hand)


MAKERS = {"dot": dot, "tiny scribble": tiny_scribble, "small thick digit": small_thick_digit, "zigzag": zigzag,
          "big scribble": big_scribble, "two digits": two_digits}


def junk(per_kind: int, seed: int = 0, kinds: tuple[str, ...] = KINDS) -> Iterator[Junk]:
    """`per_kind` pictures of every kind of junk; the same seed gives the same pictures."""
    rng = np.random.default_rng(seed)
    for kind in kinds:
        for _ in range(per_kind):
            yield Junk(MAKERS[kind](rng), kind)

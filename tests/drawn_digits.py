"""Digits drawn the way a mouse or a finger draws them, from scripted stroke paths: a TEST set, never training data.

Each `Style` is a digit as a person might write it (a 1 with a flag and a foot, an open 4, a 7 with a bar...),
given as pen strokes in a unit box (x to the right, y down, the digit's height is 1). `drawn_digits()` turns
styles into canvas pictures the way the Draw page would get them: every sample is drawn by a different "hand"
(a smooth random wobble of the strokes, a slant, a rotation, a width-to-height ratio), at a random size and place
on the 280 x 280 canvas, with one pen width for all its strokes (the page's slider: 8-40 px), round caps and
joins, anti-aliased like a browser canvas, as white strokes on black or as strokes in the alpha channel of a
transparent canvas. Nothing here is rendered from a font: the shapes are pen paths written out below.

Used by tests/test_drawn_digits.py (a small sample, in the suite) and bench/bench_drawn_digits.py (the full
check, with per-style and per-confusion figures). Models must never learn from these (issue 10's rule).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

CANVAS = 280
PEN_WIDTHS = (8, 40)  # the Draw page's stroke-width slider
SUPERSAMPLE = 4  # strokes are drawn at 4x and averaged down: the anti-aliasing a browser canvas does
MARGIN = 4  # px kept free around the drawing, so no stroke is cut by the canvas edge

Point = tuple[float, float]
Stroke = tuple[Point, ...]


# --- building pen paths -------------------------------------------------------------------------------------------


def arc(cx: float, cy: float, rx: float, ry: float, start: float, end: float, points: int = 40) -> list[Point]:
    """Points along an ellipse from angle `start` to `end` in degrees (0 = right, 90 = down: y grows downwards,
    so growing angles turn clockwise on screen)."""
    angles = np.radians(np.linspace(start, end, points))
    return [(cx + rx * math.cos(a), cy + ry * math.sin(a)) for a in angles]


def line(*corners: Point, points_per_unit: int = 40) -> list[Point]:
    """A polyline through `corners`, with points along each segment (so the hand's wobble bends it a little)."""
    out: list[Point] = [corners[0]]
    for (x0, y0), (x1, y1) in zip(corners, corners[1:]):
        count = max(2, int(math.hypot(x1 - x0, y1 - y0) * points_per_unit))
        out += [(x0 + (x1 - x0) * t, y0 + (y1 - y0) * t) for t in np.linspace(0, 1, count)[1:]]
    return out


def curve(*through: Point, points_per_span: int = 12) -> list[Point]:
    """A smooth curve through every point of `through` (a centripetal-free, uniform Catmull-Rom spline)."""
    ends = [through[0], *through, through[-1]]
    out: list[Point] = [through[0]]
    for i in range(1, len(ends) - 2):
        p0, p1, p2, p3 = (np.array(ends[j], dtype=float) for j in (i - 1, i, i + 1, i + 2))
        for t in np.linspace(0, 1, points_per_span)[1:]:
            point = 0.5 * (
                2 * p1 + (p2 - p0) * t + (2 * p0 - 5 * p1 + 4 * p2 - p3) * t**2 + (3 * p1 - p0 - 3 * p2 + p3) * t**3
            )
            out.append((float(point[0]), float(point[1])))
    return out


def chain(*pieces: list[Point]) -> Stroke:
    """One stroke made of pieces drawn one after the other without lifting the pen."""
    out: list[Point] = []
    for piece in pieces:
        out += piece if not out else piece[1:] if _close(out[-1], piece[0]) else piece
    return tuple(out)


def _close(a: Point, b: Point) -> bool:
    return math.hypot(a[0] - b[0], a[1] - b[1]) < 1e-6


# --- the styles -----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Style:
    digit: int
    name: str
    strokes: tuple[Stroke, ...]
    width: float = 0.62  # the digit's usual width for a height of 1, before the hand's own ratio
    hard: str = ""  # the known confusion this style probes ("1 as 7", ...), empty for ordinary shapes


def _styles() -> list[Style]:
    s: list[Style] = []

    def add(digit: int, name: str, *strokes, width: float = 0.62, hard: str = "") -> None:
        s.append(Style(digit, name, tuple(tuple(stroke) for stroke in strokes), width, hard))

    # 0
    add(0, "oval from the top", arc(0.5, 0.5, 0.5, 0.5, -90, 275, 60))
    add(0, "oval, anticlockwise, overlapping", arc(0.5, 0.5, 0.5, 0.5, -80, -450, 60))
    add(0, "round", arc(0.5, 0.5, 0.5, 0.5, -100, 265, 60), width=0.9)
    add(0, "egg, narrow top", curve((0.55, 0.0), (0.15, 0.25), (0.05, 0.7), (0.45, 1.0), (0.9, 0.75), (0.85, 0.25),
                                    (0.5, 0.0), (0.4, 0.06)))

    # 1
    add(1, "plain stroke", line((0.5, 0.0), (0.5, 1.0)), width=0.1)
    add(1, "short flag", line((0.2, 0.16), (0.55, 0.0), (0.55, 1.0)), width=0.3, hard="1 as 7")
    add(1, "long flag", line((0.0, 0.3), (0.6, 0.0), (0.6, 1.0)), width=0.42, hard="1 as 7")
    add(1, "flag and foot", line((0.15, 0.22), (0.5, 0.0), (0.5, 1.0)), line((0.1, 1.0), (0.9, 1.0)),
        width=0.5, hard="1 as 7")
    add(1, "long flag and foot", line((0.0, 0.32), (0.55, 0.0), (0.55, 1.0)), line((0.15, 1.0), (0.95, 1.0)),
        width=0.55, hard="1 as 7")
    add(1, "European, steep flag", line((0.0, 0.45), (0.5, 0.0), (0.5, 1.0)), width=0.45, hard="1 as 7")
    add(1, "European, steep flag and foot", line((0.0, 0.45), (0.5, 0.0), (0.5, 1.0)), line((0.05, 1.0), (0.95, 1.0)),
        width=0.55, hard="1 as 7")
    add(1, "flat flag and foot", line((0.05, 0.1), (0.5, 0.0), (0.5, 1.0)), line((0.15, 1.0), (0.85, 1.0)),
        width=0.5, hard="1 as 7")
    add(1, "long shallow flag", line((0.0, 0.22), (0.45, 0.0), (0.45, 1.0)), width=1.0, hard="1 as 7")
    add(1, "long shallow flag and foot", line((0.0, 0.22), (0.45, 0.0), (0.45, 1.0)), line((0.1, 1.0), (0.8, 1.0)),
        width=1.0, hard="1 as 7")
    add(1, "curved flag", chain(curve((0.05, 0.3), (0.3, 0.18), (0.5, 0.0)), line((0.5, 0.0), (0.5, 1.0))),
        width=0.35, hard="1 as 7")

    # 2
    add(2, "curve and base", chain(curve((0.05, 0.25), (0.3, 0.02), (0.72, 0.02), (0.93, 0.25), (0.82, 0.52),
                                         (0.4, 0.8), (0.02, 1.0)), line((0.02, 1.0), (1.0, 1.0))))
    add(2, "loop at the base", chain(curve((0.05, 0.22), (0.35, 0.0), (0.8, 0.05), (0.9, 0.3), (0.6, 0.6),
                                           (0.15, 0.92), (0.05, 0.98), (0.15, 0.82), (0.32, 0.95), (0.6, 1.0),
                                           (1.0, 0.97))))
    add(2, "Z-like", chain(curve((0.05, 0.15), (0.5, 0.0), (0.95, 0.2)), line((0.95, 0.2), (0.05, 1.0), (1.0, 1.0))))
    add(2, "curl at the top", chain(curve((0.35, 0.3), (0.12, 0.22), (0.3, 0.02), (0.75, 0.05), (0.9, 0.3),
                                          (0.55, 0.65), (0.05, 1.0)), line((0.05, 1.0), (0.95, 1.0))),
        hard="2 as 9")
    add(2, "no base, swung", curve((0.05, 0.2), (0.45, 0.0), (0.9, 0.2), (0.75, 0.55), (0.2, 0.95), (0.6, 0.95),
                                   (1.0, 0.85)))

    # 3
    add(3, "two bumps", curve((0.05, 0.12), (0.5, 0.0), (0.9, 0.2), (0.8, 0.4), (0.4, 0.48), (0.85, 0.6),
                              (0.95, 0.82), (0.6, 1.0), (0.05, 0.9)))
    add(3, "flat top", chain(line((0.05, 0.0), (0.9, 0.0), (0.4, 0.4)),
                             curve((0.4, 0.4), (0.85, 0.52), (0.95, 0.8), (0.55, 1.0), (0.05, 0.88))))
    add(3, "pointed middle", chain(curve((0.1, 0.1), (0.55, 0.0), (0.9, 0.22), (0.35, 0.5)),
                                   curve((0.35, 0.5), (0.9, 0.7), (0.6, 1.0), (0.1, 0.9))))

    # 4
    add(4, "open", line((0.55, 0.0), (0.0, 0.65), (1.0, 0.65)), line((0.72, 0.22), (0.72, 1.0)),
        hard="open and closed 4")
    add(4, "closed", line((0.7, 1.0), (0.7, 0.0), (0.0, 0.65), (1.0, 0.65)), hard="open and closed 4")
    add(4, "open top", line((0.12, 0.0), (0.05, 0.6), (0.95, 0.6)), line((0.75, 0.0), (0.75, 1.0)),
        hard="open and closed 4")
    add(4, "closed, two strokes", line((0.6, 0.0), (0.0, 0.68), (1.0, 0.68)), line((0.6, 0.0), (0.6, 1.0)),
        hard="open and closed 4")

    # 5
    add(5, "stem, belly, then bar", chain(line((0.15, 0.02), (0.1, 0.45)),
                                          curve((0.1, 0.45), (0.5, 0.35), (0.9, 0.5), (0.9, 0.8), (0.55, 1.0),
                                                (0.05, 0.9))),
        line((0.15, 0.02), (0.9, 0.02)))
    add(5, "one stroke from the top right", chain(line((0.95, 0.0), (0.15, 0.0), (0.1, 0.42)),
                                                  curve((0.1, 0.42), (0.5, 0.34), (0.92, 0.55), (0.85, 0.85),
                                                        (0.5, 1.0), (0.05, 0.9))))
    add(5, "round belly", chain(line((0.2, 0.0), (0.15, 0.4)),
                                curve((0.15, 0.4), (0.6, 0.38), (0.95, 0.65), (0.75, 0.97), (0.3, 0.98),
                                      (0.05, 0.8))),
        line((0.2, 0.0), (0.95, 0.0)), hard="6 and 5")

    # 6
    add(6, "classic", curve((0.8, 0.0), (0.4, 0.15), (0.1, 0.55), (0.15, 0.9), (0.5, 1.0), (0.85, 0.85),
                            (0.85, 0.6), (0.5, 0.48), (0.12, 0.65)), hard="6 and 5")
    add(6, "straight stem", chain(line((0.7, 0.0), (0.12, 0.62)),
                                  arc(0.5, 0.72, 0.4, 0.28, 180, 180 - 355, 40)), hard="6 and 5")
    add(6, "small loop", curve((0.75, 0.0), (0.35, 0.2), (0.15, 0.6), (0.25, 0.95), (0.6, 0.98), (0.75, 0.8),
                               (0.55, 0.65), (0.2, 0.75)), hard="6 and 5")
    add(6, "hooked top", curve((0.9, 0.12), (0.55, 0.0), (0.2, 0.25), (0.08, 0.65), (0.3, 0.97), (0.7, 0.95),
                               (0.85, 0.7), (0.55, 0.5), (0.15, 0.62)), hard="6 and 5")
    add(6, "open loop", curve((0.75, 0.0), (0.35, 0.2), (0.1, 0.6), (0.25, 0.95), (0.65, 0.97), (0.85, 0.75),
                              (0.6, 0.55), (0.35, 0.58)), hard="6 and 5")
    add(6, "big loop", curve((0.7, 0.0), (0.3, 0.2), (0.05, 0.6), (0.3, 1.0), (0.8, 0.95), (0.9, 0.6),
                             (0.5, 0.35), (0.1, 0.55)), hard="6 and 8")

    # 7
    add(7, "plain", line((0.0, 0.0), (1.0, 0.0), (0.35, 1.0)), hard="7 with and without a bar")
    add(7, "with a bar", line((0.0, 0.0), (1.0, 0.0), (0.35, 1.0)), line((0.3, 0.52), (0.9, 0.5)),
        hard="7 with and without a bar")
    add(7, "hooked start", line((0.0, 0.18), (0.03, 0.0), (1.0, 0.0), (0.4, 1.0)), hard="7 with and without a bar")
    add(7, "curved stem", chain(line((0.0, 0.02), (1.0, 0.0)), curve((1.0, 0.0), (0.6, 0.45), (0.45, 1.0))),
        hard="7 with and without a bar")
    add(7, "bar, curved stem", chain(line((0.0, 0.02), (1.0, 0.0)), curve((1.0, 0.0), (0.6, 0.45), (0.45, 1.0))),
        line((0.35, 0.5), (0.95, 0.48)), hard="7 with and without a bar")

    # 8
    add(8, "one stroke", curve((0.85, 0.12), (0.5, 0.0), (0.15, 0.15), (0.25, 0.38), (0.75, 0.6), (0.9, 0.82),
                               (0.5, 1.0), (0.1, 0.82), (0.25, 0.6), (0.75, 0.38), (0.85, 0.15), (0.7, 0.05)))
    add(8, "two circles", arc(0.5, 0.24, 0.36, 0.24, 90, 90 + 360, 40), arc(0.5, 0.74, 0.45, 0.26, -90, 270, 40))
    add(8, "from the middle", curve((0.5, 0.48), (0.1, 0.3), (0.45, 0.0), (0.85, 0.2), (0.5, 0.48), (0.1, 0.75),
                                    (0.45, 1.0), (0.9, 0.78), (0.5, 0.48)), hard="9 and 8")

    # 9
    add(9, "loop and straight stem", chain(arc(0.5, 0.28, 0.45, 0.28, 0, -360, 40), line((0.95, 0.28), (0.9, 1.0))))
    add(9, "loop and curved stem", chain(arc(0.5, 0.28, 0.45, 0.28, 0, -360, 40),
                                         curve((0.95, 0.28), (0.9, 0.75), (0.6, 1.0), (0.2, 0.92))), hard="9 and 8")
    add(9, "loop, then stem", arc(0.5, 0.28, 0.45, 0.28, -20, -380, 40), line((0.95, 0.05), (0.95, 1.0)))
    add(9, "tail curling back", chain(arc(0.5, 0.28, 0.45, 0.28, 0, -360, 40),
                                      curve((0.95, 0.28), (0.88, 0.8), (0.55, 1.0), (0.15, 0.9), (0.08, 0.8))),
        hard="9 and 8")
    add(9, "g-like", chain(arc(0.45, 0.3, 0.4, 0.3, 10, -350, 40),
                           curve((0.85, 0.35), (0.9, 0.8), (0.6, 1.0), (0.1, 0.95))), hard="2 as 9")
    return s


STYLES: tuple[Style, ...] = tuple(_styles())


# --- a hand, and the canvas -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Hand:
    """How one person draws one digit: slant, turn, proportions, wobble, size, place and pen width."""

    slant: float  # horizontal shift per unit of height above the baseline (0.3 ~ 17 degrees to the right)
    rotation: float  # degrees, clockwise
    width_ratio: float  # the style's width times this
    wobble: float  # amplitude of the smooth random displacement, in units of the digit's height
    wobble_phases: tuple[float, ...]
    height_px: float  # the digit's height on the canvas
    pen_px: float
    place: tuple[float, float]  # where the drawing sits in the free room, 0..1 each way
    alpha_canvas: bool  # strokes in the alpha channel of a transparent canvas, else white on opaque black


def random_hand(rng: np.random.Generator) -> Hand:
    while True:
        height = float(rng.uniform(70, 250))
        pen = float(rng.uniform(*PEN_WIDTHS))
        # After MNIST's fit into 20 x 20 the pen becomes pen / height * 20 px: keep 0.7-5 px, the range people draw
        # (thinner is a hairline, thicker a blob).
        if 0.035 <= pen / height <= 0.25:
            break
    return Hand(
        slant=float(rng.uniform(-0.15, 0.5)),
        rotation=float(rng.uniform(-12, 12)),
        width_ratio=float(rng.uniform(0.75, 1.25)),
        wobble=float(rng.uniform(0.0, 0.05)),
        wobble_phases=tuple(float(p) for p in rng.uniform(0, 2 * math.pi, 8)),
        height_px=height,
        pen_px=pen,
        place=(float(rng.uniform()), float(rng.uniform())),
        alpha_canvas=bool(rng.integers(2)),
    )


def _shaped(style: Style, hand: Hand) -> list[np.ndarray]:
    """The style's strokes as the hand draws them, in units of the digit's height (not yet on the canvas)."""
    phases = hand.wobble_phases
    shaped = []
    for stroke in style.strokes:
        points = np.array(stroke, dtype=float)
        x, y = points[:, 0] * style.width * hand.width_ratio, points[:, 1]
        # A smooth wobble: two low frequencies per axis, so strokes bend a little but stay clean lines.
        x = x + hand.wobble * (np.sin(2.1 * y + phases[0]) + np.sin(3.3 * x + 1.7 * y + phases[1]))
        y = y + hand.wobble * (np.sin(2.3 * x + phases[2]) + np.sin(3.1 * y + 1.3 * x + phases[3]))
        x = x + hand.slant * (1.0 - y)
        turn = math.radians(hand.rotation)
        x, y = x * math.cos(turn) - y * math.sin(turn), x * math.sin(turn) + y * math.cos(turn)
        shaped.append(np.stack([x, y], axis=1))
    return shaped


def render(style: Style, hand: Hand) -> np.ndarray:
    """The canvas picture: (280, 280, 4) uint8 RGBA, as the Draw page's canvas component returns it."""
    strokes = _shaped(style, hand)
    every = np.concatenate(strokes)
    low, high = every.min(axis=0), every.max(axis=0)
    scale = hand.height_px / max(high[1] - low[1], 1e-6)
    size = (high - low) * scale
    # A wide style (a long-flagged 1 with a foot, a wide 0) at the hand's height may not fit: shrink it to fit.
    room = CANVAS - 2 * MARGIN - hand.pen_px
    if size.max() > room:
        scale *= room / size.max()
        size = (high - low) * scale
    free = room - size
    offset = MARGIN + hand.pen_px / 2 + free * np.array(hand.place)

    big = CANVAS * SUPERSAMPLE
    ink = Image.new("L", (big, big), 0)
    pen = ImageDraw.Draw(ink)
    radius = hand.pen_px * SUPERSAMPLE / 2
    for stroke in strokes:
        points = ((stroke - low) * scale + offset) * SUPERSAMPLE
        pen.line([tuple(p) for p in points], fill=255, width=max(1, round(2 * radius)), joint="curve")
        for px, py in (points[0], points[-1]):  # round caps, as the canvas draws them
            pen.ellipse((px - radius, py - radius, px + radius, py + radius), fill=255)
    grey = np.asarray(ink.resize((CANVAS, CANVAS), Image.Resampling.BOX))
    if hand.alpha_canvas:
        white = np.full_like(grey, 255)
        return np.dstack([white, white, white, grey])
    opaque = np.full_like(grey, 255)
    return np.dstack([grey, grey, grey, opaque])


@dataclass(frozen=True)
class DrawnDigit:
    picture: np.ndarray  # (280, 280, 4) uint8
    label: int
    style: Style
    hand: Hand


def drawn_digits(per_style: int, seed: int = 0, styles: tuple[Style, ...] = STYLES) -> Iterator[DrawnDigit]:
    """`per_style` drawings of every style, each by its own random hand; the same seed gives the same pictures."""
    rng = np.random.default_rng(seed)
    for style in styles:
        for _ in range(per_style):
            hand = random_hand(rng)
            yield DrawnDigit(render(style, hand), style.digit, style, hand)

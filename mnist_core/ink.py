"""Is this ink one digit? Plain-words hints for drawings a model will answer confidently anyway.

A classifier always picks one of the ten digits, often at 90% or more, for a dot, a scribble or two digits side
by side. These checks look at the ink itself (after `preprocess.preprocess_steps`) and say what is wrong in a
person's words, with a few measurable, scale-free features:

- stroke length in pen widths (the ink's area over its pen width, then over the pen width again): a dot is about
  1, a short dash 2-3, MNIST's shortest digits (a bold 1) 4 or more;
- the ink's size on the canvas (the longer side of its box over the canvas' side; MNIST's digits fill 20 of 28);
- the pen's width over the ink's size: a digit drawn small with a wide pen is a blob after cropping;
- stroke length over the ink's size: a zigzag or scribble over the whole canvas runs back and forth many times
  (digits with long strokes, an 8 or a 0, have loops; a zigzag has none), and loops: more than an 8's two is a
  scribble crossing itself;
- width over height of the ink's box, and separate pieces of ink side by side (parts that do not touch and do not
  share columns): two digits in a row.

The thresholds come from measuring MNIST's 10,000 test digits (upscaled to the canvas), scripted drawn digits and
generated junk (bench/bench_ink.py; figures in BENCHMARKS.md): each rule is set where MNIST almost never goes.
The relative size rule is for the canvas only: a photo of a small digit on a large sheet is fine once cropped.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from mnist_core.constants import MNIST_BOX
from mnist_core.i18n import N_, format_percent, gettext as _
from mnist_core.preprocess import PEN_SCALE, PreprocessSteps

# Thresholds (bench/bench_ink.py shows where MNIST, drawn digits and junk fall for each).
MIN_STROKE_LENGTH = 3.0  # in pen widths: below is a dot or a dash
MIN_CANVAS_SHARE = 0.25  # longer side of the ink's box over the canvas side: below is too small to draw well
MAX_PEN_SHARE = 0.33  # pen width over the longer side of the ink's box: above is a blob
SMALLISH_CANVAS_SHARE = 0.4  # a digit under this share of the canvas...
SMALLISH_PEN_SHARE = 0.2  # ...with a pen above this share of its size is a blob too
MAX_PATH_LENGTH = 3.5  # stroke length over the longer side of the ink's box: above is a zigzag or scribble
MAX_OPEN_PATH_LENGTH = 2.8  # the same for ink without loops: long digits (8, 0, 6, 9) have loops, zigzags not
MAX_ASPECT = 2.0  # width over height of the ink's box: above is wider than any single digit
SIDE_BY_SIDE_SHARE = 0.15  # a piece of ink counts as a part when it holds at least this share of the ink
SIDE_BY_SIDE_OVERLAP = 0.25  # pieces sharing more than this of the narrower one's columns are one above the other
MAX_LOOPS = 2  # holes in the ink: an 8 has two; more is a scribble crossing itself
LOOP_SHARE = 0.02  # a hole counts when it is at least this share of the ink's box
MIN_PEN = 1 / PEN_SCALE  # the finest width the preprocessing measures (a pixel at 4x)
PIECES_SIDE = 56  # the ink's box is looked at this small to find its separate pieces (fast, and specks vanish)

CONFIDENCE_NOTE = N_("A model always picks one of the ten digits, whatever it is shown: its percentage says how "
                     "strongly it prefers that digit to the other nine, not whether it is right. Confidence is not "
                     "correctness.")  # translated where it is shown: _(CONFIDENCE_NOTE)


@dataclass(frozen=True)
class InkFeatures:
    """What the checks measure, all scale-free (bench/bench_ink.py prints their spread)."""

    stroke_length: float  # the strokes' total length in pen widths
    canvas_share: float  # longer side of the ink's box over the picture's longer side
    pen_share: float  # pen width over the longer side of the ink's box
    path_length: float  # the strokes' total length over the longer side of the ink's box
    aspect: float  # width over height of the ink's box
    parts_side_by_side: int  # tall pieces of ink (each >= SIDE_BY_SIDE_SHARE of it) in columns of their own
    loops: int  # holes in the ink of at least LOOP_SHARE of its box


@dataclass(frozen=True)
class InkHint:
    """One thing wrong with the ink: `kind` for code and tests, `message` for people."""

    kind: str  # "dot", "small", "thick", "scribble", "several", "wide"
    message: str


def measure(steps: PreprocessSteps) -> InkFeatures:
    """The features of the ink in `steps` (from `preprocess.preprocess_steps`).

    Lengths are in pixels of MNIST's 20 x 20 box, with the pen width the preprocessing measured there before
    changing it, so a drawing and the same drawing three times larger measure alike.
    """
    top, left, bottom, right = steps.bbox
    height, width = bottom - top, right - left
    longer = max(height, width)
    to_box = MNIST_BOX / longer
    area = float(steps.cropped.sum(dtype=np.float64)) * to_box * to_box
    pen = max(steps.pen_width[0], MIN_PEN)
    length = area / pen
    parts, loops = _pieces(steps.cropped)
    return InkFeatures(
        stroke_length=length / pen,
        canvas_share=longer / max(steps.ink.shape),
        pen_share=pen / MNIST_BOX,
        path_length=length / MNIST_BOX,
        aspect=width / height,
        parts_side_by_side=parts,
        loops=loops,
    )


def ink_hints(steps: PreprocessSteps, canvas: bool = True) -> list[InkHint]:
    """What is wrong with the ink, in plain words (an empty list for ink that looks like one digit).

    `canvas`: the picture is the Draw page's canvas, where the ink's size on it matters; for a photo it does not.
    At most one hint about size (dot, small, thick) and one about shape (several, wide, scribble), the likeliest.
    """
    features = measure(steps)
    hints = []
    if features.stroke_length < MIN_STROKE_LENGTH:
        hints.append(InkHint("dot", _("That is only a dot or a short dash: too little ink to read a digit from. "
                                      "Draw a whole digit.")))
    elif canvas and features.canvas_share < MIN_CANVAS_SHARE:
        hints.append(InkHint("small", _("The drawing is very small ({share} of the canvas): draw bigger, about as "
                                        "tall as the canvas.").format(share=format_percent(features.canvas_share, 0))))
    elif features.pen_share > MAX_PEN_SHARE or (
            canvas and features.canvas_share < SMALLISH_CANVAS_SHARE and features.pen_share > SMALLISH_PEN_SHARE):
        hints.append(InkHint("thick", _("The strokes are very thick for a digit this size: draw bigger or pick a "
                                        "thinner stroke width.") if canvas else
                             _("The strokes are very thick for a digit this size: draw bigger.")))
    if features.parts_side_by_side >= 2:
        hints.append(InkHint("several", _("There are {count} separate pieces side by side: draw one digit only.").format(
            count=features.parts_side_by_side)))
    elif features.aspect > MAX_ASPECT:
        hints.append(InkHint("wide", _("The drawing is much wider than a digit: draw one digit only.")))
    elif (features.path_length > MAX_PATH_LENGTH or features.loops > MAX_LOOPS
          or (features.loops == 0 and features.path_length > MAX_OPEN_PATH_LENGTH)):
        hints.append(InkHint("scribble", _("That is a lot of ink going back and forth for one digit (a scribble or "
                                           "a zigzag?): draw one digit with a few clear strokes.")))
    return hints


def _pieces(cropped: np.ndarray) -> tuple[int, int]:
    """(parts side by side, loops) of the ink, looked at with the crop's longer side at PIECES_SIDE px.

    Parts: the 8-connected pieces of ink holding SIDE_BY_SIDE_SHARE of it and at least half the ink's height,
    that share at most SIDE_BY_SIDE_OVERLAP of the narrower one's columns with another (a 5's detached bar is too
    short, a 4's two strokes cross). Loops: holes in the ink (background the border cannot reach, 4-connected so a
    diagonal gap in a stroke does not open one) of at least LOOP_SHARE of the box; an 8 has two.
    """
    small = _shrunk(cropped, PIECES_SIDE) > 0.3
    height = small.shape[0]
    total = int(small.sum())
    spans = sorted((piece.left, piece.right) for piece in _components(small, diagonal=True)
                   if piece.size >= SIDE_BY_SIDE_SHARE * total and piece.bottom - piece.top >= 0.5 * height)
    parts: list[tuple[int, int]] = []
    for start, end in spans:
        if parts:
            last_start, last_end = parts[-1]
            narrower = min(end - start, last_end - last_start)
            if last_end - start > SIDE_BY_SIDE_OVERLAP * narrower:  # mostly the same columns: one above the other
                parts[-1] = (last_start, max(last_end, end))
                continue
        parts.append((start, end))
    # A frame of background around the ink: the piece of background holding it is the outside, the rest are holes.
    background = _components(np.pad(~small, 1, constant_values=True), diagonal=False)
    loops = sum(1 for piece in background if piece.top > 0 and piece.size >= LOOP_SHARE * small.size)
    return len(parts), loops


def _shrunk(image: np.ndarray, longer: int) -> np.ndarray:
    height, width = image.shape
    scale = min(1.0, longer / max(height, width))
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    patch = Image.fromarray(np.ascontiguousarray(image, dtype=np.float32))
    return np.asarray(patch.resize(size, Image.Resampling.BOX), dtype=np.float32)


@dataclass
class _Piece:
    size: int
    top: int
    bottom: int  # exclusive
    left: int
    right: int  # exclusive


def _components(mask: np.ndarray, diagonal: bool) -> list[_Piece]:
    """The connected pieces of a small boolean mask (8-connected with `diagonal`, else 4-connected).

    Works on runs of True along each row, joining runs of neighbouring rows that touch (union-find): a few hundred
    runs on a PIECES_SIDE mask, so plain Python is quick enough and needs no scipy.
    """
    reach = 1 if diagonal else 0
    runs: list[tuple[int, int, int]] = []  # (row, start, end exclusive)
    row_runs: list[list[int]] = []
    for row, values in enumerate(mask):
        edges = np.flatnonzero(np.diff(np.concatenate(([0], values.astype(np.int8), [0]))))
        row_runs.append(list(range(len(runs), len(runs) + len(edges) // 2)))
        runs += [(row, int(start), int(end)) for start, end in zip(edges[::2], edges[1::2])]
    parent = list(range(len(runs)))

    def root(index: int) -> int:
        while parent[index] != index:
            parent[index] = parent[parent[index]]
            index = parent[index]
        return index

    for above, below in zip(row_runs, row_runs[1:]):
        for upper in above:
            _, upper_start, upper_end = runs[upper]
            for lower in below:
                _, lower_start, lower_end = runs[lower]
                if lower_start < upper_end + reach and upper_start < lower_end + reach:
                    parent[root(lower)] = root(upper)
    pieces: dict[int, _Piece] = {}
    for index, (row, start, end) in enumerate(runs):
        piece = pieces.get(key := root(index))
        if piece is None:
            pieces[key] = _Piece(end - start, row, row + 1, start, end)
        else:
            piece.size += end - start
            piece.bottom = row + 1
            piece.left, piece.right = min(piece.left, start), max(piece.right, end)
    return list(pieces.values())

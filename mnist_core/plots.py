"""Plotly figure builders: pure functions from data to go.Figure, so pages only call them and tests can check them.

Imports no TensorFlow. Images are numpy arrays (28x28, uint8 0-255 or float 0-1, ink bright).
"""

from __future__ import annotations

import base64
import bisect
import io
import math
from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go
from PIL import Image
from plotly.subplots import make_subplots

from mnist_core.constants import CLASS_NAMES, IMAGE_SIZE, NUM_CLASSES
from mnist_core.i18n import N_, format_percent, gettext as _

TRAIN_COLOUR = "#1f77b4"
VALIDATION_COLOUR = "#ff7f0e"
INK_SCALE = "gray"  # white ink on black, as MNIST stores it
_MARGIN = dict(l=10, r=10, t=40, b=10)


def _to_unit(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image, dtype=np.float32)
    return image / 255.0 if image.max(initial=0) > 1.0 else image


def mosaic(images: np.ndarray, columns: int, gap: int = 2) -> np.ndarray:
    """Tile (n, h, w) images into one array, `columns` wide, with `gap` pixels of NaN between them."""
    images = np.asarray(images, dtype=np.float32)
    count, height, width = images.shape
    rows = max(1, -(-count // columns))
    tiled = np.full((rows * (height + gap) - gap, columns * (width + gap) - gap), np.nan, dtype=np.float32)
    for index, image in enumerate(images):
        row, column = divmod(index, columns)
        top, left = row * (height + gap), column * (width + gap)
        tiled[top : top + height, left : left + width] = image
    return tiled


# Plotly config for charts whose points are picked with a click (the Dataset grid, the confusion matrix): no toolbar,
# and no double click. Plotly takes two clicks within doubleClickDelay (300 ms by default) as a double click, which
# clears the selection: a second cell picked quickly after the first came back as "nothing selected".
PICK_CONFIG = {"displayModeBar": False, "doubleClickDelay": 1}


# A grid of digits goes to the browser as one byte a pixel: ink levels 0..GRID_INK_LEVELS on the grey scale, and
# GRID_GAP (above the scale's top, so drawn white like the page) between the tiles and behind their captions. Plotly
# sends a uint8 array as base64 of its bytes: the Train page's panel of 20 digits, sent to every Train page every
# second, is 23 KB that way, where float32 with NaN gaps was 94 KB (125 KB in base64).
GRID_INK_LEVELS = 254
GRID_GAP = 255


def grid_pixels(z) -> np.ndarray:
    """A sample_grid's heatmap values read back as ink in [0, 1], NaN in the gaps (for checks of what it shows)."""
    levels = np.asarray(z, dtype=np.float64)
    return np.where(levels > GRID_INK_LEVELS, np.nan, levels / GRID_INK_LEVELS)


def sample_grid(
    images: np.ndarray,
    titles: Sequence[str],
    columns: int = 10,
    title: str | None = None,
    title_colours: Sequence[str] | None = None,
) -> go.Figure:
    """A grid of digits, each captioned (e.g. its label, or "label / prediction"). (The Dataset page's grid, where a
    tile is picked, is widgets/digit_grid.py: no Plotly on that page's first screen.)"""
    images = np.asarray(images)
    gap, caption = 2, 9  # pixels between tiles, and above each tile for its caption
    count = len(images)
    rows = max(1, -(-count // columns))
    cell_h, cell_w = IMAGE_SIZE + caption, IMAGE_SIZE
    canvas = np.full((rows * (cell_h + gap), columns * (cell_w + gap)), GRID_GAP, dtype=np.uint8)
    annotations = []
    for index in range(count):
        row, column = divmod(index, columns)
        top, left = row * (cell_h + gap) + caption, column * (cell_w + gap)
        ink = np.clip(_to_unit(images[index]), 0.0, 1.0)
        canvas[top : top + IMAGE_SIZE, left : left + IMAGE_SIZE] = np.rint(ink * GRID_INK_LEVELS)
        annotations.append(
            dict(
                x=left + IMAGE_SIZE / 2 - 0.5,
                y=top - caption / 2 - 0.5,
                text=str(titles[index]),
                showarrow=False,
                font=dict(size=11, color=title_colours[index] if title_colours else None),
            )
        )
    figure = go.Figure(
        go.Heatmap(z=canvas, colorscale=INK_SCALE, zmin=0, zmax=GRID_INK_LEVELS, showscale=False, hoverinfo="skip")
    )
    figure.update_layout(
        annotations=annotations,
        title=title,
        margin=_MARGIN if title else dict(l=5, r=5, t=5, b=5),
        height=max(160, int(rows * 80 + (40 if title else 10))),
        plot_bgcolor="rgba(0,0,0,0)",
    )
    figure.update_xaxes(visible=False, constrain="domain", range=[-0.5, canvas.shape[1] - 0.5])
    figure.update_yaxes(visible=False, range=[canvas.shape[0] - 0.5, -0.5], scaleanchor="x")
    return figure


def class_histogram(train_counts: np.ndarray, test_counts: np.ndarray | None = None) -> go.Figure:
    """Images per digit, training (and test) side by side."""
    figure = go.Figure(go.Bar(x=list(CLASS_NAMES), y=train_counts, name=_("train"), marker_color=TRAIN_COLOUR,
                              text=train_counts, textposition="outside"))
    if test_counts is not None:
        figure.add_bar(x=list(CLASS_NAMES), y=test_counts, name=_("test"), marker_color=VALIDATION_COLOUR,
                       text=test_counts, textposition="outside")
    figure.update_layout(
        title=_("Images per digit"), xaxis_title=_("digit"), yaxis_title=_("images"), barmode="group",
        margin=_MARGIN, height=360, legend=dict(orientation="h", y=1.02, x=1, xanchor="right", yanchor="bottom"),
    )
    figure.update_xaxes(type="category")
    return figure


def digit_counts(counts: np.ndarray, title: str | None = None) -> go.Figure:
    """How many drawings of each digit a collection holds, one bar per digit (0 to 9, empty ones too)."""
    title = _("Drawings per digit") if title is None else title
    counts = np.asarray(counts)
    figure = go.Figure(go.Bar(x=list(CLASS_NAMES), y=counts, marker_color=TRAIN_COLOUR, text=counts,
                              textposition="outside", cliponaxis=False))
    most = max(1, int(counts.max(initial=0)))
    figure.update_layout(title=title, xaxis_title=_("digit"), yaxis_title=_("drawings"), margin=_MARGIN, height=300,
                         yaxis=dict(range=[0, most * 1.2], dtick=max(1, math.ceil(most / 5))))  # whole drawings
    figure.update_xaxes(type="category")
    return figure


def mean_digits(means: np.ndarray) -> go.Figure:
    """The average image of each digit, in one row."""
    # Captions are the bare digits: "mean 0mean 1..." ran together on a phone's narrow tiles.
    return sample_grid(means, list(CLASS_NAMES), columns=NUM_CLASSES)


def pixel_heatmap(image: np.ndarray, title: str | None = None) -> go.Figure:
    """One digit's raw 28x28 pixel values as a heatmap with the numbers written in each cell."""
    image = np.asarray(image)
    figure = go.Figure(
        go.Heatmap(
            z=image,
            text=image.astype(int) if image.dtype == np.uint8 else np.round(image, 2),
            texttemplate="%{text}",
            textfont=dict(size=7),
            colorscale="Blues",
            showscale=False,
            hovertemplate=_("row %{y}, column %{x}: %{z}") + "<extra></extra>",
        )
    )
    # The column numbers sit on top (where a reader looks first), so the title goes above them with room of its own.
    figure.update_layout(title=dict(text=title, y=0.985, yanchor="top"), margin=dict(l=10, r=10, t=70, b=10),
                         height=660)
    # Exactly the image's cells, square, whatever the page's width: no empty bands around them.
    height, width = image.shape[:2]
    figure.update_yaxes(range=[height - 0.5, -0.5], scaleanchor="x", constrain="domain", dtick=2)
    figure.update_xaxes(range=[-0.5, width - 0.5], constrain="domain", dtick=2, side="top")
    return figure


def tile_urls(images: np.ndarray) -> list[str]:
    """Each 28 x 28 digit as a PNG data: URL (about 300 bytes), for a grid the browser draws itself: no plotting
    library to load, so a first visit shows the digits as soon as the page's text (issue 9)."""
    urls = []
    for image in np.asarray(images):
        grey = (np.clip(np.nan_to_num(_to_unit(image)), 0.0, 1.0) * 255).round().astype(np.uint8)
        buffer = io.BytesIO()
        Image.fromarray(grey, "L").save(buffer, format="PNG", optimize=False)
        urls.append("data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii"))
    return urls


def pixelated(image: np.ndarray, height: int = 168) -> np.ndarray:
    """A small greyscale image enlarged by whole-pixel repetition to about `height` rows: uint8, crisp in a browser.

    Browsers smooth small images when they scale them up; repeating pixels keeps MNIST's grid visible.
    """
    unit = np.clip(np.nan_to_num(_to_unit(image)), 0.0, 1.0)
    scale = max(1, height // max(1, unit.shape[0]))
    return (np.kron(unit, np.ones((scale, scale), dtype=np.float32)) * 255).round().astype(np.uint8)


def thumbnail(image: np.ndarray, side: int = 168) -> np.ndarray:
    """The picture fitted into a `side` x `side` square (aspect kept, black margins), uint8: every step of the Draw
    page the same size, whatever the crop's shape (a thin "1" crop enlarged to its full height made the page
    thousands of pixels tall). Small images are enlarged pixel by pixel, so MNIST's grid stays visible."""
    unit = np.clip(np.nan_to_num(_to_unit(np.asarray(image))), 0.0, 1.0)
    grey = (unit * 255).round().astype(np.uint8)
    height, width = grey.shape
    if max(height, width) <= side:
        scale = max(1, side // max(height, width))
        fitted = np.kron(grey, np.ones((scale, scale), dtype=np.uint8))
    else:
        fitted = fit_within(grey, side)
    square = np.zeros((side, side), dtype=np.uint8)
    top, left = (side - fitted.shape[0]) // 2, (side - fitted.shape[1]) // 2
    square[top : top + fitted.shape[0], left : left + fitted.shape[1]] = fitted
    return square


def _colour_table(scale: str) -> np.ndarray:
    """256 RGB colours (uint8) of one of plotly's sequential scales ("Viridis", "Inferno"), for colouring images."""
    from plotly.colors import hex_to_rgb, sequential

    stops = np.array([hex_to_rgb(colour) for colour in getattr(sequential, scale)], dtype=np.float32)
    positions = np.linspace(0.0, 1.0, len(stops))
    levels = np.linspace(0.0, 1.0, 256)
    return np.stack([np.interp(levels, positions, stops[:, channel]) for channel in range(3)], axis=1).round().astype(
        np.uint8)


_VIRIDIS = None


def feature_map_image(maps: np.ndarray, max_maps: int = 16, columns: int = 8, cell: int = 56) -> np.ndarray:
    """The first `max_maps` channels of one conv layer's output (h, w, channels) as one RGB mosaic, uint8.

    Each channel is scaled to its own range and coloured with Viridis, enlarged pixel by pixel to about `cell`
    pixels; a picture, not a plotly figure, because the Draw page redraws it after every stroke and an image is
    far quicker for the browser than a figure of 16 heatmaps.
    """
    global _VIRIDIS
    if _VIRIDIS is None:
        _VIRIDIS = _colour_table("Viridis")
    maps = np.asarray(maps, dtype=np.float32)[..., :max_maps]
    channels = np.moveaxis(maps, -1, 0)
    low = channels.min(axis=(1, 2), keepdims=True)
    span = channels.max(axis=(1, 2), keepdims=True) - low
    scaled = np.divide(channels - low, span, out=np.zeros_like(channels), where=span > 0)
    scale = max(1, cell // max(channels.shape[1:]))
    enlarged = np.kron(scaled, np.ones((1, scale, scale), dtype=np.float32))
    tiled = mosaic(enlarged, columns, gap=2)
    levels = np.nan_to_num(tiled, nan=-1.0)
    image = _VIRIDIS[np.clip((levels * 255).round(), 0, 255).astype(np.uint8)]
    image[levels < 0] = 255  # white gaps between the maps
    return image


def fit_within(image: np.ndarray, side: int) -> np.ndarray:
    """The picture scaled so its longer side is `side` pixels, aspect ratio kept, never less than 1 pixel across.

    For st.image: Streamlit itself only shrinks the width and rounds the height down, so a 1000 x 3 strip
    would become 0 rows high and fail. Takes uint8 pictures (H, W), (H, W, 3), (H, W, 4) or float (H, W).
    """
    height, width = image.shape[:2]
    scale = side / max(height, width)
    if scale == 1.0:
        return image
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    # BOX averages when shrinking, so thin strokes of a large photo fade instead of vanishing;
    # NEAREST keeps pixels crisp when enlarging.
    resample = Image.Resampling.BOX if scale < 1.0 else Image.Resampling.NEAREST
    pixels = image if image.dtype == np.uint8 else np.asarray(image, dtype=np.float32)
    return np.asarray(Image.fromarray(pixels).resize(size, resample))


def _epoch_values(history: Sequence, field: str) -> list:
    return [getattr(event, field) if not isinstance(event, dict) else event.get(field) for event in history]


def training_curves(history: Sequence, references: Sequence = ()) -> go.Figure:
    """Per-epoch loss and accuracy, training vs validation: where overfitting shows as the curves part.

    `history` holds EpochEvent objects or dicts with their fields (as saved in a model's JSON). An epoch cut
    short by a stop is left out: its running means are not comparable with whole epochs and it has no validation.
    `references` (references.Reference) are drawn on the accuracy chart as dashed lines named in the legend.
    """
    history = [event for event in history if _epoch_values([event], "complete")[0] is not False]
    epochs = _epoch_values(history, "epoch")
    figure = make_subplots(rows=1, cols=2, subplot_titles=(_("Loss"), _("Accuracy")))
    names = {"loss": (_("train loss"), _("validation loss")), "accuracy": (_("train accuracy"), _("validation accuracy"))}
    for column, metric in ((1, "loss"), (2, "accuracy")):
        figure.add_scatter(x=epochs, y=_epoch_values(history, metric), name=names[metric][0], mode="lines+markers",
                           line=dict(color=TRAIN_COLOUR), row=1, col=column)
        figure.add_scatter(x=epochs, y=_epoch_values(history, f"val_{metric}"), name=names[metric][1],
                           mode="lines+markers", line=dict(color=VALIDATION_COLOUR, dash="dash"), row=1, col=column)
    figure.update_xaxes(title_text=_("epoch"), dtick=_epoch_step(max(epochs, default=1)))
    figure.update_layout(margin=_MARGIN, height=340, legend=dict(orientation="h", y=-0.25))
    add_reference_lines(figure, references, row=1, col=2)
    return figure


# A chart whose figure changes is drawn anew in the browser (Streamlit mounts a new Plotly plot); the batch chart
# changed every second, which cost the watching browser ~0.25 of a core on a slow host (BENCHMARKS.md, "seventh
# session"). It moves on every few seconds of the training instead; the progress bar and metrics above it still
# move every second.
BATCH_CHART_SECONDS = 3.0


def batches_to_draw(batches: Sequence, finished: bool, every_seconds: float = BATCH_CHART_SECONDS) -> int:
    """How many of a training's `batches` (BatchEvents in order) its chart shows now: all once the training has
    `finished`; before, those up to the last whole multiple of `every_seconds` of its elapsed time (at least the
    first). The count, and so the figure, changes once every `every_seconds` of the training however often pages
    poll, and is the same for every page watching it."""
    if finished or not batches:
        return len(batches)
    tick = math.floor(batches[-1].elapsed_seconds / every_seconds) * every_seconds
    return max(1, bisect.bisect_right(batches, tick, key=lambda event: event.elapsed_seconds))


def batch_curves(batches: Sequence) -> go.Figure:
    """Running loss and accuracy after each batch, on a continuous epoch axis (1.5 = half of epoch 2)."""
    position = [event.epoch - 1 + event.step / event.steps for event in batches]
    figure = make_subplots(rows=1, cols=2, subplot_titles=(_("Batch loss"), _("Batch accuracy")))
    figure.add_scatter(x=position, y=[event.loss for event in batches], name=_("loss"), mode="lines",
                       line=dict(color=TRAIN_COLOUR), row=1, col=1)
    figure.add_scatter(x=position, y=[event.accuracy for event in batches], name=_("accuracy"), mode="lines",
                       line=dict(color=VALIDATION_COLOUR), row=1, col=2)
    figure.update_xaxes(title_text=_("epoch"))
    figure.update_layout(margin=_MARGIN, height=300, showlegend=False)
    return figure


def probability_bars(probabilities: np.ndarray) -> go.Figure:
    """The ten class probabilities, the winner highlighted."""
    probabilities = np.asarray(probabilities, dtype=np.float64)
    winner = int(probabilities.argmax())
    colours = [VALIDATION_COLOUR if digit == winner else TRAIN_COLOUR for digit in range(NUM_CLASSES)]
    figure = go.Figure(
        go.Bar(x=list(CLASS_NAMES), y=probabilities, marker_color=colours,
               text=[f"{p:.0%}" if p >= 0.005 else "" for p in probabilities], textposition="outside",
               hovertemplate=_("digit %{x}: %{y:.2%}") + "<extra></extra>")
    )
    figure.update_layout(title=_("What the network thinks"), margin=_MARGIN, height=320,
                         yaxis=dict(range=[0, 1.1], tickformat=".0%", title=_("probability")),
                         xaxis=dict(type="category", title=_("digit")))
    return figure


# One colour scale for the confusion matrix in two halves: mistakes on reds in [0, 0.5), right answers on greens in
# [0.5, 1], so one heatmap holds every cell and its count's text contrasts with it (a second, diagonal-only heatmap
# drawn on top wrote dark text over the dark reds).
_CONFUSION_SCALE = [
    [0.0, "#ffffff"], [0.02, "#fee0d2"], [0.25, "#fb6a4a"], [0.499, "#99000d"],
    [0.5, "#c7e9c0"], [1.0, "#238b45"],
]


def confusion_matrix(confusion: np.ndarray) -> go.Figure:
    """Counts of true label (rows) vs prediction (columns); the diagonal is what went right.

    Mistakes are coloured on their own scale (on a shared one the diagonal would wash everything else out); the
    cell text is the count, in a colour Plotly picks to contrast with the cell.
    """
    confusion = np.asarray(confusion)
    mistakes = confusion.astype(np.float64).copy()
    np.fill_diagonal(mistakes, 0)
    right = np.diag(confusion).astype(np.float64)
    shade = 0.499 * mistakes / max(float(mistakes.max()), 1.0)
    np.fill_diagonal(shade, 0.5 + 0.5 * right / max(float(right.max()), 1.0))
    figure = go.Figure(
        go.Heatmap(
            z=shade, x=list(CLASS_NAMES), y=list(CLASS_NAMES), colorscale=_CONFUSION_SCALE, zmin=0.0, zmax=1.0,
            showscale=False, text=confusion, texttemplate="%{text}", hoverinfo="skip", xgap=1, ygap=1,
        )
    )
    # Plotly cannot select heatmap cells (a click on one selects nothing), so an invisible square marker sits on each
    # cell: a click or a tap selects it, which is what a page asking for on_select hears. The picked one shows.
    rows, columns = np.indices(confusion.shape)
    figure.add_scatter(
        x=[CLASS_NAMES[c] for c in columns.ravel()], y=[CLASS_NAMES[r] for r in rows.ravel()], mode="markers",
        marker=dict(symbol="square", size=30, color="rgba(0,0,0,0)", line=dict(width=0)),
        selected=dict(marker=dict(color="rgba(0,0,0,0.25)")), unselected=dict(marker=dict(opacity=0)),
        customdata=confusion.ravel(),
        hovertemplate=_("true %{y}, predicted %{x}: %{customdata}") + "<extra></extra>",
        showlegend=False,
    )
    figure.update_layout(title=_("Confusion matrix (rows: true digit, columns: prediction)"), margin=_MARGIN, height=460,
                         clickmode="event+select")
    # Fixed ranges: the markers would otherwise pad the axes and shrink the cells.
    figure.update_xaxes(title_text=_("predicted"), type="category", side="bottom", range=[-0.5, 9.5], showgrid=False)
    figure.update_yaxes(title_text=_("true"), type="category", range=[9.5, -0.5], scaleanchor="x", showgrid=False)
    return figure


def per_class_accuracy(accuracy: np.ndarray) -> go.Figure:
    accuracy = np.asarray(accuracy)
    figure = go.Figure(go.Bar(x=list(CLASS_NAMES), y=accuracy, marker_color=TRAIN_COLOUR,
                              text=[f"{value:.1%}" for value in accuracy], textposition="outside"))
    low = float(np.floor(max(0.0, accuracy.min() - 0.02) * 50) / 50) if len(accuracy) else 0.0
    title = (_("Accuracy per digit (the axis starts at {low})").format(low=format_percent(low, 0)) if low > 0
             else _("Accuracy per digit"))
    figure.update_layout(title=title, margin=_MARGIN, height=320,
                         yaxis=dict(range=[low, 1.005], tickformat=".0%"), xaxis=dict(type="category", title=_("digit")))
    return figure


def feature_maps(maps: np.ndarray, title: str, max_maps: int = 16, columns: int = 8) -> go.Figure:
    """The first `max_maps` channels of one conv layer's output (h, w, channels), each scaled to its own range."""
    maps = np.asarray(maps, dtype=np.float32)[..., :max_maps]
    channels = np.moveaxis(maps, -1, 0)
    low = channels.min(axis=(1, 2), keepdims=True)
    span = channels.max(axis=(1, 2), keepdims=True) - low
    scaled = np.divide(channels - low, span, out=np.zeros_like(channels), where=span > 0)
    figure = go.Figure(
        go.Heatmap(z=mosaic(scaled, columns, gap=1), colorscale="Viridis", showscale=False, hoverinfo="skip")
    )
    rows = -(-len(channels) // columns)
    figure.update_layout(title=title, margin=dict(l=5, r=5, t=30, b=5), height=40 + rows * 80)
    figure.update_xaxes(visible=False, constrain="domain")
    figure.update_yaxes(visible=False, autorange="reversed", scaleanchor="x")
    return figure


def _epoch_step(last_epoch: int) -> int:
    """Whole-epoch ticks, at most about ten of them: one per epoch ran together on a phone at 15 or 50 epochs."""
    return max(1, math.ceil(last_epoch / 10))


# The metrics compare_curves is asked for (saved histories' keys), their names marked for the catalog.
METRIC_NAMES = {"val_accuracy": N_("val accuracy"), "accuracy": N_("accuracy"), "val_loss": N_("val loss"),
                "loss": N_("loss")}


def compare_curves(histories: dict[str, Sequence], metric: str = "val_accuracy",
                   references: Sequence = ()) -> go.Figure:
    """One line per model of a per-epoch metric (from each model's saved history), to compare models; for an
    accuracy, `references` (references.Reference) as dashed lines named in the legend."""
    figure = go.Figure()
    for name, history in histories.items():
        figure.add_scatter(x=_epoch_values(history, "epoch"), y=_epoch_values(history, metric), name=name,
                           mode="lines+markers")
    # The legend goes under the chart: on its right it took 40% of a phone's width.
    metric_name = METRIC_NAMES.get(metric, metric.replace("_", " "))
    figure.update_layout(title=_("{metric} per epoch").format(metric=_(metric_name)), xaxis_title=_("epoch"),
                         yaxis_title=_(metric_name),
                         margin=_MARGIN, height=400, legend=dict(orientation="h", x=0, y=-0.22, yanchor="top"))
    last = max((max(_epoch_values(history, "epoch"), default=1) for history in histories.values()), default=1)
    figure.update_xaxes(dtick=_epoch_step(last))
    if metric.endswith("accuracy") and references:
        add_reference_lines(figure, references)
        figure.update_layout(height=460)  # room under the chart for the references' names in the legend
    return figure


REFERENCE_COLOUR = "#7f7f7f"
# References closer than this (in accuracy) share one line and one label: 99.20% and 99.22% would print over each other.
REFERENCE_MERGE = 0.001


def reference_groups(references: Sequence) -> list[tuple[float, str]]:
    """(accuracy, label) per dashed line: references within REFERENCE_MERGE of each other share a line (at their
    highest value) and a label ("seed 000's CNN (reported) 99.22% · shipped cnn 99.20%"), highest first."""
    ordered = sorted(references, key=lambda reference: reference.accuracy, reverse=True)
    groups: list[list] = []
    for reference in ordered:
        if groups and groups[-1][0].accuracy - reference.accuracy < REFERENCE_MERGE:
            groups[-1].append(reference)
        else:
            groups.append([reference])
    return [(group[0].accuracy, " · ".join(f"{_(item.label)} {format_percent(item.accuracy)}" for item in group)) for group in groups]


# One pattern per line, so that the legend tells them apart.
REFERENCE_DASHES = ("dash", "dot", "dashdot", "longdash", "longdashdot")


def add_reference_lines(figure: go.Figure, references: Sequence, row: int | None = None,
                        col: int | None = None) -> go.Figure:
    """Grey dashed horizontal lines at each reference accuracy, each named in the legend with its own dash pattern.

    In the legend, not beside the line: the references lie within a point or two of each other (97.7% to 99.56%)
    at the top of a chart from 0 to 100%, where labels on the lines printed over each other.
    """
    where = {} if row is None else dict(row=row, col=col)
    for index, (accuracy, label) in enumerate(reference_groups(references)):
        figure.add_hline(
            y=accuracy, line=dict(color=REFERENCE_COLOUR, dash=REFERENCE_DASHES[index % len(REFERENCE_DASHES)],
                                  width=1.5),
            name=label, showlegend=True, legendgroup="references", **where,
        )
    return figure


# --- explanations --------------------------------------------------------------------------------------------

FOR_COLOUR = np.array([230, 60, 40], dtype=np.float32)  # ink that argues for the digit
AGAINST_COLOUR = np.array([40, 130, 255], dtype=np.float32)  # ink that argues against it
INK_UNDER_MAP = 0.55  # the digit's grey under a map: visible, but the colours stand out


_INFERNO = None


def saliency_overlay(image: np.ndarray, saliency: np.ndarray, signed: bool, side: int = 168) -> np.ndarray:
    """A saliency map laid over the 28x28 image the model saw, as an RGB uint8 picture about `side` pixels wide.

    signed (integrated gradients): red where the ink argues for the digit, blue where against, each pixel's strength
    relative to the map's largest magnitude. Unsigned (Grad-CAM, 0-1): Inferno colours, transparent where 0.
    Enlarged pixel by pixel, like the other 28x28 pictures of the Draw page.
    """
    global _INFERNO
    grey = np.clip(np.nan_to_num(_to_unit(image)), 0.0, 1.0)[..., None] * 255.0 * INK_UNDER_MAP
    base = np.repeat(grey, 3, axis=2)
    saliency = np.nan_to_num(np.asarray(saliency, dtype=np.float32))
    if signed:
        peak = float(np.abs(saliency).max())
        strength = saliency / peak if peak > 0 else np.zeros_like(saliency)
        colour = np.where(strength[..., None] >= 0, FOR_COLOUR, AGAINST_COLOUR)
        weight = np.abs(strength)[..., None]
    else:
        if _INFERNO is None:
            _INFERNO = _colour_table("Inferno").astype(np.float32)
        level = np.clip(saliency, 0.0, 1.0)
        colour = _INFERNO[np.clip((level * 255).round(), 0, 255).astype(np.uint8)]
        weight = (0.85 * level)[..., None]
    blended = base * (1.0 - weight) + colour * weight
    scale = max(1, side // blended.shape[0])
    return np.kron(blended, np.ones((scale, scale, 1), dtype=np.float32)).round().clip(0, 255).astype(np.uint8)


def digit_panel(images: np.ndarray, labels: Sequence[int], predictions: Sequence[int] | None,
                     confidences: Sequence[float] | None, columns: int = 10, title: str | None = None) -> go.Figure:
    """The fixed test digits with each one's predicted label and confidence over it ("7 · 98%"), green where the
    prediction is the label, red where it is not; without predictions yet, the labels in grey ("label 7")."""
    if predictions is None:
        titles = [_("label {label}").format(label=label) for label in labels]
        colours = ["#7f7f7f"] * len(labels)
    else:
        titles = [f"{prediction} · {confidence:.0%}" for prediction, confidence in zip(predictions, confidences)]
        colours = [RIGHT_COLOUR if prediction == label else WRONG_COLOUR
                   for prediction, label in zip(predictions, labels)]
    return sample_grid(images, titles, columns=columns, title=title, title_colours=colours)


RIGHT_COLOUR = "#2ca02c"
WRONG_COLOUR = "#d62728"


def augmentation_grid(originals: np.ndarray, labels: Sequence[int], distorted: np.ndarray) -> go.Figure:
    """Each training digit (top row) over what augmentation made of it (one row per random draw)."""
    rows = [np.asarray(originals), *np.asarray(distorted)]
    images = np.concatenate(rows)
    titles = [f"{label}" for label in labels] + [_("draw {row}").format(row=row) if column == 0 else ""
                                                  for row in range(1, len(rows)) for column in range(len(labels))]
    return sample_grid(images, titles, columns=len(labels))


def filter_mosaic(kernels: np.ndarray, layer_name: str, columns: int = 8) -> go.Figure:
    """A convolution layer's kernels (kh, kw, filters), one small square each, in a diverging scale centred on 0:
    red where the filter adds the pixel's ink, blue where it subtracts it. Each kernel is scaled to its own largest
    weight (the patterns, not their sizes, are what to see); hovering shows the weights."""
    kernels = np.asarray(kernels, dtype=np.float32)
    filters = np.moveaxis(kernels, -1, 0)  # (filters, kh, kw)
    peaks = np.abs(filters).max(axis=(1, 2), keepdims=True)
    scaled = np.divide(filters, peaks, out=np.zeros_like(filters), where=peaks > 0)
    tiled = mosaic(scaled, columns, gap=1)
    weights = mosaic(filters, columns, gap=1)
    rows = -(-len(filters) // columns)
    figure = go.Figure(go.Heatmap(
        z=tiled, customdata=weights, colorscale="RdBu", reversescale=True, zmin=-1, zmax=1, zmid=0, showscale=False,
        hovertemplate=_("weight %{customdata:.3f}") + "<extra></extra>",
    ))
    figure.update_layout(
        title=_("{layer}: {count} filters of {height} x {width}").format(
            layer=layer_name, count=len(filters), height=kernels.shape[0], width=kernels.shape[1]),
        margin=dict(l=5, r=5, t=40, b=5), height=60 + rows * 70,
    )
    figure.update_xaxes(visible=False, constrain="domain")
    figure.update_yaxes(visible=False, autorange="reversed", scaleanchor="x")
    return figure

"""mnist_core.plots: each builder turns data into a figure that shows exactly that data."""

import numpy as np
import plotly.graph_objects as go
import pytest

from mnist_core import plots
from mnist_core.references import Reference
from mnist_core.training import BatchEvent, EpochEvent

HISTORY = [
    EpochEvent(epoch=1, epochs=3, loss=0.9, accuracy=0.7, val_loss=0.5, val_accuracy=0.85, seconds=2.0),
    EpochEvent(epoch=2, epochs=3, loss=0.4, accuracy=0.88, val_loss=0.35, val_accuracy=0.9, seconds=2.0),
    EpochEvent(epoch=3, epochs=3, loss=0.3, accuracy=0.91, val_loss=None, val_accuracy=None, seconds=1.0,
               complete=False),
]


def digits(count: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(count, 28, 28), dtype=np.uint8)


def test_sample_grid_captions_every_image():
    images = digits(13)
    titles = [f"label {index % 10}" for index in range(13)]
    figure = plots.sample_grid(images, titles, columns=5, title="Some digits", title_colours=["red"] * 13)
    assert isinstance(figure, go.Figure)
    assert [annotation.text for annotation in figure.layout.annotations] == titles
    assert figure.layout.annotations[0].font.color == "red"
    (heatmap,) = figure.data
    assert np.asarray(heatmap.z).dtype == np.uint8  # one byte a pixel to the browser
    z = plots.grid_pixels(heatmap.z)
    assert np.nanmax(z) <= 1.0 and np.nanmin(z) >= 0.0  # uint8 scaled to [0, 1]
    # The first tile holds the first image, scaled; the gaps and the captions' rows are gaps.
    top = 9  # caption height above the first row
    np.testing.assert_allclose(z[top : top + 28, :28], images[0] / 255.0, atol=0.5 / plots.GRID_INK_LEVELS)
    assert np.isnan(z[:top]).all() and np.isnan(z[top : top + 28, 28:30]).all()
    assert figure.layout.title.text == "Some digits"


def test_sample_grid_of_float_images_keeps_their_values():
    images = np.random.default_rng(1).random((2, 28, 28)).astype(np.float32)
    z = plots.grid_pixels(plots.sample_grid(images, ["a", "b"]).data[0].z)
    np.testing.assert_allclose(z[9 : 9 + 28, :28], images[0], atol=0.5 / plots.GRID_INK_LEVELS)  # to a grey level


def test_class_histogram_bars_are_the_counts():
    train_counts = np.array([5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949])
    test_counts = np.array([980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009])
    figure = plots.class_histogram(train_counts, test_counts)
    assert [trace.name for trace in figure.data] == ["train", "test"]
    assert list(figure.data[0].x) == [str(digit) for digit in range(10)]
    assert list(figure.data[0].y) == train_counts.tolist()
    assert list(figure.data[1].y) == test_counts.tolist()
    assert len(plots.class_histogram(train_counts).data) == 1


def test_training_curves_show_train_and_validation_for_loss_and_accuracy():
    figure = plots.training_curves(HISTORY)
    assert len(figure.data) == 4
    by_name = {trace.name: trace for trace in figure.data}
    # The third epoch was cut short by a stop: its running means are not comparable, so it is left out.
    assert list(by_name["train loss"].y) == [0.9, 0.4]
    assert list(by_name["validation loss"].y) == [0.5, 0.35]
    assert list(by_name["train accuracy"].y) == [0.7, 0.88]
    assert list(by_name["validation accuracy"].y) == [0.85, 0.9]
    assert list(by_name["train loss"].x) == [1, 2]


def test_training_curves_accept_saved_dicts():
    from dataclasses import asdict

    from_events = plots.training_curves(HISTORY)
    from_dicts = plots.training_curves([asdict(event) for event in HISTORY])
    assert [list(trace.y) for trace in from_dicts.data] == [list(trace.y) for trace in from_events.data]
    # Older JSON without a "complete" field counts as complete.
    legacy = [{"epoch": 1, "loss": 0.5, "accuracy": 0.8, "val_loss": 0.4, "val_accuracy": 0.9}]
    assert list(plots.training_curves(legacy).data[0].y) == [0.5]
    assert len(plots.training_curves([]).data) == 4  # before the first epoch: empty curves, no error


def test_batch_curves_place_batches_on_an_epoch_axis():
    batches = [
        BatchEvent(epoch=epoch, epochs=2, step=step, steps=4, loss=2.0 / step, accuracy=0.2 * step,
                   images_per_second=100.0, elapsed_seconds=1.0, eta_seconds=1.0)
        for epoch in (1, 2) for step in range(1, 5)
    ]
    figure = plots.batch_curves(batches)
    assert len(figure.data) == 2
    assert list(figure.data[0].x) == [0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 1.75, 2.0]
    assert list(figure.data[0].y) == [event.loss for event in batches]
    assert list(figure.data[1].y) == [event.accuracy for event in batches]


def test_the_batch_chart_moves_on_every_few_seconds_of_a_training_and_shows_all_at_its_end():
    # A batch every 0.5 s of training: 0.5, 1.0, ..., 8.0 s.
    batches = [
        BatchEvent(epoch=1, epochs=1, step=step, steps=16, loss=1.0, accuracy=0.5, images_per_second=100.0,
                   elapsed_seconds=0.5 * step, eta_seconds=1.0)
        for step in range(1, 17)
    ]
    assert plots.BATCH_CHART_SECONDS == 3.0
    shown = [plots.batches_to_draw(batches[:count], finished=False) for count in range(1, 17)]
    # The first batch at once; the batches up to 3 s (6 of them) from the one at 3 s, up to 6 s (12) from the one at
    # 6 s: in 8 s of training the count, and so the figure, changes three times however often a page polls.
    assert shown == [1] * 5 + [6] * 6 + [12] * 5
    assert plots.batches_to_draw(batches, finished=True) == 16  # the whole curve once the training has ended
    assert plots.batches_to_draw([], finished=False) == 0
    assert plots.batches_to_draw(batches, finished=False, every_seconds=1.0) == 16  # 8.0 s: on a whole second


def test_probability_bars_highlight_the_winner():
    probabilities = np.array([0.01, 0.02, 0.05, 0.6, 0.02, 0.2, 0.03, 0.03, 0.02, 0.02])
    figure = plots.probability_bars(probabilities)
    (bars,) = figure.data
    np.testing.assert_allclose(bars.y, probabilities)
    colours = list(bars.marker.color)
    assert colours[3] != colours[0] and len(set(colours)) == 2
    assert colours.count(colours[3]) == 1
    assert bars.text[3] == "60%"


def test_confusion_matrix_text_is_the_matrix():
    confusion = np.arange(100).reshape(10, 10)
    figure = plots.confusion_matrix(confusion)
    heatmap, cells = figure.data
    np.testing.assert_array_equal(np.asarray(heatmap.text), confusion)
    # A selectable point on every cell, carrying its count: a click on a cell must select it (issue 20, bug 1).
    assert sorted(zip(cells.y, cells.x)) == sorted((str(r), str(c)) for r in range(10) for c in range(10))
    counts = {(int(y), int(x)): n for x, y, n in zip(cells.x, cells.y, cells.customdata)}
    assert counts[(9, 4)] == confusion[9, 4] and counts[(3, 3)] == confusion[3, 3]


def test_confusion_matrix_colours_mistakes_and_right_answers_apart():
    confusion = np.diag([980, 1135, 1000, 1010, 982, 892, 958, 1028, 974, 1009]).astype(int)
    confusion[9, 4] = 12
    confusion[2, 7] = 3
    shade = np.asarray(plots.confusion_matrix(confusion).data[0].z, dtype=float)
    mistakes = ~np.eye(10, dtype=bool)
    assert (shade[mistakes] < 0.5).all() and (np.diag(shade) >= 0.5).all()
    assert shade[9, 4] > shade[2, 7] > shade[0, 1] == 0.0  # more mistakes, darker red; none, white


def test_per_class_accuracy_bars():
    accuracy = np.linspace(0.95, 0.995, 10)
    figure = plots.per_class_accuracy(accuracy)
    np.testing.assert_allclose(figure.data[0].y, accuracy)
    low, high = figure.layout.yaxis.range
    assert low <= accuracy.min() and high >= 1.0
    assert f"the axis starts at {low:.0%}" in figure.layout.title.text  # a cut axis says so (issue 20, item 10)


def test_feature_maps_figure_tiles_the_channels_each_scaled():
    maps = np.random.default_rng(2).random((26, 26, 32)).astype(np.float32) * 7
    maps[..., 1] = 3.0  # a flat channel must not divide by zero
    figure = plots.feature_maps(maps, "conv2d", max_maps=16, columns=8)
    z = np.asarray(figure.data[0].z, dtype=float)
    assert z.shape == (2 * 26 + 1, 8 * 26 + 7)  # 16 maps in two rows of eight, one-pixel gaps
    assert np.nanmin(z) == 0.0 and np.nanmax(z) == pytest.approx(1.0)
    assert np.all(z[:26, 27:53] == 0.0)  # the flat channel is drawn dark
    assert figure.layout.title.text == "conv2d"


def test_compare_curves_has_one_line_per_model():
    histories = {"cnn": HISTORY[:2], "mlp": [{"epoch": 1, "val_accuracy": 0.8}]}
    figure = plots.compare_curves(histories)
    assert [trace.name for trace in figure.data] == ["cnn", "mlp"]
    assert list(figure.data[0].y) == [0.85, 0.9] and list(figure.data[1].y) == [0.8]
    assert list(plots.compare_curves(histories, "loss").data[0].y) == [0.9, 0.4]


def test_pixel_heatmap_writes_the_pixel_values():
    image = digits(1)[0]
    figure = plots.pixel_heatmap(image, title="pixels")
    np.testing.assert_array_equal(np.asarray(figure.data[0].z), image)
    np.testing.assert_array_equal(np.asarray(figure.data[0].text), image.astype(int))


def test_mean_digits_shows_ten_captioned_means():
    figure = plots.mean_digits(np.random.default_rng(3).random((10, 28, 28)) * 255)
    assert [annotation.text for annotation in figure.layout.annotations] == [str(d) for d in range(10)]


def test_pixelated_repeats_whole_pixels():
    image = np.zeros((28, 28), dtype=np.uint8)
    image[3, 5] = 255
    big = plots.pixelated(image, height=168)
    assert big.shape == (168, 168) and big.dtype == np.uint8
    assert big[18:24, 30:36].min() == 255  # pixel (3, 5) became a 6x6 block
    assert big.sum() == 255 * 36
    unit = plots.pixelated(np.full((28, 28), 0.5, dtype=np.float32), height=56)
    assert unit.shape == (56, 56) and set(np.unique(unit).tolist()) == {128}


# --- issue 13: reference lines, saliency overlays, the test-digit panel, augmentation, filters -----------------

REFERENCES = [
    Reference("seed 000's CNN (reported)", 0.9922),
    Reference("shipped cnn", 0.9920),
    Reference("shipped strong-cnn", 0.9956),
    Reference("seed 004's MLP (reported)", 0.977),
]


def dashed_lines(figure: go.Figure) -> list[tuple[float, str, str]]:
    """(y, x axis, y axis) of each dashed horizontal line."""
    return [(shape.y0, shape.xref, shape.yref) for shape in figure.layout.shapes
            if shape.line.dash != "solid" and shape.y0 == shape.y1]


def test_reference_lines_on_the_accuracy_chart_are_dashed_and_named_in_the_legend():
    figure = plots.training_curves(HISTORY, references=REFERENCES)
    lines = dashed_lines(figure)
    # 99.22% and 99.20% are one line with both names (they would lie on each other); all on the accuracy chart.
    assert sorted(y for y, _, _ in lines) == [0.977, 0.9922, 0.9956]
    assert {(x, y) for _, x, y in lines} == {("x2 domain", "y2")}
    shapes = figure.layout.shapes
    assert [shape.name for shape in shapes] == ["shipped strong-cnn 99.56%",
                                                "seed 000's CNN (reported) 99.22% · shipped cnn 99.20%",
                                                "seed 004's MLP (reported) 97.70%"]
    assert all(shape.showlegend for shape in shapes)
    assert len({shape.line.dash for shape in shapes}) == 3  # each its own pattern: the legend tells them apart
    assert plots.training_curves(HISTORY).layout.shapes == ()  # none asked, none drawn


def test_compare_curves_draw_references_for_accuracy_only():
    histories = {"a": [{"epoch": 1, "val_accuracy": 0.9, "val_loss": 0.3}]}
    assert len(dashed_lines(plots.compare_curves(histories, "val_accuracy", REFERENCES))) == 3
    assert dashed_lines(plots.compare_curves(histories, "val_loss", REFERENCES)) == []


def test_reference_accuracies_are_the_seeds_and_the_shipped_models():
    from mnist_core.references import SEED_REFERENCES, reference_accuracies
    from mnist_core.store import ModelEntry, ModelInfo

    def entry(name, accuracy, shipped, error=None):
        info = ModelInfo(name=name, architecture="cnn", config={}, test_accuracy=accuracy, shipped=shipped)
        return ModelEntry(name, None if error else info, error)

    found = reference_accuracies([entry("cnn", 0.992, True), entry("mine", 0.999, False),
                                  entry("old", None, True), entry("broken", None, True, error="damaged")])
    assert [reference.label for reference in found] == [
        "seed 000's CNN (reported)", "shipped cnn", "seed 004's MLP (reported)"]
    assert [reference.accuracy for reference in SEED_REFERENCES] == [0.9922, 0.977]


def test_saliency_overlay_colours_for_and_against_on_the_digit():
    image = np.zeros((28, 28), np.float32)
    image[5:20, 10:14] = 1.0
    saliency = np.zeros((28, 28), np.float32)
    saliency[6, 11] = 2.0  # for
    saliency[7, 11] = -1.0  # against, half as strong
    picture = plots.saliency_overlay(image, saliency, signed=True, side=56)
    assert picture.shape == (56, 56, 3) and picture.dtype == np.uint8
    scale = 2
    pixel = lambda row, column: picture[row * scale, column * scale].astype(int)  # noqa: E731
    assert tuple(pixel(6, 11)) == tuple(plots.FOR_COLOUR.astype(int))  # the strongest pixel: the full colour
    blue = pixel(7, 11)
    assert blue[2] > blue[0]  # against: blue...
    assert blue[2] < plots.AGAINST_COLOUR[2]  # ...half strength over the grey ink
    grey = pixel(10, 12)
    assert grey[0] == grey[1] == grey[2] == round(255 * plots.INK_UNDER_MAP)  # no saliency: the ink, dimmed
    assert tuple(pixel(0, 0)) == (0, 0, 0)


def test_grad_cam_overlay_is_transparent_where_the_map_is_zero():
    image = np.full((28, 28), 0.5, np.float32)
    cam = np.zeros((28, 28), np.float32)
    cam[:14] = 1.0
    picture = plots.saliency_overlay(image, cam, signed=False, side=28)
    bottom = picture[20, 5].astype(int)
    assert bottom[0] == bottom[1] == bottom[2]  # grey: nothing laid over it
    top = picture[5, 5].astype(int)
    assert top[0] > top[2]  # Inferno's bright end is yellow-white: more red than blue


def test_digit_panel_marks_right_green_and_wrong_red():
    images = digits(4)
    figure = plots.digit_panel(images, [1, 2, 3, 4], [1, 5, 3, 0], [0.9, 0.51, 0.999, 0.2], columns=4)
    assert [annotation.text for annotation in figure.layout.annotations] == ["1 · 90%", "5 · 51%", "3 · 100%",
                                                                            "0 · 20%"]
    assert [annotation.font.color for annotation in figure.layout.annotations] == [
        plots.RIGHT_COLOUR, plots.WRONG_COLOUR, plots.RIGHT_COLOUR, plots.WRONG_COLOUR]
    waiting = plots.digit_panel(images, [1, 2, 3, 4], None, None, columns=4)
    assert [annotation.text for annotation in waiting.layout.annotations] == ["label 1", "label 2", "label 3",
                                                                             "label 4"]


def test_augmentation_grid_puts_each_digit_over_its_distortions():
    originals = np.random.default_rng(0).random((3, 28, 28)).astype(np.float32)
    distorted = np.random.default_rng(1).random((2, 3, 28, 28)).astype(np.float32)
    figure = plots.augmentation_grid(originals, [4, 1, 7], distorted)
    texts = [annotation.text for annotation in figure.layout.annotations]
    assert texts[:3] == ["4", "1", "7"] and texts[3] == "draw 1" and texts[6] == "draw 2"
    z = plots.grid_pixels(figure.data[0].z)
    level = 0.5 / plots.GRID_INK_LEVELS
    np.testing.assert_allclose(z[9:37, :28], originals[0], atol=level)  # top left: the first original
    np.testing.assert_allclose(z[9 + 39 : 37 + 39, :28], distorted[0, 0], atol=level)  # below it: its first draw


def test_filter_mosaic_shows_each_kernel_scaled_with_its_weights_on_hover():
    kernels = np.zeros((3, 3, 4), np.float32)
    kernels[0, 0, 0] = 0.5
    kernels[2, 2, 1] = -2.0
    kernels[1, 1, 3] = 0.25
    figure = plots.filter_mosaic(kernels, "conv2d", columns=2)
    (heatmap,) = figure.data
    z = np.asarray(heatmap.z, dtype=float)
    weights = np.asarray(heatmap.customdata, dtype=float)
    assert z[0, 0] == 1.0 and weights[0, 0] == 0.5  # filter 0: scaled to its own peak, the weight on hover
    assert z[2, 4 + 2] == -1.0 and weights[2, 6] == -2.0  # filter 1, one gap column to the right
    assert np.all(np.nan_to_num(z[4:7, 0:3]) == 0)  # filter 2: all zero stays zero (no division by zero)
    assert heatmap.zmid == 0 and figure.layout.title.text == "conv2d: 4 filters of 3 x 3"


def test_digit_counts_has_a_bar_for_every_digit_and_whole_ticks():
    from mnist_core.plots import digit_counts

    figure = digit_counts(np.array([3, 0, 1, 0, 0, 0, 0, 2, 0, 0]))
    assert list(figure.data[0].x) == [str(digit) for digit in range(10)]
    assert list(figure.data[0].y) == [3, 0, 1, 0, 0, 0, 0, 2, 0, 0]
    assert figure.layout.yaxis.dtick == 1 and figure.layout.title.text == "Drawings per digit"


def test_epoch_axes_tick_whole_epochs_about_ten_at_most():
    short = [{"epoch": epoch, "loss": 1.0, "accuracy": 0.9, "val_loss": 1.0, "val_accuracy": 0.9} for epoch in (1, 2)]
    assert plots.training_curves(short).layout.xaxis.dtick == 1  # not 0, 0, 1, 1, 2 from fractional ticks
    long = {"a": [{"epoch": epoch, "val_accuracy": 0.9} for epoch in range(1, 51)]}
    assert plots.compare_curves(long).layout.xaxis.dtick == 5  # ten ticks, readable on a phone


def test_grid_tiles_are_the_digits_as_small_pngs():
    import base64
    import io

    from PIL import Image

    images = digits(3)
    urls = plots.tile_urls(images)
    assert len(urls) == 3
    for url, image in zip(urls, images):
        assert url.startswith("data:image/png;base64,") and len(url) < 1_500
        tile = Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1])))
        assert tile.mode == "L" and tile.size == (28, 28)
        np.testing.assert_array_equal(np.asarray(tile), image)  # uint8 in, the same grey levels out

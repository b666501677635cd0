"""Issue 13 in the browser: draw a digit and see what the network looked at and what every model says; train a tiny
model and watch the panel of test digits change from epoch to epoch."""

import re

from e2e_helpers import (
    MAIN,
    draw_path,
    exception_messages,
    expect,
    find_canvas,
    open_page,
    screenshot,
    vertical_stroke,
    wait_for_app,
    wait_for_prediction,
)
from test_load import stop_if_running

EXPLAINER_TIMEOUT_MS = 180_000  # the explainer's first answer waits for TensorFlow's import on a busy machine
TRAINING_TIMEOUT_MS = 240_000  # a tiny training, possibly after another visitor's in the queue
AGREEMENT = re.compile(r"^(All \d+ models say \d\.|The only model says \d\.|The models disagree: .*)$")


def test_a_drawn_digit_shows_its_saliency_map_and_every_models_answer(page, app_server):
    open_page(page, app_server, "/draw")
    draw_path(page, find_canvas(page), vertical_stroke())
    wait_for_prediction(page, 1)

    main = page.locator(MAIN)
    expect(main.get_by_role("heading", name="Every model on this drawing")).to_be_visible()
    expect(main.get_by_text(AGREEMENT)).to_be_visible()
    table = main.locator('[data-testid="stDataFrame"]')
    expect(table).to_be_visible()
    # The table's cells are drawn on a canvas; the copy of the table inside it holds their text.
    expect(table.locator('[role="gridcell"]').filter(has_text=re.compile(r"^strong-cnn$"))).to_have_count(1)

    expect(main.get_by_role("heading", name="What made it say that")).to_be_visible()
    saliency = main.locator('[data-testid="stImage"]').filter(has_text="Integrated gradients for 1")
    expect(saliency).to_be_visible(timeout=EXPLAINER_TIMEOUT_MS)
    picture = saliency.locator("img")
    expect(picture).to_be_visible()
    assert picture.evaluate("image => image.naturalWidth") >= 28 * 8  # the enlarged 28x28 map, loaded
    saliency.scroll_into_view_if_needed()  # the picture, not the top of the page
    screenshot(page, "draw-saliency")

    # What would make it a 4? Grad-CAM's map for 4.
    main.get_by_text("Grad-CAM", exact=True).click()
    wait_for_app(page)
    digits = main.locator('[data-testid="stButtonGroup"]').filter(has_text="its answer")
    digits.get_by_text("4", exact=True).click()
    expect(main.locator('[data-testid="stImage"]').filter(has_text="Grad-CAM for 4")).to_be_visible(
        timeout=EXPLAINER_TIMEOUT_MS)
    assert exception_messages(page) == []


def set_number(page, label: str, value: int, attempts: int = 3) -> None:
    """Type a number into a sidebar field and see it kept: a rerun of a polling fragment (the sidebar's training
    status) can land between typing and committing and put the old value back; then type it again."""
    field = page.get_by_label(label, exact=True)
    for _ in range(attempts):
        field.fill(str(value))
        field.press("Tab")  # commits the value; Enter would submit a form early
        wait_for_app(page)
        if field.input_value() == str(value):
            return
    expect(field).to_have_value(str(value))


def test_the_test_digit_panel_changes_as_a_tiny_model_learns(page, app_server):
    open_page(page, app_server, "/train")
    for label, value in (("Training images", 2000), ("Epochs", 3)):
        set_number(page, label, value)
    page.get_by_role("button", name="Start training").click()
    try:
        main = page.locator(MAIN)
        panel = main.get_by_text(re.compile(r"^(Before training|After epoch \d): \d+ of 20 right$"))
        expect(panel.first).to_be_visible(timeout=TRAINING_TIMEOUT_MS)
        first_seen = panel.first.text_content()
        expect(main.get_by_text("Training finished")).to_be_visible(timeout=TRAINING_TIMEOUT_MS)
        final = main.get_by_text(re.compile(r"^After epoch 3: \d+ of 20 right$"))
        expect(final.first).to_be_visible()  # .first: while Plotly redraws, the old title can still be there
        assert final.first.text_content() != first_seen or first_seen.startswith("After epoch 3")
        # The history: before training, then each epoch; a network that learnt reads more of them at the end.
        history = main.get_by_text(
            re.compile(r"^Right so far: start: \d+, epoch 1: \d+, epoch 2: \d+, epoch 3: \d+$"))
        expect(history).to_be_visible()
        counts = [int(count) for count in re.findall(r"(?:start|epoch \d): (\d+)", history.inner_text())]
        assert counts[-1] > counts[0], history.inner_text()
        # Each of the 20 tiles is captioned with its answer and confidence, coloured right or wrong.
        tiles = main.locator(".js-plotly-plot").filter(has_text="of 20 right").locator("text").filter(
            has_text=re.compile(r"^\d · \d+%$"))
        expect(tiles).to_have_count(20)
        colours = {tiles.nth(index).evaluate("tile => getComputedStyle(tile).fill") for index in range(20)}
        assert colours <= {"rgb(44, 160, 44)", "rgb(214, 39, 40)"} and "rgb(44, 160, 44)" in colours
        tiles.first.scroll_into_view_if_needed()
        screenshot(page, "train-panel")
    finally:
        stop_if_running(page)
    assert exception_messages(page) == []

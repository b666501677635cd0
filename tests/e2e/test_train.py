"""Start a small training from the browser, watch progress and curves appear, stop it."""

import re

from e2e_helpers import PlaywrightError, exception_messages, expect, open_page, screenshot, wait_for_app

TRAINING_TIMEOUT_MS = 90_000  # the first batch waits for TensorFlow, MNIST and the model build


def set_number(page, label: str, value: int) -> None:
    field = page.get_by_label(label, exact=True)
    field.fill(str(value))
    field.press("Tab")  # commits the value; Enter would submit a form early
    wait_for_app(page)


def test_small_training_shows_progress_and_stops(page, app_server):
    open_page(page, app_server, "/train")

    set_number(page, "Training images", 1000)
    set_number(page, "Epochs", 2)
    page.get_by_role("button", name="Start training").click()

    expect(page.locator('[data-testid="stProgress"]').first).to_be_visible(timeout=TRAINING_TIMEOUT_MS)
    chart = page.locator('[data-testid="stPlotlyChart"], .js-plotly-plot')
    expect(chart.first).to_be_visible(timeout=TRAINING_TIMEOUT_MS)
    screenshot(page, "train")

    # 1000 images train in seconds: the run may have finished before the click, which is fine too
    stop = page.get_by_role("button", name="Stop training")
    if stop.count() > 0 and stop.first.is_visible():
        try:
            stop.first.click(timeout=5_000)
        except PlaywrightError:  # the button went away because the run ended meanwhile
            pass
    expect(page.get_by_text(re.compile(r"stopped|finished", re.IGNORECASE)).first).to_be_visible(timeout=60_000)
    assert exception_messages(page) == []

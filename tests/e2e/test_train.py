"""Start a training from the browser, watch progress and curves appear, stop it."""

import re

from e2e_helpers import MAIN, exception_messages, expect, open_page, screenshot, wait_for_app
from test_load import stop_if_running

TRAINING_TIMEOUT_MS = 90_000  # the first batch waits for TensorFlow, MNIST and the model build
SAVE_TIMEOUT_MS = 120_000


def set_number(page, label: str, value: int) -> None:
    field = page.get_by_label(label, exact=True)
    field.fill(str(value))
    field.press("Tab")  # commits the value; Enter would submit a form early
    wait_for_app(page)


def test_a_training_shows_progress_and_curves_and_stops_when_asked(page, app_server):
    open_page(page, app_server, "/train")

    # As long as the app allows (3 million images: minutes even on the fastest machine seen), so the run is still
    # going when the test presses Stop, however fast this machine trains.
    set_number(page, "Training images", 60_000)
    set_number(page, "Epochs", 50)
    page.get_by_role("button", name="Start training").click()
    try:
        check_progress_and_stop(page)
    finally:
        stop_if_running(page)


def check_progress_and_stop(page) -> None:
    # (it may wait in the queue first, behind another visitor's job)
    expect(page.locator(MAIN).get_by_text(re.compile(r" · .* · started by you"))).to_be_visible(
        timeout=TRAINING_TIMEOUT_MS)
    expect(page.locator('[data-testid="stProgress"]').first).to_be_visible(timeout=TRAINING_TIMEOUT_MS)
    expect(page.get_by_text("img/s").first).to_be_visible(timeout=TRAINING_TIMEOUT_MS)
    chart = page.locator('[data-testid="stPlotlyChart"], .js-plotly-plot')
    expect(chart.first).to_be_visible(timeout=TRAINING_TIMEOUT_MS)
    screenshot(page, "train")

    page.get_by_role("button", name="Stop training").click()
    expect(page.locator(MAIN).get_by_text("Training stopped")).to_be_visible(timeout=SAVE_TIMEOUT_MS)
    expect(page.get_by_role("button", name="Stop training")).to_be_disabled()
    assert exception_messages(page) == []

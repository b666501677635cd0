"""A dot on the canvas gets a hint ("too little ink"), still with the model's answer; a real digit gets none."""

import time

from e2e_helpers import (
    MAIN,
    PREDICTION,
    draw_path,
    exception_messages,
    find_canvas,
    open_page,
    screenshot,
    vertical_stroke,
    wait_for_prediction,
)

HINT = "too little ink"
NOT_CORRECTNESS = "Confidence is not correctness"


def shown_text(page) -> str:
    return " ".join(page.locator(MAIN).inner_text().split())


def wait_for_text(page, text: str, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while text not in shown_text(page):
        if time.monotonic() > deadline:
            raise AssertionError(f"expected {text!r} within {timeout_s} s; the page shows {shown_text(page)[:400]!r}")
        page.wait_for_timeout(250)


def test_a_dot_gets_a_hint_and_an_answer_and_a_drawn_one_gets_no_hint(page, app_server):
    open_page(page, app_server, "/draw")
    canvas = find_canvas(page)

    draw_path(page, canvas, [(0.3, 0.4), (0.302, 0.401)])  # a click with the smallest slip of the hand
    wait_for_text(page, HINT)
    shown = shown_text(page)
    assert PREDICTION.search(shown), "the model's answer is still shown beside the hint"
    assert NOT_CORRECTNESS in shown
    warning = page.locator(MAIN).locator('[data-testid="stAlertContentWarning"]')
    assert HINT in warning.inner_text()
    screenshot(page, "draw-hint")

    page.locator(MAIN).locator('button[data-action="clear"]').click()
    wait_for_text(page, "Draw a digit")
    draw_path(page, find_canvas(page), vertical_stroke())
    wait_for_prediction(page, 1)
    shown = shown_text(page)
    assert HINT not in shown and NOT_CORRECTNESS not in shown
    assert page.locator(MAIN).locator('[data-testid="stAlertContentWarning"]').count() == 0
    assert exception_messages(page) == []

"""Draw a digit on the canvas with the mouse and see the network's answer."""

import re

from e2e_helpers import (
    MAIN,
    closed_loop,
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


def test_drawn_one_and_zero_are_recognised(page, app_server):
    sends = []  # the canvas says how it sent each picture: Chromium deflates its grey pixels (not a PNG)
    page.on("console", lambda message: sends.append(message.text) if "digit canvas: send" in message.text else None)
    open_page(page, app_server, "/draw")

    draw_path(page, find_canvas(page), vertical_stroke())
    wait_for_prediction(page, 1)
    assert sends and all("(grey, " in text for text in sends), sends
    screenshot(page, "draw-1")
    # A thin "1" crops tall: its steps are still thumbnails of one size, not 1,800 px strips (issue 20, bug 4).
    # The five steps by their captions ("1. the ink" ... "5. centred by mass"): the feature maps and the saliency map
    # are images too, and under load one of them can be on the page before the last step.
    steps = page.locator(MAIN).get_by_test_id("stImage").filter(has_text=re.compile(r"^[1-5]\. ")).locator("img")
    expect(steps).to_have_count(5)
    for index in range(5):
        expect(steps.nth(index)).to_be_visible()
    sizes = {(round(box["width"]), round(box["height"])) for box in (steps.nth(i).bounding_box() for i in range(5))}
    assert len(sizes) == 1 and max(next(iter(sizes))) <= 160, sizes

    page.reload()  # a new session: an empty canvas
    wait_for_app(page)
    canvas = find_canvas(page)
    draw_path(page, canvas, closed_loop(radius_px=80, canvas_px=canvas.bounding_box()["width"]))
    wait_for_prediction(page, 0)
    screenshot(page, "draw-0")
    assert exception_messages(page) == []

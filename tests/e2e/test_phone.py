"""A newcomer on a phone (390 x 844, touch): every page fits the width, the way to each page is on the first
screen, a digit drawn with a finger is read, and your training shows on other pages while the sidebar is folded
(issue 20, item 8)."""

from __future__ import annotations

import re
import uuid

from e2e_helpers import MAIN, exception_messages, expect, open_page, screenshot, wait_for_app, wait_for_prediction
from test_load import FULL_TRAIN_SIZE, MAX_EPOCHS, set_field, stop_if_running

PHONE = {"width": 390, "height": 844}
PAGES = ["/", "/dataset", "/train", "/draw", "/models", "/my_digits"]


def overflow(page) -> int:
    """How many pixels the page is wider than the screen (0: no sideways scrolling)."""
    return page.evaluate("""() => {
        const main = document.querySelector('[data-testid="stMain"]');
        return Math.max(document.documentElement.scrollWidth, main ? main.scrollWidth : 0) - window.innerWidth;
    }""")


def touch_stroke(page, canvas, points: list[tuple[float, float]]) -> None:
    """A finger on the canvas: touchStart, touchMoves through `points` (fractions of its box), touchEnd, sent
    through the Chrome DevTools Protocol as a phone's touch screen would."""
    canvas.scroll_into_view_if_needed()
    box = canvas.bounding_box()
    at = [{"x": box["x"] + x * box["width"], "y": box["y"] + y * box["height"]} for x, y in points]
    cdp = page.context.new_cdp_session(page)
    cdp.send("Input.dispatchTouchEvent", {"type": "touchStart", "touchPoints": [at[0]]})
    for point in at[1:]:
        cdp.send("Input.dispatchTouchEvent", {"type": "touchMove", "touchPoints": [point]})
    cdp.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})
    cdp.detach()


def test_a_phone_journey(browser, app_server):
    context = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
    page = context.new_page()
    page.set_default_navigation_timeout(90_000)
    main = page.locator(MAIN)
    try:
        for path in PAGES:
            open_page(page, app_server, path)
            assert overflow(page) <= 0, f"{path} is wider than a phone"
            assert exception_messages(page) == [], path

        open_page(page, app_server, "/")
        where = main.get_by_role("heading", name="Where to go")
        assert where.bounding_box()["y"] < PHONE["height"]  # on the first screen, not below the figures
        page.wait_for_function("""() => {
            const link = document.querySelector('.st-key-home-card-draw a');
            return link && getComputedStyle(link, '::after').position === 'absolute';
        }""")
        text = page.locator(".st-key-home-card-draw").get_by_test_id("stCaptionContainer")
        text.scroll_into_view_if_needed()
        box = text.bounding_box()
        page.touchscreen.tap(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)  # the card's text, not its title
        wait_for_app(page)
        expect(main.get_by_role("heading", name="Draw", level=1)).to_be_visible()

        canvas = main.locator(".digit-canvas canvas")
        touch_stroke(page, canvas, [(0.5, 0.2 + 0.6 * i / 30) for i in range(31)])  # a "1", with a finger
        wait_for_prediction(page, 1)
        assert overflow(page) <= 0
        screenshot(page, "phone-draw")

        # A training, started from the Train page (its settings in the sidebar, opened as a phone user does)...
        open_page(page, app_server, "/train")
        name = f"phone-{uuid.uuid4().hex[:4]}"
        page.get_by_test_id("stExpandSidebarButton").tap()
        set_field(page, "Training images", FULL_TRAIN_SIZE)
        set_field(page, "Epochs", MAX_EPOCHS)  # as long as it gets: it must still run when another page looks
        set_field(page, "Model name", name)
        page.get_by_test_id("stSidebarCollapseButton").locator("button").tap()
        expect(page.get_by_test_id("stSidebar")).not_to_be_in_viewport()
        page.get_by_role("button", name="Start training").tap()
        expect(main.get_by_text(re.compile(rf"{name} · .* · started by you"))).to_be_visible(timeout=90_000)
        # ...shows on another page's main area while the sidebar is folded away.
        open_page(page, app_server, "/models")
        expect(page.get_by_test_id("stSidebar")).not_to_be_in_viewport()
        expect(main.get_by_text("Your training phone-")).to_be_visible()
        assert overflow(page) <= 0
    finally:
        # Stop it from a desktop-sized window of the same visitor (same cookies): nothing of the phone layout can
        # then stand in the way of the Stop button, and the shared server's next test finds no training running.
        page.set_viewport_size({"width": 1400, "height": 1000})
        try:
            open_page(page, app_server, "/train")
            # drawn before stop_if_running looks for Stop (it counts buttons as they are at that moment)
            page.get_by_role("button", name="Start training").wait_for(timeout=60_000)
            wait_for_app(page)
        except Exception as error:  # the test's own failure matters more; stop_if_running says what it could do
            print(f"could not open the Train page to stop the training: {error}")
        stop_if_running(page)
        context.close()

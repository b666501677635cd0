"""Home: each "Where to go" card is a link as a whole, not only its small title (issue 20, item 11)."""

import pytest
from e2e_helpers import MAIN, expect, open_page, wait_for_app

CARDS = [("dataset", "Dataset"), ("train", "Train"), ("draw", "Draw"), ("models", "Models"),
         ("my-digits", "My digits")]


@pytest.mark.parametrize(("card", "title"), CARDS[::2])  # three of five: each card is built the same way
def test_a_click_on_a_cards_text_opens_its_page(page, app_server, card, title):
    open_page(page, app_server, "/")
    # The page's style element can arrive a moment after the cards: wait until the link covers its card.
    page.wait_for_function(f"""() => {{
        const link = document.querySelector('.st-key-home-card-{card} a');
        return link && getComputedStyle(link, '::after').position === 'absolute';
    }}""")
    page.evaluate("document.fonts.ready")
    text = page.locator(f".st-key-home-card-{card}").get_by_test_id("stCaptionContainer").bounding_box()
    page.mouse.click(text["x"] + text["width"] / 2, text["y"] + text["height"] - 6)  # on the description's last line
    wait_for_app(page)
    expect(page.locator(MAIN).get_by_role("heading", name=title, level=1)).to_be_visible()

"""Every page opens in a real browser without an exception, inside the app's own navigation, and shows its title."""

import re

import pytest

from e2e_helpers import MAIN, exception_messages, expect, open_page, screenshot

PAGES = [
    ("/", "MNIST Lab", "home"),
    ("/dataset", "Dataset", "dataset"),
    ("/train", "Train", "train"),
    ("/draw", "Draw", "draw"),
    ("/models", "Models", "models"),
]
NAVIGATION_TITLES = ["Home", "Dataset", "Train", "Draw", "Models"]  # the st.Page titles app.py declares


def expect_app_navigation(page) -> None:
    """The sidebar lists app.py's pages by title, not Streamlit's pages/-folder fallback ("app", "dataset", ...)."""
    navigation = page.locator('[data-testid="stSidebarNav"]')
    for title in NAVIGATION_TITLES:
        expect(navigation).to_contain_text(title)
    expect(navigation.get_by_role("link", name="app", exact=True)).to_have_count(0)


@pytest.mark.parametrize(("path", "title", "name"), PAGES, ids=[name for _, _, name in PAGES])
def test_page_opens(page, app_server, path, title, name):
    open_page(page, app_server, path)

    assert exception_messages(page) == []
    expect_app_navigation(page)
    # a heading in the main area, not the sidebar's navigation link of the same name
    heading = page.locator(MAIN).get_by_role("heading", name=re.compile(re.escape(title)))
    expect(heading.first).to_be_visible()
    screenshot(page, name)


def test_deep_link_on_a_just_started_server(page, fresh_app_server):
    """A bookmark of /draw is the first request after a restart: app.py must still be what runs.

    Streamlit 1.67 runs a `pages/` folder next to the main script as an old-style multipage app (each page
    alone, without app.py's navigation and shared sidebar) until some session has run app.py once; that is
    why the pages live in views/. The shared server has long run app.py, so only a fresh one shows this.
    """
    open_page(page, fresh_app_server, "/draw")

    assert exception_messages(page) == []
    expect_app_navigation(page)
    expect(page.locator(MAIN).get_by_role("heading", name="Draw").first).to_be_visible()

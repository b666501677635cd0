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


@pytest.mark.parametrize(("path", "title", "name"), PAGES[1:], ids=[name for _, _, name in PAGES[1:]])
def test_a_deep_link_as_the_first_request_of_a_just_started_server_shows_the_whole_app(page, fresh_app_server,
                                                                                       path, title, name):
    """A bookmark of /train is the first request after a restart: app.py's navigation and sidebar must show.

    Streamlit 1.67 runs a `pages/` folder next to the main script as an old-style multipage app (each page alone,
    without app.py's navigation and shared sidebar) until some session has run app.py once; ui.run_as_app turns
    that off. The shared server has long run app.py, so only a fresh one shows this.
    """
    open_page(page, fresh_app_server, path)

    assert exception_messages(page) == []
    expect_app_navigation(page)
    expect(page.locator(MAIN).get_by_role("heading", name=title).first).to_be_visible()
    expect(page.locator('[data-testid="stSidebar"]').get_by_text("Active model")).to_be_visible()

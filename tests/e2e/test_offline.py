"""No page asks anything of the internet (issue 20, bug 6): the app must work where there is none, and a visit
must not leak to third parties. The tab's icon used to come from a font CDN on every page load."""

from urllib.parse import urlparse

from e2e_helpers import open_page

PAGES = ["/", "/dataset", "/train", "/draw", "/models", "/my_digits"]


def test_every_page_loads_only_from_the_app(page, app_server):
    app_host = urlparse(app_server).netloc
    outside = []
    page.on("request", lambda request: outside.append(request.url)
            if urlparse(request.url).scheme in ("http", "https", "ws", "wss")
            and urlparse(request.url).netloc != app_host else None)
    for path in PAGES:
        open_page(page, app_server, path)
    icon = page.locator('link[rel="shortcut icon"], link[rel="icon"]').first.get_attribute("href")
    assert icon and urlparse(icon).netloc in ("", app_host) or icon.startswith("data:")
    assert outside == []

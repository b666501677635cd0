"""Dataset page: click a digit in the grid to look at it pixel by pixel (issue 20, item 11: you had to type its index)."""

from e2e_helpers import MAIN, exception_messages, expect, open_page, screenshot, wait_for_app

from mnist_core.data import load_mnist


def click_tile(page, grid, position: int) -> None:
    """Click the tile at `position` in the grid, where Plotly drew its (invisible) point."""
    grid.scroll_into_view_if_needed()
    tile = grid.locator(".scatterlayer path.point").nth(position).bounding_box()
    page.mouse.click(tile["x"] + tile["width"] / 2, tile["y"] + tile["height"] / 2)
    wait_for_app(page)


def test_a_click_on_a_digit_shows_it_pixel_by_pixel(page, app_server):
    (_, y_train), _ = load_mnist()
    open_page(page, app_server, "/dataset")
    main = page.locator(MAIN)
    expect(main.get_by_text("train image #0", exact=True)).to_be_visible()  # the first one shown, to start with
    grid = main.locator('[data-testid="stPlotlyChart"]').first
    expect(grid.locator(".scatterlayer path.point")).to_have_count(50)

    click_tile(page, grid, 12)
    expect(main.get_by_text("train image #12", exact=True)).to_be_visible()
    label = main.locator('[data-testid="stMetric"]').filter(has_text="Label")
    expect(label.locator('[data-testid="stMetricValue"]')).to_have_text(str(y_train[12]))
    expect(main.get_by_role("spinbutton", name="Image index (0 to 59,999)")).to_have_value("12")
    screenshot(page, "dataset-click")

    click_tile(page, grid, 47)
    expect(main.get_by_text("train image #47", exact=True)).to_be_visible()
    assert exception_messages(page) == []

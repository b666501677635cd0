"""Models page: a click on a confusion-matrix cell shows the test images of that mistake (issue 20, bug 1).

The matrix used to be two heatmaps, the diagonal drawn over the mistakes; every click landed on the top one, empty
there, and nothing filtered.
"""

import re

from e2e_helpers import MAIN, exception_messages, expect, open_page, screenshot, wait_for_app


def click_cell(page, chart, true_digit: int, predicted: int) -> None:
    """Click the middle of the cell in row `true_digit`, column `predicted` of the 10x10 matrix in `chart`, where
    Plotly drew that cell's (invisible) point: row by row, as plots.confusion_matrix lays them out."""
    chart.scroll_into_view_if_needed()  # a mouse click lands only inside the window
    point = chart.locator(".scatterlayer path.point").nth(true_digit * 10 + predicted)
    cell = point.bounding_box()
    page.mouse.click(cell["x"] + cell["width"] / 2, cell["y"] + cell["height"] / 2)
    wait_for_app(page)


def test_a_click_on_a_cell_shows_that_mistake(page, app_server):
    open_page(page, app_server, "/models")
    main = page.locator(MAIN)
    # The model evaluated first is the active one (strong-cnn: 5 nines taken for a 4, 5 twos for a 7). Picking another
    # here raced: the old matrix (100 points too) could take the click while the new one was on its way.
    chart = main.locator('[data-testid="stPlotlyChart"]').filter(has_text="Confusion matrix")
    expect(chart.locator(".scatterlayer path.point")).to_have_count(100)
    expect(main.get_by_text(re.compile(r"most confident mistakes \(click a confusion-matrix cell"))).to_be_visible()

    click_cell(page, chart, 9, 4)
    expect(main.get_by_text(re.compile(r"^\d+ test image\(s\) of a 9 taken for a 4"))).to_be_visible()
    screenshot(page, "models-confusion-click")

    # Another cell right away: the filter follows (two clicks within Plotly's 300 ms double-click delay used to
    # count as a double click, which clears the selection: plots.PICK_CONFIG turns that off).
    click_cell(page, chart, 2, 7)
    expect(main.get_by_text(re.compile(r"^\d+ test image\(s\) of a 2 taken for a 7"))).to_be_visible()
    expect(main.get_by_text(re.compile(r"of a 9 taken for a 4"))).to_have_count(0)

    click_cell(page, chart, 3, 3)  # the diagonal: right answers, so all mistakes again, and the page says why
    expect(main.get_by_text("That cell is the diagonal (correct answers); showing all mistakes instead.")).to_be_visible()
    assert exception_messages(page) == []

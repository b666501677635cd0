"""Dataset page: click a digit in the grid to look at it pixel by pixel (issue 20, item 11: you had to type its index).

The grid is widgets/digit_grid.py: a button per digit, named "train image #N, label L".
"""

from e2e_helpers import MAIN, exception_messages, expect, open_page, screenshot, wait_for_app

from mnist_core.data import load_mnist


def tile(page, index: int, label: int):
    return page.locator(MAIN).get_by_role("button", name=f"train image #{index}, label {label}", exact=True)


def test_a_click_on_a_digit_shows_it_pixel_by_pixel(page, app_server):
    (_, y_train), _ = load_mnist()
    open_page(page, app_server, "/dataset")
    main = page.locator(MAIN)
    expect(main.get_by_text("train image #0", exact=True)).to_be_visible()  # the first one shown, to start with
    expect(main.locator(".digit-grid button")).to_have_count(50)
    expect(tile(page, 0, y_train[0])).to_have_attribute("aria-pressed", "true")

    tile(page, 12, y_train[12]).click()
    expect(main.get_by_text("train image #12", exact=True)).to_be_visible()
    label = main.locator('[data-testid="stMetric"]').filter(has_text="Label")
    expect(label.locator('[data-testid="stMetricValue"]')).to_have_text(str(y_train[12]))
    expect(main.get_by_role("spinbutton", name="Image index (0 to 59,999)")).to_have_value("12")
    expect(tile(page, 12, y_train[12])).to_have_attribute("aria-pressed", "true")
    expect(tile(page, 0, y_train[0])).to_have_attribute("aria-pressed", "false")
    wait_for_app(page)
    screenshot(page, "dataset-click")

    tile(page, 47, y_train[47]).click()
    expect(main.get_by_text("train image #47", exact=True)).to_be_visible()

    # Typed elsewhere, then the same tile again: it is looked at again.
    index = main.get_by_role("spinbutton", name="Image index (0 to 59,999)")
    index.fill("3")
    index.press("Enter")
    expect(main.get_by_text("train image #3", exact=True)).to_be_visible()
    wait_for_app(page)
    tile(page, 47, y_train[47]).focus()
    page.keyboard.press("Enter")  # the keyboard picks too
    expect(main.get_by_text("train image #47", exact=True)).to_be_visible()
    assert exception_messages(page) == []

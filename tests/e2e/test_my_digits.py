"""My digits in Chromium: draw three digits, correct one, save them, see them on My digits, export, delete, import
the export back and see them again."""

from __future__ import annotations

import re

from e2e_helpers import (
    MAIN,
    closed_loop,
    draw_path,
    exception_messages,
    expect,
    find_canvas,
    open_page,
    vertical_stroke,
    wait_for_app,
)

SAVED = re.compile(r"Saved as an? (\d) in your collection (visitor-[0-9a-f]+) \((\d+) drawings?\)")


def diagonal_stroke(steps: int = 40) -> list[tuple[float, float]]:
    """A slanted bar, top right to bottom left: some digit to the network, a 7 to the person who drew it."""
    return [(0.65 - 0.3 * i / steps, 0.2 + 0.6 * i / steps) for i in range(steps + 1)]


def save_drawing(page, points, expected_count: int, label: int | None = None) -> str:
    """Draw `points`, wait for the prediction, say "Right" (or "It is a LABEL"), Save; returns the toast's text."""
    canvas = find_canvas(page)
    draw_path(page, canvas, points)
    expect(page.locator(MAIN).get_by_text(re.compile(r"Prediction:\s*\d"))).to_be_visible()
    main = page.locator(MAIN)
    if label is not None:
        main.get_by_text("It is a", exact=True).click()
        wait_for_app(page)
        main.get_by_label("True digit").click()
        page.get_by_role("option", name=str(label), exact=True).click()
        wait_for_app(page)
    main.get_by_role("button", name="Save").click()
    toast = page.get_by_text(SAVED).last
    expect(toast).to_contain_text(f"({expected_count} drawing{'' if expected_count == 1 else 's'})")
    text = toast.inner_text()
    # The canvas is empty again, ready for the next digit; the run that says so has ended (until then the page is
    # still shrinking from the analysis to the hint, and the next stroke would land where the canvas was).
    expect(main.get_by_text("Draw a digit on the canvas")).to_be_visible()
    wait_for_app(page)
    return text


def test_draw_save_see_export_delete_import_and_see_again(page, app_server, tmp_path):
    open_page(page, app_server, "/draw")
    save_drawing(page, vertical_stroke(), 1)
    canvas_px = find_canvas(page).bounding_box()["width"]
    save_drawing(page, closed_loop(radius_px=80, canvas_px=canvas_px), 2)
    toast = save_drawing(page, diagonal_stroke(), 3, label=7)
    label, collection, _ = SAVED.search(toast).groups()
    assert label == "7"

    open_page(page, app_server, "/my_digits")
    main = page.locator(MAIN)
    expect(main.get_by_text(f"Collection {collection} · 3 drawings · yours")).to_be_visible()
    for title in ("#1: 1", "#2: 0"):
        expect(main.get_by_text(title, exact=True)).to_be_visible()
    expect(main.get_by_text(re.compile(r"^#3: 7( \(\d\))?$"))).to_be_visible()  # red, with the model's answer, if wrong
    expect(main.get_by_text("Every model on your handwriting")).to_be_visible()

    with page.expect_download() as download:
        main.get_by_role("button", name="Export .zip").click()
    exported = tmp_path / download.value.suggested_filename
    download.value.save_as(exported)
    assert exported.name == f"{collection}.zip" and exported.stat().st_size > 0

    main.get_by_text(f"Yes, delete all 3 drawings of {collection}").click()
    main.get_by_role("button", name="Delete the collection").click()
    expect(main.get_by_text("You have not saved any digits yet")).to_be_visible()
    expect(main.get_by_text("#1: 1", exact=True)).to_have_count(0)

    main.get_by_test_id("stFileUploaderDropzoneInput").set_input_files(str(exported))
    expect(main.get_by_text(exported.name)).to_be_visible()
    main.get_by_role("button", name="Import", exact=True).click()
    expect(main.get_by_text(f"Imported 3 drawing(s) from {exported.name} into {collection}.")).to_be_visible()
    for title in ("#1: 1", "#2: 0"):
        expect(main.get_by_text(title, exact=True)).to_be_visible()
    expect(main.get_by_text(re.compile(r"^#3: 7( \(\d\))?$"))).to_be_visible()
    assert exception_messages(page) == []

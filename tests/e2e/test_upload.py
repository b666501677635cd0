"""Upload a picture on the Draw page: a format the app does not accept is a short message, a photo a prediction."""

import io

from PIL import Image

from e2e_helpers import (
    MAIN,
    PREDICTION,
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

REFUSED = "The file could not be read as an image: only PNG, JPEG, GIF, BMP and WebP files are accepted."


def file_bytes(picture: Image.Image, file_format: str) -> bytes:
    buffer = io.BytesIO()
    picture.save(buffer, format=file_format)
    return buffer.getvalue()


def upload(page, name: str, data: bytes) -> None:
    page.locator(MAIN).get_by_test_id("stFileUploaderDropzoneInput").set_input_files(
        files=[{"name": name, "mimeType": "image/png", "buffer": data}]
    )


def test_a_tiff_named_png_is_refused_and_a_photo_of_a_seven_is_read(page, app_server, mnist):
    (_, _), (x_test, y_test) = mnist
    assert y_test[0] == 7
    open_page(page, app_server, "/draw")
    page.locator(MAIN).get_by_text("Upload a photo", exact=True).click()

    upload(page, "digit.png", file_bytes(Image.fromarray(255 - x_test[0]).resize((112, 112)), "TIFF"))
    expect(page.locator(MAIN).get_by_text(REFUSED)).to_be_visible(timeout=30_000)
    screenshot(page, "draw-upload-refused")
    assert exception_messages(page) == []
    expect(page.locator(MAIN).get_by_text(PREDICTION)).to_have_count(0)
    # the other column says why there is no prediction, not "Draw a digit" (issue 20, item 11)
    expect(page.locator(MAIN).get_by_text("No prediction: what was sent could not be read")).to_be_visible()
    expect(page.locator(MAIN).get_by_text("Draw a digit on the canvas")).to_have_count(0)

    upload(page, "seven.png", file_bytes(Image.fromarray(255 - x_test[0]).resize((112, 112)), "PNG"))
    wait_for_prediction(page, 7)
    expect(page.locator(MAIN).get_by_text(REFUSED)).to_have_count(0)
    assert exception_messages(page) == []


def test_a_drawing_is_still_there_after_a_look_at_upload(page, app_server):
    """Draw -> Upload a photo -> Draw: the drawing and its prediction come back (issue 20, item 11)."""
    open_page(page, app_server, "/draw")
    main = page.locator(MAIN)
    draw_path(page, find_canvas(page), vertical_stroke())
    wait_for_prediction(page, 1)
    main.get_by_text("Upload a photo", exact=True).click()
    expect(main.get_by_text("Upload a photo of one digit to see the prediction.")).to_be_visible()
    main.get_by_role("radio", name="Draw", exact=True).click()
    wait_for_app(page)
    wait_for_prediction(page, 1)
    assert exception_messages(page) == []

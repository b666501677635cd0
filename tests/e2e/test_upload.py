"""Upload a picture on the Draw page: a format the app does not accept is a short message, a photo a prediction."""

import io

from PIL import Image

from e2e_helpers import MAIN, exception_messages, expect, open_page, screenshot, wait_for_prediction

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
    expect(page.locator(MAIN).get_by_text("Prediction:")).to_have_count(0)

    upload(page, "seven.png", file_bytes(Image.fromarray(255 - x_test[0]).resize((112, 112)), "PNG"))
    wait_for_prediction(page, 7)
    expect(page.locator(MAIN).get_by_text(REFUSED)).to_have_count(0)
    assert exception_messages(page) == []

"""Models page: convert a model to TensorFlow Lite, read the measured table, download a quantized file that works."""

from e2e_helpers import MAIN, choose, exception_messages, expect, open_page, screenshot, wait_for_app

CONVERSION_TIMEOUT_MS = 600_000  # four conversions and five 10k evaluations in a worker, on a busy 2-core machine


def test_export_table_and_a_downloaded_int8_model_that_classifies(page, app_server, mnist, tmp_path):
    from mnist_core.inference import Classifier

    open_page(page, app_server, "/models")
    main = page.locator(MAIN)
    choose(page, main.get_by_role("combobox", name="Model", exact=True), "cnn")  # the download's name checks it
    expect(main.get_by_role("heading", name="Export")).to_be_visible()

    page.get_by_role("button", name="Convert and measure").click()
    download_int8 = page.get_by_role("button", name="full int8")
    download_int8.wait_for(timeout=CONVERSION_TIMEOUT_MS)
    wait_for_app(page)
    # The table (a canvas grid: its cells are not text in the page) and its caption.
    expect(main.locator('[data-testid="stDataFrame"]')).to_have_count(2)
    expect(main.get_by_text("Full-integer int8 takes and gives int8 tensors")).to_be_visible()
    expect(page.get_by_role("button", name="Convert and measure")).to_have_count(0)
    screenshot(page, "models-export")

    with page.expect_download() as download_info:
        download_int8.click()
    download = download_info.value
    assert download.suggested_filename == "cnn-int8.tflite"
    saved = tmp_path / download.suggested_filename
    download.save_as(saved)
    int8 = Classifier(saved.read_bytes())
    (_, _), (x_test, y_test) = mnist
    assert (int8.predict(x_test[:1000]) == y_test[:1000]).mean() >= 0.98  # the shipped cnn: ~99% with int8
    assert exception_messages(page) == []

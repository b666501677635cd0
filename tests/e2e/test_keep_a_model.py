"""Keep a model across a restart the way a person would: download it, upload it again, draw with it."""

import json
import re
import uuid
from pathlib import Path

from e2e_helpers import (
    MAIN,
    draw_path,
    exception_messages,
    expect,
    find_canvas,
    open_page,
    vertical_stroke,
    wait_for_app,
    wait_for_prediction,
)
from test_models_export import choose

PROJECT_ROOT = Path(__file__).resolve().parents[2]

IMPORT_TIMEOUT_MS = 300_000  # a worker starts (TensorFlow), checks, evaluates on 10,000 images and converts


def test_a_downloaded_model_uploaded_again_is_stored_and_draws(page, app_server, tmp_path):
    name = f"kept-{uuid.uuid4().hex[:4]}"
    open_page(page, app_server, "/models")
    main = page.locator(MAIN)
    choose(page, main.get_by_role("combobox", name="Model", exact=True), "cnn")
    # The page has rerun for cnn (its figures show) before the click: a download button clicked while the page
    # reruns points at a file the rerun has replaced, and nothing downloads.
    accuracy = json.loads((PROJECT_ROOT / "models" / "cnn.json").read_text())["test_accuracy"]
    expect(main.get_by_test_id("stMetric").filter(has_text="Test accuracy")).to_contain_text(f"{accuracy:.2%}")
    wait_for_app(page)
    with page.expect_download() as download_info:
        page.get_by_role("button", name=".keras", exact=True).click()
    downloaded = tmp_path / download_info.value.suggested_filename
    download_info.value.save_as(downloaded)

    main.get_by_label("A .keras model file").get_by_test_id("stFileUploaderDropzoneInput").set_input_files(
        str(downloaded))
    field = main.get_by_label("Store it as")
    expect(field).to_have_value("cnn")
    field.fill(name)
    field.press("Tab")
    wait_for_app(page)
    page.get_by_role("button", name="Upload and evaluate").click()
    expect(main.get_by_text(f"Stored as {name}: test accuracy")).to_be_visible(timeout=IMPORT_TIMEOUT_MS)

    # It is everybody's to draw with now (the sidebar lists it), and it reads digits like the one it came from.
    picker = page.locator('[data-testid="stSidebar"]').get_by_role("combobox", name="Active model")
    picker.click()
    page.get_by_role("option", name=re.compile(rf"^{name} \(")).click()  # "kept-1a2b (99.24%)"
    wait_for_app(page)
    page.locator('[data-testid="stSidebarNav"]').get_by_role("link", name="Draw").click()  # same session
    wait_for_app(page)
    draw_path(page, find_canvas(page), vertical_stroke())
    wait_for_prediction(page, 1)
    expect(main.get_by_text(f"according to {name}")).to_be_visible()
    assert exception_messages(page) == []

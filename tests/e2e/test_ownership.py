"""Two visitors in Chromium: what one trained, the other cannot delete; after a reload it is still the first one's."""

import uuid

from e2e_helpers import MAIN, choose, exception_messages, expect, open_page, wait_for_app
from test_load import SAVE_TIMEOUT_S, new_visitor, start_training, stop_if_running


def delete_options(page, expect_some: bool = False) -> list[str]:
    """The Models page's "Model to delete" choices ([] when it offers none). With `expect_some`, wait for the picker
    itself (a visitor who owns a model): the page's first run after a reload once showed the sentence for a moment."""
    main = page.locator(MAIN)
    picker = main.get_by_role("combobox", name="Model to delete")
    # The section is the page's last: wait until it is drawn, with a picker or the sentence saying there is none.
    expect(picker if expect_some else picker.or_(main.get_by_text("No model of yours to delete here"))).to_be_visible()
    if picker.count() == 0:
        return []
    # Scrolled to first: clicked while Playwright scrolled it into view (the section is at the foot of a long page),
    # the list did not open in 2 of 4 tries, where a click on a picker in view opened it every time (2026-11-30):
    # the cause of the earlier "KNOWN BUG (issue 17)" retry here; the page itself offered the model.
    picker.scroll_into_view_if_needed()
    picker.click()
    options = page.get_by_role("option")
    expect(options.first).to_be_visible()
    texts = options.all_inner_texts()
    page.keyboard.press("Escape")
    return [option.strip() for option in texts]


def test_your_model_is_yours_to_delete_and_nobody_elses(browser, app_server):
    name = f"mine-{uuid.uuid4().hex[:4]}"
    owner = new_visitor(browser, app_server, "/train")
    other = new_visitor(browser, app_server, "/models")
    try:
        start_training(owner, name, train_size=500, epochs=1)
        expect(owner.locator(MAIN).get_by_text(f"Training finished: saved as {name}")).to_be_visible(
            timeout=SAVE_TIMEOUT_S * 1000)

        other.reload()
        wait_for_app(other)
        assert name not in delete_options(other)

        owner.reload()  # the same visitor after a reload: still theirs
        open_page(owner, app_server, "/models")
        mine = delete_options(owner, expect_some=True)
        assert name in mine, (
            f"{name} is not the owner's to delete after a reload (offered: {mine}); cookies "
            f"{[cookie['name'] + '=' + cookie['value'][:6] for cookie in owner.context.cookies()]}")
        main = owner.locator(MAIN)
        choose(owner, main.get_by_role("combobox", name="Model to delete"), name)
        wait_for_app(owner)
        main.get_by_text(f"Yes, delete {name} for good").click()
        wait_for_app(owner)
        owner.get_by_role("button", name="Delete", exact=True).click()
        expect(owner.get_by_text(f"Deleted {name}.")).to_be_visible()
        # Their only model gone, the section says so (not the picker still on the screen while the page reruns).
        expect(main.get_by_text("No model of yours to delete here")).to_be_visible()
        assert exception_messages(owner) == [] and exception_messages(other) == []
    finally:
        stop_if_running(owner)
        owner.context.close()
        other.context.close()

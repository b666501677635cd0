"""A classroom on one server, in Chromium: trainings queue instead of "busy", a reload keeps your job, only you can
stop it, a queued training can be cancelled and starts by itself when its turn comes."""

from __future__ import annotations

import re
import uuid

from e2e_helpers import MAIN, exception_messages, expect, open_page
from test_load import SAVE_TIMEOUT_S, TRAINING_START_TIMEOUT_S, new_visitor, set_field, start_training, stop_if_running


def queue_training(page, name: str, train_size: int, epochs: int) -> None:
    set_field(page, "Training images", train_size)
    set_field(page, "Epochs", epochs)
    set_field(page, "Model name", name)
    page.get_by_role("button", name="Start training").click()


def test_trainings_queue_a_reload_keeps_your_job_and_a_queued_one_starts_by_itself(browser, app_server):
    tag = uuid.uuid4().hex[:4]
    first, second, third = (f"queue-{letter}-{tag}" for letter in "abc")
    owner = new_visitor(browser, app_server, "/train")
    waiting = new_visitor(browser, app_server, "/train")
    leaving = new_visitor(browser, app_server, "/train")
    pages = [owner, waiting, leaving]
    try:
        # As long as the app allows, so it runs until its owner stops it, however fast this machine is.
        start_training(owner, first, train_size=60_000, epochs=50)
        expect(owner.get_by_text(re.compile(r"img/s")).first).to_be_visible(timeout=TRAINING_START_TIMEOUT_S * 1000)

        # F5: the same visitor (the browser keeps their token), so their job and its Stop button stay theirs.
        owner.reload()
        open_page(owner, app_server, "/train")
        expect(owner.locator(MAIN).get_by_text(re.compile(rf"{first} · .* · started by you"))).to_be_visible()
        expect(owner.get_by_role("button", name="Stop training")).to_be_enabled()
        # While your own runs, Start waits, and nothing calls your own job someone else's "busy" (issue 20, bug 2).
        expect(owner.get_by_role("button", name="Start training")).to_be_disabled()
        expect(owner.get_by_text(re.compile("Training is busy", re.IGNORECASE))).to_have_count(0)

        # Others cannot stop it: their Stop is for their own training, and they have none.
        expect(waiting.get_by_role("button", name="Stop training")).to_be_disabled()
        expect(waiting.locator(MAIN).get_by_text(re.compile(rf"{first} · .* · started by visitor-"))).to_be_visible()

        # A second and a third press Start: they wait in line, and each sees where.
        queue_training(waiting, second, train_size=500, epochs=1)
        expect(waiting.locator(MAIN).get_by_text(re.compile(rf"Your training {second} is number 1 in the queue")))\
            .to_be_visible()
        queue_training(leaving, third, train_size=500, epochs=1)
        expect(leaving.locator(MAIN).get_by_text(re.compile(rf"Your training {third} is number 2 in the queue")))\
            .to_be_visible()
        expect(owner.locator(MAIN).get_by_text("Queue (2 waiting)")).to_be_visible()

        # The third changes their mind.
        leaving.get_by_role("button", name="Cancel").click()
        expect(leaving.locator(MAIN).get_by_text(re.compile(rf"Training {third} cancelled"))).to_be_visible()
        expect(waiting.locator(MAIN).get_by_text("Queue (1 waiting)")).to_be_visible()

        # The owner stops theirs (the model so far is kept) and the queued one starts by itself and is saved.
        owner.get_by_role("button", name="Stop training").click()
        expect(owner.locator(MAIN).get_by_text(f"Training stopped: the model so far is saved as {first}"))\
            .to_be_visible(timeout=SAVE_TIMEOUT_S * 1000)
        expect(waiting.locator(MAIN).get_by_text(f"Training finished: saved as {second}"))\
            .to_be_visible(timeout=SAVE_TIMEOUT_S * 1000)
        assert all(exception_messages(page) == [] for page in pages)
    finally:
        stop_if_running(owner)  # the server is shared with the next tests: never leave an endless job behind
        for page in pages:
            page.context.close()

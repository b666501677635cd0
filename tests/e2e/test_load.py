"""Several visitors at once, and one who leaves: the app answers every drawing while it trains, and finishes
what a closed tab started.

One server (conftest's app_server), one browser, a context per visitor (its own cookies, so its own Streamlit
session). bench/bench_load.py runs the same scenario (`run_drawing_load`) standalone and prints its latencies.
"""

from __future__ import annotations

import json
import math
import os
import re
import statistics
import time
import uuid
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from e2e_helpers import (
    MAIN,
    PREDICTION,
    closed_loop,
    draw_path,
    exception_messages,
    expect,
    find_canvas,
    open_page,
    vertical_stroke,
    wait_for_app,
)

VIEWPORT = {"width": 1400, "height": 1000}
SESSIONS = 5
ROUNDS = 3
PREDICTION_TIMEOUT_S = 60
TRAINING_START_TIMEOUT_S = 90
SAVE_TIMEOUT_S = 120
FULL_TRAIN_SIZE, MAX_EPOCHS = 60_000, 50  # the most the Train page allows
# A round whose training ended before all its answers came is drawn again, at most this many times in all.
MAX_REPEATED_ROUNDS = 6

# Timestamps taken in the page itself: the mouse-up that ends a stroke, and the moment "Prediction: D" appears.
# performance.now() of one page for both, so the figure includes the browser's own rendering and no clock skew.
LATENCY_PROBE = """
(() => {
  const probe = window.__loadProbe = {armed: false, mouseUp: null, answeredAt: null, digit: null};
  addEventListener("pointerup", () => {
    if (probe.armed && probe.mouseUp === null) probe.mouseUp = performance.now();
  }, true);
  const look = () => {
    if (probe.mouseUp === null || probe.answeredAt !== null) return;
    const main = document.querySelector('[data-testid="stMain"]');
    const found = main && main.textContent.match(/Prediction:\\s*(\\d)/);
    if (found) { probe.answeredAt = performance.now(); probe.digit = Number(found[1]); }
  };
  new MutationObserver(look).observe(document, {subtree: true, childList: true, characterData: true});
})();
"""
ARM_PROBE = "() => Object.assign(window.__loadProbe, {armed: true, mouseUp: null, answeredAt: null, digit: null})"
READ_PROBE = "() => window.__loadProbe"


@dataclass(frozen=True)
class Drawing:
    session: int
    round: int
    expected: int
    predicted: int | None
    latency_ms: float | None  # mouse-up to "Prediction: D" on the page; None if no answer came in time


# What each visitor's page wrote to its console (the canvas says when it mounts and when it resends), by id(page):
# shown when a visitor's canvas is not in the state the test expects.
CONSOLE: dict[int, list[str]] = {}


# --- visitors ----------------------------------------------------------------------------------------------------


def new_visitor(browser, base_url: str, path: str):
    """A new tab with its own cookies (a new Streamlit session), opened on `path`, with the latency probe."""
    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    page.set_default_timeout(30_000)
    page.set_default_navigation_timeout(90_000)  # a first page load waits for TensorFlow and MNIST on a busy server
    page.add_init_script(LATENCY_PROBE)
    CONSOLE[id(page)] = log = []
    page.on("console", lambda message: log.append(f"{time.strftime('%H:%M:%S')} {message.type}: {message.text}"))
    page.on("pageerror", lambda error: log.append(f"{time.strftime('%H:%M:%S')} uncaught: {error}"))
    page.on("crash", lambda _: log.append(f"{time.strftime('%H:%M:%S')} the page crashed"))
    page.on("framenavigated", lambda frame: log.append(f"{time.strftime('%H:%M:%S')} navigated to {frame.url}")
            if frame == page.main_frame else None)
    open_page(page, base_url, path)
    return page


def set_field(page, label: str, value) -> None:
    """Type `value` into a number or text input and commit it (Tab), checking that it stuck.

    A rerun that ends between typing and committing redraws the field with the server's value and loses the
    typing; so wait for the rerun a commit starts, and type again if the value did not stick.
    """
    field = page.get_by_label(label, exact=True)
    for _ in range(3):
        field.fill(str(value))
        field.press("Tab")  # commits the value; Enter would submit a form early
        page.wait_for_timeout(300)  # the rerun has started by now: wait for its end, not for the previous one's
        wait_for_app(page)
        if field.input_value().replace(",", "") == str(value):
            return
    raise AssertionError(f"{label!r} would not take {value!r}; it shows {field.input_value()!r}")


def start_training(page, name: str, train_size: int, epochs: int, timeout_s: float = TRAINING_START_TIMEOUT_S):
    """Fill in the Train page, press Start once and wait until the job runs (it may wait in the queue first, behind
    another visitor's job: it starts by itself)."""
    set_field(page, "Training images", train_size)
    set_field(page, "Epochs", epochs)
    set_field(page, "Model name", name)
    page.get_by_role("button", name="Start training").click()
    main = page.locator(MAIN)
    try:  # the live view names the job: "name · cnn · started by you"
        expect(main.get_by_text(re.compile(rf"{re.escape(name)} · .* · started by you"))).to_be_visible(
            timeout=timeout_s * 1000)
    except AssertionError:
        raise AssertionError(f"training {name!r} did not start; the page shows: "
                             f"{' '.join(main.inner_text().split())[:400]}") from None


def training_is_running(page) -> bool:
    """The owner's Stop button is enabled exactly while their job runs."""
    return page.get_by_role("button", name="Stop training").is_enabled()


def stop_if_running(page) -> None:
    """Press this visitor's Stop (or Cancel) if they have a training running or waiting, and wait for its end: the
    browser tests share one server, so a test never leaves an endless job behind, even when it fails."""
    try:
        for label in ("Stop training", "Cancel"):
            button = page.get_by_role("button", name=label)
            if button.count() and button.first.is_enabled():
                button.first.click()
                expect(page.get_by_role("button", name="Start training")).to_be_enabled(timeout=SAVE_TIMEOUT_S * 1000)
                return
    except Exception as error:  # cleanup must not hide the test's own failure
        print(f"could not stop the test's training: {error}")


def first_training_size() -> tuple[int, int]:
    """(training images, epochs) of the first training the load runs against: as long as the app allows, unless
    MNIST_LAB_LOAD_FIRST_TRAINING="IMAGESxEPOCHS" asks for another (to check the test on a training that ends
    early, as on a much faster machine, or that runs long)."""
    asked = os.environ.get("MNIST_LAB_LOAD_FIRST_TRAINING")
    if not asked:
        return FULL_TRAIN_SIZE, MAX_EPOCHS
    images, epochs = (int(part) for part in asked.lower().split("x"))
    return images, epochs


class KeptTraining:
    """A training the test keeps running under the load, so the outcome never depends on which is faster.

    Every training is started from the Train page by one visitor (the owner). The first is as long as the app
    allows (seed CNN, all 60,000 images, 50 epochs: minutes even on the fastest machine seen, 8,558 img/s); if
    one still ends by itself, `ensure_running` starts the next with eight times the images (up to that maximum).
    """

    GROWTH = 8

    def __init__(self, page, train_size: int, epochs: int):
        self.page = page
        self.train_size, self.epochs = train_size, epochs
        self.started: list[str] = []
        self.running_after_rounds: list[bool] = []  # was it running when each round's last answer came?

    def running(self) -> bool:
        return bool(self.started) and training_is_running(self.page)

    def check_after_round(self) -> bool:
        running = self.running()
        self.running_after_rounds.append(running)
        return running

    def ensure_running(self) -> None:
        if self.running():
            return
        if self.started:  # the last one ended by itself: the next is longer
            images = min(FULL_TRAIN_SIZE * MAX_EPOCHS, self.train_size * self.epochs * self.GROWTH)
            self.train_size = min(FULL_TRAIN_SIZE, images)
            self.epochs = min(MAX_EPOCHS, math.ceil(images / self.train_size))
        name = f"under-load-{uuid.uuid4().hex[:6]}"
        start_training(self.page, name, train_size=self.train_size, epochs=self.epochs)
        self.started.append(name)
        # the first batch has been trained: TensorFlow, the data and the model are loaded
        expect(self.page.get_by_text(re.compile(r"img/s")).first).to_be_visible(
            timeout=TRAINING_START_TIMEOUT_S * 1000)

    def stop(self) -> None:
        """Press Stop and wait until the job has saved what it trained."""
        self.page.get_by_role("button", name="Stop training").click()
        expect(self.page.locator(MAIN).get_by_text("Training stopped")).to_be_visible(timeout=SAVE_TIMEOUT_S * 1000)


def images_per_second(page) -> str | None:
    found = re.search(r"([\d,]+) img/s", page.locator(MAIN).inner_text())
    return found.group(1) if found else None


# --- the load scenario -------------------------------------------------------------------------------------------


# Where a stroke's first point lands, as the page sees it: the element hit there (in the page and in the canvas'
# shadow root), the canvas' box and the scroll; said when a stroke did not reach the canvas.
HIT_TEST = """
(canvas, [x, y]) => {
  const name = (element) => element ? `${element.tagName.toLowerCase()}.${[...element.classList].join(".")}` +
      (element.dataset && element.dataset.testid ? `[${element.dataset.testid}]` : "") : null;
  const root = canvas.getRootNode();
  const box = canvas.getBoundingClientRect();
  return {
    connected: canvas.isConnected, ready: canvas.closest(".digit-canvas")?.dataset.ready ?? null,
    canvases: root.querySelectorAll ? root.querySelectorAll(".digit-canvas").length : null,
    box: [box.x, box.y, box.width, box.height].map(Math.round), scrollY: window.scrollY,
    hitInPage: name(document.elementFromPoint(x, y)),
    hitInRoot: root.elementFromPoint ? name(root.elementFromPoint(x, y)) : null,
  };
}
"""


def draw_digit(page, digit: int) -> None:
    """Draw `digit` and check that the canvas took the stroke (its Clear button comes on at once in the browser);
    if not, say where the stroke landed."""
    canvas = find_canvas(page)
    box = canvas.bounding_box()
    points = vertical_stroke() if digit == 1 else closed_loop(radius_px=80, canvas_px=box["width"])
    page.evaluate(ARM_PROBE)
    draw_path(page, canvas, points)
    clear = page.get_by_role("button", name="Clear")
    try:
        expect(clear).to_be_enabled(timeout=10_000)
    except AssertionError:
        start = (box["x"] + points[0][0] * box["width"], box["y"] + points[0][1] * box["height"])
        raise AssertionError(
            f"the stroke did not reach the canvas (box used {[round(v) for v in box.values()]}, first point "
            f"{[round(v) for v in start]}); now: {canvas.evaluate(HIT_TEST, list(start))}; probe "
            f"{page.evaluate(READ_PROBE)}; console:\n" + "\n".join(CONSOLE.get(id(page), [])[-40:])) from None


def clear_canvas(page) -> None:
    """Press the canvas' own Clear button once: the prediction must go (it clears in the browser and sends the
    empty canvas; no page rerun to race, which is how a Clear was once lost under this load with the old canvas)."""
    clear = page.get_by_role("button", name="Clear")
    try:
        expect(clear).to_be_enabled(timeout=30_000)
    except AssertionError:
        state = "disabled (the canvas is empty)" if clear.count() else "missing (no canvas on the page)"
        shown = " ".join(page.locator("body").inner_text(timeout=5_000).split())[:400]
        raise AssertionError(
            f"Clear is {state}; probe {page.evaluate(READ_PROBE)}; the page shows {shown!r}; its console:\n"
            + "\n".join(CONSOLE.get(id(page), [])[-40:])) from None
    clear.click()
    expect(page.locator(MAIN).get_by_text(PREDICTION)).to_have_count(0, timeout=20_000)
    wait_for_app(page)


def collect_answers(pages: list, expected: list[int], round_number: int) -> list[Drawing]:
    """Wait until every page has answered its drawing (or the timeout), then read each probe."""
    deadline = time.monotonic() + PREDICTION_TIMEOUT_S
    probes = [None] * len(pages)
    while True:
        probes = [page.evaluate(READ_PROBE) for page in pages]
        if all(probe["answeredAt"] is not None for probe in probes) or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    return [
        Drawing(
            session=index, round=round_number, expected=digit, predicted=probe["digit"],
            latency_ms=(probe["answeredAt"] - probe["mouseUp"])
            if probe["answeredAt"] is not None and probe["mouseUp"] is not None else None,
        )
        for index, (probe, digit) in enumerate(zip(probes, expected))
    ]


def run_drawing_load(pages: list, rounds: int, training: KeptTraining | None = None) -> list[Drawing]:
    """Each round every visitor draws a digit (a "1" or a "0", alternating) one right after the other, then all wait
    for their answers together and clear their canvas; returns every drawing with its latency.

    With `training`, each round runs against it: it is (re)started before the round if it is not running, and a
    round whose training ended before the last answer came is drawn again (its drawings are still returned and
    checked), so `rounds` rounds overlap a running training from the first stroke to the last answer.
    """
    drawings: list[Drawing] = []
    overlapped = repeated = 0
    while overlapped < rounds:
        if training is not None:
            training.ensure_running()
        round_number = overlapped + repeated
        expected = [(session + round_number) % 2 for session in range(len(pages))]
        for page, digit in zip(pages, expected):
            draw_digit(page, digit)
        drawings += collect_answers(pages, expected, round_number)
        if training is None or training.check_after_round():
            overlapped += 1
        else:
            repeated += 1
            assert repeated <= MAX_REPEATED_ROUNDS, (
                f"the training ended during {repeated} rounds although each new one was {KeptTraining.GROWTH}x longer")
        for page in pages:
            clear_canvas(page)
    return drawings


def latency_summary(drawings: list[Drawing]) -> dict[str, float]:
    latencies = sorted(drawing.latency_ms for drawing in drawings if drawing.latency_ms is not None)
    if not latencies:
        return {"count": 0}
    quantiles = statistics.quantiles(latencies, n=20, method="inclusive") if len(latencies) > 1 else latencies * 19
    return {"count": len(latencies), "p50": statistics.median(latencies), "p95": quantiles[18], "max": latencies[-1]}


# --- the tests ---------------------------------------------------------------------------------------------------


def saved_model_files(tmp_path_factory, name: str) -> list[Path]:
    """The .json of `name` in any server's scratch store (conftest makes them as basetemp/models0, models1, ...;
    pytest adds a `modelscurrent` link to the latest, hence the resolving)."""
    return sorted({path.resolve() for path in tmp_path_factory.getbasetemp().glob(f"models*/{name}.json")})


def test_a_training_whose_tab_was_closed_still_finishes_and_saves(browser, app_server, tmp_path_factory):
    name = f"closed-tab-{uuid.uuid4().hex[:6]}"
    page = new_visitor(browser, app_server, "/train")
    context = page.context
    start_training(page, name, train_size=1000, epochs=1)
    page.close()  # the visitor closes the tab as soon as the job runs (the browser stays open)

    try:
        deadline = time.monotonic() + SAVE_TIMEOUT_S
        while not saved_model_files(tmp_path_factory, name):
            assert time.monotonic() < deadline, f"{name} was not saved within {SAVE_TIMEOUT_S} s of its tab closing"
            time.sleep(0.5)
        [json_path] = saved_model_files(tmp_path_factory, name)
        info = json.loads(json_path.read_text(encoding="utf-8"))
        assert info["name"] == name and info["stopped"] is False and len(info["history"]) == 1
        assert zipfile.is_zipfile(json_path.with_suffix(".keras"))

        # When they come back (a new tab of the same browser), they see how it ended.
        returning = context.new_page()
        open_page(returning, app_server, "/train")
        expect(returning.locator(MAIN).get_by_text(f"Training finished: saved as {name}")).to_be_visible()
        assert exception_messages(returning) == []
    finally:
        context.close()


def test_five_visitors_drawing_at_once_all_get_answers_while_a_training_runs(browser, app_server, capsys):
    # Everyone arrives first (opening a page is not what is measured; the Draw page loads the model on arrival).
    trainer = new_visitor(browser, app_server, "/train")
    visitors = [new_visitor(browser, app_server, "/draw") for _ in range(SESSIONS)]
    training = KeptTraining(trainer, *first_training_size())
    try:
        started = time.monotonic()
        drawings = run_drawing_load(visitors, ROUNDS, training)
        load_seconds = time.monotonic() - started
        still_training = training.running_after_rounds[-1]  # as the last answer came
        throughput = images_per_second(trainer)
        exceptions = {index: exception_messages(page) for index, page in enumerate(visitors + [trainer])}
        if training.running():
            training.stop()
    finally:
        stop_if_running(trainer)
        for page in visitors + [trainer]:
            page.context.close()

    summary = latency_summary(drawings)
    with capsys.disabled():
        print(f"\nload: {SESSIONS} sessions x {len(drawings) // SESSIONS} drawings in {load_seconds:.0f} s while "
              f"training the seed CNN ({len(training.started)} run(s), the last {training.train_size:,} images x "
              f"{training.epochs} epochs, batch 128; {throughput} img/s at the end); latency mouse-up -> "
              "'Prediction: D': "
              + ", ".join(f"{key} {value:.0f} ms" if key != "count" else f"{value} answers"
                          for key, value in summary.items()))
    unanswered = [drawing for drawing in drawings if drawing.latency_ms is None]
    wrong = [drawing for drawing in drawings if drawing.predicted != drawing.expected]
    assert not unanswered, f"no answer within {PREDICTION_TIMEOUT_S} s: {unanswered}"
    assert not wrong, f"wrong answers: {wrong}"
    assert not any(exceptions.values()), exceptions
    assert still_training, "the training was not running when the last drawing was answered"
    assert len(drawings) >= SESSIONS * ROUNDS

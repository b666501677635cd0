"""Streamlit-side helpers shared by the pages: cached resources, the active model, and the sidebar status.

Everything here is glue between Streamlit and mnist_core; no page logic, no model logic.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import streamlit as st

from mnist_core.constants import models_dir
from mnist_core.data import DatasetError, load_mnist
from mnist_core.store import ModelEntry, list_models, model_path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _keep_keras_state_between_runs() -> None:
    """Stop Streamlit from calling keras.backend.clear_session() after every script run.

    Once Keras is imported, Streamlit 1.67 clears it after every run and every fragment tick of every session: a
    full garbage collection (0.2 s and more with TensorFlow loaded, holding the GIL) plus a flush of TensorFlow's
    kernel cache under the training thread. With a handful of visitors whose sidebars poll, that starved the server:
    pages stopped loading. This app keeps no Keras state per run to clear (models are cached resources; training
    builds its own), so the reset only costs. tests/test_hardening.py checks that this stays in force.
    """
    from streamlit.runtime.scriptrunner import script_runner

    script_runner._clean_problem_modules = lambda: None


_keep_keras_state_between_runs()


def run_as_app() -> None:
    """Make the run that is starting app.py's, even when Streamlit began it as an old-style multipage app.

    Streamlit 1.67 sets `PagesManager.uses_pages_directory` from the existence of a `pages/` folder beside the main
    script, and while it is True the script runner calls `_mpa_v1()` instead of app.py: a deep link (/train) as the
    first request after a server start ran pages/train.py alone, without app.py's navigation and shared sidebar.
    `st.navigation` sets the flag False for good, but only once app.py has run. So: clear it and rerun before the
    page draws anything; the rerun runs app.py, which serves the same URL. Costs one extra start of the page script
    on the first run of a process (AppTest resets the flag before every run). Checked with Streamlit 1.67.0;
    tests/test_pages.py fails if an upgrade renames the flag or stops consulting it.
    """
    from streamlit.runtime.pages_manager import PagesManager

    if PagesManager.uses_pages_directory:
        PagesManager.uses_pages_directory = False
        st.rerun()


def page_header(title: str, caption: str | None = None) -> None:
    """Every page starts here: its title and one-line caption, inside app.py's navigation (see run_as_app)."""
    run_as_app()
    st.title(title)
    if caption:
        st.caption(caption)

ACTIVE_MODEL_KEY = "active_model"
POLL_SECONDS = 1.0


@st.cache_resource(show_spinner="Loading MNIST...")
def _mnist_cached():
    # cache_resource, not cache_data: the arrays are read-only and 55 MB; copying them on every rerun would be slow.
    return load_mnist()


def mnist():
    """The bundled MNIST, or a page-level error with the fix when the file is missing or damaged (stops the page)."""
    try:
        return _mnist_cached()
    except DatasetError as error:
        st.error(f"**The MNIST data could not be loaded.** {error}")
        st.stop()


def store_dir() -> Path:
    return models_dir()


def visitor() -> str:
    """A short name for this browser session, shown to others when it trains."""
    if "visitor" not in st.session_state:
        st.session_state.visitor = f"visitor-{uuid.uuid4().hex[:4]}"
    return st.session_state.visitor


@st.cache_resource
def _registry(directory: str):
    from mnist_core.jobs import JobRegistry

    return JobRegistry(Path(directory), mnist=_mnist_cached())


def registry():
    """The process-wide training registry: one job at a time for every session of this server."""
    mnist()  # surfaces a data problem as a page message before the registry needs the data
    return _registry(str(store_dir()))


def models() -> list[ModelEntry]:
    return list_models(store_dir())


def working_models() -> list[ModelEntry]:
    return [entry for entry in models() if not entry.broken]


def _file_stamp(name: str) -> float:
    path = model_path(name, store_dir())
    return path.stat().st_mtime if path.exists() else 0.0


@st.cache_resource(max_entries=6, show_spinner="Loading the model (converted for LiteRT first if it never was)...")
def _classifier(directory: str, name: str, stamp: float):
    from mnist_core.inference import Classifier

    return Classifier.load(name, Path(directory))


def classifier(name: str):
    """The Classifier for a stored model, cached until its file changes; raises StoreError if it can't load."""
    return _classifier(str(store_dir()), name, _file_stamp(name))


@st.cache_resource(max_entries=4, show_spinner="Evaluating on the 10,000 test images...")
def _evaluation(directory: str, name: str, stamp: float):
    from mnist_core.evaluation import evaluate

    (_, _), (x_test, y_test) = _mnist_cached()
    return evaluate(_classifier(directory, name, stamp), x_test, y_test)


def evaluation(name: str):
    return _evaluation(str(store_dir()), name, _file_stamp(name))


def default_model(entries: list[ModelEntry]) -> str | None:
    """The shipped model with the best test accuracy, else the first working one."""
    if not entries:
        return None
    shipped = [entry for entry in entries if entry.shipped]
    pool = shipped or entries
    return max(pool, key=lambda entry: entry.info.test_accuracy or 0.0).name


def model_label(entry: ModelEntry) -> str:
    accuracy = entry.info.test_accuracy if entry.info else None
    shown = f" ({accuracy:.2%})" if accuracy is not None else ""
    return f"{entry.name}{shown}" + (" - shipped" if entry.shipped else "")


def active_model_selector(container=st.sidebar) -> str | None:
    """The one 'Active model' picker, shared by every page through session state."""
    entries = working_models()
    names = [entry.name for entry in entries]
    if not names:
        container.warning("No working model in the store: train one on the Train page.")
        return None
    if st.session_state.get(ACTIVE_MODEL_KEY) not in names:
        st.session_state[ACTIVE_MODEL_KEY] = default_model(entries)
    labels = {entry.name: model_label(entry) for entry in entries}
    return container.selectbox(
        "Active model", names, key=ACTIVE_MODEL_KEY, format_func=labels.get,
        help="The model the Draw and Models pages use. Shipped models are trained by the CLI and come with the app.",
    )


def format_duration(seconds: float) -> str:
    minutes, seconds = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{seconds:02d}" if hours else f"{minutes}:{seconds:02d}"


def progress_text(snapshot) -> str:
    """"Epoch 2/5 · step 120/469 · 5,400 img/s · ETA 0:42" for a job snapshot."""
    latest = snapshot.latest
    if latest is None:
        return "Preparing the data and the model..."
    return (
        f"Epoch {latest.epoch}/{latest.epochs} · step {latest.step}/{latest.steps} · "
        f"{latest.images_per_second:,.0f} img/s · ETA {format_duration(latest.eta_seconds)}"
    )


def job_outcome(snapshot) -> tuple[str, str]:
    """(kind, message) for a finished job: kind is 'success', 'warning' or 'error'."""
    from mnist_core.jobs import JobStatus

    accuracy = f", test accuracy {snapshot.test_accuracy:.2%}" if snapshot.test_accuracy is not None else ""
    if snapshot.status == JobStatus.FINISHED:
        return "success", f"Training finished: saved as **{snapshot.saved_name}**{accuracy}."
    if snapshot.status == JobStatus.STOPPED:
        if snapshot.saved_name:
            return "warning", f"Training stopped: the model so far is saved as **{snapshot.saved_name}**{accuracy}."
        return "warning", f"Training stopped. {snapshot.error or ''}"
    return "error", f"Training failed: {snapshot.error}"


@st.fragment(run_every=POLL_SECONDS * 2)
def sidebar_training_status() -> None:
    """A small live view of the current job in the sidebar of every page."""
    try:
        job = _registry(str(store_dir())).current()
    except DatasetError:
        # No data, no training job. Not registry(): its st.stop() here would stop the whole app run, so the page
        # would never show; the page itself says what is wrong (ui.mnist()).
        return
    if job is None:
        return
    snapshot = job.snapshot()
    if snapshot.active:
        mine = " (yours)" if snapshot.owner == visitor() else f" by {snapshot.owner}"
        st.caption(f"Training **{snapshot.model_name}**{mine}")
        st.progress(snapshot.fraction_done, text=progress_text(snapshot))
    elif snapshot.owner == visitor():
        kind, message = job_outcome(snapshot)
        st.caption(message)

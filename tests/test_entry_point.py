"""app.py, the entry point: it draws the app under Streamlit and nothing at all in a process spawned from the app.

Streamlit runs app.py as the module __main__ (with its __file__). multiprocessing's spawn, which starts the training
workers and the explainer, runs the parent's main script again in each new process (as __mp_main__) before the
worker's own function: without app.py's `if __name__ == "__main__"` every worker imported Streamlit, plotly and ui
and ran the app in bare mode (78 MB instead of 13 MB, and the log full of "missing ScriptRunContext").
"""

from __future__ import annotations

import multiprocessing
import sys
import types
from pathlib import Path

APP = Path(__file__).resolve().parents[1] / "app.py"
APP_MODULES = ("streamlit", "plotly", "ui")


def loaded_app_modules(answers) -> None:
    """Runs in the spawned process: which of the app's modules it has loaded."""
    answers.put([name for name in APP_MODULES if name in sys.modules])


def test_a_process_spawned_while_the_app_runs_does_not_load_the_app():
    context = multiprocessing.get_context("spawn")  # as mnist_core.jobs.local and mnist_core.explainer start theirs
    answers = context.Queue()
    as_streamlit_runs_it = types.ModuleType("__main__")
    as_streamlit_runs_it.__file__ = str(APP)
    real_main = sys.modules["__main__"]
    sys.modules["__main__"] = as_streamlit_runs_it
    try:
        process = context.Process(target=loaded_app_modules, args=(answers,))
        process.start()
    finally:
        sys.modules["__main__"] = real_main
    process.join(120)
    assert process.exitcode == 0, "the spawned process failed (its traceback is in the captured stderr)"
    assert answers.get(timeout=5) == []


def test_under_streamlit_the_entry_point_draws_the_app():
    from streamlit.testing.v1 import AppTest  # not at the top: the spawned process above imports this module

    app = AppTest.from_file(str(APP), default_timeout=60).run()
    assert not app.exception
    assert app.title and app.sidebar  # the Home page and the shared sidebar

"""Streamlit-side helpers shared by the pages: cached resources, the active model, and the sidebar status.

Everything here is glue between Streamlit and mnist_core; no page logic, no model logic.
"""

from __future__ import annotations

import math
import numbers
import os
from pathlib import Path

import streamlit as st

from mnist_core import i18n
from mnist_core.constants import models_dir
from mnist_core.data import DatasetError, check_mnist, load_mnist
from mnist_core.i18n import format_number, format_percent, gettext as _, ngettext
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


@st.cache_resource
def app_icon():
    """The browser tab's icon: a white pen-drawn 7 on black, made here (a Material icon as page_icon makes every page
    load fetch its SVG from a font CDN, which fails without the internet and leaks visits to it)."""
    from PIL import Image, ImageDraw

    icon = Image.new("RGB", (64, 64), "black")
    ImageDraw.Draw(icon).line([(14, 14), (50, 14), (28, 54)], fill="white", width=9, joint="curve")
    return icon


ACTIVE_MODEL_KEY = "active_model"
POLL_SECONDS = 1.0


def page_header(title: str, caption: str | None = None, own_training: bool = True) -> None:
    """Every page starts here: its title and one-line caption, inside app.py's navigation (see run_as_app).

    With `own_training`, a visitor whose training is queued or running sees a line about it under the title on a
    narrow screen, where the sidebar that says it is folded away (the Train page shows it in full instead).
    """
    run_as_app()
    st.title(title)
    if caption:
        st.caption(caption)
    if own_training:
        own = _scheduler(str(store_dir())).latest_for(visitor(), TRAINING_KINDS)
        if own is not None and not own.done:  # no fragment polling for the many who have nothing running
            with st.container(key="own-training"):
                _own_training_line(own.job_id)


@st.fragment(run_every=POLL_SECONDS * 2)
def _own_training_line(job_id: str) -> None:
    job = _scheduler(str(store_dir())).get(job_id)
    if job is None:
        return
    snapshot = job.snapshot()
    if snapshot.active:
        st.progress(snapshot.fraction_done, text=_("Your training {name}: {progress}").format(
            name=literal(snapshot.model_name), progress=progress_text(snapshot)))
    elif snapshot.queued:
        st.caption(_("Your training {name} waits in the queue (Train page).").format(name=literal(snapshot.model_name)))
    else:
        st.caption(job_outcome(snapshot)[1])


# Styles for the whole app (ui.global_style puts them in the sidebar: in the main area their element takes room).
_GLOBAL_STYLE = """<style>
/* A phone: Plotly's toolbar would cover chart titles; the sidebar is folded, so pages say your training. */
@media (max-width: 768px) { .modebar-container { display: none !important; } }
@media (min-width: 769px) { .st-key-own-training { display: none; } }
</style>"""


def global_style() -> None:
    """The app's few styles, for every page (app.py calls this in the sidebar)."""
    st.html(_GLOBAL_STYLE)



@st.cache_resource(show_spinner=False)  # the spinner's text is the visitor's language: see mnist()
def _mnist_cached():
    # cache_resource, not cache_data: the arrays are read-only and 55 MB; copying them on every rerun would be slow.
    return load_mnist()


def mnist():
    """The bundled MNIST, or a page-level error with the fix when the file is missing or damaged (stops the page)."""
    try:
        with st.spinner(_("Loading MNIST...")):
            return _mnist_cached()
    except DatasetError as error:
        st.error(_("**The MNIST data could not be loaded.** {error}").format(error=i18n.render(error)))
        st.stop()


def mnist_sizes() -> tuple[int, int]:
    """(training images, test images) of the checked MNIST file, without loading its pixels; a page-level error
    with the fix when the file is missing or damaged (stops the page)."""
    try:
        return check_mnist()
    except DatasetError as error:
        st.error(_("**The MNIST data could not be loaded.** {error}").format(error=i18n.render(error)))
        st.stop()


def store_dir() -> Path:
    return models_dir()


@st.cache_resource
def limits():
    """The server's Limits, read once from st.secrets and the environment (mnist_core.limits)."""
    from mnist_core.limits import Limits

    try:
        secrets = st.secrets.to_dict()
    except FileNotFoundError:  # no secrets.toml: the defaults and the environment
        secrets = {}
    return Limits.from_sources(secrets, os.environ)


def visitor():
    """Who is using this session: a Visitor from the browser's token cookie, the same across reloads and tabs.

    A browser without the cookie (or with something that is not a token) gets a new token, written into the
    cookie by widgets.visitor_cookie at the end of this run (see sync_visitor_cookie).
    """
    from mnist_core.visitors import COOKIE_NAME, checked_token, new_token, visitor_from_token

    if "visitor" not in st.session_state:
        token = checked_token(st.context.cookies.get(COOKIE_NAME))
        if token is None:
            token = new_token()
            st.session_state.visitor_token_to_keep = token
        st.session_state.visitor = visitor_from_token(token)
    if st.session_state.get("visitor_admin"):
        return st.session_state.visitor.as_admin()
    return st.session_state.visitor


def admin_password() -> str:
    """The admin (teacher) password from st.secrets (`admin_password`) or MNIST_LAB_ADMIN_PASSWORD; "" = no admin."""
    try:
        configured = st.secrets.get("admin_password", "")
    except FileNotFoundError:
        configured = ""
    return str(configured or os.environ.get("MNIST_LAB_ADMIN_PASSWORD", ""))


def _try_admin_password() -> None:
    from mnist_core.visitors import admin_password_matches

    given = st.session_state.get("admin_password_input", "")
    st.session_state.admin_password_input = ""  # never kept in the form
    st.session_state.visitor_admin = admin_password_matches(given, admin_password())
    st.session_state.admin_refused = not st.session_state.visitor_admin


def admin_sign_in() -> None:
    """The sidebar's teacher sign-in, shown only when an admin password is configured."""
    if not admin_password():
        return
    if st.session_state.get("visitor_admin"):
        st.caption(_("Signed in as admin: you may stop, cancel and delete anybody's trainings and models."))
        if st.button(_("Sign out of admin"), key="admin_sign_out"):
            st.session_state.visitor_admin = False
            st.rerun()
        return
    with st.expander(_("Teacher / admin")):
        st.text_input(_("Admin password"), type="password", key="admin_password_input")
        st.button(_("Sign in"), key="admin_sign_in", on_click=_try_admin_password)
        if st.session_state.pop("admin_refused", False):
            st.error(_("That is not the admin password."))


MAX_MODEL_UPLOAD_MB = 45  # the upload checks' own byte budget (model_upload.MAX_FILE_BYTES) fits in it


def model_name_from_file(file_name: str) -> str:
    """A store name suggested by an uploaded file's name ("My model (2).keras" -> "My-model-2"), or "uploaded"."""
    import re

    stem = re.sub(r"[^A-Za-z0-9_.-]+", "-", Path(file_name).stem).strip("-.")[:64]
    return stem if stem and stem[0].isalnum() else "uploaded"


def upload_model(data: bytes, name: str) -> None:
    """Check an uploaded .keras file here (no TensorFlow), then queue a worker to load, evaluate and store it."""
    from mnist_core.jobs import JobRefused
    from mnist_core.model_upload import UploadRefused, inspect_keras_file, stage_upload
    from mnist_core.store import StoreError, validate_name
    from mnist_core.training import TrainConfig

    try:
        validate_name(name)
        summary = inspect_keras_file(data)
    except (UploadRefused, StoreError) as refused:
        st.error(i18n.render(refused))
        return
    staged = stage_upload(data, store_dir())
    try:
        job = scheduler().submit(TrainConfig(), name, visitor(), kind="import", extra=(("upload_path", str(staged)),))
    except JobRefused as refused:
        staged.unlink(missing_ok=True)
        st.error(i18n.render(refused))
        return
    st.session_state.upload_job = job.job_id
    st.toast(_("{parameters} parameters, {model_class}: checked. A worker now evaluates it on the test set and stores "
               "it.").format(parameters=format_number(summary.parameters), model_class=summary.model_class),
             icon=":material/upload:")


def upload_status() -> None:
    """How the visitor's last upload is going: waiting, evaluating, stored (with its accuracy) or refused. Followed
    live only while it waits or runs: a Models page without an upload in progress polls nothing (it reran every
    second in every session before)."""
    job_id = st.session_state.get("upload_job")
    job = scheduler().get(job_id) if job_id else None
    if job is None:
        return
    if job.done:
        _show_upload(job)
    else:
        _following_upload(job_id)


@st.fragment(run_every=POLL_SECONDS)
def _following_upload(job_id: str) -> None:
    job = scheduler().get(job_id)
    if job is not None:
        _show_upload(job)


def _show_upload(job) -> None:
    snapshot = job.snapshot()
    if snapshot.queued:
        st.info(_("Your upload {name} waits for the training that runs now.").format(name=literal(snapshot.model_name)),
                icon=":material/hourglass_top:")
        return
    if snapshot.active:
        st.info(_("Checking {name} and evaluating it on the {count} test images...").format(
            name=literal(snapshot.model_name), count=format_number(10_000)), icon=":material/hourglass_top:")
        return
    if snapshot.status.value == "finished":
        st.success(_("Stored as {name}: test accuracy {accuracy}. It is in the sidebar's model list.").format(
            name=literal(snapshot.saved_name), accuracy=format_percent(snapshot.test_accuracy)))
    else:
        st.error(_("The upload was not stored: {error}").format(error=i18n.render(snapshot.error)))
    if st.session_state.get("upload_seen_end") != job.job_id:
        # Once, when it ends: the whole page again (the table and the sidebar list a new model), and no more polling.
        st.session_state.upload_seen_end = job.job_id
        st.rerun(scope="app")


def deleted(name: str) -> None:
    """Remember a deletion for the next run's toast (st.rerun would swallow a toast shown now), and move the active
    model off the deleted one with a word about it."""
    message = _("Deleted {name}.").format(name=literal(name))
    if st.session_state.get(ACTIVE_MODEL_KEY) == name:
        st.session_state.pop(ACTIVE_MODEL_KEY)
        message += " " + _("It was the active model: the sidebar now shows the default one.")
    st.session_state.pending_toast = message


def show_pending_toast() -> None:
    if message := st.session_state.pop("pending_toast", None):
        st.toast(message, icon=":material/delete:")


def sync_visitor_cookie() -> None:
    """Write a new visitor's token into the browser (app.py calls this once per run)."""
    from widgets.visitor_cookie import keep_token

    visitor()
    token = st.session_state.get("visitor_token_to_keep")
    if token is not None:
        keep_token(token)


@st.cache_resource
def _scheduler(directory: str):
    from mnist_core.jobs import LocalRunner, Scheduler

    # One queue per server process (and per store, which tests change). Training runs in worker processes; no
    # data here: a worker loads MNIST itself, so opening the Train page does not decompress 55 MB of pixels.
    settings = limits()
    if os.environ.get("MNIST_LAB_RAY_ADDRESS", "").strip():
        # Training on a Ray cluster (issue 19, docs/scaling.md); only then is ray imported.
        from mnist_core.jobs.ray import RayRunner

        runner = RayRunner.from_environment()
    else:
        runner = LocalRunner(slots=settings.training_slots, idle_seconds=settings.worker_idle_s,
                             memory_limit_mb=settings.worker_memory_mb)
    return Scheduler(runner, Path(directory), settings)


def scheduler():
    """The process-wide training queue, shared by every session of this server."""
    mnist_sizes()  # surfaces a data problem as a page message before a job would meet it
    return _scheduler(str(store_dir()))


def server_summary() -> str:
    """"This server: 2 CPUs, 1.0 of 2.7 GB memory in use; training runs in ..." for the Home page."""
    from mnist_core.hardware import container

    here = container()
    cpus = ngettext("{count} CPU", "{count} CPUs", 1 if here.cpus == 1 else 2).format(count=f"{here.cpus:g}")
    ceiling = here.memory_limit or here.memory_total
    if ceiling and here.memory_used is not None:
        memory = _("{used} of {total} GB memory in use").format(used=format_number(here.memory_used / 1e9, 1),
                                                                  total=format_number(ceiling / 1e9, 1))
    elif ceiling:
        memory = _("{total} GB memory").format(total=format_number(ceiling / 1e9, 1))
    else:
        memory = _("memory unknown")
    limit = _("container limits") if here.source.startswith("cgroup") and (here.memory_limit or here.cpus % 1) else \
        _("the machine's figures")
    queue = _scheduler(str(store_dir()))
    waiting = len(queue.queued())
    # The runner's own description ("1 worker process") is English: it names processes and hosts.
    if waiting:
        summary = _("This server: {cpus}, {memory} (from {limit}). Training runs in {runner}; {count} training(s) "
                    "waiting.")
    else:
        summary = _("This server: {cpus}, {memory} (from {limit}). Training runs in {runner}.")
    return summary.format(cpus=cpus, memory=memory, limit=limit, runner=queue.runner.describe(), count=waiting)


def literal(text: str) -> str:
    """`text` as a Markdown code span: what a visitor named (a model called www.example.com) is shown as typed,
    never as a link, emphasis or HTML."""
    text = str(text).replace("\n", " ")
    fence = "``" if "`" in text else "`"
    return f"{fence} {text} {fence}" if fence == "``" else f"`{text}`"


@st.cache_resource(max_entries=64, show_spinner=False)
def _built_figure(kind: str, version: tuple, language: str, _build):
    return _build()


def live_figure(kind: str, version: tuple, build):
    """The figure `build()` makes, built once for each `version` of what it shows (and each language), not on every
    rerun of every page that shows it: with five Train pages open in the classroom bench, rebuilding their Plotly
    figures every second was two thirds of the server's busy time (py-spy; BENCHMARKS.md, "fourth session").
    Shared between sessions: st.plotly_chart only reads a figure."""
    from mnist_core.i18n import current_language

    return _built_figure(kind, version, current_language(), build)


def models() -> list[ModelEntry]:
    return list_models(store_dir())


def working_models() -> list[ModelEntry]:
    return [entry for entry in models() if not entry.broken]


def _file_stamp(name: str) -> float:
    path = model_path(name, store_dir())
    return path.stat().st_mtime if path.exists() else 0.0


@st.cache_resource(max_entries=6, show_spinner=False)  # spinner in classifier(), in the visitor's language
def _classifier(directory: str, name: str, stamp: float):
    from mnist_core.inference import Classifier

    return Classifier.load(name, Path(directory))


def classifier(name: str):
    """The Classifier for a stored model, cached until its file changes; raises StoreError if it can't load."""
    with st.spinner(_("Loading the model (converted for LiteRT first if it never was)...")):
        return _classifier(str(store_dir()), name, _file_stamp(name))


@st.cache_resource(max_entries=4, show_spinner=False)  # spinner in evaluation(), in the visitor's language
def _evaluation(directory: str, name: str, stamp: float):
    from mnist_core.evaluation import evaluate

    (_, _), (x_test, y_test) = _mnist_cached()
    return evaluate(_classifier(directory, name, stamp), x_test, y_test)


def evaluation(name: str):
    with st.spinner(_("Evaluating on the {count} test images...").format(count=format_number(10_000))):
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
    shown = f" ({format_percent(accuracy)})" if accuracy is not None else ""
    return f"{entry.name}{shown}" + (_(" - shipped") if entry.shipped else "")


def active_model_selector(container=st.sidebar) -> str | None:
    """The one 'Active model' picker, shared by every page through session state."""
    entries = working_models()
    names = [entry.name for entry in entries]
    if not names:
        container.warning(_("No working model in the store: train one on the Train page."))
        return None
    if st.session_state.get(ACTIVE_MODEL_KEY) not in names:
        st.session_state[ACTIVE_MODEL_KEY] = default_model(entries)
    labels = {entry.name: model_label(entry) for entry in entries}
    return container.selectbox(
        _("Active model"), names, key=translated_choice(ACTIVE_MODEL_KEY), format_func=labels.get,
        help=_("The model the Draw and Models pages use. Shipped models are trained by the CLI and come with the app."),
    )


def format_duration(seconds: float) -> str:
    """"1:02:03" or "2:03"; "n/a" for a duration that is not a finite number of seconds (never raises)."""
    if not isinstance(seconds, numbers.Real) or not math.isfinite(seconds) or seconds < 0:
        return _("n/a")
    minutes, seconds = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{seconds:02d}" if hours else f"{minutes}:{seconds:02d}"


def progress_text(snapshot) -> str:
    """"Epoch 2/5 · step 120/469 · 5,400 img/s · ETA 0:42" for a job snapshot."""
    latest = snapshot.latest
    if latest is None:
        return _("Preparing the data and the model...")
    return _("Epoch {epoch}/{epochs} · step {step}/{steps} · {speed} img/s · ETA {eta}").format(
        epoch=latest.epoch, epochs=latest.epochs, step=latest.step, steps=latest.steps,
        speed=format_number(latest.images_per_second), eta=format_duration(latest.eta_seconds))


def job_outcome(snapshot) -> tuple[str, str]:
    """(kind, message) for an ended job: kind is 'success', 'warning' or 'error'."""
    from mnist_core.jobs import JobStatus

    accuracy = (_(", test accuracy {accuracy}").format(accuracy=format_percent(snapshot.test_accuracy))
                if snapshot.test_accuracy is not None else "")
    if snapshot.status == JobStatus.FINISHED:
        return "success", _("Training finished: saved as {name}{accuracy}.").format(
            name=literal(snapshot.saved_name), accuracy=accuracy)
    if snapshot.status == JobStatus.STOPPED:
        if snapshot.saved_name:
            return "warning", _("Training stopped: the model so far is saved as {name}{accuracy}.").format(
                name=literal(snapshot.saved_name), accuracy=accuracy)
        return "warning", _("Training stopped. {reason}").format(reason=i18n.render(snapshot.error))
    if snapshot.status == JobStatus.CANCELLED:
        return "warning", _("Training {name} cancelled. {reason}").format(name=literal(snapshot.model_name),
                                                                          reason=i18n.render(snapshot.error))
    return "error", _("Training failed: {error}").format(error=i18n.render(snapshot.error))


TRAINING_KINDS = ("train", "finetune")  # the jobs the Train page and the sidebar show (not uploads)


def watched_job(scheduler, who):
    """The training a visitor's pages show: their own latest (queued, running or ended), else someone's running
    one."""
    own = scheduler.latest_for(who, TRAINING_KINDS)
    if own is not None:
        return own
    running = [job for job in scheduler.running() if job.spec.kind in TRAINING_KINDS]
    return running[0] if running else None


@st.fragment(run_every=POLL_SECONDS * 2)
def sidebar_training_status() -> None:
    """A compact live line of the training queue in the sidebar of every page but Train: yours first, else what runs.

    Not on the Train page, which shows the same in full. (It was taken off that page when a visitor's settings
    ("Training images", "Architecture") went missing from its sidebar under load; the cause turned out to be the
    whole app failing in the browser - "Cached ForwardMsg MISS", "Bad delta path index" - fixed in
    .streamlit/config.toml and by one fragment on the Train page: see pages/train.py's following_the_jobs.)
    """
    queue = _scheduler(str(store_dir()))  # not scheduler(): a data problem is the page's to show
    who = visitor()
    job = watched_job(queue, who)
    waiting = len(queue.queued())
    if job is None:
        return
    snapshot = job.snapshot()
    mine = who.owns(snapshot.owner_id)
    if snapshot.active:
        if mine:
            line = _("Training {name} (yours)").format(name=literal(snapshot.model_name))
        else:
            line = _("Training {name} by {owner}").format(name=literal(snapshot.model_name), owner=snapshot.owner)
        st.caption(line + (_(" · {count} waiting").format(count=waiting) if waiting else ""))
        st.progress(snapshot.fraction_done, text=progress_text(snapshot))
    elif snapshot.queued and mine:
        entry = next((entry for entry in queue.queue_view() if entry.snapshot.job_id == snapshot.job_id), None)
        if entry is not None:
            st.caption(_("Your training {name} is number {position} in the queue, starts in about {wait}.").format(
                name=literal(snapshot.model_name), position=entry.position,
                wait=format_duration(entry.starts_in_seconds)))
    elif mine:
        kind, message = job_outcome(snapshot)
        st.caption(message)


# --- issue 13 (helper "explain"): the explainer process and every model on one drawing ---------------------------


@st.cache_resource
def _explainer():
    from mnist_core.explainer import Explainer

    # One per server process: one worker imports TensorFlow for everybody's saliency maps and previews.
    return Explainer(idle_seconds=limits().explainer_idle_s)


def explainer():
    """The process-wide Explainer (saliency maps, augmentation previews): its answers are Pending until its worker
    process has computed them, so a page waits for them in short steps (Draw) or polls from a fragment (Train)."""
    return _explainer()


@st.cache_resource(max_entries=16, show_spinner=False)
def _comparison_classifier(directory: str, name: str, stamp: float):
    from mnist_core.inference import Classifier

    return Classifier.load(name, Path(directory))


def comparison_classifiers(names) -> dict:
    """{name: Classifier} of the models the Draw page compares (comparison.models_to_compare), each cached until its
    file changes (a cache of its own: the active model's six-entry cache would be emptied by a dozen models).
    A model that cannot be loaded maps to the StoreError that says why."""
    from mnist_core.store import StoreError

    loaded = {}
    for name in names:
        try:
            loaded[name] = _comparison_classifier(str(store_dir()), name, _file_stamp(name))
        except StoreError as error:
            loaded[name] = error
    return loaded


# --- issue 21 (helper "i18n"): the visitor's language --------------------------------------------------------------

LANGUAGE_KEY = "language"


def language() -> str:
    """The visitor's language ("en" or "zh_Hans"): the one they picked (kept in a cookie across reloads), else their
    browser's (st.context.locale: zh* is Chinese)."""
    if LANGUAGE_KEY not in st.session_state:
        from widgets.language_cookie import LANGUAGE_COOKIE

        chosen = i18n.checked_language(st.context.cookies.get(LANGUAGE_COOKIE))
        st.session_state[LANGUAGE_KEY] = chosen or i18n.language_for_locale(st.context.locale)
    return st.session_state[LANGUAGE_KEY]


def _language_of_this_session() -> str:
    # mnist_core.i18n asks this from any thread: outside a script run (a scheduler callback) there is no visitor.
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    if get_script_run_ctx(suppress_warning=True) is None:
        return i18n.DEFAULT_LANGUAGE
    return language()


i18n.use_language_source(_language_of_this_session)


# Keys of the choice widgets (select boxes, radios, segmented controls) whose options are shown translated. Streamlit's
# frontend holds a choice widget's value as the label shown, and sends it back at the next interaction; after a change
# of language that old label matched none of the new ones, and the widget fell back to its first option (on the Train
# page: "Your own settings", mlp, the constant schedule: the next Start trained an MLP). Given again in the language
# picker's callback, each gets its value sent to the browser in the new language.
_TRANSLATED_CHOICES: set[str] = set()


def translated_choice(key: str) -> str:
    """`key`, recorded as a choice widget whose labels are translated (see _TRANSLATED_CHOICES)."""
    _TRANSLATED_CHOICES.add(key)
    return key


def _language_picked() -> None:
    st.session_state[LANGUAGE_KEY] = st.session_state.language_picker
    st.session_state.language_to_keep = st.session_state.language_picker
    for key in _TRANSLATED_CHOICES & set(st.session_state.keys()):
        st.session_state[key] = st.session_state[key]


def language_picker() -> None:
    """The sidebar's language picker (app.py); its label is in both languages, so either reader finds it."""
    if st.session_state.get("language_picker") != language():
        st.session_state.language_picker = language()
    st.selectbox("Language · 语言", list(i18n.LANGUAGES), format_func=i18n.LANGUAGES.get, key="language_picker",
                 on_change=_language_picked)
    if chosen := st.session_state.pop("language_to_keep", None):
        from widgets.language_cookie import keep_language

        keep_language(chosen)

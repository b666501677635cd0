"""Train: choose an architecture and settings in the sidebar, start a background job, watch it learn, stop it."""

import re

import streamlit as st

import ui
from mnist_core import plots
from mnist_core.architectures import ARCHITECTURES, PRECISIONS, recorded_summary
from mnist_core.hardware import native_bfloat16
from mnist_core.explainer import Failed, Pending
from mnist_core.i18n import N_, format_number, format_percent, gettext as _, ngettext, render
from mnist_core.jobs import JobRefused, JobStatus
from mnist_core.panel import PANEL_COLUMNS, panel_digits
from mnist_core.references import reference_accuracies
from mnist_core.store import StoreError, validate_name
from mnist_core.training import (
    BATCH_SIZES,
    FULL_TRAIN_SIZE,
    MAX_EPOCHS,
    MIN_TRAIN_SIZE,
    OPTIMIZERS,
    PRESETS,
    SCHEDULES,
    ConfigError,
    TrainConfig,
)

LEARNING_RATES = [0.0001, 0.0003, 0.0005, 0.001, 0.002, 0.003, 0.005, 0.01, 0.03, 0.1]
CUSTOM = "custom"
SAVING_WAIT_SECONDS = 2.0  # how long the Train page waits for your training's save before its next poll

# Short enough for the sidebar's dropdown; the detail is the caption under it.
# Labels and help texts in English, marked for the catalog (N_) and translated where shown (_).
PRESET_LABELS = {
    CUSTOM: N_("Your own settings"),
    "demo": N_("Quick demo (about 5 s)"),
    "fast": N_("Fast: 99% in seconds"),
    "seed": N_("The tutorial's script"),
    "shipped-cnn": N_("The shipped cnn's recipe"),
    "strong": N_("Strongest: 99.5%, slow"),
}
PRESET_HELP = {
    CUSTOM: N_("Settings you chose yourself."),
    "demo": N_("The quick CNN for one pass over 20,000 images: about 97.8% on the test set, a whole training in "
               "about 5 s on a quiet 2-core machine. For a class that wants to see one finish."),
    "fast": N_("The quick CNN, 2 passes over all 60,000 images, the learning rate warmed up then lowered: about "
               "99.1%, about 10 s from Start to the saved model on an idle 2-core server that computes in bfloat16 "
               "(13 s on one that does not; longer on a slower or busy server)."),
    "seed": N_("Seed tutorial 000's script as written: the seed CNN, batch 32, 10 passes. Several minutes."),
    "shipped-cnn": N_("How the shipped 'cnn' was made: 15 passes at batch 64 with distorted copies of the digits, "
                      "the learning rate lowered along a curve. About 3 minutes on an idle 2-core server."),
    "strong": N_("The strong CNN with distorted copies of the digits, 15 passes: 99.5% or more, about half an hour."),
}
SCHEDULE_LABELS = {"constant": N_("constant"), "cosine": N_("lowered"), "onecycle": N_("warm-up, lowered")}
SCHEDULE_HELP = N_(
    "How the learning rate moves during training. Constant: the same all the way. Lowered (cosine): it falls "
    "smoothly to zero by the last batch, so the end settles. Warm-up, lowered (one-cycle): it climbs from a tenth "
    "over the first batches, then falls to zero; lets a high rate be used safely."
)

# Widget keys, so presets can fill them in.
FIELDS = (
    "architecture", "epochs", "batch_size", "optimizer", "learning_rate", "train_size", "augment", "schedule",
    "precision",
)
PRECISION_LABELS = {"float32": N_("exact (float32)"), "bfloat16": N_("faster (bfloat16)")}
PRECISION_HELP = {
    True: N_("How precisely the numbers are computed. This CPU computes bfloat16 (mixed precision) in hardware: the "
             "CNNs train about 1.4x as fast, to the same accuracy. Weights stay float32 and the model is saved in "
             "float32."),
    False: N_("How precisely the numbers are computed. This CPU has no bfloat16 hardware: TensorFlow would emulate "
              "it, which is usually slower than float32. Weights stay float32 and the model is saved in float32 "
              "either way."),
}


def _fill_from(config: TrainConfig) -> None:
    for field in FIELDS:
        st.session_state[f"train_{field}"] = getattr(config, field)
    st.session_state.train_validation = config.validation
    st.session_state.train_seed = config.seed


def _apply_preset() -> None:
    preset = st.session_state.train_preset
    if preset in PRESETS:
        _fill_from(PRESETS[preset])
        _follow_architecture()


def _mark_custom() -> None:
    """A setting changed by hand: the settings no longer are the preset's."""
    st.session_state.train_preset = CUSTOM


def _follow_architecture() -> None:
    # Rename "my-cnn" to "my-mlp" with the architecture, but never overwrite a name the person typed.
    if re.fullmatch(r"my-[a-z0-9]+", st.session_state.get("train_model_name", "my-")):
        st.session_state.train_model_name = f"my-{st.session_state.train_architecture}"


def _architecture_changed() -> None:
    _mark_custom()
    _follow_architecture()


if "train_architecture" not in st.session_state:
    st.session_state.train_preset = "fast"
    _fill_from(PRESETS["fast"])
    st.session_state.train_model_name = f"my-{st.session_state.train_architecture}"


def show_architecture(name: str) -> None:
    architecture = ARCHITECTURES[name]
    summary = recorded_summary(name)  # recorded beside the registry: no TensorFlow on the request path
    st.caption(_("{description} ({source}) · **{parameters} parameters**").format(
        description=_(architecture.description), source=_(architecture.source),
        parameters=format_number(summary.parameters)))
    with st.expander(_("Layers")):
        # A Markdown table: st.dataframe would import pandas and pyarrow on a fresh server's first Train page
        # (0.3 s), for a table of a dozen rows whose text is all ours.
        st.markdown(_("| layer | type | output shape | parameters |") + "\n|---|---|---|---:|\n" + "\n".join(
            f"| {row.name} | {row.kind} | {row.output_shape} | {format_number(row.parameters)} |"
            for row in summary.layers))


def settings_sidebar() -> tuple[TrainConfig | None, str, str]:
    """The training controls; returns the config (None if invalid), the model name and what is wrong ("" if
    nothing: the page shows it beside Start, where a phone user, whose sidebar is folded, sees it)."""
    # Translated now, in the visitor's run: a format_func is also called outside it (AppTest), in no language.
    presets = {name: _(label) for name, label in PRESET_LABELS.items()}
    architectures = {name: f"{name}: {_(architecture.title)}" for name, architecture in ARCHITECTURES.items()}
    schedules = {name: _(label) for name, label in SCHEDULE_LABELS.items()}
    precisions = {name: _(label) for name, label in PRECISION_LABELS.items()}
    st.sidebar.header(_("Training settings"))
    st.sidebar.selectbox(_("Preset"), [CUSTOM, *PRESETS], key=ui.translated_choice("train_preset"),
                         on_change=_apply_preset,
                         format_func=lambda name: presets.get(name, name))
    st.sidebar.caption(_(PRESET_HELP[st.session_state.train_preset])
                       if st.session_state.train_preset in PRESET_HELP else "")
    with st.sidebar:
        architecture = st.selectbox(_("Architecture"), list(ARCHITECTURES),
                                    key=ui.translated_choice("train_architecture"),
                                    on_change=_architecture_changed,
                                    format_func=architectures.get)
        show_architecture(architecture)
        st.number_input(_("Epochs"), min_value=1, max_value=MAX_EPOCHS, step=1, key="train_epochs",
                        on_change=_mark_custom)
        st.select_slider(_("Batch size"), options=list(BATCH_SIZES), key="train_batch_size", on_change=_mark_custom)
        st.selectbox(_("Optimizer"), list(OPTIMIZERS), key="train_optimizer", on_change=_mark_custom)
        st.select_slider(_("Learning rate"), options=LEARNING_RATES, key="train_learning_rate",
                         on_change=_mark_custom)
        st.number_input(_("Training images"), min_value=MIN_TRAIN_SIZE, max_value=FULL_TRAIN_SIZE, step=1000,
                        key="train_train_size", on_change=_mark_custom,
                        help=_("A random subset of the 60,000 training images."))
        st.toggle(_("Augmentation"), key="train_augment", on_change=_mark_custom,
                  help=_("Random pen widths, turns, slants, zooms, shifts and elastic wobbles, and MNIST's rare "
                         "flagged 1s shown more often: slower per epoch, better on drawn digits."))
        st.radio(_("Learning-rate schedule"), list(SCHEDULES), key=ui.translated_choice("train_schedule"),
                 horizontal=True,
                 on_change=_mark_custom, format_func=schedules.get,
                 help=_(SCHEDULE_HELP))
        st.radio(_("Precision"), list(PRECISIONS), key=ui.translated_choice("train_precision"), horizontal=True,
                 on_change=_mark_custom,
                 format_func=precisions.get,
                 help=_(PRECISION_HELP[native_bfloat16()]))
        st.radio(_("Validate on"), ["test", "split"], key=ui.translated_choice("train_validation"), horizontal=True,
                 format_func={"test": _("test set (10k)"), "split": _("10% held out")}.get)
        st.number_input(_("Seed"), min_value=0, max_value=2**31 - 1, step=1, key="train_seed",
                        help=_("The same settings and seed give the same curves, with augmentation off "
                               "(its random distortions run in parallel, in a varying order)."))
        name = st.text_input(_("Model name"), key="train_model_name", max_chars=64,
                             help=_("Letters, digits, '-', '_' and '.'; a number is added if the name is taken."))
    try:
        config = TrainConfig(
            **{field: st.session_state[f"train_{field}"] for field in FIELDS},
            validation=st.session_state.train_validation,
            seed=int(st.session_state.train_seed),
        )
        validate_name(name)
    except (ConfigError, StoreError) as error:
        return None, name, render(error)
    return config, name, ""


def start(config: TrainConfig, name: str) -> None:
    queue = ui.scheduler()
    try:
        job = queue.submit(config, name, ui.visitor())
    except (JobRefused, ConfigError, StoreError) as error:
        st.toast(render(error), icon=":material/block:")  # a refusal is news once, not a box that stays
        return
    if job.status == JobStatus.QUEUED:
        st.toast(_("Your training is in the queue: it starts by itself when the one running ends."),
                 icon=":material/hourglass_top:")


def stop_or_cancel(job_id: str) -> None:
    try:
        ui.scheduler().stop(job_id, ui.visitor())
    except JobRefused as error:
        st.toast(render(error), icon=":material/block:")


def try_the_model(name: str) -> None:
    st.session_state[ui.ACTIVE_MODEL_KEY] = name


ui.page_header(
    _("Train"),
    _("Training runs on the server in the background: switch pages or close the tab and it carries on; "
      "when it ends the model is saved and appears on the Draw and Models pages. When someone else is training, "
      "yours waits in a queue and starts by itself."),
    own_training=False,  # this page shows it in full
)

config, model_name, problem = settings_sidebar()
queue = ui.scheduler()
queue.warm_up()  # a worker imports TensorFlow now, so Start does not wait for it
who = ui.visitor()
mine = queue.latest_for(who, ui.TRAINING_KINDS)
mine_pending = mine is not None and not mine.done

buttons = st.columns([1, 1, 4])
buttons[0].button(
    _("Start training"), type="primary", icon=":material/play_arrow:", disabled=config is None or mine_pending,
    on_click=start, args=(config, model_name),
    help=_("Starts now if no training is running, else waits in the queue; one training per person at a time."),
)
buttons[1].button(
    _("Cancel") if mine_pending and mine.status == JobStatus.QUEUED else _("Stop training"),
    icon=":material/stop:", disabled=not mine_pending,
    on_click=stop_or_cancel, args=(mine.job_id if mine_pending else "",),
    help=_("Stop: training ends at the next batch and the model so far is saved. Cancel: leave the queue."),
)
if problem:
    st.error(_("{problem} (Training settings, in the sidebar.)").format(problem=problem), icon=":material/error:")
elif not mine_pending:  # what Start will do, for a phone whose sidebar is folded away
    st.caption(ngettext("Start trains {name}: {preset} · {architecture}, {epochs} epoch on {images} images. Change "
                        "the settings in the sidebar.",
                        "Start trains {name}: {preset} · {architecture}, {epochs} epochs on {images} images. Change "
                        "the settings in the sidebar.", config.epochs).format(
        name=ui.literal(model_name), preset=_(PRESET_LABELS[st.session_state.train_preset]),
        architecture=config.architecture, epochs=config.epochs, images=format_number(config.train_size)))


def describe(config: TrainConfig) -> str:
    return ngettext("{architecture}, {epochs} epoch, {images} images, batch {batch}",
                    "{architecture}, {epochs} epochs, {images} images, batch {batch}", config.epochs).format(
        architecture=config.architecture, epochs=config.epochs, images=format_number(config.train_size),
        batch=config.batch_size)


def queue_view() -> None:
    entries = ui.scheduler().queue_view()
    if not entries:
        return
    own = next((entry for entry in entries if who.owns(entry.snapshot.owner_id)), None)
    if own is not None:
        st.info(_("Your training {name} is number {position} in the queue: it starts in about {wait}, by itself, "
                  "even if you leave.").format(name=ui.literal(own.snapshot.model_name), position=own.position,
                                               wait=ui.format_duration(own.starts_in_seconds)),
                icon=":material/hourglass_top:")
    st.markdown(_("**Queue** ({count} waiting)").format(count=len(entries)))
    # A Markdown table, not st.dataframe: this runs every second on every Train page while anything waits, and in a
    # classroom's profile (twenty pages, py-spy) st.dataframe's pandas-to-Arrow work was a fifth of the server's
    # busy time. The cells are ours (settings, times, hashed visitor names) or a model name as a code span.
    header = ["#", _("model"), _("by"), _("settings"), _("starts in about")]
    rows = [[str(entry.position), ui.literal(entry.snapshot.model_name),
             _("you") if who.owns(entry.snapshot.owner_id) else entry.snapshot.owner,
             describe(entry.snapshot.config) if entry.snapshot.kind == "train" else
             _("{kind} (not a training)").format(kind=entry.snapshot.kind),
             ui.format_duration(entry.starts_in_seconds)] for entry in entries]
    st.markdown("\n".join(["| " + " | ".join(header) + " |", "|---:|---|---|---|---|",
                           *("| " + " | ".join(cell.replace("|", "/") for cell in row) + " |" for row in rows)]))


def live_view() -> None:
    queue = ui.scheduler()
    current = ui.watched_job(queue, who)
    if current is not None and current.status == JobStatus.QUEUED:  # yours waits (the queue view says where):
        running = queue.running()  # watch the one that runs
        current = running[0] if running else None
    own = queue.latest_for(who, ui.TRAINING_KINDS)
    if own is not None and own.status == JobStatus.SAVING:
        # Your training's last second (the test-set evaluation and the save, ~1 s): wait for its end here, not for
        # the next poll up to a second later, so "Training finished" shows as soon as the model is saved. Bounded:
        # a click meanwhile waits at most this long.
        own.wait(timeout=SAVING_WAIT_SECONDS)
    # When your job moves on (starts, ends), rerun the whole page: Start/Stop/Cancel and the sidebar change.
    seen = (own.job_id, own.status) if own is not None else None
    if st.session_state.get("train_seen_state", seen) != seen:
        st.session_state.train_seen_state = seen
        st.rerun(scope="app")
    st.session_state.train_seen_state = seen
    if current is None:
        if own is None:
            st.info(_("No training yet. Pick settings in the sidebar (or a preset) and press **Start training**."))
            # The digits the training will be watched on, from the start. (It also has the browser load its chart
            # code now: loaded at the click, it took ~1 s of CPU from the training's first seconds; BENCHMARKS.md.)
            watch_it_learn(None)
        return
    snapshot = current.snapshot()
    started = (_("{name} · {architecture} · started by you · {elapsed} elapsed") if who.owns(snapshot.owner_id) else
               _("{name} · {architecture} · started by {owner} · {elapsed} elapsed"))
    st.markdown(started.format(name=ui.literal(snapshot.model_name), architecture=snapshot.config.architecture,
                               owner=snapshot.owner, elapsed=ui.format_duration(snapshot.elapsed_seconds)))
    if snapshot.active:
        label = _("Stopping at the next batch...") if snapshot.stop_requested else ui.progress_text(snapshot)
        if snapshot.status == JobStatus.SAVING:
            label = _("Evaluating on the test set and saving...")
        st.progress(snapshot.fraction_done, text=label)
    else:
        kind, message = ui.job_outcome(snapshot)
        getattr(st, kind)(message)
        if snapshot.saved_name and who.owns(snapshot.owner_id):
            if st.button(_("Try it on the Draw page"), icon=":material/draw:", on_click=try_the_model,
                         args=(snapshot.saved_name,)):
                st.switch_page("pages/draw.py")

    latest = snapshot.latest
    if latest is not None:
        metrics = st.columns(4)
        metrics[0].metric(_("Batch loss (running)"), format_number(latest.loss, 4))
        metrics[1].metric(_("Batch accuracy (running)"), format_percent(latest.accuracy))
        validated = [epoch for epoch in snapshot.epochs if epoch.val_accuracy is not None]
        metrics[2].metric(_("Validation accuracy"), format_percent(validated[-1].val_accuracy) if validated else "-",
                          help=_("After the last epoch that finished its validation."))
        metrics[3].metric(_("Images per second"), format_number(latest.images_per_second))
        shown = plots.batches_to_draw(snapshot.batches,
                                      finished=not snapshot.active or snapshot.status == JobStatus.SAVING)
        last = snapshot.batches[shown - 1]  # the snapshot keeps its latest batch among them: never empty here
        batch_curves = ui.live_figure("batches", (snapshot.job_id, last.epoch, last.step, shown),
                                      lambda: plots.batch_curves(snapshot.batches[:shown]))
        st.plotly_chart(batch_curves, width="stretch", key="batch_curves")
    if snapshot.epochs:
        st.markdown(_("**Per epoch: training vs validation** (when the validation curve turns up while training "
                      "keeps falling, the network is overfitting)"))
        references = tuple(reference_accuracies(ui.models()))
        epoch_curves = ui.live_figure("epochs", (snapshot.job_id, len(snapshot.epochs), references),
                                      lambda: plots.training_curves(snapshot.epochs, references=list(references)))
        st.plotly_chart(epoch_curves, width="stretch", key="epoch_curves")
    if snapshot.kind == "train":
        watch_it_learn(snapshot)


# --- issue 13 (helper "explain"): the live test-digit panel and the augmentation preview ------------------------


def watch_it_learn(snapshot) -> None:
    """The panel of 20 test digits with what the model in training says about each, as of its last epoch (the
    training job computes them: panel.py); before its first answers (or with no training: `snapshot` None), the
    labels alone."""
    images, labels = panel_digits()
    st.markdown(_("**Watch it learn**: 20 test digits the network never trains on, 10 textbook ones on top and 10 "
                  "harder ones below; green where it reads them right, red where not, updated after every epoch"))
    if snapshot is None or not snapshot.panels:
        title = _("Their labels: no training yet") if snapshot is None else _("Waiting for the first answers...")
        waiting = ui.live_figure("panel", ("waiting", title), lambda: plots.digit_panel(
            images, labels, None, None, columns=PANEL_COLUMNS, title=title))
        st.plotly_chart(waiting, width="stretch", key="panel", config={"displayModeBar": False})
        return
    latest = snapshot.panels[-1]
    title = (_("Before training: {right} of {total} right") if latest.epoch == 0 else
             _("After epoch {epoch}: {right} of {total} right")).format(
        epoch=latest.epoch, right=latest.right(labels), total=len(labels))
    panel = ui.live_figure("panel", (snapshot.job_id, len(snapshot.panels)), lambda: plots.digit_panel(
        images, labels, latest.predictions, latest.confidences, columns=PANEL_COLUMNS, title=title))
    st.plotly_chart(panel, width="stretch", key="panel", config={"displayModeBar": False})
    if len(snapshot.panels) > 1:
        st.caption(_("Right so far: {counts}").format(counts=_(", ").join(
            (_("start: {right}") if event.epoch == 0 else _("epoch {epoch}: {right}")).format(
                epoch=event.epoch, right=event.right(labels))
            for event in snapshot.panels)))


def _another_augmentation_draw() -> None:
    st.session_state.augmentation_seed = st.session_state.get("augmentation_seed", 0) + 1


def augmentation_preview() -> None:
    """When augmentation is on: ten training digits and what the trainer's own augmentation makes of them, computed
    by the explainer process (training.distort needs TensorFlow), redrawn with new random draws on demand."""
    if not st.session_state.get("train_augment"):
        return
    with st.expander(_("See the augmentation"), icon=":material/auto_fix_high:",
                     expanded=st.session_state.get("augmentation_seed") is not None):
        if st.session_state.get("augmentation_seed") is None:
            st.caption(_("Ten training digits and what augmentation makes of them: the same random distortions the "
                         "training applies to every batch."))
            st.button(_("Show"), key="augmentation_show", icon=":material/visibility:",
                      on_click=_another_augmentation_draw)
            return
        seed = st.session_state.augmentation_seed
        result = ui.explainer().augmentation(seed)
        if isinstance(result, Pending):
            st.caption(_("Distorting (the explainer loads TensorFlow once, a few seconds)...") if result.starting
                       else _("Distorting..."))
            return
        if isinstance(result, Failed):
            st.warning(_("No preview: {reason}").format(reason=render(result.message)))
            return
        st.plotly_chart(plots.augmentation_grid(result.originals, result.labels, result.distorted), width="stretch",
                        key="augmentation_grid", config={"displayModeBar": False})
        st.button(_("Other random draws"), key="augmentation_again", icon=":material/refresh:",
                  on_click=_another_augmentation_draw)


@st.fragment(run_every=ui.POLL_SECONDS)
def following_the_jobs() -> None:
    """All of the page that follows the jobs, in one fragment rerun every second.

    Not three: with the augmentation preview, the queue and the job each a `run_every` fragment, a visitor's page
    (in the classroom bench, reproduced in 3 of 3 runs: five Train pages, one Start after another) died when other
    people's trainings were queued: Streamlit 1.67's frontend received an element at a position of a block it had
    not filled yet ("Bad delta path index 5 (should be between [0, 4])"), threw, and unmounted the whole app: a
    blank page, disconnected, the sidebar's settings gone (the "missing Training images" of earlier CI runs). The
    other half of that fix, for "Cached ForwardMsg MISS", is in .streamlit/config.toml.
    """
    with st.container():
        augmentation_preview()
    with st.container():
        queue_view()
    with st.container():
        live_view()


following_the_jobs()

"""Train: choose an architecture and settings in the sidebar, start a background job, watch it learn, stop it."""

import re

import streamlit as st

import ui
from mnist_core import plots
from mnist_core.architectures import ARCHITECTURES, PRECISIONS
from mnist_core.hardware import native_bfloat16
from mnist_core.jobs import TrainingBusyError
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
PRESET_HELP = {
    CUSTOM: "your own settings",
    "fast": "the quick CNN, 2 epochs, one-cycle to 0.01: ~99.1%, 13 CPU-seconds (18 s measured on 2 busy cores)",
    "seed": "seed 000's script as written: the seed CNN, batch 32, 10 epochs",
    "shipped-cnn": "how the shipped 'cnn' was made: 10 epochs at batch 64, cosine learning rate",
    "strong": "the strong CNN with augmentation and cosine decay, 15 epochs: >= 99.5%, takes a while",
}

# Widget keys, so presets can fill them in.
FIELDS = (
    "architecture", "epochs", "batch_size", "optimizer", "learning_rate", "train_size", "augment", "schedule",
    "precision",
)
PRECISION_LABELS = {"float32": "float32", "bfloat16": "bfloat16 (mixed)"}
PRECISION_HELP = {
    True: "This CPU computes bfloat16 in hardware: the CNNs train about 1.4x as fast, to the same accuracy. "
          "Weights stay float32 and the model is saved in float32.",
    False: "This CPU has no bfloat16 hardware: TensorFlow would emulate it, which is usually slower than float32. "
           "Weights stay float32 and the model is saved in float32 either way.",
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


@st.cache_resource(show_spinner="Building the architecture...")
def architecture_summary(name: str):
    from mnist_core.architectures import build_model, layer_table, parameter_count

    model = build_model(name)
    return parameter_count(model), layer_table(model)


def show_architecture(name: str) -> None:
    architecture = ARCHITECTURES[name]
    parameters, rows = architecture_summary(name)
    st.caption(f"{architecture.description} ({architecture.source}) · **{parameters:,} parameters**")
    with st.expander("Layers"):
        st.dataframe(
            [{"layer": row.name, "type": row.kind, "output shape": row.output_shape, "parameters": row.parameters}
             for row in rows],
            hide_index=True, width="stretch",
        )


def settings_sidebar() -> tuple[TrainConfig | None, str]:
    """The training controls; returns the config (None if invalid, with the reason shown) and the model name."""
    st.sidebar.header("Training settings")
    st.sidebar.selectbox("Preset", [CUSTOM, *PRESETS], key="train_preset", on_change=_apply_preset,
                         format_func=lambda name: f"{name}: {PRESET_HELP.get(name, '')}")
    with st.sidebar:
        architecture = st.selectbox("Architecture", list(ARCHITECTURES), key="train_architecture",
                                    on_change=_architecture_changed,
                                    format_func=lambda name: f"{name}: {ARCHITECTURES[name].title}")
        show_architecture(architecture)
        st.number_input("Epochs", min_value=1, max_value=MAX_EPOCHS, step=1, key="train_epochs", on_change=_mark_custom)
        st.select_slider("Batch size", options=list(BATCH_SIZES), key="train_batch_size", on_change=_mark_custom)
        st.selectbox("Optimizer", list(OPTIMIZERS), key="train_optimizer", on_change=_mark_custom)
        st.select_slider("Learning rate", options=LEARNING_RATES, key="train_learning_rate", on_change=_mark_custom)
        st.number_input("Training images", min_value=MIN_TRAIN_SIZE, max_value=FULL_TRAIN_SIZE, step=1000,
                        key="train_train_size", on_change=_mark_custom, help="A random subset of the 60,000 training images.")
        st.toggle("Augmentation", key="train_augment", on_change=_mark_custom,
                  help="Random pen widths, turns, slants, zooms, shifts and elastic wobbles, and MNIST's rare "
                       "flagged 1s shown more often: slower per epoch, better on drawn digits.")
        st.radio("Learning-rate schedule", list(SCHEDULES), key="train_schedule", horizontal=True,
                 on_change=_mark_custom)
        st.radio("Precision", list(PRECISIONS), key="train_precision", horizontal=True, on_change=_mark_custom,
                 format_func=PRECISION_LABELS.get, help=PRECISION_HELP[native_bfloat16()])
        st.radio("Validate on", ["test", "split"], key="train_validation", horizontal=True,
                 format_func={"test": "test set (10k)", "split": "10% held out"}.get)
        st.number_input("Seed", min_value=0, max_value=2**31 - 1, step=1, key="train_seed",
                        help="The same settings and seed give the same curves, with augmentation off "
                             "(its random distortions run in parallel, in a varying order).")
        name = st.text_input("Model name", key="train_model_name", max_chars=64,
                             help="Letters, digits, '-', '_' and '.'; a number is added if the name is taken.")
    try:
        config = TrainConfig(
            **{field: st.session_state[f"train_{field}"] for field in FIELDS},
            validation=st.session_state.train_validation,
            seed=int(st.session_state.train_seed),
        )
        validate_name(name)
    except (ConfigError, StoreError) as error:
        st.sidebar.error(str(error))
        return None, name
    return config, name


def start(config: TrainConfig, name: str) -> None:
    try:
        ui.registry().start(config, name, owner=ui.visitor())
    except TrainingBusyError as busy:
        st.session_state.train_busy_message = str(busy)
    except (ConfigError, StoreError) as error:
        st.session_state.train_busy_message = str(error)
    else:
        st.session_state.pop("train_busy_message", None)


ui.page_header(
    "Train",
    "Training runs on the server in the background: switch pages or close the tab and it carries on; "
    "when it ends the model is saved and appears on the Draw and Models pages."
)

config, model_name = settings_sidebar()
registry = ui.registry()
job = registry.current()
running = job is not None and not job.done

buttons = st.columns([1, 1, 4])
if buttons[0].button("Start training", type="primary", icon=":material/play_arrow:", disabled=config is None,
                     help="One training job runs at a time on this server."):
    start(config, model_name)
    st.rerun()
stop_disabled = not running or job.owner != ui.visitor()
if buttons[1].button("Stop training", icon=":material/stop:", disabled=stop_disabled,
                     help="Ends training at the next batch; the model so far is saved."):
    job.stop()

if message := st.session_state.get("train_busy_message"):
    st.warning(message, icon=":material/hourglass_top:")


@st.fragment(run_every=ui.POLL_SECONDS)
def live_view() -> None:
    current = ui.registry().current()
    if current is None:
        st.info("No training yet. Pick settings in the sidebar (or a preset) and press **Start training**.")
        return
    snapshot = current.snapshot()
    owner = "you" if snapshot.owner == ui.visitor() else snapshot.owner
    st.markdown(f"**{snapshot.model_name}** · {snapshot.config.architecture} · started by {owner} · "
                f"{ui.format_duration(snapshot.elapsed_seconds)} elapsed")
    if snapshot.active:
        label = "Stopping at the next batch..." if snapshot.stop_requested else ui.progress_text(snapshot)
        if snapshot.status.value == "saving":
            label = "Evaluating on the test set and saving..."
        st.progress(snapshot.fraction_done, text=label)
    else:
        kind, message = ui.job_outcome(snapshot)
        getattr(st, kind)(message)
        # The first time this session sees the job end, rerun the whole page so the sidebar lists the new model.
        if st.session_state.get("train_seen_end") != snapshot.job_id:
            st.session_state.train_seen_end = snapshot.job_id
            st.rerun(scope="app")

    latest = snapshot.latest
    if latest is not None:
        metrics = st.columns(4)
        metrics[0].metric("Batch loss (running)", f"{latest.loss:.4f}")
        metrics[1].metric("Batch accuracy (running)", f"{latest.accuracy:.2%}")
        last_epoch = snapshot.epochs[-1] if snapshot.epochs else None
        metrics[2].metric("Validation accuracy",
                          f"{last_epoch.val_accuracy:.2%}" if last_epoch and last_epoch.val_accuracy is not None else "-")
        metrics[3].metric("Images per second", f"{latest.images_per_second:,.0f}")
        st.plotly_chart(plots.batch_curves(snapshot.batches), width="stretch", key="batch_curves")
    if snapshot.epochs:
        st.markdown("**Per epoch: training vs validation** (when the validation curve turns up while training "
                    "keeps falling, the network is overfitting)")
        st.plotly_chart(plots.training_curves(snapshot.epochs), width="stretch", key="epoch_curves")


live_view()

"""My digits: the digits you saved on the Draw page as a collection: look at it, correct it, keep it (export and
import), see how every model reads your hand, and teach one your hand (fine-tuning)."""

import numpy as np
import streamlit as st

import ui
from mnist_core import plots
from mnist_core.architectures import ARCHITECTURES
from mnist_core.constants import CLASS_NAMES
from mnist_core.evaluation import evaluate
from mnist_core.finetune import (
    DEFAULT_EPOCHS,
    DEFAULT_MNIST_IMAGES,
    EPOCH_CHOICES,
    MNIST_DROP_LIMIT_POINTS,
    MNIST_IMAGE_CHOICES,
    FinetuneError,
    Record,
    check_drawings,
    finetune_config,
    finetune_extra,
)
from mnist_core.handwriting import (
    MAX_DRAWINGS,
    MAX_IMPORT_BYTES,
    CollectionNotFound,
    Handwriting,
    HandwritingError,
    checked_import,
    export_stem,
)
from mnist_core.i18n import format_number, format_percent, gettext as _, ngettext, render
from mnist_core.jobs import JobRefused, JobStatus
from mnist_core.store import MAX_NAME_LENGTH, StoreError, validate_name
from mnist_core.training import ConfigError

GRID_PAGE = 100  # drawings per page of the grid
MISTAKE_COLOUR = "#d62728"
CLOSER_MISTAKES = 40

ui.page_header(
    _("My digits"),
    _("Your own handwriting: the digits you saved on the Draw page, how every model reads them, and a model taught "
      "your hand. Export your collection to keep it: a hosted server forgets it when it restarts."),
)

store = Handwriting()
who = ui.visitor()


def shown_collection():
    """The collection this page shows: one opened by its name, else the visitor's own (None before their first
    save)."""
    opened = st.session_state.get("digits_opened")
    if opened is not None:
        try:
            return store.get(opened)
        except CollectionNotFound:
            st.session_state.pop("digits_opened")
    return store.own(who)


def rename(collection_id: int) -> None:
    try:
        renamed = store.rename(collection_id, st.session_state.get("digits_new_name", ""), by=who)
    except HandwritingError as error:
        st.session_state.digits_problem = render(error)
    else:
        st.toast(_("Your collection is now called {name}: open it by that name from any browser.").format(
            name=ui.literal(renamed.name)), icon=":material/edit:")


def open_by_name() -> None:
    try:
        found = store.find(st.session_state.get("digits_open_name", ""))
    except HandwritingError as error:
        st.session_state.digits_problem = render(error)
    else:
        st.session_state.digits_opened = found.id


def back_to_mine() -> None:
    st.session_state.pop("digits_opened", None)


def delete_drawing(collection_id: int, drawing_id: int) -> None:
    try:
        store.delete_drawing(collection_id, drawing_id, by=who)
    except HandwritingError as error:
        st.session_state.digits_problem = render(error)
    else:
        st.toast(_("Drawing deleted."), icon=":material/delete:")


def delete_collection(collection_id: int, name: str) -> None:
    try:
        store.delete_collection(collection_id, by=who)
    except HandwritingError as error:
        st.session_state.digits_problem = render(error)
    else:
        st.session_state.pop("digits_opened", None)
        st.session_state.digits_confirm_delete = False
        st.toast(_("Deleted the collection {name} and its drawings.").format(name=ui.literal(name)),
                 icon=":material/delete_forever:")


def import_file() -> None:
    upload = st.session_state.get(f"digits_import_{st.session_state.get('digits_import_round', 0)}")
    if upload is None:
        return
    try:
        imported = checked_import(upload.getvalue())
        collection, result = store.import_into(None, imported, by=who)
    except HandwritingError as error:
        st.session_state.digits_problem = _("{file} was not imported: {error}").format(
            file=upload.name, error=render(error))
        return
    st.session_state.pop("digits_opened", None)  # show where the drawings went: your own collection
    st.session_state.digits_import_round = st.session_state.get("digits_import_round", 0) + 1  # an empty uploader
    already = _(" ({count} were there already)").format(count=result.duplicates) if result.duplicates else ""
    st.session_state.digits_notice = _("Imported {count} drawing(s) from {file} into {collection}{already}.").format(
        count=result.added, file=ui.literal(upload.name), collection=ui.literal(collection.name), already=already)


try:
    collection = shown_collection()
except HandwritingError as error:  # a damaged or foreign drawings file: the message says what an admin can do
    st.error(render(error))
    st.stop()
mine = collection is not None and who.may_manage(collection.owner_id)

if problem := st.session_state.pop("digits_problem", None):
    st.error(problem)
if notice := st.session_state.pop("digits_notice", None):
    st.success(notice)

# --- which collection ---------------------------------------------------------------------------------------------

if collection is None:
    st.info(_("You have not saved any digits yet: draw one on the Draw page, say whether the prediction is right, "
              "and press **Save**. Or import a file you exported before (below)."), icon=":material/draw:")
else:
    owner = (_("yours") if who.owns(collection.owner_id) else
             _("by {owner}").format(owner=collection.owner_name or _("somebody else")))
    st.markdown(ngettext("Collection {name} · {count} drawing · {owner}", "Collection {name} · {count} drawings · "
                         "{owner}", collection.size).format(name=ui.literal(collection.name),
                                                            count=format_number(collection.size), owner=owner))
    if not who.owns(collection.owner_id):
        st.info(_("You are looking at somebody else's collection: you can test models and fine-tune on it, and "
                  "export it; only its owner or an admin (you) can change it.") if mine else
                _("You are looking at somebody else's collection: you can test models and fine-tune on it, and "
                  "export it; only its owner (or an admin) can change it."), icon=":material/visibility:")
        st.button(_("Back to my collection"), on_click=back_to_mine, icon=":material/arrow_back:")
    elif not collection.named:
        st.caption(_("Give your collection a name to find it again from another browser on this server."))
with st.expander(_("Name your collection, or open another by its name")):
    name_column, open_column = st.columns(2)
    with name_column.form("digits_rename_form", border=False):
        st.text_input(_("New name for your collection"), key="digits_new_name", max_chars=48,
                      disabled=collection is None or not mine,
                      help=_("Letters, digits, spaces, '-', '_' and '.'. Anybody who knows the name can look at it; "
                             "only you can change it."))
        st.form_submit_button(_("Rename"), disabled=collection is None or not mine, on_click=rename,
                              args=(collection.id if collection else 0,))
    with open_column.form("digits_open_form", border=False):
        st.text_input(_("Name of a collection on this server"), key="digits_open_name", max_chars=48)
        st.form_submit_button(_("Open"), on_click=open_by_name)

# --- the drawings -------------------------------------------------------------------------------------------------

drawings = store.drawings(collection.id) if collection is not None else []
if drawings:
    st.subheader(_("Your drawings") if who.owns(collection.owner_id) else _("The drawings"))
    grid_column, counts_column = st.columns([2, 1], gap="large")
    with counts_column:
        st.plotly_chart(plots.digit_counts(store.counts(collection.id)), width="stretch",
                        config={"displayModeBar": False})
    with grid_column:
        pages = -(-len(drawings) // GRID_PAGE)
        page = st.number_input(_("Page"), 1, pages, 1, key="digits_grid_page") if pages > 1 else 1
        first = (page - 1) * GRID_PAGE
        shown = drawings[first : first + GRID_PAGE]
        st.plotly_chart(
            plots.sample_grid(
                np.stack([drawing.image for drawing in shown]),
                [f"#{first + index + 1}: {d.label}" + (f" ({d.predicted})" if d.mistaken else "")
                 for index, d in enumerate(shown)],
                columns=10,
                title_colours=[MISTAKE_COLOUR if drawing.mistaken else "#444444" for drawing in shown],
            ),
            width="stretch", config={"displayModeBar": False},
        )
        mistakes = sum(drawing.mistaken for drawing in drawings)
        st.caption(_("#number: true label. In red, with its answer in brackets: the {count} drawing(s) the active "
                     "model of the moment got wrong when they were saved. Each picture is the 28 x 28 image it "
                     "saw.").format(count=mistakes))

    if mine:
        delete_column, delete_all_column = st.columns(2, gap="large")
        with delete_column:
            positions = {drawing.id: index + 1 for index, drawing in enumerate(drawings)}
            by_id = {drawing.id: drawing for drawing in drawings}
            # Described now, in the visitor's run: a format_func is also called outside it (AppTest).
            described = {}
            for drawing_id, drawing in by_id.items():
                line = (_("#{position}: an {label}") if drawing.label == 8 else _("#{position}: a {label}"))
                if drawing.mistaken:
                    line += _(" (the model said {predicted})")
                line += _(" · saved {when} UTC")
                described[drawing_id] = line.format(position=positions[drawing_id], label=drawing.label,
                                                    predicted=drawing.predicted,
                                                    when=drawing.created[:16].replace("T", " "))
            target = st.selectbox(_("Drawing to delete"), list(positions), format_func=described.get)
            st.button(_("Delete drawing"), icon=":material/delete:", on_click=delete_drawing,
                      args=(collection.id, target))
        with delete_all_column:
            confirm = st.checkbox(_("Yes, delete all {count} drawings of {name}").format(
                count=len(drawings), name=ui.literal(collection.name)), key="digits_confirm_delete")
            st.button(_("Delete the collection"), icon=":material/delete_forever:", disabled=not confirm,
                      on_click=delete_collection, args=(collection.id, collection.name))

# --- export and import --------------------------------------------------------------------------------------------

st.subheader(_("Export and import"))
export_column, import_column = st.columns(2, gap="large")
with export_column:
    if drawings:
        collection_id, stem = collection.id, export_stem(collection.name)
        st.download_button(
            _("Export .zip (npz + PNGs)"), data=lambda: store.export_zip(collection_id), file_name=f"{stem}.zip",
            mime="application/zip", icon=":material/download:", on_click="ignore",
            help=_("The .npz below, the pictures you drew (png/) and drawings.json (labels, the model's answers, "
                   "dates). Import it here to get everything back."))
        st.download_button(
            _("Export .npz (MNIST's format)"), data=lambda: store.export_npz(collection_id), file_name=f"{stem}.npz",
            mime="application/octet-stream", icon=":material/download:", on_click="ignore",
            help=_("x: uint8 (n, 28, 28), y: uint8 (n,), as MNIST itself: numpy.load() reads it."))
    else:
        st.caption(_("Nothing to export yet."))
with import_column:
    st.file_uploader(
        _("Import a .zip or .npz you exported (into your collection)"), type=["zip", "npz"],
        key=f"digits_import_{st.session_state.get('digits_import_round', 0)}",
        help=_("A .npz with x uint8 (n, 28, 28) and y (labels 0-9), or the .zip exported here; up to {mb} MB and "
               "{count} drawings. Drawings you have already are skipped.").format(
            mb=MAX_IMPORT_BYTES // 1_000_000, count=format_number(MAX_DRAWINGS)))
    st.button(_("Import"), icon=":material/upload:", on_click=import_file)

if not drawings:
    st.stop()

# --- every model on your handwriting ------------------------------------------------------------------------------

x_mine, y_mine = store.arrays(collection.id)
fingerprint = store.fingerprint(collection.id)


@st.cache_data(max_entries=256, show_spinner=False)
def reading(fingerprint: str, model: str, model_created: str, _x: np.ndarray, _y: np.ndarray):
    """How `model` reads the collection (an Evaluation), kept until the drawings or the model change."""
    return evaluate(ui.classifier(model), _x, _y)


st.subheader(_("Every model on your handwriting"))
present = np.bincount(y_mine, minlength=len(CLASS_NAMES)) > 0
rows, readings = [], {}
with st.spinner(_("Asking every model about your drawings...")):
    for entry in ui.working_models():
        try:
            result = reading(fingerprint, entry.name, entry.info.created, x_mine, y_mine)
        except StoreError as error:
            rows.append({"model": entry.name, "MNIST test": None, "your digits": None, "mistakes": render(error)})
            continue
        readings[entry.name] = result
        rows.append({
            "model": entry.name,
            "MNIST test": entry.info.test_accuracy * 100 if entry.info.test_accuracy is not None else None,
            "your digits": result.accuracy * 100,
            "mistakes": _("{count} of {total}").format(count=result.error_count, total=len(y_mine)),
            **{digit: (result.per_class_accuracy[index] * 100 if present[index] else None)
               for index, digit in enumerate(CLASS_NAMES)},
        })
st.dataframe(rows, hide_index=True, width="stretch",
             column_config={"model": st.column_config.TextColumn(_("model")),
                            "MNIST test": st.column_config.NumberColumn(_("MNIST test"), format="%.1f%%"),
                            "your digits": st.column_config.NumberColumn(_("your digits"), format="%.1f%%"),
                            "mistakes": st.column_config.TextColumn(_("mistakes")),
                            **{digit: st.column_config.NumberColumn(format="%.0f%%") for digit in CLASS_NAMES}})
st.caption(_("MNIST test: accuracy on MNIST's 10,000 test digits, as recorded when the model was saved. Your "
             "digits: on this collection. 0-9: accuracy on your drawings of each digit (empty: none drawn)."))

if readings:
    names = list(readings)
    active = st.session_state.get(ui.ACTIVE_MODEL_KEY)
    closer = st.selectbox(_("Look closer at"), names, index=names.index(active) if active in names else 0,
                          key="digits_closer")
    result = readings[closer]
    wrong = result.misclassified[:CLOSER_MISTAKES]
    if len(wrong):
        st.markdown(_("**{model}'s mistakes on your digits** · title: label / prediction").format(
            model=ui.literal(closer)))
        st.plotly_chart(plots.sample_grid(x_mine[wrong], [f"{y_mine[i]} / {result.predictions[i]}" for i in wrong],
                                          columns=10, title_colours=[MISTAKE_COLOUR] * len(wrong)),
                        width="stretch", config={"displayModeBar": False})
    else:
        st.success(_("{model} reads every one of your {count} drawings right.").format(model=ui.literal(closer),
                                                                                       count=len(y_mine)))

# --- teach a model your hand --------------------------------------------------------------------------------------

st.subheader(_("Teach a model your hand"))
st.caption(_(
    "Fine-tuning starts from a saved model and trains it a few epochs on MNIST plus your drawings (repeated, with "
    "small random rotations, zooms and shifts, so a few dozen count). A quarter of your drawings, some of each digit, "
    "are held out: the gain is measured on drawings the model never trained on. It runs in the training queue like "
    "any training (the Train page shows its curves); the new model appears everywhere when it ends."))


def finetuned_from(name: str) -> list:
    """(entry, Record) of every model fine-tuned on the collection called `name`, newest first."""
    found = []
    for entry in ui.working_models():
        if entry.info.finetune is None:
            continue
        try:
            record = Record.from_dict(entry.info.finetune)
        except ValueError:
            continue  # a hand-edited file: the Models page lists the model; it is no fine-tuning record here
        if record.collection.lower() == name.lower():
            found.append((entry, record))
    return found


def show_records(found: list) -> None:
    st.dataframe(
        [{"model": entry.name, "from": record.base_model, "epochs": record.epochs,
          "held-out drawings": record.held_out,
          "held-out accuracy": f"{format_percent(record.held_out_accuracy.before, 1)} → "
                               f"{format_percent(record.held_out_accuracy.after, 1)}",
          "MNIST test accuracy": f"{format_percent(record.mnist_test_accuracy.before)} → "
                                 f"{format_percent(record.mnist_test_accuracy.after)}",
          "MNIST kept": (_("yes ({points} points)") if record.within_limit else _("NO: {points} points")).format(
              points=f"{-record.mnist_drop_points:+.2f}")}
         for entry, record in found],
        hide_index=True, width="stretch",
        column_config={"model": st.column_config.TextColumn(_("model")),
                       "from": st.column_config.TextColumn(_("from")),
                       "epochs": st.column_config.NumberColumn(_("epochs")),
                       "held-out drawings": st.column_config.NumberColumn(_("held-out drawings")),
                       "held-out accuracy": st.column_config.TextColumn(_("held-out accuracy")),
                       "MNIST test accuracy": st.column_config.TextColumn(_("MNIST test accuracy")),
                       "MNIST kept": st.column_config.TextColumn(_("MNIST kept"))},
    )
    for entry, record in found:
        if not record.within_limit:
            st.warning(_("{model} lost {points} points on MNIST's test set, more than the {limit} allowed: it reads "
                         "your hand better but MNIST worse. Fewer epochs or more MNIST images keep more of "
                         "MNIST.").format(model=ui.literal(entry.name), points=f"{record.mnist_drop_points:.2f}",
                                          limit=MNIST_DROP_LIMIT_POINTS))


def start_finetune(base: str, architecture: str, collection_name: str, x: np.ndarray, y: np.ndarray) -> None:
    epochs = st.session_state.get("digits_finetune_epochs", DEFAULT_EPOCHS)
    mnist_images = st.session_state.get("digits_finetune_mnist", DEFAULT_MNIST_IMAGES)
    name = st.session_state.get("digits_finetune_name", "").strip() or default_name(base, collection_name)
    try:
        validate_name(name)
        config = finetune_config(architecture, epochs, mnist_images)
        job = ui.scheduler().submit(config, name, who, kind="finetune",
                                    extra=finetune_extra(base, collection_name, x, y))
    except (JobRefused, ConfigError, StoreError, FinetuneError) as error:
        st.session_state.digits_problem = render(error)
        return
    st.session_state.digits_finetune_job = job.job_id
    if job.status == JobStatus.QUEUED:
        st.toast(_("Your fine-tuning is in the queue: it starts by itself when the training before it ends."),
                 icon=":material/hourglass_top:")


def default_name(base: str, collection_name: str) -> str:
    return f"{base}-{export_stem(collection_name)}"[:MAX_NAME_LENGTH].rstrip(".-")


try:
    check_drawings(x_mine, y_mine)
except FinetuneError as error:
    st.info(_("{reason} Save more on the Draw page.").format(reason=render(error)), icon=":material/draw:")
else:
    ui.mnist_sizes()  # fine-tuning trains on MNIST too: a missing or damaged file is said here, with the fix
    bases = [entry for entry in ui.working_models() if entry.info.architecture in ARCHITECTURES]
    names = [entry.name for entry in bases]
    active = st.session_state.get(ui.ACTIVE_MODEL_KEY)
    settings = st.columns([2, 1, 1, 2], vertical_alignment="bottom")
    base = settings[0].selectbox(_("Start from"), names, index=names.index(active) if active in names else 0,
                                 key="digits_finetune_base")
    settings[1].select_slider(_("Epochs"), EPOCH_CHOICES, value=DEFAULT_EPOCHS, key="digits_finetune_epochs")
    settings[2].select_slider(_("MNIST images"), MNIST_IMAGE_CHOICES, value=DEFAULT_MNIST_IMAGES,
                              key="digits_finetune_mnist", format_func=lambda n: f"{n:,}",
                              help=_("Mixed with your drawings, so the model keeps what it knows of MNIST."))
    settings[3].text_input(_("Name of the new model"), key="digits_finetune_name", max_chars=MAX_NAME_LENGTH,
                           placeholder=default_name(base, collection.name))
    architecture = next(entry.info.architecture for entry in bases if entry.name == base)
    st.button(_("Teach it my hand"), type="primary", icon=":material/school:", on_click=start_finetune,
              args=(base, architecture, collection.name, x_mine, y_mine))


@st.fragment(run_every=ui.POLL_SECONDS)
def finetune_progress(job_id: str) -> None:
    """The visitor's fine-tuning while it waits or runs; when it ends, the whole page again (the new model joins
    the tables and the sidebar)."""
    job = ui.scheduler().get(job_id)
    if job is None:
        return
    snapshot = job.snapshot()
    if snapshot.ended:
        st.rerun(scope="app")
    if snapshot.queued:
        st.info(_("Your fine-tuning {name} waits in the queue; it starts by itself.").format(
            name=ui.literal(snapshot.model_name)), icon=":material/hourglass_top:")
    else:
        label = _("Evaluating and saving...") if snapshot.status == JobStatus.SAVING else ui.progress_text(snapshot)
        st.progress(snapshot.fraction_done, text=_("Fine-tuning {name}: {progress}").format(
            name=ui.literal(snapshot.model_name), progress=label))


job_id = st.session_state.get("digits_finetune_job")
job = ui.scheduler().get(job_id) if job_id else None
if job is not None and not job.done:
    finetune_progress(job_id)
elif job is not None:
    kind, message = ui.job_outcome(job.snapshot())
    getattr(st, kind)(message.replace("Training", "Fine-tuning", 1))
found = finetuned_from(collection.name)
if found:
    st.markdown(_("**Models taught this collection**: before and after, on the held-out drawings and on MNIST's "
                  "test set"))
    show_records(found)

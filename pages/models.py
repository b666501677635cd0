"""Models: every saved model, their learning curves side by side, and a close look at one of them."""

import numpy as np
import streamlit as st

import ui
from mnist_core import plots
from mnist_core.conversion import ensure_export_report
from mnist_core.data import DatasetError
from mnist_core.export import cached_report, export_path
from mnist_core.filters import FiltersError, first_layer_filters
from mnist_core.i18n import format_number, format_percent, gettext as _, render
from mnist_core.references import reference_accuracies
from mnist_core.store import StoreError, delete_model, model_path
from mnist_core.training import precision_of

ui.page_header(_("Models"),
               _("Every model in the store: shipped ones come with the app, the others were trained here."))

who = ui.visitor()
entries = ui.models()
if not entries:
    st.info(_("The store is empty: train a model on the Train page."))
    st.stop()

st.dataframe(
    [
        {
            "name": entry.name,
            "status": _("broken: {reason}").format(reason=render(entry.error)) if entry.broken else (
                _("shipped") if entry.shipped else _("uploaded") if entry.info.uploaded else _("trained here")),
            "by": (_("you") if who.owns(entry.info.owner_id) else entry.info.owner) if entry.info else "",
            "architecture": entry.info.architecture if entry.info else "",
            "parameters": entry.info.parameters if entry.info else None,
            "test accuracy": entry.info.test_accuracy * 100 if entry.info and entry.info.test_accuracy else None,
            "epochs": len(entry.info.history) if entry.info else None,
            "precision": str(precision_of(entry.info.config)) if entry.info else "",
            # as the rest of the app shows durations (M:SS, H:MM:SS); an uploaded model was not trained here
            "training time": ui.format_duration(entry.info.train_seconds)
                             if entry.info and not entry.info.uploaded else "",
            "created (UTC)": entry.info.created[:16].replace("T", " ") if entry.info else "",
        }
        for entry in entries
    ],
    hide_index=True,
    width="stretch",
    column_config={  # the keys stay English (tests and code read them); the headers are the visitor's language
        "name": st.column_config.TextColumn(_("name")),
        "status": st.column_config.TextColumn(_("status")),
        "by": st.column_config.TextColumn(_("by")),
        "architecture": st.column_config.TextColumn(_("architecture")),
        "test accuracy": st.column_config.NumberColumn(_("test accuracy"), format="%.2f%%"),
        "parameters": st.column_config.NumberColumn(_("parameters"), format="localized"),  # 121,930, not 121930
        "epochs": st.column_config.NumberColumn(_("epochs")),
        "precision": st.column_config.TextColumn(_("precision")),
        "training time": st.column_config.TextColumn(_("training time")),
        "created (UTC)": st.column_config.TextColumn(_("created (UTC)")),
    },
)

working = [entry for entry in entries if not entry.broken]
broken = [entry for entry in entries if entry.broken]

st.subheader(_("Compare learning curves"))
chosen = st.multiselect(_("Models to compare"), [entry.name for entry in working],
                        default=[entry.name for entry in working][:3])
histories = {entry.name: entry.info.history for entry in working if entry.name in chosen and entry.info.history}
if histories:
    curves = st.columns(2)
    curves[0].plotly_chart(plots.compare_curves(histories, "val_accuracy", reference_accuracies(entries)),
                           width="stretch")
    curves[1].plotly_chart(plots.compare_curves(histories, "val_loss"), width="stretch")
else:
    st.caption(_("Pick models with a training history to compare them."))

def show_filters(name: str) -> None:
    """The first convolution layer's kernels of the model picked above, read from its file (no TensorFlow)."""
    st.subheader(_("First-layer filters"))
    try:
        filters = first_layer_filters(name, ui.store_dir())
    except (FiltersError, StoreError) as error:
        st.warning(_("The filters of {name} could not be read: {error}").format(
            name=ui.literal(name), error=render(error)))
        return
    if filters is None:
        st.caption(_("{name} has no convolution layer: an MLP's first layer weighs all 784 pixels at once.").format(
            name=ui.literal(name)))
        return
    st.caption(_("What the first convolution layer looks for: each small square is one filter's weights, red where "
                 "ink adds to its response, blue where ink subtracts (each scaled to its own largest weight; hover "
                 "for the numbers). Edges and strokes of one direction are typical."))
    st.plotly_chart(plots.filter_mosaic(filters.kernels, filters.layer_name), width="stretch",
                    config={"displayModeBar": False}, key=f"filters-{name}")


@st.fragment
def mistakes_explorer(name: str, result) -> None:
    """The confusion matrix and the mistakes it filters: a click on a cell reruns this alone, not the whole page."""
    (_train, _labels), (x_test, y_test) = ui.mnist()
    matrix, per_class = st.columns([3, 2])
    event = matrix.plotly_chart(
        plots.confusion_matrix(result.confusion), width="stretch", on_select="rerun",
        selection_mode="points", key=f"confusion-{name}", config=plots.PICK_CONFIG,
    )
    per_class.plotly_chart(plots.per_class_accuracy(result.per_class_accuracy), width="stretch")

    points = event.selection.points if event and event.selection else []
    cell = (int(points[0]["y"]), int(points[0]["x"])) if points else None
    if cell is not None and cell[0] != cell[1]:
        indices = result.misclassified_as(*cell)
        heading = _("{count} test image(s) of a {true} taken for a {predicted}").format(
            count=len(indices), true=cell[0], predicted=cell[1])
    else:
        if cell is not None:
            st.caption(_("That cell is the diagonal (correct answers); showing all mistakes instead."))
        indices = result.misclassified
        heading = _("The {count} most confident mistakes (click a confusion-matrix cell to filter)").format(
            count=min(len(indices), 40))
    st.markdown(_("**{heading}** · title: label / prediction").format(heading=heading))
    shown = indices[:40]
    if len(shown):
        st.plotly_chart(
            plots.sample_grid(x_test[shown], [f"{y_test[i]} / {result.predictions[i]}" for i in shown],
                              columns=10, title_colours=["#d62728"] * len(shown)),
            width="stretch", config={"displayModeBar": False},
        )
    else:
        st.caption(_("No mistakes there."))


st.subheader(_("Evaluate one model"))
names = [entry.name for entry in working]
if not names:
    st.warning(_("No working model to evaluate."))
else:
    active = st.session_state.get(ui.ACTIVE_MODEL_KEY)
    name = st.selectbox(_("Model"), names, index=names.index(active) if active in names else 0)
    try:
        result = ui.evaluation(name)
    except (StoreError, DatasetError) as error:  # a damaged model file, or no test images to evaluate on
        st.error(render(error))
    else:
        (_train, _labels), (x_test, y_test) = ui.mnist()
        summary = st.columns(3)
        summary[0].metric(_("Test accuracy"), format_percent(result.accuracy))
        summary[1].metric(_("Mistakes"), _("{count} of {total}").format(count=format_number(result.error_count),
                                                                         total=format_number(len(y_test))))
        worst = int(np.argmin(result.per_class_accuracy))
        # a plain grey note, not an up-arrow pill that reads like an improvement
        summary[2].metric(_("Hardest digit"), worst, _("{share} right").format(
            share=format_percent(result.per_class_accuracy[worst], 1)), delta_color="off", delta_arrow="off")

        mistakes_explorer(name, result)

        show_filters(name)

        st.subheader(_("Export"))  # the model is the one picked above; a visitor's name is never markdown
        st.caption(_(
            "Take the model out: as the .keras file, or as TensorFlow Lite (.tflite) for phones, boards and the web, "
            "compressed by quantization. Each format is measured on the 10,000 test images through its own runtime."
        ))
        report = cached_report(name, ui.store_dir())
        if report is None and st.button(
            _("Convert and measure"), icon=":material/memory:",
            help=_("Converts to four .tflite formats and measures each, in a separate process: about half a minute "
                   "to a few minutes; done once per model, then kept."),
        ):
            with st.spinner(_("Converting to TensorFlow Lite and measuring on the 10,000 test images...")):
                try:
                    ensure_export_report(name, ui.store_dir())
                except StoreError as error:
                    st.error(render(error))
                else:
                    st.rerun()  # draw the page with the table and without the button
        if report is not None:
            st.dataframe(
                [
                    {
                        "format": render(row.shown_title),
                        "file": row.file_name,
                        "size (KB)": row.size_bytes / 1000,
                        "test accuracy": row.accuracy * 100,
                        "vs Keras (points)": (row.accuracy - report.keras_accuracy) * 100,
                        "same answer as Keras": row.agreement * 100,
                        "latency (ms)": row.latency_ms,
                    }
                    for row in report.rows
                ],
                hide_index=True, width="stretch",
                column_config={
                    "format": st.column_config.TextColumn(_("format")),
                    "file": st.column_config.TextColumn(_("file")),
                    "size (KB)": st.column_config.NumberColumn(_("size (KB)"), format="%.0f"),
                    "test accuracy": st.column_config.NumberColumn(_("test accuracy"), format="%.2f%%"),
                    "vs Keras (points)": st.column_config.NumberColumn(_("vs Keras (points)"), format="%+.2f"),
                    "same answer as Keras": st.column_config.NumberColumn(_("same answer as Keras"), format="%.2f%%"),
                    "latency (ms)": st.column_config.NumberColumn(
                        _("latency (ms)"), format="%.3f",
                        help=_("median of single-image calls, one thread (Keras: its compiled graph)")),
                },
            )
            st.caption(_("Measured {when} UTC on the server, load average {load}. Full-integer int8 takes and gives "
                         "int8 tensors (scale and zero point in the file).").format(
                when=report.measured_at.replace("T", " ").rstrip("Z"), load=report.load_average))
        st.markdown(_("**Download**"))
        downloads = st.columns(5)
        # Callables: a file is read when somebody clicks, not on every run of the page.
        downloads[0].download_button(
            ".keras", data=model_path(name, ui.store_dir()).read_bytes, file_name=f"{name}.keras",
            mime="application/octet-stream", icon=":material/download:", width="stretch",
            help=_("Models trained here live only as long as the server: download the ones you want to keep."),
        )
        for column, row in zip(downloads[1:], report.rows[1:] if report is not None else []):
            column.download_button(
                render(row.short_title), data=export_path(name, row.format, ui.store_dir()).read_bytes,
                file_name=row.file_name, mime="application/octet-stream", icon=":material/download:",
                width="stretch", help=_("{file}: {title}, {size} KB").format(
                    file=row.file_name, title=render(row.shown_title), size=format_number(row.size_bytes / 1000)),
            )

st.subheader(_("Upload a model"))
st.caption(_(
    "A `.keras` file downloaded here (or trained in a notebook) that maps a 28 x 28 image (or 784 values) with "
    "pixels in [0, 1] to 10 digits: it is checked, evaluated on the 10,000 test images by a worker and stored as "
    "yours. This is how you keep a model across the server's restarts: download it, upload it again later."
))
upload = st.file_uploader(_("A .keras model file"), type=["keras"], key="model_upload",
                          max_upload_size=ui.MAX_MODEL_UPLOAD_MB)
if upload is not None:
    upload_name = st.text_input(_("Store it as"), value=ui.model_name_from_file(upload.name), max_chars=64,
                                key="model_upload_name")
    if st.button(_("Upload and evaluate"), icon=":material/upload:", key="model_upload_go"):
        ui.upload_model(upload.getvalue(), upload_name)
ui.upload_status()

st.subheader(_("Delete a model"))
# Yours (or, for an admin, anybody's); shipped models never. A model without a recorded owner is an admin's.
deletable = [entry.name for entry in entries
             if not entry.shipped and who.may_manage(entry.info.owner_id if entry.info else "")]
if not deletable:
    st.caption(_("No model of yours to delete here: shipped models are protected, and the others belong to whoever "
                 "trained them.") + ("" if who.admin else " " + _("An admin (a teacher) can delete any of them.")))
else:
    target = st.selectbox(_("Model to delete"), deletable,
                          format_func=lambda n, broken_mark=_(" (broken)"): n + (
                              broken_mark if any(e.name == n for e in broken) else ""))
    confirm = st.checkbox(_("Yes, delete {name} for good").format(name=target))
    if st.button(_("Delete"), icon=":material/delete_forever:", disabled=not confirm):
        try:
            delete_model(target, ui.store_dir(), by=who)
        except StoreError as error:
            st.error(render(error))
        else:
            ui.deleted(target)
            st.rerun()

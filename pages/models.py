"""Models: every saved model, their learning curves side by side, and a close look at one of them."""

import numpy as np
import streamlit as st

import ui
from mnist_core import plots
from mnist_core.conversion import ensure_export_report
from mnist_core.data import DatasetError
from mnist_core.export import cached_report, export_path
from mnist_core.filters import FiltersError, first_layer_filters
from mnist_core.references import reference_accuracies
from mnist_core.store import StoreError, delete_model, model_path
from mnist_core.training import precision_of

ui.page_header("Models", "Every model in the store: shipped ones come with the app, the others were trained here.")

who = ui.visitor()
entries = ui.models()
if not entries:
    st.info("The store is empty: train a model on the Train page.")
    st.stop()

st.dataframe(
    [
        {
            "name": entry.name,
            "status": "broken: " + entry.error if entry.broken else (
                "shipped" if entry.shipped else "uploaded" if entry.info.uploaded else "trained here"),
            "by": ("you" if who.owns(entry.info.owner_id) else entry.info.owner) if entry.info else "",
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
    column_config={"test accuracy": st.column_config.NumberColumn(format="%.2f%%"),
                   "parameters": st.column_config.NumberColumn(format="localized")},  # 121,930, not 121930
)

working = [entry for entry in entries if not entry.broken]
broken = [entry for entry in entries if entry.broken]

st.subheader("Compare learning curves")
chosen = st.multiselect("Models to compare", [entry.name for entry in working],
                        default=[entry.name for entry in working][:3])
histories = {entry.name: entry.info.history for entry in working if entry.name in chosen and entry.info.history}
if histories:
    curves = st.columns(2)
    curves[0].plotly_chart(plots.compare_curves(histories, "val_accuracy", reference_accuracies(entries)),
                           width="stretch")
    curves[1].plotly_chart(plots.compare_curves(histories, "val_loss"), width="stretch")
else:
    st.caption("Pick models with a training history to compare them.")

def show_filters(name: str) -> None:
    """The first convolution layer's kernels of the model picked above, read from its file (no TensorFlow)."""
    st.subheader("First-layer filters")
    try:
        filters = first_layer_filters(name, ui.store_dir())
    except (FiltersError, StoreError) as error:
        st.warning(f"The filters of {ui.literal(name)} could not be read: {error}")
        return
    if filters is None:
        st.caption(f"{ui.literal(name)} has no convolution layer: an MLP's first layer weighs all 784 pixels at once.")
        return
    st.caption("What the first convolution layer looks for: each small square is one filter's weights, red where "
               "ink adds to its response, blue where ink subtracts (each scaled to its own largest weight; hover for "
               "the numbers). Edges and strokes of one direction are typical.")
    st.plotly_chart(plots.filter_mosaic(filters.kernels, filters.layer_name), width="stretch",
                    config={"displayModeBar": False}, key=f"filters-{name}")


@st.fragment
def mistakes_explorer(name: str, result) -> None:
    """The confusion matrix and the mistakes it filters: a click on a cell reruns this alone, not the whole page."""
    (_, _), (x_test, y_test) = ui.mnist()
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
        heading = f"{len(indices)} test image(s) of a {cell[0]} taken for a {cell[1]}"
    else:
        if cell is not None:
            st.caption("That cell is the diagonal (correct answers); showing all mistakes instead.")
        indices = result.misclassified
        heading = f"The {min(len(indices), 40)} most confident mistakes (click a confusion-matrix cell to filter)"
    st.markdown(f"**{heading}** · title: label / prediction")
    shown = indices[:40]
    if len(shown):
        st.plotly_chart(
            plots.sample_grid(x_test[shown], [f"{y_test[i]} / {result.predictions[i]}" for i in shown],
                              columns=10, title_colours=["#d62728"] * len(shown)),
            width="stretch", config={"displayModeBar": False},
        )
    else:
        st.caption("No mistakes there.")


st.subheader("Evaluate one model")
names = [entry.name for entry in working]
if not names:
    st.warning("No working model to evaluate.")
else:
    active = st.session_state.get(ui.ACTIVE_MODEL_KEY)
    name = st.selectbox("Model", names, index=names.index(active) if active in names else 0)
    try:
        result = ui.evaluation(name)
    except (StoreError, DatasetError) as error:  # a damaged model file, or no test images to evaluate on
        st.error(str(error))
    else:
        (_, _), (x_test, y_test) = ui.mnist()
        summary = st.columns(3)
        summary[0].metric("Test accuracy", f"{result.accuracy:.2%}")
        summary[1].metric("Mistakes", f"{result.error_count:,} of {len(y_test):,}")
        worst = int(np.argmin(result.per_class_accuracy))
        # a plain grey note, not an up-arrow pill that reads like an improvement
        summary[2].metric("Hardest digit", worst, f"{result.per_class_accuracy[worst]:.1%} right", delta_color="off",
                          delta_arrow="off")

        mistakes_explorer(name, result)

        show_filters(name)

        st.subheader("Export")  # the model is the one picked above; a visitor's name is never markdown
        st.caption(
            "Take the model out: as the .keras file, or as TensorFlow Lite (.tflite) for phones, boards and the web, "
            "compressed by quantization. Each format is measured on the 10,000 test images through its own runtime."
        )
        report = cached_report(name, ui.store_dir())
        if report is None and st.button(
            "Convert and measure", icon=":material/memory:",
            help="Converts to four .tflite formats and measures each, in a separate process: about half a minute "
                 "to a few minutes; done once per model, then kept.",
        ):
            with st.spinner("Converting to TensorFlow Lite and measuring on the 10,000 test images..."):
                try:
                    ensure_export_report(name, ui.store_dir())
                except StoreError as error:
                    st.error(str(error))
                else:
                    st.rerun()  # draw the page with the table and without the button
        if report is not None:
            st.dataframe(
                [
                    {
                        "format": row.title,
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
                    "size (KB)": st.column_config.NumberColumn(format="%.0f"),
                    "test accuracy": st.column_config.NumberColumn(format="%.2f%%"),
                    "vs Keras (points)": st.column_config.NumberColumn(format="%+.2f"),
                    "same answer as Keras": st.column_config.NumberColumn(format="%.2f%%"),
                    "latency (ms)": st.column_config.NumberColumn(
                        format="%.3f", help="median of single-image calls, one thread (Keras: its compiled graph)"),
                },
            )
            st.caption(f"Measured {report.measured_at.replace('T', ' ').rstrip('Z')} UTC on the server, load average "
                       f"{report.load_average}. Full-integer int8 takes and gives int8 tensors (scale and zero point "
                       "in the file).")
        st.markdown("**Download**")
        downloads = st.columns(5)
        # Callables: a file is read when somebody clicks, not on every run of the page.
        downloads[0].download_button(
            ".keras", data=model_path(name, ui.store_dir()).read_bytes, file_name=f"{name}.keras",
            mime="application/octet-stream", icon=":material/download:", width="stretch",
            help="Models trained here live only as long as the server: download the ones you want to keep.",
        )
        for column, row in zip(downloads[1:], report.rows[1:] if report is not None else []):
            column.download_button(
                row.short_title, data=export_path(name, row.format, ui.store_dir()).read_bytes,
                file_name=row.file_name, mime="application/octet-stream", icon=":material/download:",
                width="stretch", help=f"{row.file_name}: {row.title}, {row.size_bytes / 1000:,.0f} KB",
            )

st.subheader("Upload a model")
st.caption(
    "A `.keras` file downloaded here (or trained in a notebook) that maps a 28 x 28 image (or 784 values) with "
    "pixels in [0, 1] to 10 digits: it is checked, evaluated on the 10,000 test images by a worker and stored as "
    "yours. This is how you keep a model across the server's restarts: download it, upload it again later."
)
upload = st.file_uploader("A .keras model file", type=["keras"], key="model_upload",
                          max_upload_size=ui.MAX_MODEL_UPLOAD_MB)
if upload is not None:
    upload_name = st.text_input("Store it as", value=ui.model_name_from_file(upload.name), max_chars=64,
                                key="model_upload_name")
    if st.button("Upload and evaluate", icon=":material/upload:", key="model_upload_go"):
        ui.upload_model(upload.getvalue(), upload_name)
ui.upload_status()

st.subheader("Delete a model")
# Yours (or, for an admin, anybody's); shipped models never. A model without a recorded owner is an admin's.
deletable = [entry.name for entry in entries
             if not entry.shipped and who.may_manage(entry.info.owner_id if entry.info else "")]
if not deletable:
    st.caption("No model of yours to delete here: shipped models are protected, and the others belong to whoever "
               "trained them." + ("" if who.admin else " An admin (a teacher) can delete any of them."))
else:
    target = st.selectbox("Model to delete", deletable,
                          format_func=lambda n: n + (" (broken)" if any(e.name == n for e in broken) else ""))
    confirm = st.checkbox(f"Yes, delete {target} for good")
    if st.button("Delete", icon=":material/delete_forever:", disabled=not confirm):
        try:
            delete_model(target, ui.store_dir(), by=who)
        except StoreError as error:
            st.error(str(error))
        else:
            ui.deleted(target)
            st.rerun()

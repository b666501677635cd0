"""Models: every saved model, their learning curves side by side, and a close look at one of them."""

import numpy as np
import streamlit as st

import ui
from mnist_core import plots
from mnist_core.data import DatasetError
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
            "status": "broken: " + entry.error if entry.broken else ("shipped" if entry.shipped else "trained here"),
            "by": ("you" if who.owns(entry.info.owner_id) else entry.info.owner) if entry.info else "",
            "architecture": entry.info.architecture if entry.info else "",
            "parameters": entry.info.parameters if entry.info else None,
            "test accuracy": entry.info.test_accuracy * 100 if entry.info and entry.info.test_accuracy else None,
            "epochs": len(entry.info.history) if entry.info else None,
            "precision": str(precision_of(entry.info.config)) if entry.info else "",
            "training time (s)": entry.info.train_seconds if entry.info else None,
            "created (UTC)": entry.info.created[:16].replace("T", " ") if entry.info else "",
        }
        for entry in entries
    ],
    hide_index=True,
    width="stretch",
    column_config={"test accuracy": st.column_config.NumberColumn(format="%.2f%%")},
)

working = [entry for entry in entries if not entry.broken]
broken = [entry for entry in entries if entry.broken]

st.subheader("Compare learning curves")
chosen = st.multiselect("Models to compare", [entry.name for entry in working],
                        default=[entry.name for entry in working][:3])
histories = {entry.name: entry.info.history for entry in working if entry.name in chosen and entry.info.history}
if histories:
    curves = st.columns(2)
    curves[0].plotly_chart(plots.compare_curves(histories, "val_accuracy"), width="stretch")
    curves[1].plotly_chart(plots.compare_curves(histories, "val_loss"), width="stretch")
else:
    st.caption("Pick models with a training history to compare them.")

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
        summary[2].metric("Hardest digit", worst, f"{result.per_class_accuracy[worst]:.1%}", delta_color="off")

        matrix, per_class = st.columns([3, 2])
        event = matrix.plotly_chart(
            plots.confusion_matrix(result.confusion), width="stretch", on_select="rerun",
            selection_mode="points", key=f"confusion-{name}",
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

        actions = st.columns(2)
        actions[0].download_button(
            "Download .keras", data=model_path(name, ui.store_dir()).read_bytes(), file_name=f"{name}.keras",
            mime="application/octet-stream", icon=":material/download:",
            help="Models trained here live only as long as the server: download the ones you want to keep.",
        )

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

"""Home: what MNIST Lab is, the dataset in figures, the active model, and the way to each page."""

import streamlit as st

import ui
from mnist_core.constants import IMAGE_SIZE, NUM_CLASSES

ui.page_header("MNIST Lab")
st.markdown(
    "Explore the MNIST handwritten digits, **train a neural network live** and watch it learn, "
    "then **draw a digit** and see what the network thinks, all in one place. "
    "Shipped models make every page work before you train anything."
)

train_count, test_count = ui.mnist_sizes()
columns = st.columns(4)
columns[0].metric("Training images", f"{train_count:,}")
columns[1].metric("Test images", f"{test_count:,}")
columns[2].metric("Image size", f"{IMAGE_SIZE} x {IMAGE_SIZE}", help="grey levels 0 (background) to 255 (ink)")
columns[3].metric("Classes", NUM_CLASSES, help="the digits 0 to 9")

st.subheader("Where to go")
links = st.columns(5)
with links[0].container(border=True):
    st.page_link("pages/dataset.py", label="Dataset", icon=":material/grid_view:")
    st.caption("Browse the 70,000 digits, filter by class, see class counts, mean digits and raw pixel values.")
with links[1].container(border=True):
    st.page_link("pages/train.py", label="Train", icon=":material/model_training:")
    st.caption("Pick an architecture and settings, start training and watch loss and accuracy move, batch by batch.")
with links[2].container(border=True):
    st.page_link("pages/draw.py", label="Draw", icon=":material/draw:")
    st.caption("Draw a digit or upload a photo; see the prediction, the probabilities and what the network sees.")
with links[3].container(border=True):
    st.page_link("pages/models.py", label="Models", icon=":material/inventory_2:")
    st.caption("Compare saved models, inspect their confusion matrix and mistakes, download or delete them.")
with links[4].container(border=True):
    st.page_link("pages/my_digits.py", label="My digits", icon=":material/collections_bookmark:")
    st.caption("Your saved drawings: how every model reads your hand, export them, and teach a model your hand.")

st.subheader("Active model")
entries = {entry.name: entry for entry in ui.working_models()}
active = st.session_state.get(ui.ACTIVE_MODEL_KEY)
if active in entries:
    info = entries[active].info
    with st.container(border=True):
        card = st.columns(4)
        card[0].metric("Model", info.name, help="shipped with the app" if info.shipped else "trained in the app")
        card[1].metric("Architecture", info.architecture)
        card[2].metric("Test accuracy", f"{info.test_accuracy:.2%}" if info.test_accuracy is not None else "n/a")
        card[3].metric("Parameters", f"{info.parameters:,}")
        st.caption(
            f"Trained for {len(info.history)} epoch(s) in {ui.format_duration(info.train_seconds)} · "
            f"created {info.created[:16].replace('T', ' ')} UTC"
            + (f" · `{info.command}`" if info.command else "")
        )
else:
    st.info("No model is available yet: train one on the Train page.")

st.subheader("This server")
server = ui.server_summary()
st.caption(server)

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

CARDS = [
    ("pages/dataset.py", "Dataset", ":material/grid_view:",
     "Browse the 70,000 digits, filter by class, see class counts, mean digits and raw pixel values."),
    ("pages/train.py", "Train", ":material/model_training:",
     "Pick an architecture and settings, start training and watch loss and accuracy move, batch by batch."),
    ("pages/draw.py", "Draw", ":material/draw:",
     "Draw a digit or upload a photo; see the prediction, the probabilities and what the network sees."),
    ("pages/models.py", "Models", ":material/inventory_2:",
     "Compare saved models, inspect their confusion matrix and mistakes, download or delete them."),
    ("pages/my_digits.py", "My digits", ":material/collections_bookmark:",
     "Your saved drawings: how every model reads your hand, export them, and teach a model your hand."),
]

# Where to go comes first: on a phone the columns stack, and the figures would push it below the fold.
st.subheader("Where to go")
# The whole card is the link, not only its title: the link's ::after covers the card (positioned by its key).
st.html("""<style>
[class*="st-key-home-card-"] { position: relative; }
[class*="st-key-home-card-"] * { position: static; }
[class*="st-key-home-card-"] a[data-testid="stPageLink-NavLink"]::after {
  content: ""; position: absolute; inset: 0; z-index: 1;
}
[class*="st-key-home-card-"]:hover { background: rgba(151, 166, 195, 0.12); }
</style>""")
links = st.columns(len(CARDS))
for column, (page, title, icon, text) in zip(links, CARDS):
    with column.container(border=True, key=f"home-card-{title.lower().replace(' ', '-')}"):
        st.page_link(page, label=title, icon=icon)
        st.caption(text)

st.subheader("MNIST in figures")
train_count, test_count = ui.mnist_sizes()
columns = st.columns(4)
columns[0].metric("Training images", f"{train_count:,}")
columns[1].metric("Test images", f"{test_count:,}")
columns[2].metric("Image size", f"{IMAGE_SIZE} x {IMAGE_SIZE}", help="grey levels 0 (background) to 255 (ink)")
columns[3].metric("Classes", NUM_CLASSES, help="the digits 0 to 9")

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

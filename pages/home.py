"""Home: what MNIST Lab is, the dataset in figures, the active model, and the way to each page."""

import streamlit as st

import ui
from mnist_core.constants import IMAGE_SIZE, NUM_CLASSES
from mnist_core.i18n import N_, format_duration, format_number, format_percent, gettext as _, ngettext

ui.page_header("MNIST Lab")
st.markdown(_(
    "Explore the MNIST handwritten digits, **train a neural network live** and watch it learn, "
    "then **draw a digit** and see what the network thinks, all in one place. "
    "Shipped models make every page work before you train anything."
))

# (page, key, title, icon, text): titles and texts are translated where they are shown; the key stays English.
CARDS = [
    ("pages/dataset.py", "dataset", N_("Dataset"), ":material/grid_view:",
     N_("Browse the 70,000 digits, filter by class, see class counts, mean digits and raw pixel values.")),
    ("pages/train.py", "train", N_("Train"), ":material/model_training:",
     N_("Pick an architecture and settings, start training and watch loss and accuracy move, batch by batch.")),
    ("pages/draw.py", "draw", N_("Draw"), ":material/draw:",
     N_("Draw a digit or upload a photo; see the prediction, the probabilities and what the network sees.")),
    ("pages/models.py", "models", N_("Models"), ":material/inventory_2:",
     N_("Compare saved models, inspect their confusion matrix and mistakes, download or delete them.")),
    ("pages/my_digits.py", "my-digits", N_("My digits"), ":material/collections_bookmark:",
     N_("Your saved drawings: how every model reads your hand, export them, and teach a model your hand.")),
]

# Where to go comes first: on a phone the columns stack, and the figures would push it below the fold.
st.subheader(_("Where to go"))
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
for column, (page, key, title, icon, text) in zip(links, CARDS):
    with column.container(border=True, key=f"home-card-{key}"):
        st.page_link(page, label=_(title), icon=icon)
        st.caption(_(text))

st.subheader(_("MNIST in figures"))
train_count, test_count = ui.mnist_sizes()
columns = st.columns(4)
columns[0].metric(_("Training images"), format_number(train_count))
columns[1].metric(_("Test images"), format_number(test_count))
columns[2].metric(_("Image size"), f"{IMAGE_SIZE} x {IMAGE_SIZE}", help=_("grey levels 0 (background) to 255 (ink)"))
columns[3].metric(_("Classes"), NUM_CLASSES, help=_("the digits 0 to 9"))

st.subheader(_("Active model"))
entries = {entry.name: entry for entry in ui.working_models()}
active = st.session_state.get(ui.ACTIVE_MODEL_KEY)
if active in entries:
    info = entries[active].info
    with st.container(border=True):
        card = st.columns(4)
        card[0].metric(_("Model"), info.name, help=_("shipped with the app") if info.shipped else _("trained in the app"))
        card[1].metric(_("Architecture"), info.architecture)
        card[2].metric(_("Test accuracy"), format_percent(info.test_accuracy))
        card[3].metric(_("Parameters"), format_number(info.parameters))
        st.caption(
            ngettext("Trained for {epochs} epoch in {duration} · created {created} UTC",
                     "Trained for {epochs} epochs in {duration} · created {created} UTC", len(info.history)).format(
                epochs=len(info.history), duration=format_duration(info.train_seconds),
                created=info.created[:16].replace("T", " "))
            + (f" · `{info.command}`" if info.command else "")
        )
else:
    st.info(_("No model is available yet: train one on the Train page."))

st.subheader(_("This server"))
server = ui.server_summary()
st.caption(server)

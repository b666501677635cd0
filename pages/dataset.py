"""Dataset: browse the MNIST digits, their class counts, mean images and raw pixel values (no TensorFlow here)."""

import zlib

import numpy as np
import streamlit as st

import ui
from mnist_core import data, plots
from mnist_core.i18n import format_number, gettext as _, pgettext, render
from widgets.digit_grid import digit_grid, new_pick

ui.page_header(
    _("Dataset"),
    _("MNIST: 60,000 training and 10,000 test images of handwritten digits, 28 x 28 grey levels, "
      "white ink (255) on black (0), as the network receives them after scaling to [0, 1].")
)

(x_train, y_train), (x_test, y_test) = ui.mnist()


@st.cache_resource
def mean_images(split: str):
    images, labels = (x_train, y_train) if split == "train" else (x_test, y_test)
    return data.mean_images(images, labels)


controls = st.columns([1, 2, 1, 1])
SPLIT_NAMES = {"train": pgettext("split", "Train"), "test": pgettext("split", "Test")}
ORDER_NAMES = {"In order": _("In order"), "Random": _("Random")}
split = controls[0].radio(_("Split"), ["train", "test"], horizontal=True, format_func=SPLIT_NAMES.get)
digits = controls[1].multiselect(_("Show digits"), list(range(10)), placeholder=_("all digits"),
                                 help=_("Pick one or more digits to see only those."))
per_page = controls[2].select_slider(_("Images shown"), options=[25, 50, 100], value=50)
order = controls[3].radio(_("Order"), ["In order", "Random"], horizontal=True, format_func=ORDER_NAMES.get)

images, labels = (x_train, y_train) if split == "train" else (x_test, y_test)
matching = data.indices_of(labels, digits)

if order == "In order":
    pages = data.page_count(len(matching), per_page)
    # No max_value: past it the box would only turn red; here the page says what it did instead.
    page = st.columns(4)[0].number_input(_("Page (of {pages})").format(pages=format_number(pages)), min_value=1,
                                         value=1, step=1)
    if page > pages:
        st.info(_("There are {pages} pages of {per_page} images here: showing the last one.").format(
            pages=format_number(pages), per_page=per_page))
        page = pages
    shown = data.page_of(matching, page - 1, per_page)
else:
    if st.button(_("Draw again"), icon=":material/casino:"):
        st.session_state.dataset_draw = st.session_state.get("dataset_draw", 0) + 1
    shown = data.random_sample(matching, per_page, seed=st.session_state.get("dataset_draw", 0))

which = _("all digits") if not digits else _("digit {digits}").format(digits=", ".join(map(str, sorted(digits))))
if split == "train":
    found = _("**{count}** train images of {which}; showing {shown} (index: label above each). Click an image to "
              "look at it closely below.")
else:
    found = _("**{count}** test images of {which}; showing {shown} (index: label above each). Click an image to "
              "look at it closely below.")
st.markdown(found.format(count=format_number(len(matching)), which=which, shown=len(shown)))
grid_key = f"dataset_grid-{split}-{zlib.crc32(np.asarray(shown).tobytes())}"  # new images, no old pick
try:
    position = new_pick(grid_key, len(shown))
except ValueError as error:  # a tampered browser: say so, keep the page working
    st.error(render(error))
    position = None

# The image looked at closely: the first one shown, until a tile is picked or an index typed.
if position is not None:
    st.session_state.dataset_index = int(shown[position])
elif st.session_state.get("dataset_first_shown") != (split, int(shown[0]) if len(shown) else 0):
    st.session_state.dataset_index = int(shown[0]) if len(shown) else 0
st.session_state.dataset_first_shown = (split, int(shown[0]) if len(shown) else 0)
st.session_state.dataset_index = min(int(st.session_state.get("dataset_index", 0)), len(labels) - 1)



def image_name(index: int) -> str:
    return (_("train image #{index}") if split == "train" else _("test image #{index}")).format(index=index)


looked_at = np.flatnonzero(np.asarray(shown) == st.session_state.dataset_index)
digit_grid(images[shown], [f"#{index}: {labels[index]}" for index in shown],
           [_("{image}, label {label}").format(image=image_name(index), label=labels[index]) for index in shown],
           key=grid_key, highlighted=int(looked_at[0]) if looked_at.size else None,
           label=_("The digits shown: pick one to look at it closely below"))

st.subheader(_("One digit, pixel by pixel"))
look = st.columns([1, 3])
index = look[0].number_input(_("Image index (0 to {last})").format(last=format_number(len(labels) - 1)),
                             min_value=0, max_value=len(labels) - 1, step=1, key="dataset_index")
look[0].metric(_("Label"), int(labels[index]))
look[0].image(plots.pixelated(images[index]), caption=image_name(index))
look[0].caption(_("The tutorials print this array: every pixel is a grey level from 0 (black) to 255 (white)."))
look[1].plotly_chart(plots.pixel_heatmap(images[index], title=_("{image}, label {label}").format(
                     image=image_name(index), label=labels[index])), width="stretch")

st.subheader(_("How many of each digit"))
st.plotly_chart(plots.class_histogram(data.class_counts(y_train), data.class_counts(y_test)), width="stretch")

st.subheader(_("The average digit"))
st.caption(_("The mean of every train image of each class: the blur shows how much handwriting varies.")
           if split == "train" else
           _("The mean of every test image of each class: the blur shows how much handwriting varies."))
st.plotly_chart(plots.mean_digits(mean_images(split)), width="stretch", config={"displayModeBar": False})

"""Draw: draw a digit (or upload a photo of one) and see what the active model thinks, step by step."""

import streamlit as st

import ui
from mnist_core import plots
from mnist_core.constants import CANVAS_SIZE
from mnist_core.preprocess import BlankImageError, decode_upload, preprocess_steps
from mnist_core.store import StoreError
from widgets.digit_canvas import digit_canvas

STEP_SIDE = 140  # pixels of each "What the network sees" thumbnail

ui.page_header(
    "Draw",
    "Draw one digit, large or small, anywhere on the canvas: it is cropped, fitted into 20 x 20 and centred "
    "in 28 x 28 as MNIST's digits were, and the active model (sidebar) says what it sees.",
)


def picture_from_the_visitor():
    """The picture to classify (an RGBA canvas or a decoded upload), or None with the reason shown."""
    source = st.segmented_control("Source", ["Draw", "Upload a photo"], default="Draw",
                                  label_visibility="collapsed", key="draw_source")
    if source == "Upload a photo":
        upload = st.file_uploader(
            "A photo or scan of one digit (PNG, JPEG, GIF, BMP, WebP)",
            type=["png", "jpg", "jpeg", "gif", "bmp", "webp"],
            help="Dark ink on light paper or light ink on dark: both work. Crop close to the digit for best results.",
        )
        if upload is None:
            return None
        try:
            picture = decode_upload(upload.getvalue())
        except ValueError as error:
            st.error(str(error))
            return None
        st.image(plots.fit_within(picture, CANVAS_SIZE), caption=upload.name)
        return picture
    stroke = st.slider("Stroke width", min_value=8, max_value=40, value=20, step=2, key="draw_stroke_width")
    try:
        return digit_canvas(stroke).picture
    except ValueError as error:  # a tampered browser: say so, keep the page working
        st.error(str(error))
        return None


def show_prediction(classifier, model_name: str, steps) -> None:
    probabilities = classifier.predict_proba(steps.centered)[0]
    digit = int(probabilities.argmax())
    confidence = float(probabilities[digit])
    runner_up = int(probabilities.argsort()[-2])
    st.markdown(f"### Prediction: {digit}")
    st.markdown(
        f"**{confidence:.1%}** sure, according to `{model_name}`"
        + (f"; next best {runner_up} ({probabilities[runner_up]:.1%})" if confidence < 0.9 else "")
    )
    if confidence < 0.6:
        st.caption("The network is unsure: a digit drawn larger, thicker or more upright usually helps.")
    st.plotly_chart(plots.probability_bars(probabilities), width="stretch", config={"displayModeBar": False})


def show_what_the_network_sees(classifier, model_name: str, steps) -> None:
    st.subheader("What the network sees")
    columns = st.columns(5)
    for column, (image, caption) in zip(
        columns,
        [
            (steps.ink, "1. the ink"),
            (steps.cropped, f"2. cropped to the ink: {steps.cropped.shape[1]} x {steps.cropped.shape[0]}"),
            (steps.pen, "3. pen made MNIST-like: {:.1f} -> {:.1f} px wide in 20 x 20".format(*steps.pen_width)),
            (steps.fitted, f"4. longer side fitted to 20: {steps.fitted.shape[1]} x {steps.fitted.shape[0]}"),
            (steps.centered, "5. centred by mass in 28 x 28: what the model sees"),
        ],
    ):
        column.image(plots.thumbnail(image, STEP_SIDE), caption=caption, width=STEP_SIDE)

    st.subheader("Feature maps")
    if not classifier.conv_layer_names:
        st.caption(f"`{model_name}` has no convolution layers (an MLP sees the 784 pixels directly).")
        return
    st.caption("What each convolution layer responds to in your drawing (first 16 filters, each scaled to its range).")
    for maps in classifier.feature_maps(steps.centered):
        st.image(plots.feature_map_image(maps.maps),
                 caption=f"{maps.layer_name}: {maps.maps.shape[-1]} filters, {maps.maps.shape[0]} x {maps.maps.shape[1]}")


@st.fragment
def draw_and_predict(classifier, model_name: str) -> None:
    """The canvas and everything it drives: a stroke reruns this fragment only, not the whole page."""
    left, right = st.columns([1, 1.4], gap="large")
    with left:
        picture = picture_from_the_visitor()
    with right:
        if picture is None:
            st.info("Draw a digit on the canvas (or upload a photo) to see the prediction.", icon=":material/draw:")
            return
        try:
            steps = preprocess_steps(picture)
        except BlankImageError as error:
            st.info(str(error), icon=":material/draw:")
            return
        except ValueError as error:
            st.error(str(error))
            return
        show_prediction(classifier, model_name, steps)
    show_what_the_network_sees(classifier, model_name, steps)


model_name = st.session_state.get(ui.ACTIVE_MODEL_KEY)
if model_name is None:
    st.warning("No model to ask: train one on the Train page first.")
    st.stop()
try:
    classifier = ui.classifier(model_name)
except StoreError as error:
    st.error(f"The model {model_name!r} could not be loaded: {error} Pick another one in the sidebar.")
    st.stop()

draw_and_predict(classifier, model_name)

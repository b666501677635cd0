"""Draw: draw a digit (or upload a photo of one) and see what the active model thinks, step by step."""

import streamlit as st
from streamlit_drawable_canvas import st_canvas

import ui
from mnist_core import plots
from mnist_core.constants import CANVAS_SIZE
from mnist_core.preprocess import BlankImageError, decode_upload, preprocess_steps
from mnist_core.store import StoreError

ui.page_header(
    "Draw",
    "Draw one digit, large or small, anywhere on the canvas: it is cropped, fitted into 20 x 20 and centred "
    "in 28 x 28 as MNIST's digits were, and the active model (sidebar) says what it sees."
)

model_name = st.session_state.get(ui.ACTIVE_MODEL_KEY)
if model_name is None:
    st.warning("No model to ask: train one on the Train page first.")
    st.stop()
try:
    classifier = ui.classifier(model_name)
except StoreError as error:
    st.error(f"The model {model_name!r} could not be loaded: {error} Pick another one in the sidebar.")
    st.stop()

source = st.segmented_control("Source", ["Draw", "Upload a photo"], default="Draw", label_visibility="collapsed")
left, right = st.columns([1, 1.4], gap="large")

picture = None
with left:
    if source == "Upload a photo":
        upload = st.file_uploader(
            "A photo or scan of one digit (PNG, JPEG, GIF, BMP, WebP)",
            type=["png", "jpg", "jpeg", "gif", "bmp", "webp"],
            help="Dark ink on light paper or light ink on dark: both work. Crop close to the digit for best results.",
        )
        if upload is not None:
            try:
                picture = decode_upload(upload.getvalue())
            except ValueError as error:
                st.error(str(error))
            else:
                st.image(plots.fit_within(picture, CANVAS_SIZE), caption=upload.name)
    else:
        stroke = st.slider("Stroke width", min_value=8, max_value=40, value=20, step=2)
        if st.button("Clear", icon=":material/delete:"):
            # A new key gives a fresh, empty canvas.
            st.session_state.canvas_generation = st.session_state.get("canvas_generation", 0) + 1
        result = st_canvas(
            stroke_width=stroke,
            stroke_color="#FFFFFF",
            background_color="#000000",
            height=CANVAS_SIZE,
            width=CANVAS_SIZE,
            drawing_mode="freedraw",
            return_image_data=True,
            key=f"canvas-{st.session_state.get('canvas_generation', 0)}",
        )
        picture = result.image_data

with right:
    if picture is None:
        st.info("Draw a digit on the canvas (or upload a photo) to see the prediction.", icon=":material/draw:")
        st.stop()
    try:
        steps = preprocess_steps(picture)
    except BlankImageError as error:
        st.info(str(error), icon=":material/draw:")
        st.stop()
    except ValueError as error:
        st.error(str(error))
        st.stop()

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
    # Small steps are enlarged pixel by pixel; large or extreme ones (a photo, a 1000 x 3 strip) are fitted in the
    # canvas' size, which st.image alone cannot do for a very wide strip.
    shown = plots.pixelated(image) if max(image.shape) <= 64 else plots.fit_within(image, CANVAS_SIZE)
    column.image(shown, caption=caption, clamp=True)

conv_layers = classifier.conv_layer_names
st.subheader("Feature maps")
if not conv_layers:
    st.caption(f"`{model_name}` has no convolution layers (an MLP sees the 784 pixels directly).")
else:
    st.caption("What each convolution layer responds to in your drawing (first 16 filters, each scaled to its range).")
    for maps in classifier.feature_maps(steps.centered):
        st.plotly_chart(
            plots.feature_maps(maps.maps, f"{maps.layer_name}: {maps.maps.shape[-1]} filters, "
                                          f"{maps.maps.shape[0]} x {maps.maps.shape[1]}"),
            width="stretch", config={"displayModeBar": False},
        )

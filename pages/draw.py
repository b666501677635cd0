"""Draw: draw a digit (or upload a photo of one) and see what the active model thinks, step by step."""

import time

import streamlit as st

import ui
from mnist_core import ink, plots
from mnist_core.comparison import agreement, answer_of, models_to_compare
from mnist_core.explainer import Failed, Pending
from mnist_core.filters import shown_layer_name
from mnist_core.constants import CANVAS_SIZE, CLASS_NAMES
from mnist_core.handwriting import Handwriting, HandwritingError, new_drawing, picture_png
from mnist_core.i18n import format_number, format_percent, gettext as _, ngettext, render
from mnist_core.preprocess import BlankImageError, decode_upload, preprocess_steps
from mnist_core.store import StoreError
from widgets.digit_canvas import digit_canvas, forget_drawing

STEP_SIDE = 140  # pixels of each "What the network sees" thumbnail
SALIENCY_SIDE = 224  # pixels of the saliency picture (8 screen pixels per input pixel)
EXPLAIN_STEP_SECONDS = 0.25  # the saliency caption's update interval while the explainer works
INTEGRATED_GRADIENTS, GRAD_CAM = "Integrated gradients", "Grad-CAM"
ITS_ANSWER = "its answer"

ui.page_header(
    _("Draw"),
    _("Draw one digit, large or small, anywhere on the canvas: it is cropped, fitted into 20 x 20 and centred "
      "in 28 x 28 as MNIST's digits were, and the active model (sidebar) says what it sees."),
)


def picture_from_the_visitor():
    """(the picture to classify (an RGBA canvas or a decoded upload), its PNG (the canvas' own; None for an upload),
    "canvas" or "upload"), or (None, None, source) with nothing to classify yet, or (None, None, "refused") when
    what the visitor sent was refused (the reason is shown)."""
    sources = {"Draw": _("Draw"), "Upload a photo": _("Upload a photo")}
    source = st.segmented_control(_("Source"), list(sources), default="Draw", format_func=sources.get,
                                  label_visibility="collapsed", key="draw_source")
    if source == "Upload a photo":
        upload = st.file_uploader(
            _("A photo or scan of one digit (PNG, JPEG, GIF, BMP, WebP)"),
            type=["png", "jpg", "jpeg", "gif", "bmp", "webp"],
            help=_("Dark ink on light paper or light ink on dark: both work. Crop close to the digit for best "
                   "results."),
        )
        if upload is None:
            return None, None, "upload"
        try:
            picture = decode_upload(upload.getvalue())
        except ValueError as error:
            st.error(_(str(error)))  # preprocess's messages are marked for the catalog, in English (cached for all)
            return None, None, "refused"
        st.image(plots.fit_within(picture, CANVAS_SIZE), caption=upload.name)
        return picture, None, "upload"
    stroke = st.slider(_("Stroke width"), min_value=8, max_value=40, value=20, step=2, key="draw_stroke_width")
    try:
        drawing = digit_canvas(stroke)
    except ValueError as error:  # a tampered browser: say so, keep the page working
        st.error(_(str(error)))
        return None, None, "refused"
    return drawing.picture, drawing.png, "canvas"


def show_prediction(classifier, model_name: str, steps) -> tuple[int, float]:
    """The prediction, how sure the model is and the probability bars; returns (digit, confidence)."""
    probabilities = classifier.predict_proba(steps.centered)[0]
    digit = int(probabilities.argmax())
    confidence = float(probabilities[digit])
    runner_up = int(probabilities.argsort()[-2])
    st.markdown(_("### Prediction: {digit}").format(digit=digit))
    if confidence < 0.9:
        sure = _("**{confidence}** sure, according to {model}; next best {runner_up} ({runner_up_confidence})")
    else:
        sure = _("**{confidence}** sure, according to {model}")
    st.markdown(sure.format(confidence=format_percent(confidence, 1), model=ui.literal(model_name),
                            runner_up=runner_up, runner_up_confidence=format_percent(probabilities[runner_up], 1)))
    if confidence < 0.6:
        st.caption(_("The network is unsure: a digit drawn larger, thicker or more upright usually helps."))
    st.plotly_chart(plots.probability_bars(probabilities), width="stretch", config={"displayModeBar": False})
    return digit, confidence


def show_ink_hints(steps, source: str) -> None:
    """Above the prediction: what makes this ink unlike one digit (a dot, too small, two digits...), if anything."""
    hints = ink.ink_hints(steps, canvas=source == "canvas")
    if hints:
        st.warning(" ".join(hint.message for hint in hints) + "\n\n" + _(ink.CONFIDENCE_NOTE))


RIGHT, IT_IS_A = "Right", "It is a"


def save_drawing(picture, png, source: str, image, predicted: int, confidence: float, model_name: str) -> None:
    """Save button: the drawing, its true label and the model's answer into the visitor's collection."""
    verdict = st.session_state.get("save_verdict") or RIGHT
    label = predicted if verdict == RIGHT else st.session_state.get("save_true_label")
    try:
        # An upload (the decoded photo, at most STORED_PICTURE_SIDE on its longer side) or a canvas that sent its
        # grey pixels: kept as a PNG made here.
        if png is None:
            png = picture_png(picture)
        result = Handwriting().add(ui.visitor(), new_drawing(png, image, label, predicted, confidence, model_name,
                                                             source))
    except HandwritingError as error:
        st.session_state.save_problem = render(error)
        return
    collection, size = ui.literal(result.collection.name), result.collection.size
    if result.added:
        drawings = ngettext("{count} drawing", "{count} drawings", size).format(count=format_number(size))
        message = (_("Saved as an {label} in your collection {collection} ({drawings}).") if label == 8 else
                   _("Saved as a {label} in your collection {collection} ({drawings}).")).format(
            label=label, collection=collection, drawings=drawings)
    else:
        message = _("Already in your collection {collection}: its label is now {label}.").format(
            collection=collection, label=label)
    # Shown by the fragment's run (draw_and_predict), not here: an element from a fragment's callback is unsupported.
    st.session_state.save_toast = message
    st.session_state.save_verdict = RIGHT
    st.session_state.save_true_label = None
    if source == "canvas":
        forget_drawing()  # an empty canvas for the next digit


def save_controls(picture, png, source: str, steps, predicted: int, confidence: float, model_name: str) -> None:
    """Under the prediction: "Right" or "It is a [digit]", and Save into the visitor's collection (My digits)."""
    st.markdown(_("**Keep it** in your collection of digits (see **My digits**): is the prediction right?"))
    verdict_column, digit_column, save_column, _spare = st.columns([1.1, 0.7, 0.8, 0.6], vertical_alignment="bottom")
    verdicts = {RIGHT: _("Right"), IT_IS_A: _("It is a")}
    verdict = verdict_column.segmented_control(_("Is it right?"), [RIGHT, IT_IS_A], default=RIGHT, key="save_verdict",
                                               format_func=verdicts.get, label_visibility="collapsed")
    true_label = digit_column.selectbox(_("True digit"), range(len(CLASS_NAMES)), index=None, placeholder="0-9",
                                        key="save_true_label", disabled=verdict != IT_IS_A,
                                        label_visibility="collapsed")
    save_column.button(
        _("Save"), icon=":material/bookmark_add:", key="save_drawing",
        disabled=verdict is None or (verdict == IT_IS_A and true_label is None),
        on_click=save_drawing, args=(picture, png, source, steps.centered, predicted, confidence, model_name),
        help=_("Saves the drawing, the 28x28 image the model saw, its true label and this model's answer. "
               "Saving the same drawing again only changes its label."),
    )
    if problem := st.session_state.pop("save_problem", None):
        st.error(problem)


def what_made_it_say_that(model_name: str, image, predicted: int) -> None:
    """The saliency map of the image the model saw, for its answer or a digit the person picks. The explainer's
    worker computes it (TensorFlow, never in this process): this run waits for it, last on the page, showing how long.

    Why wait here instead of polling with a nested `run_every` fragment (as before): Streamlit 1.67 can leave a nested
    auto-rerunning fragment's page behind when the enclosing fragment reruns without it (streamlit#16708): after a
    Clear or a Save the old analysis stayed on screen under load, and a stroke could land on its table's canvas. The
    wait is in short steps, each updating the caption: a new stroke interrupts the run at the next step.
    """
    st.subheader(_("What made it say that"))
    result = explanation_when_ready(model_name, image)
    if isinstance(result, Pending):
        st.caption(_("The explainer is still busy: the map comes with your next stroke, or ask again."))
        st.button(_("Show the map"), icon=":material/refresh:", key="saliency_again")  # a click reruns the fragment
        return
    if isinstance(result, Failed):
        st.warning(_("No saliency map: {reason}").format(reason=render(result.message)))
        return
    with st.container():  # a block of its own, as the fragment it was: the digits' buttons wrap in it
        saliency_view(model_name, image, predicted, result)


def explanation_when_ready(model_name: str, image):
    """The explainer's answer for this image, waiting up to the limit explain_wait_s (Pending if it is still not
    there), with a caption that says what it waits for and for how long."""
    status = st.empty()
    started = time.monotonic()
    while True:
        result = ui.explainer().explanation(model_name, ui.store_dir(), image, wait=EXPLAIN_STEP_SECONDS)
        waited = time.monotonic() - started
        if not isinstance(result, Pending) or waited >= ui.limits().explain_wait_s:
            status.empty()
            return result
        doing = (_("Starting the explainer (it loads TensorFlow once, a few seconds)...") if result.starting
                 else _("Computing the saliency maps..."))
        status.caption(f"{doing} {format_number(waited, 1)} s")


def saliency_view(model_name: str, image, predicted: int, result) -> None:
    """The map of one method for one digit (all maps come in one answer: choosing another computes nothing)."""
    # Translated now, in the visitor's run: a format_func is also called outside it (AppTest), in no language.
    methods = {INTEGRATED_GRADIENTS: _("Integrated gradients"), GRAD_CAM: "Grad-CAM"}
    its_answer = _("its answer ({digit})").format(digit=predicted)
    method = st.segmented_control(_("Method"), [INTEGRATED_GRADIENTS, GRAD_CAM], default=INTEGRATED_GRADIENTS,
                                  format_func=methods.get, key=ui.translated_choice("saliency_method"))
    choice = st.segmented_control(
        _("Map for the digit"), [ITS_ANSWER, *range(len(CLASS_NAMES))], default=ITS_ANSWER,
        key=ui.translated_choice("saliency_digit"),
        format_func=lambda option: its_answer if option == ITS_ANSWER else str(option),
        help=_("What in this drawing argues for (or against) a digit: pick another one to ask what would make it, "
               "say, a 4."))
    digit = predicted if choice in (None, ITS_ANSWER) else int(choice)
    if method == GRAD_CAM and result.grad_cam is None:
        st.caption(_("{model} has no convolution layer for Grad-CAM: integrated gradients instead.").format(
            model=ui.literal(model_name)))
        method = INTEGRATED_GRADIENTS
    if method == GRAD_CAM:
        picture = plots.saliency_overlay(image, result.map_for("grad_cam", digit), signed=False, side=SALIENCY_SIDE)
        caption = _("Grad-CAM for {digit} from {layer}: bright where that layer found what speaks for a {digit}").format(
            digit=digit, layer=shown_layer_name(result.grad_cam_layer))
    else:
        picture = plots.saliency_overlay(image, result.map_for("integrated_gradients", digit), signed=True,
                                         side=SALIENCY_SIDE)
        caption = _("Integrated gradients for {digit}: red ink argues for a {digit}, blue ink against").format(
            digit=digit)
    st.image(picture, caption=caption, width=SALIENCY_SIDE)
    took = (_("{ms} ms").format(ms=format_number(result.seconds * 1000)) if result.seconds < 1 else
            _("{seconds} s (a first drawing)").format(seconds=format_number(result.seconds, 1)))
    st.caption(_("{probability} for {digit} · computed in {took} by the explainer process").format(
        probability=format_percent(result.probabilities[digit], 1), digit=digit, took=took))


def every_model_on_this_drawing(model_name: str, image) -> None:
    """Each stored working model's answer for this drawing (LiteRT, here: a fraction of a millisecond each)."""
    st.subheader(_("Every model on this drawing"))
    names, left_out = models_to_compare(ui.working_models(), ui.visitor(), active=model_name)
    rows, answers = [], []
    for name, classifier_or_error in ui.comparison_classifiers(names).items():
        if isinstance(classifier_or_error, Exception):
            rows.append({"model": name, "says": None, "sure": None,
                         "second guess": _("not loaded: {reason}").format(reason=render(classifier_or_error))})
            continue
        answer = answer_of(name, classifier_or_error.predict_proba(image)[0])
        answers.append(answer)
        rows.append({"model": name, "says": answer.digit, "sure": answer.confidence * 100,
                     "second guess": f"{answer.runner_up} ({format_percent(answer.runner_up_confidence, 1)})"})
    st.markdown(f"**{agreement(answers)}**")
    st.dataframe(rows, hide_index=True, width="stretch", key="every_model", column_config={
        "model": st.column_config.TextColumn(_("model")),
        "says": st.column_config.NumberColumn(_("says"), format="%d"),
        "sure": st.column_config.ProgressColumn(_("sure"), format="%.1f%%", min_value=0, max_value=100),
        "second guess": st.column_config.TextColumn(_("second guess")),
    })
    if left_out:
        st.caption(ngettext("{count} more model in the store not asked (the active one, the shipped ones, yours and "
                            "the newest come first).",
                            "{count} more models in the store not asked (the active one, the shipped ones, yours and "
                            "the newest come first).", left_out).format(count=left_out))


def show_what_the_network_sees(classifier, model_name: str, steps, predicted: int) -> None:
    st.subheader(_("What the network sees"))
    columns = st.columns(5)
    for column, (image, caption) in zip(
        columns,
        [
            (steps.ink, _("1. the ink")),
            (steps.cropped, _("2. cropped to the ink: {width} x {height}").format(
                width=steps.cropped.shape[1], height=steps.cropped.shape[0])),
            (steps.pen, _("3. pen made MNIST-like: {before} -> {after} px wide in 20 x 20").format(
                before=format_number(steps.pen_width[0], 1), after=format_number(steps.pen_width[1], 1))),
            (steps.fitted, _("4. longer side fitted to 20: {width} x {height}").format(
                width=steps.fitted.shape[1], height=steps.fitted.shape[0])),
            (steps.centered, _("5. centred by mass in 28 x 28: what the model sees")),
        ],
    ):
        column.image(plots.thumbnail(image, STEP_SIDE), caption=caption, width=STEP_SIDE)

    saliency, comparison = st.columns([1, 1.2], gap="large")
    with comparison:
        every_model_on_this_drawing(model_name, steps.centered)
    show_feature_maps(classifier, model_name, steps)
    with saliency:  # filled last: it may wait for the explainer, and everything else is on the page meanwhile
        what_made_it_say_that(model_name, steps.centered, predicted)


def show_feature_maps(classifier, model_name: str, steps) -> None:
    st.subheader(_("Feature maps"))
    if not classifier.conv_layer_names:
        st.caption(_("{model} has no convolution layers (an MLP sees the 784 pixels directly).").format(
            model=ui.literal(model_name)))
        return
    st.caption(_("What each convolution layer responds to in your drawing (first 16 filters, each scaled to its "
                 "range)."))
    for maps in classifier.feature_maps(steps.centered):
        st.image(plots.feature_map_image(maps.maps), caption=_("{layer}: {count} filters, {height} x {width}").format(
            layer=maps.layer_name, count=maps.maps.shape[-1], height=maps.maps.shape[0], width=maps.maps.shape[1]))


@st.fragment
def draw_and_predict(classifier, model_name: str) -> None:
    """The canvas and everything it drives: a stroke reruns this fragment only, not the whole page."""
    if saved := st.session_state.pop("save_toast", None):
        st.toast(saved, icon=":material/bookmark_added:")
    left, right = st.columns([1, 1.4], gap="large")
    with left:
        picture, png, source = picture_from_the_visitor()
    with right:
        if picture is None:
            st.info({"refused": _("No prediction: what was sent could not be read (the message says why)."),
                     "upload": _("Upload a photo of one digit to see the prediction.")}.get(
                source, _("Draw a digit on the canvas (or upload a photo) to see the prediction.")),
                icon=":material/draw:")
            return
        try:
            steps = preprocess_steps(picture)
        except BlankImageError as error:
            st.info(_(str(error)), icon=":material/draw:")
            return
        except ValueError as error:
            st.error(_(str(error)))
            return
        show_ink_hints(steps, source)
        predicted, confidence = show_prediction(classifier, model_name, steps)
        save_controls(picture, png, source, steps, predicted, confidence, model_name)
    show_what_the_network_sees(classifier, model_name, steps, predicted)


model_name = st.session_state.get(ui.ACTIVE_MODEL_KEY)
if model_name is None:
    st.warning(_("No model to ask: train one on the Train page first."))
    st.stop()
try:
    classifier = ui.classifier(model_name)
except StoreError as error:
    st.error(_("The model {name} could not be loaded: {error} Pick another one in the sidebar.").format(
        name=repr(model_name), error=render(error)))
    st.stop()

ui.explainer().warm_up()  # its worker loads TensorFlow while the person draws, not after the first stroke
draw_and_predict(classifier, model_name)

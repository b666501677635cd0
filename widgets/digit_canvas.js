// MNIST Lab's drawing canvas: white strokes on black, sent to Python the moment a stroke ends (deflated grey
// pixels, or a PNG where the browser cannot deflate: pictureOf).
// Streamlit components v2 (rendered in the page, no iframe): Python passes `data` = {strokeWidth, size, strokes,
// generation, seen}; this sends one state value, "drawing" = {grey: base64 of the deflated grey pixels, or png: a
// data: URL (the other null; both null when empty), strokes: the strokes, to draw the picture again when the canvas
// is shown again, generation: the `generation` it was drawn under, so Python can tell a drawing made before it asked
// for an empty canvas, seq: a number counting the sends}. The
// component state lives on the parent element, so reruns that pass new data keep the drawing.
//
// Python echoes the last `seq` it read as `data.seen`. Under load a send was seen to get no rerun at all (about one
// Clear in 50 with a few visitors: the prediction stayed); so a send that is not acknowledged within RESEND_MS is
// sent again, with a new seq, waiting twice as long each time (a slow server is not flooded), until it is.
// Keyed by the canvas' own root element, not by the parentElement: should Streamlit put the component's HTML in again
// under the same parent, the new canvas gets its own listeners instead of a state whose listeners are on a canvas no
// longer on the page (strokes on it would draw and send nothing).
const STATES = new WeakMap();
const RESEND_MS = 1500;

function setup(parentElement) {
  const root = parentElement.querySelector(".digit-canvas");
  const canvas = root.querySelector("canvas");
  const context = canvas.getContext("2d", { willReadFrequently: true }); // read back after every stroke
  const state = {
    root, canvas, context, strokes: [], current: null, generation: null, send: () => {}, seq: 0, seen: 0, timer: null,
  };
  // The canvas' HTML is on the page before this module has run: until now a stroke would draw nothing and send
  // nothing. Marked for the browser tests, which wait for it before they draw (a person is never that quick).
  root.dataset.ready = "true";

  const point = (event) => {
    const box = canvas.getBoundingClientRect();
    return [(event.clientX - box.left) * canvas.width / box.width, (event.clientY - box.top) * canvas.height / box.height];
  };
  canvas.addEventListener("pointerdown", (event) => {
    if (event.button !== 0 && event.pointerType === "mouse") return;
    state.current = { width: state.strokeWidth, points: [point(event)] };
    state.strokes.push(state.current);
    redraw(state);
    event.preventDefault();
    try { // the rest of the stroke comes here even when it leaves the canvas; without it, it still draws
      canvas.setPointerCapture(event.pointerId);
    } catch (error) {
      console.warn(`digit canvas: no pointer capture (${error}); the stroke ends where it leaves the canvas`);
    }
  });
  canvas.addEventListener("pointermove", (event) => {
    if (!state.current) return;
    const events = event.getCoalescedEvents ? event.getCoalescedEvents() : [event];
    for (const each of events.length ? events : [event]) state.current.points.push(point(each));
    redraw(state);
  });
  const finish = () => {
    if (!state.current) return;
    state.current = null;
    state.send(); // at once: no waiting for more strokes, so the answer follows the hand
  };
  canvas.addEventListener("pointerup", finish);
  canvas.addEventListener("pointercancel", finish);
  canvas.addEventListener("lostpointercapture", finish); // capture taken away mid-stroke: the stroke ends there
  root.querySelector("[data-action=undo]").addEventListener("click", () => {
    state.strokes.pop();
    redraw(state);
    state.send();
  });
  root.querySelector("[data-action=clear]").addEventListener("click", () => {
    state.strokes = [];
    redraw(state);
    state.send();
  });
  return state;
}

// The picture for Python: its grey levels (the red channel: strokes are white on black), deflated and base64'd,
// where the browser has CompressionStream; a PNG otherwise. The grey form holds the same pixels and is read by the
// server in a tenth of the PNG's time (preprocess.decode_canvas_grey).
async function pictureOf(canvas, context) {
  if (typeof CompressionStream === "undefined") return { png: canvas.toDataURL("image/png") };
  try {
    const rgba = context.getImageData(0, 0, canvas.width, canvas.height).data;
    const grey = new Uint8Array(rgba.length / 4);
    for (let i = 0; i < grey.length; i += 1) grey[i] = rgba[4 * i];
    const deflated = new Uint8Array(
      await new Response(new Blob([grey]).stream().pipeThrough(new CompressionStream("deflate"))).arrayBuffer());
    let text = "";
    for (let i = 0; i < deflated.length; i += 0x8000) {
      text += String.fromCharCode.apply(null, deflated.subarray(i, i + 0x8000));
    }
    return { grey: btoa(text) };
  } catch (error) {
    console.warn(`digit canvas: could not deflate the picture (${error}); sending a PNG`);
    return { png: canvas.toDataURL("image/png") };
  }
}

function redraw(state) {
  const { context, canvas } = state;
  context.fillStyle = "#000";
  context.fillRect(0, 0, canvas.width, canvas.height);
  context.strokeStyle = "#fff";
  context.fillStyle = "#fff";
  context.lineCap = "round";
  context.lineJoin = "round";
  for (const stroke of state.strokes) {
    const [first, ...rest] = stroke.points;
    if (!rest.length) { // a tap is a dot
      context.beginPath();
      context.arc(first[0], first[1], stroke.width / 2, 0, 2 * Math.PI);
      context.fill();
      continue;
    }
    context.lineWidth = stroke.width;
    context.beginPath();
    context.moveTo(first[0], first[1]);
    for (const [x, y] of rest) context.lineTo(x, y);
    context.stroke();
  }
  for (const button of state.root.querySelectorAll("button")) button.disabled = !state.strokes.length;
}

export default function (component) {
  const { data, parentElement, setStateValue } = component;
  let state = STATES.get(parentElement.querySelector(".digit-canvas"));
  if (!state) {
    state = setup(parentElement);
    STATES.set(state.root, state);
    console.debug(`digit canvas: mounted (generation ${data.generation}, ${(data.strokes || []).length} kept strokes)`);
  }
  state.strokeWidth = data.strokeWidth;
  // The buttons' words in the visitor's language: Python sends them translated (the HTML holds the English).
  const labels = data.labels || {};
  for (const button of parentElement.querySelectorAll("button[data-action]")) {
    const words = labels[button.dataset.action];
    if (words && button.textContent !== words.text) {
      button.textContent = words.text;
      button.title = words.title;
    }
  }
  if (labels.canvas) state.canvas.setAttribute("aria-label", labels.canvas);
  if (state.canvas.width !== data.size) {
    state.canvas.width = state.canvas.height = data.size;
  }
  state.root.style.setProperty("--canvas-size", `${data.size}px`);
  let sendAgain = false;
  if (state.generation !== data.generation) { // first mount, or Python asked for this drawing (e.g. shown again)
    // Strokes drawn after Python's last read (a send it has not seen) are a new drawing made while this render
    // was on its way (right after a Save): keep them and send them again under the new generation, instead of
    // wiping them and leaving the person with no answer.
    const unread = state.seq > (Number(data.seen) || 0) && state.strokes.length > 0;
    state.generation = data.generation;
    if (unread) {
      sendAgain = true;
    } else {
      state.strokes = Array.isArray(data.strokes) ? data.strokes : [];
      console.debug(`digit canvas: generation ${data.generation}, showing ${state.strokes.length} kept strokes`);
    }
  }
  state.seen = Math.max(state.seen, Number(data.seen) || 0);
  state.send = async (retry = 0) => {
    const seq = ++state.seq;
    const strokes = state.strokes.slice(); // the picture's strokes: a stroke begun while deflating is not in it
    const picture = strokes.length ? await pictureOf(state.canvas, state.context) : {};
    if (seq !== state.seq) return; // a newer send (a stroke, Undo, Clear) started meanwhile: it says it all
    const form = picture.grey ? "grey" : picture.png ? "PNG" : "empty";
    console.debug(`digit canvas: send ${seq} (${form}, ${strokes.length} strokes, seen ${state.seen})`);
    setStateValue("drawing", {
      grey: picture.grey || null,
      png: picture.png || null,
      strokes,
      generation: state.generation,
      seq,
    });
    clearTimeout(state.timer);
    const wait = RESEND_MS * 2 ** Math.min(retry, 5);
    state.timer = setTimeout(() => {
      if (state.seen < state.seq) {
        console.warn(`digit canvas: send ${state.seq} not acknowledged after ${wait} ms, sending again`);
        state.send(retry + 1); // not read by Python yet: say it again
      }
    }, wait);
  };
  redraw(state);
  if (sendAgain) state.send();
}

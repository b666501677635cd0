// MNIST Lab's grid of digits (the Dataset page): each digit a button with its caption above its picture; a click or
// a tap (or Enter on a focused one) sends the state value "picked" = {position, at: the click's time, so a second
// click on the same tile is a new value, and a new run}. Python passes `data` =
// {tiles: [data: URLs of 28 x 28 PNGs], captions: [text], labels: [accessible names], label: the grid's name,
// columns, picked: the position shown as picked, or null}. Captions and names are set as text, never as HTML.
const SHOWN = new WeakMap(); // the grid's root -> the tiles it shows, so a rerun with the same tiles rebuilds nothing

export default function (component) {
  const { data, parentElement, setStateValue } = component;
  const root = parentElement.querySelector(".digit-grid");
  root.style.setProperty("--columns", String(data.columns));
  root.setAttribute("aria-label", data.label);
  const signature = JSON.stringify([data.tiles, data.captions, data.labels]);
  if (SHOWN.get(root) !== signature) {
    SHOWN.set(root, signature);
    root.replaceChildren(...data.tiles.map((url, position) => {
      const button = document.createElement("button");
      button.type = "button";
      button.setAttribute("aria-label", data.labels[position]);
      button.title = data.labels[position];
      const caption = document.createElement("span");
      caption.textContent = data.captions[position];
      const picture = document.createElement("img");
      picture.src = url;
      picture.alt = "";
      button.append(caption, picture);
      button.addEventListener("click", () => {
        mark(root, position);
        setStateValue("picked", { position, at: Date.now() });
      });
      return button;
    }));
  }
  mark(root, data.picked);
}

function mark(root, picked) {
  root.querySelectorAll("button").forEach((button, position) => {
    button.setAttribute("aria-pressed", String(position === picked));
  });
}

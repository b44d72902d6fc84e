// The DOM helpers every page shares: one of each, so no page keeps a copy of its own.

/** The element with this id. */
export const $ = (id) => document.getElementById(id);

/** A new element: `props` assigned to it (className, textContent, type, onclick…), then `children` appended (null skipped). */
export function el(tag, props = {}, ...children) {
  const node = Object.assign(document.createElement(tag), props);
  node.append(...children.filter((c) => c != null));
  return node;
}

/** Set text only when it changed: most frames touch a handful of nodes. */
export function put(node, text) {
  if (node.textContent !== text) node.textContent = text;
}

/** Show `text` in the page's `#toast` for six seconds. */
export function toast(text) {
  const box = $("toast");
  box.textContent = text;
  box.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { box.hidden = true; }, 6000);
}

/**
 * The frame loop: returns `schedule`, which runs `render` once in the next animation frame however often it is
 * called before then, so a burst of pushed frames costs one render.
 */
export function frameLoop(render) {
  let scheduled = false;
  return function schedule() {
    if (scheduled) return;
    scheduled = true;
    requestAnimationFrame(() => {
      scheduled = false;
      render();
    });
  };
}

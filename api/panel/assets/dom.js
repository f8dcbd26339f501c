// A small helper to build DOM nodes without a framework.
//   el('button', {class: 'primary', onclick: fn, 'data-testid': 'x'}, 'Label')
// Keys starting with "on" become listeners, `class` sets className, `text`
// sets textContent, booleans toggle the attribute, everything else is an attribute.
export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith('on') && typeof value === 'function') {
      node.addEventListener(key.slice(2), value);
    } else if (key === 'class') {
      node.className = value;
    } else if (key === 'text') {
      node.textContent = value;
    } else if (value === true) {
      node.setAttribute(key, '');
    } else {
      node.setAttribute(key, String(value));
    }
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

// Sets text only when it changed: cheap to call on every update.
export function setText(node, text) {
  if (node.textContent !== text) node.textContent = text;
}

// Runs queued DOM work once per animation frame, so a burst of events costs
// one layout, not one per event.
export class FrameScheduler {
  constructor() {
    this.tasks = new Map();
    this.requested = false;
  }
  // `key` lets a caller replace its own pending task instead of stacking copies.
  schedule(key, task) {
    this.tasks.set(key, task);
    if (this.requested) return;
    this.requested = true;
    requestAnimationFrame(() => this.flush());
  }
  flush() {
    this.requested = false;
    const tasks = [...this.tasks.values()];
    this.tasks.clear();
    for (const task of tasks) {
      try {
        task();
      } catch (error) {
        console.error('panel: a render task failed', error);
      }
    }
  }
}

// Building DOM without HTML strings: every piece of text becomes a text node, so nothing a server or a
// model sends can turn into markup. `h("button", {class: "x", onclick: fn}, "Label")`.

/** Create an element. Attributes starting with "on" become listeners; `null`/`false` values are skipped. */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith("on") && typeof value === "function") {
      el.addEventListener(name.slice(2), value);
    } else if (name === "dataset") {
      Object.assign(el.dataset, value);
    } else if (value === true) {
      el.setAttribute(name, "");
    } else {
      el.setAttribute(name, String(value));
    }
  }
  append(el, children);
  return el;
}

/** Append children: nodes as they are, strings and numbers as text, arrays flattened, null skipped. */
export function append(parent, children) {
  for (const child of [children].flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    parent.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return parent;
}

/** Replace an element's children. */
export function replace(parent, ...children) {
  parent.replaceChildren();
  return append(parent, children);
}

/** "2026-11-30T17:34:00+00:00" or Unix seconds -> a short local date and time; "" for nothing. */
export function when(moment) {
  if (moment === null || moment === undefined || moment === "") return "";
  const date = new Date(typeof moment === "number" ? moment * 1000 : moment);
  if (Number.isNaN(date.getTime())) return String(moment);
  return date.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
}

// Tables of the admin page: a caption for screen readers, header cells with scope, a row saying "none".

import { h, replace } from "../shared/dom.js";

/**
 * @param {HTMLTableElement} table
 * @param {string} caption
 * @param {string[]} headers
 * @param {Array<Array<Node|string>>} rows
 * @param {string} empty what to say when there are no rows
 */
export function fillTable(table, caption, headers, rows, empty) {
  replace(table,
    h("caption", { class: "visually-hidden" }, caption),
    h("thead", {}, h("tr", {}, headers.map((name) => h("th", { scope: "col" }, name)))),
    h("tbody", {}, rows.length
      ? rows.map((cells) => h("tr", {}, cells.map((cell) => h("td", {}, cell))))
      : h("tr", {}, h("td", { colspan: headers.length, class: "hint" }, empty))));
}

/** A coloured status word: queued, running, done, failed, active, revoked, promoted. */
export function badge(word) {
  return h("span", { class: `badge badge-${word}` }, word);
}

/** Numbers for people: 0.4712 -> "0.471", 12345 -> "12,345". */
export function number(value) {
  if (typeof value !== "number") return value === null || value === undefined ? "" : String(value);
  return Number.isInteger(value) ? value.toLocaleString() : value.toFixed(3);
}

/** Bytes for people: 812 B, 14 KiB, 3.2 MiB. */
export function size(bytes) {
  if (typeof bytes !== "number") return "";
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${Math.round(bytes / 1024)} KiB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}

// A small, safe Markdown renderer for model answers: it builds DOM nodes and only ever writes text through
// text nodes, so "<script>", "<img onerror>" or a "javascript:" link in an answer shows as text and never
// runs. Supported: paragraphs, line breaks, headings, bullet and numbered lists, block quotes, fenced code,
// inline code, bold, italic, http(s) links, and citation markers [n] (drawn by the caller's `citation`).

const FENCE = /^\s*(```|~~~)/;
const HEADING = /^(#{1,6})\s+(.*)$/;
const BULLET = /^\s*[-*+]\s+(.*)$/;
const NUMBERED = /^\s*(\d{1,9})[.)]\s+(.*)$/;
const QUOTE = /^\s*>\s?(.*)$/;
// One alternation, leftmost match wins: code span | bold | italic | link | citation marker. Underscores
// emphasise only at word edges (snake_case and __dunder__ names stay as they are).
const INLINE =
  /(`+)([^`]|[^`][\s\S]*?[^`])\1(?!`)|\*\*(?=\S)([\s\S]*?\S)\*\*|(?<!\w)__(?=\S)([\s\S]*?\S)__(?!\w)|\*(?=[^\s*])([^*]*?[^\s*])\*|(?<!\w)_(?=[^\s_])([^_]*?[^\s_])_(?!\w)|\[([^\]\n]{1,300})\]\(([^)\s]{1,2000})\)|\[(\d{1,3})\]/g;

function el(tag, ...children) {
  const node = document.createElement(tag);
  node.append(...children);
  return node;
}

/** Only absolute http(s) links become anchors; anything else (javascript:, data:, relative) stays text. */
export function safeUrl(raw) {
  try {
    const url = new URL(raw);
    return url.protocol === "https:" || url.protocol === "http:" ? url.href : null;
  } catch {
    return null;
  }
}

/** Inline Markdown of one block's text -> an array of nodes. */
export function renderInline(text, options = {}, depth = 0) {
  const nodes = [];
  let last = 0;
  const pattern = new RegExp(INLINE.source, "g");
  for (let match = pattern.exec(text); match; match = pattern.exec(text)) {
    if (match.index > last) nodes.push(document.createTextNode(text.slice(last, match.index)));
    last = match.index + match[0].length;
    const nested = (inner) => (depth < 4 ? renderInline(inner, options, depth + 1) : [document.createTextNode(inner)]);
    if (match[2] !== undefined) {
      nodes.push(el("code", match[2].replace(/^ (.*) $/s, "$1")));
    } else if (match[3] !== undefined || match[4] !== undefined) {
      nodes.push(el("strong", ...nested(match[3] ?? match[4])));
    } else if (match[5] !== undefined || match[6] !== undefined) {
      nodes.push(el("em", ...nested(match[5] ?? match[6])));
    } else if (match[7] !== undefined) {
      const href = safeUrl(match[8]);
      if (href) {
        const link = el("a", ...nested(match[7]));
        link.href = href;
        link.rel = "noopener noreferrer nofollow";
        link.target = "_blank";
        nodes.push(link);
      } else {
        nodes.push(document.createTextNode(match[0]));
      }
    } else if (match[9] !== undefined) {
      const number = Number(match[9]);
      const chip = options.citation ? options.citation(number) : null;
      nodes.push(chip || document.createTextNode(match[0]));
    }
  }
  if (last < text.length) nodes.push(document.createTextNode(text.slice(last)));
  return nodes;
}

/** Lines joined with <br> inside one paragraph-like block. */
function inlineLines(lines, options) {
  const nodes = [];
  lines.forEach((line, index) => {
    if (index) nodes.push(document.createElement("br"));
    nodes.push(...renderInline(line, options));
  });
  return nodes;
}

/**
 * Markdown text -> a DocumentFragment.
 * @param {string} text
 * @param {{citation?: (n: number) => Node|null, headingLevel?: number}} options headingLevel: the level a
 *   "# " heading gets (default 3, so answers never outrank the page's own headings)
 */
export function renderMarkdown(text, options = {}) {
  const fragment = document.createDocumentFragment();
  const lines = String(text ?? "").replace(/\r\n?/g, "\n").split("\n");
  const base = options.headingLevel || 3;
  let i = 0;
  while (i < lines.length) {
    const line = lines[i];
    if (!line.trim()) {
      i += 1;
      continue;
    }
    const fence = FENCE.exec(line);
    if (fence) {
      const body = [];
      i += 1;
      while (i < lines.length && !lines[i].trim().startsWith(fence[1])) body.push(lines[i++]);
      i += 1; // the closing fence (or the end of an answer still streaming)
      fragment.append(el("pre", el("code", body.join("\n"))));
      continue;
    }
    const heading = HEADING.exec(line);
    if (heading) {
      const level = Math.min(6, base + heading[1].length - 1);
      fragment.append(el(`h${level}`, ...renderInline(heading[2], options)));
      i += 1;
      continue;
    }
    if (BULLET.test(line) || NUMBERED.test(line)) {
      const numbered = !BULLET.test(line);
      const pattern = numbered ? NUMBERED : BULLET;
      const list = document.createElement(numbered ? "ol" : "ul");
      if (numbered) {
        const start = Number(NUMBERED.exec(line)[1]);
        if (start !== 1) list.start = start;
      }
      while (i < lines.length && pattern.test(lines[i])) {
        const item = pattern.exec(lines[i]);
        list.append(el("li", ...renderInline(numbered ? item[2] : item[1], options)));
        i += 1;
      }
      fragment.append(list);
      continue;
    }
    if (QUOTE.test(line)) {
      const quoted = [];
      while (i < lines.length && QUOTE.test(lines[i])) quoted.push(QUOTE.exec(lines[i++])[1]);
      fragment.append(el("blockquote", renderMarkdown(quoted.join("\n"), options)));
      continue;
    }
    const paragraph = [];
    while (
      i < lines.length &&
      lines[i].trim() &&
      !FENCE.test(lines[i]) &&
      !HEADING.test(lines[i]) &&
      !BULLET.test(lines[i]) &&
      !NUMBERED.test(lines[i]) &&
      !QUOTE.test(lines[i])
    ) {
      paragraph.push(lines[i++]);
    }
    fragment.append(el("p", ...inlineLines(paragraph, options)));
  }
  return fragment;
}

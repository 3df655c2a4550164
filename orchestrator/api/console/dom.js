// Building the page without innerHTML: whatever the server sends is set as text, never parsed
// as markup, so a job name or a log line cannot inject anything.

const SVG_NS = "http://www.w3.org/2000/svg";

function build(node, attrs, children) {
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (key === "text") node.textContent = value;
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  return fill(node, children);
}

function fill(node, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

/** An HTML element: h("a", {href: "#/jobs"}, "Jobs"). */
export const h = (tag, attrs, ...children) => build(document.createElement(tag), attrs, children);

/** An SVG element, same call shape as h(). */
export const svg = (tag, attrs, ...children) =>
  build(document.createElementNS(SVG_NS, tag), attrs, children);

/** Replace a node's children (nulls and falses are skipped). */
export function replace(node, ...children) {
  node.replaceChildren();
  return fill(node, children);
}

/** A refusal or failure, as the server worded it (detail, then its hint). */
export function alertBox(error) {
  const detail = typeof error === "string" ? error : error.message;
  const hint = typeof error === "string" ? null : error.hint;
  return h("div", { class: "notice alert", role: "alert" }, h("p", {}, detail),
    hint ? h("p", { class: "hint" }, hint) : null);
}

/** What a successful action did, one line per server message. */
export function statusBox(lines) {
  return h("div", { class: "notice ok", role: "status" }, lines.map((l) => h("p", {}, l)));
}

/** The <div><dt/><dd/></div> items of a facts list, from [label, value] pairs. */
export const factItems = (pairs) =>
  pairs.map(([label, value]) => h("div", {}, h("dt", {}, label), h("dd", {}, value)));

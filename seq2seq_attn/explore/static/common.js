"use strict";
// Shared helpers of every view. User text only ever goes through textContent (el), never innerHTML.
const DATA = JSON.parse(document.getElementById("data").textContent);
function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined && text !== null) e.textContent = String(text);
  return e;
}
function decodeU8(b64, scale) {  // base64 uint8 -> Float32Array of q / 255 * scale
  const s = atob(b64), out = new Float32Array(s.length), f = (scale || 1) / 255;
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i) * f;
  return out;
}
function hashParams() {  // #a=1&b=x -> {a: "1", b: "x"}: lets a link (or a test) set the state and a hover
  const p = {};
  location.hash.replace(/^#/, "").split("&").forEach(kv => {
    if (!kv) return;
    const i = kv.indexOf("=");
    p[decodeURIComponent(i < 0 ? kv : kv.slice(0, i))] = i < 0 ? "" : decodeURIComponent(kv.slice(i + 1));
  });
  return p;
}
function clamp01(x) { return Math.max(0, Math.min(1, x)); }
function heat(w) { return "rgba(220,38,38," + clamp01(w).toFixed(3) + ")"; }
function signedHeat(w) { return w >= 0 ? heat(w) : "rgba(37,99,235," + clamp01(-w).toFixed(3) + ")"; }
function control(label, options, value, onchange) {  // options: [[value, text], ...]
  const wrap = el("label", "ctl", label + " "), s = el("select");
  options.forEach(([v, t]) => { const o = el("option", null, t); o.value = String(v); s.appendChild(o); });
  s.value = String(value);
  s.addEventListener("change", () => onchange(s.value));
  wrap.appendChild(s);
  return wrap;
}
function toggle(label, checked, onchange) {
  const wrap = el("label", "ctl"), box = el("input");
  box.type = "checkbox"; box.checked = checked;
  box.addEventListener("change", () => onchange(box.checked));
  wrap.appendChild(box); wrap.appendChild(document.createTextNode(" " + label));
  return wrap;
}
function setHeader(notes) {
  document.getElementById("title").textContent = DATA.title;
  document.getElementById("notes").textContent = notes;
}
function overlay(png, h, w, values, clickable) {  // a grid of h x w cells over the image (vision, captioning)
  const g = el("div", "overlay");
  g.style.gridTemplateColumns = "repeat(" + w + ", 1fr)";
  g.style.backgroundImage = "url(data:image/png;base64," + png + ")";
  for (let i = 0; i < h * w; i++) {
    const c = el("div", "px");
    c.dataset.i = i;
    if (values) c.style.backgroundColor = heat(values[i] * 0.75);
    if (clickable) c.style.cursor = "pointer";
    g.appendChild(c);
  }
  return g;
}
function built() { document.documentElement.dataset.builtMs = performance.now().toFixed(1); }

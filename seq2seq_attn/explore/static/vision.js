// Vision view: per image, Grad-CAM and the Itti-Koch saliency map beside the input, then per stage every attention module's weights:
// overlays (spatial maps), bars (channel gates), or a query picker (self-attention: click a position).
(function () {
  const P = hashParams();
  const app = document.getElementById("app");
  setHeader(DATA.notes);

  function bars(values) {
    const b = el("div", "bars");
    values.forEach(v => { const s = el("span"); s.style.height = (100 * v).toFixed(1) + "%"; b.appendChild(s); });
    return b;
  }
  function figure(body, caption) {
    const f = el("figure");
    f.appendChild(body); f.appendChild(el("figcaption", null, caption));
    return f;
  }

  function selfAttention(img, e, id) {  // query picker (left) and the chosen query's weights (right)
    const rows = decodeU8(e.data), wrap = el("div", "maps");
    const picker = overlay(img.png, e.qh, e.qw, null, true);
    const right = el("div");
    function show(q) {
      picker.querySelectorAll(".px.sel").forEach(c => c.classList.remove("sel"));
      picker.children[q].classList.add("sel");
      const w = rows.subarray(q * e.k, (q + 1) * e.k);
      right.textContent = "";
      right.appendChild(e.kh ? overlay(img.png, e.kh, e.kw, w, false) : bars(Array.from(w)));
      right.dataset.query = q;
    }
    picker.addEventListener("click", ev => { if (ev.target.dataset.i !== undefined) show(+ev.target.dataset.i); });
    picker.id = id;
    wrap.appendChild(figure(picker, "query position (click; every " + e.stride + " px of the map)"));
    wrap.appendChild(figure(right, "weights of the chosen query over " + (e.kh ? "the key positions" : e.k + " keys")));
    show(Math.floor(e.qh / 2) * e.qw + Math.floor(e.qw / 2));
    wrap.show = show;
    return wrap;
  }

  const pickers = [];
  DATA.images.forEach((img, n) => {
    const box = el("section", "item");
    box.id = "img-" + n;
    box.appendChild(el("h2", null, img.name + ": " + img.label + " (" + img.prob.toFixed(3) + ")"));
    const top = el("div", "maps");
    top.appendChild(figure(overlay(img.png, 1, 1, null, false), "input"));
    top.appendChild(figure(overlay(img.png, img.h, img.w, decodeU8(img.gradcam), false), "Grad-CAM (predicted class)"));
    if (img.saliency) top.appendChild(figure(overlay(img.png, img.h, img.w, decodeU8(img.saliency), false), "Itti-Koch saliency (bottom-up)"));
    box.appendChild(top);
    const stages = [...new Set(img.entries.map(e => e.stage))].sort((a, b) => a - b);
    if (!img.entries.length) box.appendChild(el("p", "note", "this model has no attention modules"));
    stages.forEach(s => {
      box.appendChild(el("h3", null, s ? "stage " + s : "other modules"));
      const maps = el("div", "maps");
      img.entries.forEach((e, k) => {
        if (e.stage !== s) return;
        const cap = e.name + ": " + e.note;
        if (e.kind === "spatial") maps.appendChild(figure(overlay(img.png, e.h, e.w, decodeU8(e.data), false), cap));
        else if (e.kind === "channel") maps.appendChild(figure(bars(Array.from(decodeU8(e.data))), cap + " (max " + e.max + ")"));
        else if (e.kind === "self") {
          const p = selfAttention(img, e, "picker-" + n + "-" + k);
          pickers.push([n, k, p]);
          maps.appendChild(figure(p, cap));
        } else maps.appendChild(el("p", "note", cap));
      });
      box.appendChild(maps);
    });
    app.appendChild(box);
  });
  if (P.click) {  // #click=IMAGE:ENTRY:QUERY simulates a click on a query position (links, tests)
    const [n, k, q] = P.click.split(":").map(Number);
    const hit = pickers.find(([a, b]) => a === n && b === k);
    if (hit) hit[2].show(q);
  }
  built();
})();

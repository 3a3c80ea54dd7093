// Classification view: per document, the tokens shaded by attention, Integrated Gradients and occlusion side
// by side; hovering a token outlines it in every column and prints its three scores.
(function () {
  const P = hashParams();
  const app = document.getElementById("app");
  const METHODS = ["attention", "integrated_gradients", "occlusion"];
  setHeader(DATA.notes);

  function hover(box, d, i) {
    box.querySelectorAll(".tok.hl").forEach(s => s.classList.remove("hl"));
    box.querySelectorAll('.tok[data-i="' + i + '"]').forEach(s => s.classList.add("hl"));
    box.querySelector(".detail").textContent = d.tokens[i] + ": " +
      METHODS.map(m => DATA.method_names[m] + " " + d.methods[m][i].toFixed(4)).join(", ");
  }

  function column(box, d, m) {
    const col = el("div", "method"), vals = d.methods[m];
    col.appendChild(el("h3", null, DATA.method_names[m] + (m !== "attention" && d.kendall[m] !== null ?
                                   " (Kendall tau with attention " + d.kendall[m].toFixed(2) + ")" : "")));
    const scale = Math.max(1e-12, ...vals.map(Math.abs));
    d.sentences.forEach(([a, b], s) => {
      const line = el("div", "sent"), toks = el("div", "tokens");
      if (DATA.hierarchical && m === "attention") {
        const bar = el("div", "bar"), fill = el("span");
        fill.style.width = (100 * d.sentence_weights[s]).toFixed(1) + "%";
        bar.title = "sentence weight " + d.sentence_weights[s].toFixed(4);
        bar.appendChild(fill); line.appendChild(bar);
      }
      for (let i = a; i < b; i++) {
        const t = el("span", "tok", d.tokens[i]);
        t.dataset.i = i;
        t.style.backgroundColor = signedHeat(vals[i] / scale);
        t.addEventListener("mouseenter", () => hover(box, d, i));
        toks.appendChild(t); toks.appendChild(document.createTextNode(" "));
      }
      line.appendChild(toks); col.appendChild(line);
    });
    return col;
  }

  DATA.docs.forEach((d, n) => {
    const box = el("section", "item");
    box.id = "doc-" + n;
    box.appendChild(el("h2", null, "document " + n + ": " + d.label + " (" + d.probs[d.label].toFixed(3) + ")"));
    box.appendChild(el("p", "note", "input: " + d.text));
    box.appendChild(el("div", "note", Object.entries(d.probs).map(([k, v]) => k + " " + v.toFixed(3)).join(", ")));
    const grid = el("div", "methods");
    METHODS.forEach(m => grid.appendChild(column(box, d, m)));
    box.appendChild(grid);
    box.appendChild(el("div", "detail"));
    app.appendChild(box);
  });
  if (P.hover) {  // #hover=DOC:TOKEN simulates hovering a token (links, tests)
    const [n, i] = P.hover.split(":").map(Number);
    const box = document.getElementById("doc-" + n);
    if (box && i < DATA.docs[n].tokens.length) hover(box, DATA.docs[n], i);
  }
  built();
})();

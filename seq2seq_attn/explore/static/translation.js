// Translation view: one sentence at a time; any attention (cross, encoder or decoder self-attention), layer
// and head (or their mean); hover a token to see its weights; argmax alignment; subwords merged into words.
(function () {
  const P = hashParams();
  const S = {s: +(P.s || 0), kind: P.kind || "cross", layer: +(P.layer || 0), head: P.head || "mean",
             merge: P.merge === "1", argmax: P.argmax === "1"};
  const KINDS = {cross: ["target", "source", "cross-attention"], encoder: ["source", "source", "encoder self-attention"],
                 decoder: ["target", "target", "decoder self-attention"]};
  const app = document.getElementById("app");
  setHeader(DATA.notes);

  function groups(pieces) {  // sentencepiece pieces -> words: a piece starting with U+2581 starts a word
    const g = [];
    pieces.forEach((p, i) => {
      const special = p === "</s>", starts = p.charAt(0) === "\u2581";
      if (!g.length || starts || special || g[g.length - 1].special) g.push({text: p.replace(/^\u2581/, ""), idx: [i], special});
      else { g[g.length - 1].text += p; g[g.length - 1].idx.push(i); }
    });
    return g;
  }
  function matrix(sent) {  // the chosen layer/head as {rows, cols, w (rows x cols)} with its axis labels
    const mods = sent.maps[S.kind] || [];
    if (!mods.length) return null;
    const m = mods[Math.min(S.layer, mods.length - 1)], [H, Q, K] = m.shape, raw = decodeU8(m.data);
    const w = new Float32Array(Q * K), head = S.head === "mean" ? -1 : Math.min(+S.head, H - 1);
    for (let h = 0; h < H; h++) {
      if (head >= 0 && h !== head) continue;
      const f = head >= 0 ? 1 : 1 / H;
      for (let i = 0; i < Q * K; i++) w[i] += raw[h * Q * K + i] * f;
    }
    const [qSide, kSide] = KINDS[S.kind];
    let qTok = qSide === "source" ? sent.src : sent.tgt, kTok = kSide === "source" ? sent.src : sent.tgt;
    if (!S.merge) return {name: m.name, heads: H, q: qTok.slice(0, Q), k: kTok.slice(0, K), Q, K, w};
    const qg = groups(qTok.slice(0, Q)), kg = groups(kTok.slice(0, K));
    const out = new Float32Array(qg.length * kg.length);  // rows: mean over a word's pieces; columns: sum
    qg.forEach((a, r) => kg.forEach((b, c) => {
      let s = 0;
      a.idx.forEach(i => b.idx.forEach(j => { s += w[i * K + j]; }));
      out[r * kg.length + c] = s / a.idx.length;
    }));
    return {name: m.name, heads: H, q: qg.map(g => g.text), k: kg.map(g => g.text), Q: qg.length, K: kg.length, w: out};
  }

  function hover(M, side, i, rows) {  // highlight the other side's tokens by the hovered token's weights
    const qSpans = rows.q.children, kSpans = rows.k.children;
    [...qSpans, ...kSpans].forEach(s => { s.classList.remove("hl"); s.style.backgroundColor = ""; delete s.dataset.w; });
    document.querySelectorAll("td.cell.hl, th.hl").forEach(c => c.classList.remove("hl"));
    const n = side === "q" ? M.K : M.Q, vals = [];
    for (let j = 0; j < n; j++) vals.push(side === "q" ? M.w[i * M.K + j] : M.w[j * M.K + i]);
    const top = Math.max(1e-9, ...vals), targets = side === "q" ? kSpans : qSpans;
    vals.forEach((v, j) => { targets[j].style.backgroundColor = heat(v / top); targets[j].dataset.w = v.toFixed(3); });
    (side === "q" ? qSpans : kSpans)[i].classList.add("hl");
    const grid = document.getElementById("grid");
    if (side === "q") grid.rows[i + 1].cells[0].classList.add("hl");
    else grid.rows[0].cells[i + 1].classList.add("hl");
  }

  function tokenRow(label, toks, side, M, rows) {
    const wrap = el("div", "tokens"), lab = el("b", null, label + ": "), row = el("span");
    toks.forEach((t, i) => {
      const s = el("span", "tok", t);
      s.dataset.i = i;
      s.addEventListener("mouseenter", () => hover(M, side, i, rows));
      row.appendChild(s);
    });
    wrap.appendChild(lab); wrap.appendChild(row);
    return [wrap, row];
  }

  function grid(M) {
    const t = el("table", "grid"), head = t.insertRow();
    t.id = "grid";
    head.appendChild(el("th"));
    M.k.forEach(k => head.appendChild(el("th", "col", k)));
    for (let r = 0; r < M.Q; r++) {
      const tr = t.insertRow();
      tr.appendChild(el("th", null, M.q[r]));
      let best = 0;
      for (let c = 1; c < M.K; c++) if (M.w[r * M.K + c] > M.w[r * M.K + best]) best = c;
      for (let c = 0; c < M.K; c++) {
        const v = M.w[r * M.K + c], td = el("td", "cell");
        const shown = S.argmax ? (c === best ? 1 : 0) : v;
        td.style.backgroundColor = heat(shown);
        td.title = M.q[r] + " \u2192 " + M.k[c] + ": " + v.toFixed(3);
        if (S.argmax && c === best) td.classList.add("amax");
        tr.appendChild(td);
      }
    }
    return t;
  }

  function render() {
    app.textContent = "";
    const sent = DATA.sentences[Math.min(S.s, DATA.sentences.length - 1)];
    const ctl = el("div", "controls");
    ctl.appendChild(control("sentence", DATA.sentences.map((x, i) => [i, i + ": " + x.source.slice(0, 50)]), S.s,
                            v => { S.s = +v; render(); }));
    const kinds = Object.keys(KINDS).filter(k => (sent.maps[k] || []).length);
    if (!kinds.includes(S.kind)) S.kind = kinds[0] || "cross";
    ctl.appendChild(control("attention", kinds.map(k => [k, KINDS[k][2]]), S.kind, v => { S.kind = v; render(); }));
    const mods = sent.maps[S.kind] || [];
    ctl.appendChild(control("layer", mods.map((m, i) => [i, i + " (" + m.name + ")"]), S.layer, v => { S.layer = +v; render(); }));
    const H = mods.length ? mods[Math.min(S.layer, mods.length - 1)].shape[0] : 1;
    const heads = [["mean", "mean of " + H]];
    for (let h = 0; h < H; h++) heads.push([h, String(h)]);
    ctl.appendChild(control("head", heads, S.head, v => { S.head = v; render(); }));
    ctl.appendChild(toggle("merge subwords into words", S.merge, v => { S.merge = v; render(); }));
    ctl.appendChild(toggle("argmax alignment", S.argmax, v => { S.argmax = v; render(); }));
    app.appendChild(ctl);
    const box = el("section", "item");
    box.appendChild(el("h2", null, "source: " + sent.source));
    const nb = el("ol", "nbest");
    sent.nbest.forEach(h => nb.appendChild(el("li", null, h.text + "   (score " + h.score.toFixed(3) +
                                                          ", log p " + h.log_prob.toFixed(3) + ")")));
    box.appendChild(el("div", "note", "n-best list (length-penalized score, best first):"));
    box.appendChild(nb);
    const M = matrix(sent);
    if (!M) { box.appendChild(el("p", "note", "this model recorded no " + S.kind + " attention")); app.appendChild(box); return; }
    const rows = {};
    const [qLab, kLab] = KINDS[S.kind];
    const [qWrap, qRow] = tokenRow("queries (" + qLab + ")", M.q, "q", M, rows);
    const [kWrap, kRow] = tokenRow("keys (" + kLab + ")", M.k, "k", M, rows);
    rows.q = qRow; rows.k = kRow;
    box.appendChild(qWrap); box.appendChild(kWrap);
    box.appendChild(el("div", "note", M.name + (S.head === "mean" ? ", mean of " + M.heads + " heads" : ", head " + S.head) +
                       (S.argmax ? "; argmax alignment: the most attended key of each query" : "")));
    box.appendChild(grid(M));
    app.appendChild(box);
    if (P.hover) {
      const [side, i] = P.hover.split(":");
      if ((side === "q" && +i < M.Q) || (side === "k" && +i < M.K)) hover(M, side, +i, rows);
    }
  }
  render();
  built();
})();

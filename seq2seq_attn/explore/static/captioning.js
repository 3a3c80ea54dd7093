// Captioning view: per image its n-best captions; the chosen caption's words (hover or click one) and the
// image with that word's attention over the encoder grid. #img=N&hyp=K&word=T sets the choice (links, tests).
(function () {
  const P = hashParams();
  const app = document.getElementById("app");
  setHeader(DATA.notes);

  DATA.images.forEach((img, n) => {
    const box = el("section", "item");
    box.id = "img-" + n;
    box.appendChild(el("h2", null, img.name));
    const list = el("ol", "nbest"), words = el("div", "tokens"), maps = el("div", "maps");
    const detail = el("div", "detail");
    let hyp = 0;
    function showWord(t) {
      const h = img.hyps[hyp], L = img.h * img.w;
      const rows = decodeU8(h.attention);
      words.querySelectorAll(".tok").forEach((s, k) => s.classList.toggle("hl", k === t));
      maps.textContent = "";
      const f = el("figure");
      f.appendChild(overlay(img.png, img.h, img.w, rows.subarray(t * L, (t + 1) * L), false));
      f.appendChild(el("figcaption", null, "attention of \u201c" + h.words[t] + "\u201d"));
      maps.appendChild(f);
      detail.textContent = h.words[t] + ": attention " + t + " of " + h.words.length;
      box.dataset.word = t;
    }
    function showHyp(k) {
      hyp = k;
      list.querySelectorAll("li").forEach((li, j) => li.classList.toggle("sel", j === k));
      words.textContent = "";
      img.hyps[k].words.forEach((w, t) => {
        const s = el("span", "tok", w);
        s.addEventListener("mouseenter", () => showWord(t));
        s.addEventListener("click", () => showWord(t));
        words.appendChild(s);
      });
      box.dataset.hyp = k;
      showWord(0);
    }
    img.hyps.forEach((h, k) => {
      const li = el("li", null, h.words.slice(0, -1).join(" ") + "  (" + h.score.toFixed(3) + ")");
      li.style.cursor = "pointer";
      li.addEventListener("click", () => showHyp(k));
      list.appendChild(li);
    });
    box.appendChild(list); box.appendChild(words); box.appendChild(maps); box.appendChild(detail);
    app.appendChild(box);
    if (!img.hyps.length) { box.appendChild(el("p", "note", "no caption")); return; }
    const chosen = +P.img === n;
    showHyp(chosen && P.hyp !== undefined ? Math.min(+P.hyp, img.hyps.length - 1) : 0);
    if (chosen && P.word !== undefined) showWord(Math.min(+P.word, img.hyps[hyp].words.length - 1));
  });
  built();
})();

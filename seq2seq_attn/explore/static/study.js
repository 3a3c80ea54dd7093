// The study report (seq2seq-attn study): sections of headings, paragraphs, tables and figures, built from
// DATA.sections; a task filter narrows every table to the rows of one task. Text only via textContent (el).
setHeader(DATA.notes);
const app = document.getElementById("app");
const controls = el("div", "controls");
const tasks = DATA.tasks || [];
let taskFilter = tasks.includes(hashParams().task) ? hashParams().task : "";  // #task=NAME sets the filter
if (tasks.length) {
  controls.appendChild(control("task", [["", "all tasks"], ...tasks.map(t => [t, t])], taskFilter, v => {
    taskFilter = v; render();
  }));
}
app.appendChild(controls);
const body = el("div");
app.appendChild(body);
function table(t) {
  const tab = el("table", "study"), head = el("tr");
  t.header.forEach(h => head.appendChild(el("th", null, h)));
  tab.appendChild(head);
  const col = t.header.indexOf("task");
  t.rows.filter(r => !taskFilter || col < 0 || r[col] === taskFilter).forEach(r => {
    const tr = el("tr");
    r.forEach(c => tr.appendChild(el("td", null, c)));
    tab.appendChild(tr);
  });
  return tab;
}
function render() {
  body.textContent = "";
  DATA.sections.forEach(s => {
    const sec = el("section", "item");
    sec.appendChild(el(s.level === 3 ? "h3" : "h2", null, s.heading));
    s.blocks.forEach(b => {
      if (b.kind === "p") sec.appendChild(el("p", "note", b.text));
      else if (b.kind === "table") sec.appendChild(table(b));
      else if (b.kind === "img") {
        const img = el("img");
        img.src = "data:image/png;base64," + b.png;
        img.alt = b.alt;
        img.style.maxWidth = "100%";
        sec.appendChild(img);
      }
    });
    body.appendChild(sec);
  });
  built();
}
render();

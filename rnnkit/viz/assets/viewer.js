// rnnkit activation viewer: text coloured by one unit's activation, with the model's top-5
// next-character predictions on hover. Shared by the static page and the web app.
//   const viewer = new RnnViewer(textElement, unitSelect, units);   units: [{name, label}]
//   viewer.append(char, top5, values, isPrompt)   top5: [[char, probability] x 5]; values: one per unit
"use strict";

function rvShow(ch) {
  if (ch === "\n") return "\u21b5";
  if (ch === " ") return "\u2423";
  if (ch === "\t") return "\u21e5";
  return ch;
}

class RnnViewer {
  constructor(textElement, unitSelect, units) {
    this.text = textElement;
    this.select = unitSelect;
    this.units = units;
    this.chars = [];
    this.top = [];
    this.values = units.map(() => []);  // values[unit][position]
    this.scale = units.map(() => 1e-6);  // the largest |value| seen, per unit
    this.unit = 0;
    this.tip = document.getElementById("rv-tip");
    if (!this.tip) {
      this.tip = document.createElement("div");
      this.tip.id = "rv-tip";
      document.body.appendChild(this.tip);
    }
    units.forEach((u, i) => {
      const option = document.createElement("option");
      option.value = i;
      option.textContent = u.label || u.name;
      unitSelect.appendChild(option);
    });
    unitSelect.addEventListener("change", () => this.setUnit(Number(unitSelect.value)));
    this.text.addEventListener("mouseover", (e) => this.hover(e));
    this.text.addEventListener("mouseleave", () => { this.tip.style.display = "none"; });
  }

  clear() {
    this.chars = [];
    this.top = [];
    this.values = this.units.map(() => []);
    this.scale = this.units.map(() => 1e-6);
    this.text.textContent = "";
  }

  append(ch, top5, values, isPrompt) {
    const pos = this.chars.length;
    this.chars.push(ch);
    this.top.push(top5);
    let rescale = false;
    values.forEach((v, u) => {
      this.values[u].push(v);
      if (Math.abs(v) > this.scale[u]) { this.scale[u] = Math.abs(v); rescale = rescale || u === this.unit; }
    });
    const span = document.createElement("span");
    span.dataset.pos = pos;
    if (isPrompt) span.className = "rv-prompt";
    if (ch === "\n") {
      span.innerHTML = '<span class="rv-nl">\u21b5</span>\n';
    } else {
      span.textContent = ch;
    }
    this.text.appendChild(span);
    if (rescale) this.recolour(); else this.colour(span, pos);
  }

  colour(span, pos) {
    const v = this.values[this.unit][pos] / this.scale[this.unit];  // in [-1, 1]
    const a = Math.min(1, Math.abs(v)).toFixed(3);
    span.style.backgroundColor = v >= 0 ? `rgba(220, 60, 40, ${a})` : `rgba(40, 110, 220, ${a})`;
  }

  recolour() {
    for (const span of this.text.children) this.colour(span, Number(span.dataset.pos));
  }

  setUnit(u) {
    this.unit = u;
    this.select.value = String(u);
    this.recolour();
  }

  hover(e) {
    const span = e.target.closest("span[data-pos]");
    if (!span) return;
    const pos = Number(span.dataset.pos);
    const next = this.chars[pos + 1];
    const unit = this.units[this.unit];
    let html = `<div>after <b>${escapeHtml(rvShow(this.chars[pos]))}</b> (position ${pos}); ` +
               `${escapeHtml(unit.name)} = ${this.values[this.unit][pos].toFixed(3)}</div>` +
               "<div>next character:</div><table class=\"rv-top5\">";
    for (const [c, p] of this.top[pos]) {
      html += `<tr class="${c === next ? "rv-actual" : ""}"><td>${escapeHtml(rvShow(c))}</td>` +
              `<td>${(100 * p).toFixed(1)}%</td><td><span class="rv-bar" style="width:${Math.round(80 * p)}px"></span></td></tr>`;
    }
    html += "</table>";
    this.tip.innerHTML = html;
    this.tip.style.display = "block";
    const box = span.getBoundingClientRect();
    this.tip.style.left = `${Math.min(box.left, window.innerWidth - 260)}px`;
    this.tip.style.top = `${box.bottom + 6}px`;
  }
}

function escapeHtml(s) {
  return s.replace(/[&<>"']/g, (c) => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}[c]));
}

// Unpack the static page's data: activations are int8, one base64 block per unit, with a scale.
function rvDecode(base64, scale) {
  const bytes = Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
  return Array.from(new Int8Array(bytes.buffer), (q) => (q / 127) * scale);
}

/* The course's interactive figures, made by llm_foundations/interactive.py.
 *
 * Each figure is a <figure data-lf-figure="..."> that already shows its starting state and holds
 * its data as JSON (<script class="lf-data">). This script, loaded on every page of the site,
 * makes it respond in the browser: no kernel, no network, nothing but the data in the page.
 * The sampling rules below are those of llm_foundations.sampling (sample_next_token).
 */
(function () {
  "use strict";

  // ---- colours: the same ramp and text-colour rule as interactive.shade() ----
  const DARK = [31, 78, 121];
  function luminance(rgb) {
    const lin = rgb.map(function (c) {
      const s = c / 255;
      return s <= 0.04045 ? s / 12.92 : Math.pow((s + 0.055) / 1.055, 2.4);
    });
    return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2];
  }
  const TEXT_DARK = 0;  // black text
  function shade(weight) {
    const t = Math.min(Math.max(weight, 0), 1);
    const rgb = DARK.map(function (c) { return Math.round(255 + (c - 255) * t); });
    const lum = luminance(rgb);
    const darkText = (lum + 0.05) / (TEXT_DARK + 0.05) >= 1.05 / (lum + 0.05);
    return { background: "rgb(" + rgb.join(", ") + ")", color: darkText ? "#000000" : "#ffffff" };
  }
  function paint(element, weight) {
    const s = shade(weight);
    element.style.background = s.background;
    element.style.color = s.color;
  }

  // ---- chapter 7: temperature, then top-k, then top-p, then softmax ----
  function softmax(z) {
    const finite = z.filter(function (v) { return v !== -Infinity; });
    const top = Math.max.apply(null, finite);
    const e = z.map(function (v) { return v === -Infinity ? 0 : Math.exp(v - top); });
    const total = e.reduce(function (a, b) { return a + b; }, 0);
    return e.map(function (v) { return v / total; });
  }
  function byProbability(p) {  // token ids, likeliest first; ties: lower id first (a stable sort)
    return p.map(function (_, i) { return i; }).sort(function (a, b) { return p[b] - p[a] || a - b; });
  }
  function distribution(logits, temperature, topK, topP) {
    let s = logits.map(function (z) { return z === null ? -Infinity : z / temperature; });
    if (topK > 0 && topK < s.length) {  // keep every logit at least the k-th largest (ties kept)
      const kth = s.slice().sort(function (a, b) { return b - a; })[topK - 1];
      s = s.map(function (z) { return z < kth ? -Infinity : z; });
    }
    if (topP < 1) {  // keep a token while the mass ranked strictly before it is below p
      const p = softmax(s);
      const keep = new Array(s.length).fill(false);
      let before = 0;
      byProbability(p).forEach(function (i) { keep[i] = before < topP; before += p[i]; });
      s = s.map(function (z, i) { return keep[i] ? z : -Infinity; });
    }
    return softmax(s);
  }
  function shortNumber(x) { return String(Number(x.toPrecision(3))); }

  function setupSampling(figure, data) {
    const control = function (name) { return figure.querySelector('[name="' + name + '"]'); };
    const svg = figure.querySelector("svg.lf-chart");
    const top = Number(svg.dataset.top), plotHeight = Number(svg.dataset.plotHeight);
    function redraw() {
      const name = control("context").value;
      const context = data.contexts.find(function (c) { return c.name === name; });
      const temperature = Math.pow(10, Number(control("temperature").value));
      const topK = Number(control("top_k").value), topP = Number(control("top_p").value);
      const model = distribution(context.logits, 1, 0, 1);
      const final = distribution(context.logits, temperature, topK, topP);
      const shown = byProbability(model).slice(0, data.shown);
      shown.forEach(function (word, slot) {
        [["lf-bar-model", model], ["lf-bar-final", final]].forEach(function (pair) {
          const bar = svg.querySelector("rect." + pair[0] + '[data-slot="' + slot + '"]');
          const h = pair[1][word] * plotHeight;
          bar.setAttribute("y", (top + plotHeight - h).toFixed(1));
          bar.setAttribute("height", h.toFixed(1));
          bar.dataset.p = pair[1][word].toFixed(6);
        });
        svg.querySelector('text.lf-word[data-slot="' + slot + '"]').textContent = data.words[word];
      });
      const t = shortNumber(temperature);
      figure.querySelector('output[data-for="temperature"]').textContent = t;
      control("temperature").setAttribute("aria-valuetext", "T = " + t);
      figure.querySelector('output[data-for="top_k"]').textContent = topK > 0 ? String(topK) : "off";
      figure.querySelector('output[data-for="top_p"]').textContent = String(topP);
      const kept = final.filter(function (p) { return p > 0; }).length;
      figure.querySelector(".lf-summary").textContent = "After '" + name + "': " + kept + " of " + final.length +
        " words can be sampled; the likeliest has probability " + Math.max.apply(null, final).toFixed(2) + ".";
      figure.dataset.state = JSON.stringify({ context: name, temperature: temperature, top_k: topK, top_p: topP });
    }
    ["context", "temperature", "top_k", "top_p"].forEach(function (name) {
      control(name).addEventListener("input", redraw);
      control(name).addEventListener("change", redraw);
    });
    redraw();
  }

  // ---- chapter 4: point at a query token, see its weights ----
  function setupAttention(figure, data) {
    let head = 0, query = data.query;
    const headMenu = figure.querySelector('[name="head"]');
    function render() {
      const weights = data.heads[head].weights, row = weights[query];
      figure.querySelectorAll("table.lf-map tbody tr").forEach(function (tr) {
        const i = Number(tr.dataset.query);
        tr.classList.toggle("lf-selected", i === query);
        tr.querySelectorAll("td").forEach(function (td) {
          const w = weights[i][Number(td.dataset.key)];
          td.textContent = w.toFixed(2);
          paint(td, w);
        });
      });
      figure.querySelectorAll("button.lf-query").forEach(function (b) {
        const on = Number(b.dataset.query) === query;
        b.classList.toggle("lf-selected", on);
        b.setAttribute("aria-pressed", on ? "true" : "false");
      });
      figure.querySelectorAll(".lf-key").forEach(function (span) { paint(span, row[Number(span.dataset.key)]); });
      let best = 0;
      row.forEach(function (w, j) { if (w > row[best]) { best = j; } });
      figure.querySelector(".lf-summary").textContent = "Query '" + data.queries[query] + "' (position " + query +
        ") gives its largest weight, " + row[best].toFixed(2) + ", to '" + data.keys[best] + "' (position " + best + ").";
      figure.dataset.query = String(query);
      figure.dataset.head = String(head);
    }
    function select(i) { if (i !== query) { query = i; render(); } }
    figure.querySelectorAll("[data-query]").forEach(function (element) {
      const i = Number(element.dataset.query);
      ["mouseenter", "focus", "click"].forEach(function (type) {
        element.addEventListener(type, function () { select(i); });
      });
    });
    if (headMenu) {
      headMenu.addEventListener("change", function () { head = Number(headMenu.value); render(); });
    }
    render();
  }

  const SETUP = { sampling: setupSampling, attention: setupAttention };
  function start() {
    document.querySelectorAll("figure[data-lf-figure]").forEach(function (figure) {
      const setup = SETUP[figure.dataset.lfFigure];
      const source = figure.querySelector("script.lf-data");
      if (!setup || !source || figure.dataset.live) { return; }
      setup(figure, JSON.parse(source.textContent));
      const note = figure.querySelector(".lf-static-note");
      if (note) { note.remove(); }
      figure.dataset.live = "true";
    });
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();

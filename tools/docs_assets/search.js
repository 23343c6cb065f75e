// Client-side search for the offline docs. The index is a plain script (search-index.js sets
// window.ISONB_SEARCH) rather than JSON, because browsers refuse fetch() on file:// pages.
(function () {
  "use strict";
  var input = document.getElementById("search-input");
  var box = document.getElementById("search-results");
  if (!input || !box) return;
  var root = document.body.getAttribute("data-root") || "";
  var index = window.ISONB_SEARCH || [];

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text) e.textContent = text;
    return e;
  }

  function search(query) {
    var words = query.toLowerCase().split(/\s+/).filter(Boolean);
    if (!words.length) return [];
    var hits = [];
    index.forEach(function (entry) {
      var head = (entry.page + " " + entry.head).toLowerCase();
      var all = head + " " + entry.text.toLowerCase();
      if (!words.every(function (w) { return all.indexOf(w) >= 0; })) return;
      var score = words.filter(function (w) { return head.indexOf(w) >= 0; }).length;
      hits.push({entry: entry, score: score});
    });
    hits.sort(function (a, b) { return b.score - a.score; });
    return hits.slice(0, 25).map(function (h) { return h.entry; });
  }

  function snippet(text, query) {
    var i = text.toLowerCase().indexOf(query.toLowerCase().split(/\s+/)[0]);
    var start = Math.max(0, i - 40);
    return (start > 0 ? "\u2026" : "") + text.slice(start, start + 140) + (text.length > start + 140 ? "\u2026" : "");
  }

  function show() {
    var q = input.value.trim();
    box.innerHTML = "";
    if (!q) { box.classList.remove("open"); return; }
    var hits = search(q);
    if (!hits.length) box.appendChild(el("div", "sr-none", "No results for \u201c" + q + "\u201d"));
    hits.forEach(function (e) {
      var a = el("a");
      a.href = root + e.href;
      a.appendChild(el("div", "sr-page", e.page));
      a.appendChild(el("div", "sr-head", e.head || e.page));
      if (e.text) a.appendChild(el("div", "sr-text", snippet(e.text, q)));
      box.appendChild(a);
    });
    box.classList.add("open");
  }

  input.addEventListener("input", show);
  input.addEventListener("focus", show);
  input.addEventListener("keydown", function (ev) {
    if (ev.key === "Escape") { input.value = ""; show(); input.blur(); }
    if (ev.key === "Enter") { var first = box.querySelector("a"); if (first) window.location.href = first.href; }
  });
  document.addEventListener("click", function (ev) {
    if (!box.contains(ev.target) && ev.target !== input) box.classList.remove("open");
  });
})();

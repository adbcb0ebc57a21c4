"""The static leaderboard page (`leaderboard/index.html`): one self-contained file, no server, no network.

leaderboard.json is embedded as an inert `application/json` script and a small
vanilla script builds the tables from it. Model names, checkpoints and snippets
of training documents are untrusted text, so the embedded JSON escapes `<`, `>`
and `&` (a crafted name cannot close the script element) and the DOM is built
with `textContent` only, never `innerHTML`. The page is a pure function of the
data, so re-rendering an unchanged leaderboard leaves the file byte-identical.
"""

from __future__ import annotations

import json


def embed(data) -> str:
    """JSON that is safe inside a <script> element: no `</script>`, no `<!--`, no entity tricks."""
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return (text.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e")
            .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))


def page(board: dict) -> str:
    """The whole page for one leaderboard.json document."""
    return TEMPLATE.replace("@@DATA@@", embed(board))


TEMPLATE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy"
      content="default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'">
<title>Leaderboard</title>
<style>
  body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2rem; color: #1d2330; }
  h1 { font-size: 1.5rem; margin: 0 0 .25rem; }
  h2 { font-size: 1.15rem; margin: 2rem 0 .2rem; }
  .meta { color: #5b6475; margin: 0 0 .6rem; }
  code, .mono { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; font-size: .85em; }
  table.board { border-collapse: collapse; width: 100%; }
  table.board > thead th { text-align: left; border-bottom: 2px solid #c9cfda; padding: .35rem .5rem;
                           white-space: nowrap; vertical-align: bottom; }
  table.board > thead th button { font: inherit; font-weight: 600; background: none; border: 0; padding: 0;
                                  cursor: pointer; color: inherit; }
  th[aria-sort="ascending"] button::after { content: " \\25B2"; }
  th[aria-sort="descending"] button::after { content: " \\25BC"; }
  th .metric { display: block; font-weight: normal; color: #5b6475; font-size: .85em; }
  tbody.entry > tr.summary > td { padding: .4rem .5rem; border-top: 1px solid #e3e6ec; vertical-align: middle; }
  tbody.entry > tr.lineage > td { padding: 0 .5rem .3rem; }
  td.model .name { font-weight: 600; word-break: break-word; }
  td.model .checkpoint { display: block; color: #5b6475; word-break: break-all; }
  td.score, td.date { white-space: nowrap; }
  td.score .value { display: inline-block; min-width: 3.6em; font-variant-numeric: tabular-nums; }
  svg.whisker { vertical-align: middle; margin-left: .35rem; }
  svg.whisker .axis { stroke: #e3e6ec; stroke-width: 1; }
  svg.whisker .range, svg.whisker .cap { stroke: #3a6fd8; stroke-width: 1.5; }
  svg.whisker .point { fill: #1d2330; }
  .badge { display: inline-block; border-radius: .8em; padding: .05rem .55rem; font-size: .8em; white-space: nowrap; }
  .badge-clean { background: #dcf3e3; color: #14532d; }
  .badge-contaminated { background: #fde0e0; color: #7f1d1d; }
  .badge-allowed { background: #fff1c2; color: #713f12; }
  .badge-unchecked { background: #eceef2; color: #3f4656; }
  details > summary { cursor: pointer; color: #3a6fd8; font-size: .85em; }
  .drill { margin: .4rem 0 .8rem 1rem; }
  .drill h4 { margin: .7rem 0 .2rem; font-size: .9rem; }
  .drill dl { display: grid; grid-template-columns: max-content 1fr; gap: .1rem .8rem; margin: 0; }
  .drill dt { color: #5b6475; }
  .drill dd { margin: 0; word-break: break-all; }
  .drill table { border-collapse: collapse; font-size: .9em; }
  .drill table th, .drill table td { border: 1px solid #e3e6ec; padding: .15rem .4rem; text-align: left;
                                     vertical-align: top; }
  .drill ol { margin: .2rem 0; padding-left: 1.3rem; }
  .warn { color: #92400e; }
  .empty { color: #5b6475; font-style: italic; }
</style>
</head>
<body>
<h1>Leaderboard</h1>
<p class="meta" id="summary"></p>
<p class="meta">One table per eval suite fingerprint: rows are comparable only when the suite scored them the
same way. Whiskers show 95% bootstrap confidence intervals; compare two rows properly with
<code>harness compare RUN_A RUN_B</code> (paired bootstrap). Click a column header to sort.</p>
<noscript><p>This page needs JavaScript to draw its tables; the same data is in leaderboard.json.</p></noscript>
<div id="boards"></div>
<script type="application/json" id="leaderboard-data">@@DATA@@</script>
<script>
(function () {
  "use strict";
  var SVG = "http://www.w3.org/2000/svg";
  var data = JSON.parse(document.getElementById("leaderboard-data").textContent);

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) { node.className = className; }
    if (text !== undefined && text !== null) { node.textContent = String(text); }
    return node;
  }
  function svg(tag, attrs) {
    var node = document.createElementNS(SVG, tag);
    Object.keys(attrs).forEach(function (k) { node.setAttribute(k, String(attrs[k])); });
    return node;
  }
  function num(v, digits) {
    if (typeof v !== "number" || !isFinite(v)) { return "\\u2014"; }
    return Math.abs(v) >= 1000 ? v.toFixed(0) : v.toFixed(digits === undefined ? 3 : digits);
  }
  function text(v) { return v === null || v === undefined || v === "" ? "\\u2014" : String(v); }
  function primary(row, task) {
    var t = row.tasks[task.name];
    return t && t.metrics ? t.metrics[task.primary_metric] || null : null;
  }
  function when(row) { return typeof row.finished === "string" ? row.finished.replace("T", " ").slice(0, 16) : ""; }

  function contamination(row) {
    var d = row.decontamination || {};
    if (d.status === "clean") { return { key: "clean", label: "clean" }; }
    if (d.status === "contaminated") {
      return d.allow_contaminated ? { key: "allowed", label: "contaminated (allowed)" }
                                  : { key: "contaminated", label: "contaminated" };
    }
    return { key: "unchecked", label: "not checked" };
  }
  function contaminationNote(row) {
    var d = row.decontamination || {}, parts = [];
    Object.keys(d.tasks || {}).forEach(function (name) {
      var t = d.tasks[name];
      parts.push(name + ": " + (t.rate === null || t.rate === undefined ? "n/a" : num(t.rate, 4)) +
                 " (" + t.contaminated + "/" + t.indexed + ")");
    });
    return (d.threshold !== undefined ? "threshold " + d.threshold + "; " : "") + parts.join(", ");
  }

  // the scale of a task column: [0, 1] when every value and interval fits, else the data range
  function scaleOf(rows, task) {
    var lo = Infinity, hi = -Infinity;
    rows.forEach(function (row) {
      var m = primary(row, task);
      if (!m) { return; }
      [m.value].concat(m.ci95 || []).forEach(function (v) {
        if (typeof v === "number" && isFinite(v)) { lo = Math.min(lo, v); hi = Math.max(hi, v); }
      });
    });
    if (lo === Infinity) { return [0, 1]; }
    if (lo >= 0 && hi <= 1) { return [0, 1]; }
    if (hi - lo < 1e-12) { return [lo - 1, hi + 1]; }
    var pad = (hi - lo) * 0.05;
    return [lo - pad, hi + pad];
  }
  function whisker(m, scale) {
    var width = 96, height = 14, mid = height / 2;
    function x(v) { return 2 + (width - 4) * (v - scale[0]) / (scale[1] - scale[0]); }
    var box = svg("svg", { "class": "whisker", width: width, height: height, viewBox: "0 0 " + width + " " + height,
                           role: "img" });
    var title = svg("title", {});
    title.textContent = "95% CI [" + num(m.ci95[0], 4) + ", " + num(m.ci95[1], 4) + "], stderr " +
                        num(m.stderr, 4) + ", n = " + m.n;
    box.appendChild(title);
    box.appendChild(svg("line", { "class": "axis", x1: 2, x2: width - 2, y1: mid, y2: mid }));
    box.appendChild(svg("line", { "class": "range", x1: x(m.ci95[0]), x2: x(m.ci95[1]), y1: mid, y2: mid }));
    [m.ci95[0], m.ci95[1]].forEach(function (v) {
      box.appendChild(svg("line", { "class": "cap", x1: x(v), x2: x(v), y1: mid - 4, y2: mid + 4 }));
    });
    if (typeof m.value === "number") {
      box.appendChild(svg("circle", { "class": "point", cx: x(m.value), cy: mid, r: 2.5 }));
    }
    return box;
  }

  function definitions(pairs) {
    var dl = el("dl");
    pairs.forEach(function (p) { dl.appendChild(el("dt", null, p[0])); dl.appendChild(el("dd", "mono", text(p[1]))); });
    return dl;
  }
  function grid(header, rows) {
    var table = el("table"), head = el("tr");
    header.forEach(function (h) { head.appendChild(el("th", null, h)); });
    table.appendChild(head);
    rows.forEach(function (r) {
      var tr = el("tr");
      r.forEach(function (cell) { tr.appendChild(el("td", null, text(cell))); });
      table.appendChild(tr);
    });
    return table;
  }
  function metricList(metrics) {
    if (!metrics) { return null; }
    return Object.keys(metrics).map(function (k) {
      var m = metrics[k];
      return k + " " + num(m.value, 4) + (m.ci95 ? " [" + num(m.ci95[0], 4) + ", " + num(m.ci95[1], 4) + "]" : "") +
             " n=" + m.n;
    }).join("; ");
  }

  function drillDown(row) {
    var box = el("div", "drill"), model = row.model || {}, env = row.environment || {}, d = row.decontamination || {};
    box.appendChild(el("h4", null, "run"));
    var runPairs = [["run id", row.run_id], ["started", row.started], ["finished", row.finished],
                    ["wall time (s)", num(row.wall_time_s, 1)]];
    box.appendChild(definitions(runPairs));
    if (typeof row.record === "string" && row.record.indexOf("records/") === 0) {
      var link = el("a", "mono", "full record with per-item scores and samples");
      link.setAttribute("href", row.record);
      box.appendChild(link);
    }
    box.appendChild(el("h4", null, "model"));
    box.appendChild(definitions([["name", model.name], ["checkpoint", model.checkpoint],
      ["weight hash", model.weight_hash], ["base model", model.base_model], ["stage", model.stage],
      ["backend", model.backend], ["recipe", model.recipe], ["recipe fingerprint", model.recipe_fingerprint],
      ["checkpoint fingerprint", model.fingerprint], ["data fingerprints", (row.data_fingerprints || []).join(", ")]]));

    box.appendChild(el("h4", null, "lineage (root first)"));
    var lineage = row.lineage || [];
    if (!lineage.length) { box.appendChild(el("p", "empty", "base model: no training stages")); }
    var ol = el("ol", "lineage-stages");
    lineage.forEach(function (s) {
      ol.appendChild(el("li", "mono", s.stage + " [" + s.backend + "] from " + s.parent + " -> " + s.checkpoint +
        "; fingerprint " + s.fingerprint + "; data " + text(s.data_fingerprint) + " (" + text(s.data_rows) +
        " rows" + (s.data_dir ? ", " + s.data_dir : "") + "); recipe " + text(s.recipe)));
    });
    if (lineage.length) { box.appendChild(ol); }

    box.appendChild(el("h4", null, "tasks"));
    box.appendChild(grid(["task", "runner", "version", "data hash", "n", "metrics", "clean metrics", "warnings"],
      Object.keys(row.tasks || {}).map(function (name) {
        var t = row.tasks[name];
        return [name, t.runner, t.version, t.data_hash, t.n, metricList(t.metrics),
                t.clean_metrics ? metricList(t.clean_metrics) : null, (t.warnings || []).join("; ")];
      })));

    box.appendChild(el("h4", null, "decontamination: " + contamination(row).label));
    box.appendChild(definitions([["threshold", d.threshold], ["allow contaminated", String(!!d.allow_contaminated)],
      ["n-gram / coverage n-gram", text(d.ngram) + " / " + text(d.coverage_ngram)], ["coverage", d.coverage],
      ["normaliser version", d.normaliser_version], ["training documents", d.training_documents],
      ["training data", (d.training_data || []).join(", ")], ["runtime (s)", num(d.runtime_s, 1)]]));
    var dtasks = d.tasks || {};
    if (Object.keys(dtasks).length) {
      box.appendChild(grid(["task", "items", "indexed", "contaminated", "rate", "note"],
        Object.keys(dtasks).map(function (name) {
          var t = dtasks[name];
          return [name, t.items, t.indexed, t.contaminated, t.rate === null ? null : num(t.rate, 4), t.note];
        })));
      Object.keys(dtasks).forEach(function (name) {
        (dtasks[name].worst || []).forEach(function (w) {
          box.appendChild(el("p", "mono warn", name + " / " + w.item_id + " (" + w.test + ", coverage " +
            num(w.coverage, 2) + ", " + w.shared_ngrams + " shared n-grams): \\u201c" + w.item_snippet +
            "\\u201d ~ \\u201c" + w.document_snippet + "\\u201d"));
        });
      });
    }

    box.appendChild(el("h4", null, "environment"));
    var libs = env.libraries || {};
    box.appendChild(definitions([["python", env.python], ["platform", env.platform], ["device", env.device],
      ["harness commit", text(env.harness_commit) + (env.dirty ? " (uncommitted changes)" : "")],
      ["generation backend", env.generation_backend],
      ["libraries", Object.keys(libs).map(function (k) { return k + " " + text(libs[k]); }).join(", ")]]));
    return box;
  }

  function buildBoard(board) {
    var section = el("section", "board-section");
    section.setAttribute("data-suite", board.suite);
    section.setAttribute("data-fingerprint", board.fingerprint);
    section.appendChild(el("h2", null, board.suite));
    section.appendChild(el("p", "meta mono", "suite fingerprint " + board.fingerprint + " \\u00b7 " +
                                             board.rows.length + " run" + (board.rows.length === 1 ? "" : "s")));
    var table = el("table", "board"), head = el("tr"), thead = el("thead");
    var columns = [{ key: "model", label: "model", sub: "checkpoint", first: "ascending",
                     value: function (row) { return String((row.model || {}).name || "").toLowerCase(); } }];
    board.tasks.forEach(function (task) {
      columns.push({ key: "task:" + task.name, label: task.name, sub: task.primary_metric, first: "descending",
                     task: task, value: function (row) { var m = primary(row, task); return m ? m.value : null; } });
    });
    columns.push({ key: "contamination", label: "contamination", sub: "", first: null });
    columns.push({ key: "date", label: "date", sub: "finished (UTC)", first: "descending",
                   value: function (row) { var t = Date.parse(row.finished); return isNaN(t) ? null : t; } });

    var entries = board.rows.map(function (row, index) { return { row: row, index: index, body: null }; });
    var state = { key: null, direction: null };

    columns.forEach(function (column) {
      var th = el("th");
      th.setAttribute("data-key", column.key);
      if (column.task) { th.className = "task"; th.setAttribute("data-task", column.task.name); }
      if (column.first) {
        th.setAttribute("aria-sort", "none");
        var button = el("button", null, column.label);
        button.setAttribute("type", "button");
        button.addEventListener("click", function () { sortBy(column); });
        th.appendChild(button);
      } else {
        th.appendChild(document.createTextNode(column.label));
      }
      if (column.sub) { th.appendChild(el("span", "metric", column.sub)); }
      head.appendChild(th);
    });
    thead.appendChild(head);
    table.appendChild(thead);

    var scales = {};
    board.tasks.forEach(function (task) { scales[task.name] = scaleOf(board.rows, task); });
    entries.forEach(function (entry) {
      var row = entry.row, body = el("tbody", "entry"), tr = el("tr", "summary");
      body.setAttribute("data-run-id", row.run_id);
      var model = el("td", "model");
      model.appendChild(el("span", "name", (row.model || {}).name));
      model.appendChild(el("span", "checkpoint mono", (row.model || {}).checkpoint));
      tr.appendChild(model);
      board.tasks.forEach(function (task) {
        var td = el("td", "score"), m = primary(row, task);
        td.setAttribute("data-task", task.name);
        td.appendChild(el("span", "value", m ? num(m.value) : null));
        if (m && m.ci95 && m.ci95.length === 2) { td.appendChild(whisker(m, scales[task.name])); }
        tr.appendChild(td);
      });
      var status = contamination(row), badgeCell = el("td");
      var badge = el("span", "badge badge-" + status.key, status.label);
      badge.setAttribute("title", contaminationNote(row));
      badgeCell.appendChild(badge);
      tr.appendChild(badgeCell);
      tr.appendChild(el("td", "date mono", when(row)));
      body.appendChild(tr);

      var more = el("tr", "lineage"), cell = el("td"), details = el("details");
      cell.setAttribute("colspan", String(columns.length));
      details.appendChild(el("summary", null, "lineage and provenance"));
      details.appendChild(drillDown(row));
      cell.appendChild(details);
      more.appendChild(cell);
      body.appendChild(more);
      entry.body = body;
      table.appendChild(body);
    });

    // nulls always sink to the bottom; ties keep insertion order, so sorting is stable in both directions
    function sortBy(column) {
      var direction = state.key === column.key ? (state.direction === "ascending" ? "descending" : "ascending")
                                               : column.first;
      state = { key: column.key, direction: direction };
      var sign = direction === "ascending" ? 1 : -1;
      entries.sort(function (p, q) {
        var x = column.value(p.row), y = column.value(q.row);
        if (x === null || x === undefined) { return y === null || y === undefined ? p.index - q.index : 1; }
        if (y === null || y === undefined) { return -1; }
        if (x < y) { return -sign; }
        if (x > y) { return sign; }
        return p.index - q.index;
      });
      entries.forEach(function (entry) { table.appendChild(entry.body); });
      Array.prototype.forEach.call(head.children, function (th) {
        if (th.hasAttribute("aria-sort")) {
          th.setAttribute("aria-sort", th.getAttribute("data-key") === column.key ? direction : "none");
        }
      });
    }
    section.appendChild(table);
    return section;
  }

  var container = document.getElementById("boards"), runs = 0, last = "";
  (data.boards || []).forEach(function (board) {
    container.appendChild(buildBoard(board));
    runs += board.rows.length;
    board.rows.forEach(function (row) {
      if (typeof row.finished === "string" && row.finished > last) { last = row.finished; }
    });
  });
  // sweeps (`harness sweep run`): each sweep's rows grouped by point, with links to its report's plots
  function buildSweeps() {
    var groups = {}, order = [], reports = data.sweeps || {};
    function group(id, name) {
      if (!groups[id]) { groups[id] = { name: name, rows: [] }; order.push(id); }
      return groups[id];
    }
    (data.boards || []).forEach(function (board) {
      board.rows.forEach(function (row) {
        (row.sweeps || []).forEach(function (s) {
          group(s.id, s.name).rows.push({ point: s.point, coordinates: s.coordinates || {}, row: row, board: board });
        });
      });
    });
    Object.keys(reports).forEach(function (id) { group(id, reports[id].name); });
    order.forEach(function (id) {
      var g = groups[id], report = reports[id] || {}, section = el("section", "sweep");
      section.setAttribute("data-sweep", id);
      section.appendChild(el("h2", null, "Sweep " + g.name));
      section.appendChild(el("p", "meta", id + (report.recipe ? " \u00b7 recipe " + report.recipe : "") + " \u00b7 " +
                             g.rows.length + " evaluated point" + (g.rows.length === 1 ? "" : "s")));
      var safe = /^[A-Za-z0-9._\\/-]+$/;
      if (report.folder && safe.test(report.folder)) {
        var links = el("p", "meta", "report: ");
        ["report.txt"].concat(report.plots || []).forEach(function (file, i) {
          if (!safe.test(file)) { return; }
          var a = el("a", null, file);
          a.setAttribute("href", report.folder + "/" + file);
          if (i) { links.appendChild(document.createTextNode(" \u00b7 ")); }
          links.appendChild(a);
        });
        section.appendChild(links);
      }
      g.rows.sort(function (p, q) { return p.point - q.point; });
      section.appendChild(grid(["point", "coordinates", "model", "primary metrics"], g.rows.map(function (r) {
        var coords = Object.keys(r.coordinates).map(function (k) { return k + "=" + JSON.stringify(r.coordinates[k]); });
        var scores = r.board.tasks.map(function (task) {
          var m = primary(r.row, task);
          return task.name + " " + task.primary_metric + " " + (m ? num(m.value) : "\u2014");
        });
        return [r.point, coords.join(" "), (r.row.model || {}).name, scores.join("; ")];
      })));
      container.appendChild(section);
    });
  }
  buildSweeps();
  if (!runs) {
    container.appendChild(el("p", "empty", "No runs yet: `harness leaderboard add RECORD.json` adds one."));
  }
  document.getElementById("summary").textContent = runs + " run" + (runs === 1 ? "" : "s") + " on " +
    (data.boards || []).length + " board" + ((data.boards || []).length === 1 ? "" : "s") +
    (last ? "; latest finished " + last.replace("T", " ").slice(0, 16) + " UTC" : "");
  document.body.setAttribute("data-ready", "true");
})();
</script>
</body>
</html>
"""

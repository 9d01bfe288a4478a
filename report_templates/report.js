/* Sorting and filtering for the report's tables, without a framework. The page is complete
   without this script (the filters stay hidden); the CSP allows exactly this text by hash.

   Fast at 10,000 rows: each column's text is read from the DOM once and kept as sort keys, a
   sort orders those keys (not the rows), and a long table puts one window of matching rows into
   the page. Styling and laying out 10,000 rows of 9 cells costs Chromium over a second; a window
   of 200 costs a few milliseconds. The HTML holds every row (JavaScript off, WeasyPrint), printing
   puts every row back in the chosen order (beforeprint), and "Show all" shows them all. */
(function () {
  "use strict";
  var RANK = { critical: 0, high: 1, medium: 2, low: 3, info: 4 };
  var WINDOW = 200; // rows on screen at once in a long table (report.css: tr:nth-child(n+201))
  var tables = {}; // by table id, for the filters
  var all = [];

  function sortKey(text, type) {
    if (type === "num") {
      var n = parseFloat(text);
      return isNaN(n) ? Infinity : n;
    }
    if (type === "sev") {
      var r = RANK[text];
      return r === undefined ? 9 : r;
    }
    return text;
  }

  /* One table's rows (in document order as rendered), their current order and which match. */
  function Rows(table) {
    this.table = table;
    this.body = table.tBodies[0];
    this.rows = Array.prototype.slice.call(this.body.rows);
    this.order = this.rows.map(function (row, index) { return index; });
    this.match = this.rows.map(function () { return true; });
    this.texts = {}; // column -> lower-cased cell texts, by row index
    this.keys = {}; // column + type -> sort keys, by row index
    this.search = null; // lower-cased text of each whole row
    this.limit = WINDOW;
    this.shown = this.rows.length;
    this.pager = null;
    this.drawn = false;
    if (this.rows.length > WINDOW) {
      // Until the first sort or filter, CSS hides the rows past the window (table.fresh), so
      // opening the page moves no rows at all.
      table.classList.add("fresh");
      this.pager = makePager(this);
      this.pager.update();
    }
  }

  Rows.prototype.text = function (col) {
    var texts = this.texts[col];
    if (!texts) {
      texts = this.texts[col] = this.rows.map(function (row) {
        var cell = row.cells[col];
        return cell ? cell.textContent.trim().toLowerCase() : "";
      });
    }
    return texts;
  };

  Rows.prototype.sort = function (col, type, ascending) {
    var name = col + ":" + type;
    var keys = this.keys[name];
    if (!keys) {
      keys = this.keys[name] = this.text(col).map(function (text) { return sortKey(text, type); });
    }
    var sign = ascending ? 1 : -1;
    // Array.prototype.sort is stable: equal keys keep their current order, as before.
    this.order.sort(function (a, b) {
      var x = keys[a];
      var y = keys[b];
      return x < y ? -sign : (x > y ? sign : 0);
    });
    this.draw();
  };

  Rows.prototype.filter = function (conditions, query) {
    var columns = conditions.map(function (c) { return this.text(c[0]); }, this);
    if (query && !this.search) {
      this.search = this.rows.map(function (row) { return row.textContent.toLowerCase(); });
    }
    var shown = 0;
    for (var i = 0; i < this.rows.length; i += 1) {
      var visible = true;
      for (var c = 0; c < conditions.length && visible; c += 1) {
        var text = columns[c][i];
        visible = conditions[c][2] ? text.split(/,\s*/).indexOf(conditions[c][1]) !== -1
          : text === conditions[c][1];
      }
      if (visible && query) { visible = this.search[i].indexOf(query) !== -1; }
      this.match[i] = visible;
      if (visible) { shown += 1; }
    }
    this.shown = shown;
    this.draw();
  };

  /* Put the matching rows, in the current order and up to the window, into the table body.
     Rows outside the window wait outside the document (printing puts every row back). */
  Rows.prototype.draw = function () {
    var fragment = document.createDocumentFragment();
    var counted = 0;
    for (var p = 0; p < this.order.length && counted < this.limit; p += 1) {
      var index = this.order[p];
      if (this.match[index]) {
        counted += 1;
        var row = this.rows[index];
        if (row.hidden) { row.hidden = false; } // left hidden by a print of other matches
        fragment.appendChild(row);
      }
    }
    this.table.classList.remove("fresh");
    this.body.replaceChildren(fragment);
    this.drawn = true;
    if (this.pager) { this.pager.update(); }
  };

  /* Every row, in the current order: for printing, and whatever a print dialog asks for. */
  Rows.prototype.drawAll = function () {
    var fragment = document.createDocumentFragment();
    for (var p = 0; p < this.order.length; p += 1) {
      var row = this.rows[this.order[p]];
      row.hidden = !this.match[this.order[p]];
      fragment.appendChild(row);
    }
    this.body.replaceChildren(fragment);
  };

  function button(label, onClick) {
    var element = document.createElement("button");
    element.type = "button";
    element.textContent = label;
    element.addEventListener("click", onClick);
    return element;
  }

  /* "Rows 1-200 of 10,000 on screen" with buttons for more; printing shows every row. */
  function makePager(state) {
    var box = document.createElement("p");
    box.className = "pager";
    var status = document.createElement("span");
    status.setAttribute("aria-live", "polite");
    var more = button("Show " + WINDOW + " more", function () {
      state.limit += WINDOW;
      state.draw();
    });
    var all = button("Show all", function () {
      state.limit = Infinity;
      state.draw();
    });
    box.appendChild(status);
    box.appendChild(more);
    box.appendChild(all);
    state.table.parentNode.insertBefore(box, state.table.nextSibling);
    return {
      update: function () {
        var onScreen = Math.min(state.limit, state.shown);
        status.textContent = onScreen === state.shown
          ? "All " + state.shown + " matching rows on screen. "
          : "Rows 1–" + onScreen + " of " + state.shown + " on screen (printing shows all). ";
        more.hidden = all.hidden = onScreen === state.shown;
      }
    };
  }

  function makeSortable(table) {
    var state = new Rows(table);
    all.push(state);
    if (table.id) { tables[table.id] = state; }
    table.tHead.querySelectorAll("th").forEach(function (th, col) {
      var element = document.createElement("button");
      element.type = "button";
      while (th.firstChild) { element.appendChild(th.firstChild); }
      th.appendChild(element);
      element.addEventListener("click", function () {
        var ascending = th.getAttribute("aria-sort") !== "ascending";
        state.sort(col, th.getAttribute("data-type") || "text", ascending);
        table.tHead.querySelectorAll("th[aria-sort]").forEach(function (other) {
          other.removeAttribute("aria-sort");
        });
        th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
      });
    });
  }

  function applyFilters(tools, state) {
    var conditions = [];
    tools.querySelectorAll("select[data-col]").forEach(function (select) {
      if (select.value) {
        conditions.push([Number(select.getAttribute("data-col")), select.value.toLowerCase(),
          select.getAttribute("data-match") === "list"]);
      }
    });
    var input = tools.querySelector("input[data-text]");
    state.filter(conditions, input ? input.value.trim().toLowerCase() : "");
    var output = tools.querySelector("output");
    if (output) {
      var total = state.rows.length;
      output.textContent = state.shown === total ? total + " rows"
        : "Showing " + state.shown + " of " + total + " rows";
    }
  }

  function enableFilters(tools) {
    var id = tools.getAttribute("data-table");
    var table = document.getElementById(id);
    if (!table || !table.tBodies[0]) { return; }
    var state = tables[id];
    if (!state) {
      state = tables[id] = new Rows(table);
      all.push(state);
    }
    var run = function () { applyFilters(tools, state); };
    tools.querySelectorAll("select").forEach(function (select) { select.addEventListener("change", run); });
    var input = tools.querySelector("input[data-text]");
    // Filtering a window of rows is fast enough to follow every keystroke.
    if (input) { input.addEventListener("input", run); }
    tools.hidden = false;
    var output = tools.querySelector("output");
    if (output) { output.textContent = state.rows.length + " rows"; }
  }

  window.addEventListener("beforeprint", function () {
    all.forEach(function (state) { if (state.drawn) { state.drawAll(); } });
  });
  window.addEventListener("afterprint", function () {
    all.forEach(function (state) { if (state.drawn) { state.draw(); } });
  });
  document.querySelectorAll("table.sortable").forEach(function (table) {
    if (table.tHead && table.tBodies[0]) { makeSortable(table); }
  });
  document.querySelectorAll(".tools[data-table]").forEach(enableFilters);
  document.documentElement.setAttribute("data-ready", "1");
}());

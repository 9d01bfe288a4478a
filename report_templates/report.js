/* Sorting and filtering for the report's tables, without a framework. The page is complete
   without this script (the filters stay hidden); the CSP allows exactly this text by hash.

   Fast at 100,000 rows: a long table's cell texts are read from the DOM once, in slices while the
   page is idle; a sort ranks a column's distinct keys once and then orders row numbers by a
   counting sort; and a long table puts one window of matching rows into the page. Styling and
   laying out 10,000 rows of 9 cells costs Chromium over a second; a window of 200 a few
   milliseconds. The HTML holds every row (JavaScript off, WeasyPrint), printing puts every row
   back in the chosen order (beforeprint), and "Show all" shows them all. Sort and filter state
   is not written to the URL: the fragment stays the table of contents' anchors. */
(function () {
  "use strict";
  var RANK = { critical: 0, high: 1, medium: 2, low: 3, info: 4 };
  var WINDOW = 200; // rows on screen at once in a long table
  var SLICE = 8; // ms of reading a long table's cells per task while the page is idle
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

  /* One table's rows (in document order as rendered), their current order and which match.
     A long table reads its cells in slices while the page is idle (read), so the first sort or
     filter finds them read; an action before that reads what it needs at once. */
  function Rows(table) {
    this.table = table;
    this.body = table.tBodies[0];
    this.rows = Array.prototype.slice.call(this.body.rows);
    this.count = this.rows.length;
    this.cells = []; // column -> cell texts as written, by row index (filled by read)
    this.search = []; // lower-cased text of each whole row
    this.done = 0; // rows read so far
    this.order = new Int32Array(this.count); // row indices in the current order
    this.match = new Uint8Array(this.count).fill(1); // by row index: matches the current filter
    for (var i = 0; i < this.count; i += 1) { this.order[i] = i; }
    this.texts = {}; // column -> trimmed, lower-cased cell texts, by row index
    this.ranks = {}; // column + type -> each row's rank among the column's distinct sort keys
    this.limit = WINDOW;
    this.shown = this.count;
    this.sorted = ""; // "Sorted by User, ascending. " for the pager's live status
    this.pager = null;
    this.drawn = false;
    if (this.count > WINDOW) {
      // The rows past the window leave the document now, in one step (an empty copy of the
      // body takes its place), so neither scrolling to the table nor the first sort styles
      // 100,000 rows; the first window goes into the new body.
      var body = this.body.cloneNode(false);
      table.replaceChild(body, this.body);
      this.body = body;
      this.pager = makePager(this);
      this.draw();
      readWhileIdle(this);
    }
  }

  /* Read rows until ``deadline`` (performance.now(); none: to the end); true when all are read. */
  Rows.prototype.read = function (deadline) {
    var columns = this.cells;
    while (this.done < this.count) {
      var stop = Math.min(this.count, this.done + 250); // the clock is asked every 250 rows
      for (var index = this.done; index < stop; index += 1) {
        var row = this.rows[index];
        var whole = row.textContent;
        var cells = row.cells;
        // The roster puts a tab between its cells: one read and a split instead of 9 reads. Only
        // when the row is cells and separators alone and no cell holds a tab of its own.
        var texts = row.childNodes.length === 2 * cells.length - 1 ? whole.split("\t") : null;
        if (texts && texts.length !== cells.length) { texts = null; }
        for (var c = 0; c < cells.length; c += 1) {
          (columns[c] || (columns[c] = []))[index] = texts ? texts[c] : cells[c].textContent;
        }
        this.search[index] = whole.toLowerCase();
      }
      this.done = stop;
      if (deadline !== undefined && performance.now() >= deadline) { break; }
    }
    return this.done === this.count;
  };

  Rows.prototype.text = function (col) {
    var texts = this.texts[col];
    if (!texts) {
      var written = this.cells[col] || [];
      texts = this.texts[col] = new Array(this.count);
      for (var i = 0; i < this.count; i += 1) {
        var text = written[i];
        if (i >= this.done) { // not read yet: only this column's cell
          var cell = this.rows[i].cells[col];
          text = cell ? cell.textContent : "";
        }
        texts[i] = text === undefined ? "" : text.trim().toLowerCase();
      }
    }
    return texts;
  };

  /* Each row's rank among the column's distinct keys: sorting once per column, then every sort
     of that column is a counting sort of integers (a few ms for 100,000 rows). */
  Rows.prototype.rank = function (col, type) {
    var name = col + ":" + type;
    var ranked = this.ranks[name];
    if (!ranked) {
      var keys = this.text(col).map(function (text) { return sortKey(text, type); });
      var distinct = Array.from(new Set(keys));
      // Text keys in UTF-16 code-unit order, which is what < compares; numbers by value.
      if (type === "num" || type === "sev") {
        distinct.sort(function (a, b) { return a - b; });
      } else {
        distinct.sort();
      }
      var place = new Map();
      distinct.forEach(function (key, position) { place.set(key, position); });
      var ranks = new Int32Array(keys.length);
      for (var i = 0; i < keys.length; i += 1) { ranks[i] = place.get(keys[i]); }
      ranked = this.ranks[name] = { ranks: ranks, levels: distinct.length };
    }
    return ranked;
  };

  /* Stable: rows with equal keys keep their current order (so a sort by role after a sort by
     name orders each role's users by name), in either direction. */
  Rows.prototype.sort = function (col, type, ascending) {
    var ranked = this.rank(col, type);
    var ranks = ranked.ranks;
    var last = ranked.levels - 1;
    var starts = new Int32Array(ranked.levels + 1);
    var i;
    for (i = 0; i < ranks.length; i += 1) { starts[(ascending ? ranks[i] : last - ranks[i]) + 1] += 1; }
    for (i = 1; i < starts.length; i += 1) { starts[i] += starts[i - 1]; }
    var order = new Int32Array(ranks.length);
    for (var p = 0; p < this.order.length; p += 1) {
      var index = this.order[p];
      order[starts[ascending ? ranks[index] : last - ranks[index]]++] = index;
    }
    this.order = order;
    this.draw();
  };

  Rows.prototype.filter = function (conditions, query) {
    if (query) { this.read(); } // the whole rows' texts
    var columns = conditions.map(function (c) { return this.text(c[0]); }, this);
    // A list cell ("administrator, manager") matches each of its entries; few distinct texts.
    var lists = conditions.map(function () { return new Map(); });
    var shown = 0;
    for (var i = 0; i < this.count; i += 1) {
      var visible = true;
      for (var c = 0; c < conditions.length && visible; c += 1) {
        var text = columns[c][i];
        if (conditions[c][2]) {
          visible = lists[c].get(text);
          if (visible === undefined) {
            visible = text.split(/,\s*/).indexOf(conditions[c][1]) !== -1;
            lists[c].set(text, visible);
          }
        } else {
          visible = text === conditions[c][1];
        }
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

  /* A long table's cells are read in slices of about SLICE ms, each in its own task, so a click
     or a keystroke waits at most one slice; then each sortable column is ranked, one per task
     (tens of ms at 100,000 rows). A performance mark tells when all is done. */
  function readWhileIdle(state) {
    var headers = state.table.classList.contains("sortable") && state.table.tHead
      ? Array.prototype.slice.call(state.table.tHead.rows[0].cells) : [];
    var col = 0;
    var step = function () {
      if (!state.read(performance.now() + SLICE)) {
        setTimeout(step, 0);
      } else if (col < headers.length) {
        state.rank(col, headers[col].getAttribute("data-type") || "text");
        col += 1;
        setTimeout(step, 0);
      } else if (performance.mark) {
        performance.mark("rows-ready:" + (state.table.id || "table"));
      }
    };
    // After the load event: the slices must not hold up the page's opening.
    if (document.readyState === "complete") {
      setTimeout(step, 0);
    } else {
      window.addEventListener("load", function () { setTimeout(step, 0); });
    }
  }

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
        status.textContent = state.sorted + (onScreen === state.shown
          ? "All " + state.shown + " matching rows on screen. "
          : "Rows 1–" + onScreen + " of " + state.shown + " on screen (printing shows all). ");
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
        state.sorted = "Sorted by " + th.textContent.trim() + ", " + (ascending ? "ascending" : "descending") + ". ";
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
      var total = state.count;
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
    if (output) { output.textContent = state.count + " rows"; }
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

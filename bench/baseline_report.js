/* Sorting and filtering for the report's tables, without a framework. The page is complete
   without this script (the filters stay hidden); the CSP allows exactly this text by hash. */
(function () {
  "use strict";
  var RANK = { critical: 0, high: 1, medium: 2, low: 3, info: 4 };

  function cellText(row, col) {
    var cell = row.cells[col];
    return cell ? cell.textContent.trim() : "";
  }

  function sortKey(text, type) {
    if (type === "num") {
      var n = parseFloat(text);
      return isNaN(n) ? Infinity : n;
    }
    if (type === "sev") {
      var r = RANK[text.toLowerCase()];
      return r === undefined ? 9 : r;
    }
    return text.toLowerCase();
  }

  function sortTable(table, th, col) {
    var body = table.tBodies[0];
    var type = th.getAttribute("data-type") || "text";
    var ascending = th.getAttribute("aria-sort") !== "ascending";
    var keyed = Array.prototype.map.call(body.rows, function (row, index) {
      return [sortKey(cellText(row, col), type), index, row];
    });
    keyed.sort(function (a, b) {
      if (a[0] < b[0]) { return ascending ? -1 : 1; }
      if (a[0] > b[0]) { return ascending ? 1 : -1; }
      return a[1] - b[1];
    });
    table.tHead.querySelectorAll("th").forEach(function (other) { other.removeAttribute("aria-sort"); });
    th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
    // Reorder while the body is detached: one layout afterwards instead of one per moved row.
    var next = body.nextSibling;
    table.removeChild(body);
    keyed.forEach(function (entry) { body.appendChild(entry[2]); });
    table.insertBefore(body, next);
  }

  function makeSortable(table) {
    table.tHead.querySelectorAll("th").forEach(function (th, col) {
      var button = document.createElement("button");
      button.type = "button";
      while (th.firstChild) { button.appendChild(th.firstChild); }
      th.appendChild(button);
      button.addEventListener("click", function () { sortTable(table, th, col); });
    });
  }

  function applyFilters(tools, table) {
    var conditions = [];
    tools.querySelectorAll("select[data-col]").forEach(function (select) {
      if (select.value) {
        conditions.push([Number(select.getAttribute("data-col")), select.value.toLowerCase(),
          select.getAttribute("data-match") === "list"]);
      }
    });
    var input = tools.querySelector("input[data-text]");
    var query = input ? input.value.trim().toLowerCase() : "";
    var rows = table.tBodies[0].rows;
    var shown = 0;
    for (var i = 0; i < rows.length; i += 1) {
      var row = rows[i];
      var visible = true;
      for (var c = 0; c < conditions.length && visible; c += 1) {
        var text = cellText(row, conditions[c][0]).toLowerCase();
        visible = conditions[c][2] ? text.split(/,\s*/).indexOf(conditions[c][1]) !== -1
          : text === conditions[c][1];
      }
      if (visible && query) {
        if (row.searchText === undefined) { row.searchText = row.textContent.toLowerCase(); }
        visible = row.searchText.indexOf(query) !== -1;
      }
      row.hidden = !visible;
      if (visible) { shown += 1; }
    }
    var output = tools.querySelector("output");
    if (output) {
      output.textContent = shown === rows.length ? rows.length + " rows"
        : "Showing " + shown + " of " + rows.length + " rows";
    }
  }

  function enableFilters(tools) {
    var table = document.getElementById(tools.getAttribute("data-table"));
    if (!table) { return; }
    var timer = 0;
    var run = function () { applyFilters(tools, table); };
    tools.querySelectorAll("select").forEach(function (select) { select.addEventListener("change", run); });
    var input = tools.querySelector("input[data-text]");
    if (input) {
      input.addEventListener("input", function () {
        clearTimeout(timer);
        timer = setTimeout(run, 120);
      });
    }
    tools.hidden = false;
    var output = tools.querySelector("output");
    if (output) { output.textContent = table.tBodies[0].rows.length + " rows"; }
  }

  document.querySelectorAll("table.sortable").forEach(makeSortable);
  document.querySelectorAll(".tools[data-table]").forEach(enableFilters);
  document.documentElement.setAttribute("data-ready", "1");
}());

/* Sort the rows of a table that a page shows whole (table[data-sortable]) by any numeric
 * column, in the browser: a click on its heading, or Enter/Space on it (it takes the focus).
 * The organizations list, which is paginated, sorts on the server instead. Totals stay in
 * <tfoot>; headings say their order through aria-sort, like the server-sorted ones. */
(function () {
  "use strict";

  // "1,234", "−5", "80.0 %", "12.50 USD" -> a number; "—" or text -> null (sorted last).
  function valueOf(cell) {
    if (!cell) {
      return null;
    }
    var raw = cell.getAttribute("data-value");
    var text = raw !== null ? raw : cell.textContent;
    var cleaned = text.replace(/\u2212/g, "-").replace(/[^0-9.\-]/g, "");
    if (cleaned === "" || cleaned === "-" || cleaned === ".") {
      return null;
    }
    var number = parseFloat(cleaned);
    return isNaN(number) ? null : number;
  }

  function sortBy(table, headings, index, order) {
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    rows.forEach(function (row, position) { row.__position = position; });
    rows.sort(function (a, b) {
      var x = valueOf(a.cells[index]);
      var y = valueOf(b.cells[index]);
      if (x === null || y === null) {
        return x === y ? a.__position - b.__position : (x === null ? 1 : -1);
      }
      var difference = order === "ascending" ? x - y : y - x;
      return difference !== 0 ? difference : a.__position - b.__position;
    });
    rows.forEach(function (row) { body.appendChild(row); });
    headings.forEach(function (th) {
      var sorted = th.cellIndex === index;
      th.setAttribute("aria-sort", sorted ? order : "none");
      var arrow = th.querySelector(".sort__arrow");
      arrow.textContent = sorted ? (order === "ascending" ? "▲" : "▼") : "↕";
      th.classList.toggle("is-sorted", sorted);
    });
  }

  function enhance(table) {
    var head = table.tHead;
    if (!head || !table.tBodies.length) {
      return;
    }
    var row = head.rows[head.rows.length - 1];
    var headings = Array.prototype.filter.call(row.cells, function (th) {
      return th.classList.contains("num");
    });
    headings.forEach(function (th) {
      // The heading itself takes the focus and the click: its layout stays a heading's
      // (a button inside it would change how the printed table repeats its header).
      var arrow = document.createElement("span");
      arrow.className = "sort__arrow";
      arrow.setAttribute("aria-hidden", "true");
      arrow.textContent = "↕";
      th.appendChild(arrow);
      th.classList.add("sortable");
      th.tabIndex = 0;
      th.setAttribute("aria-sort", "none");
      th.title = "Sort by this column";
      function toggle() {
        // Largest first on the first click, as the server-sorted figures do.
        var order = th.getAttribute("aria-sort") === "descending" ? "ascending" : "descending";
        sortBy(table, headings, th.cellIndex, order);
      }
      th.addEventListener("click", toggle);
      th.addEventListener("keydown", function (event) {
        if (event.key === "Enter" || event.key === " ") {
          event.preventDefault();
          toggle();
        }
      });
    });
  }

  function enhanceAll() {
    Array.prototype.forEach.call(document.querySelectorAll("table[data-sortable]"), enhance);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", enhanceAll);
  } else {
    enhanceAll();
  }
})();

/* Draw every figure a page embeds as <script type="application/json" class="js-figure">.
 * The figures come from app/charts.py; this file is the only script the pages run
 * besides plotly.js itself (the content security policy allows no inline script). */
(function () {
  "use strict";

  // The toolbar keeps data on this server: a PNG made in the browser (and zoom and reset
  // on a chart whose axes allow it). plotly.js 4 shows a "Share chart" button by default
  // (showSendToCloud), which opens Plotly Cloud with the figure in a new window: it is
  // turned off and removed, with every other button whose action leaves the page
  // (tests/test_browser.py clicks every button of every chart).
  var CONFIG = {
    responsive: true,
    displaylogo: false,
    // On a phone the toolbar would cover the legend: none there (no hover either).
    displayModeBar: window.matchMedia("(max-width: 720px)").matches ? false : "hover",
    showSendToCloud: false,
    showEditInChartStudio: false,
    showLink: false,
    modeBarButtonsToRemove: [
      "select2d", "lasso2d", "autoScale2d", "toggleSpikelines",
      "sendChartToCloud", "sendDataToCloud", "editInChartStudio", "downloadJson"
    ],
    toImageButtonOptions: { format: "png", scale: 2 }
  };

  // Every chart drawn so far (its graph div), for refit().
  var drawn = [];

  // Charts take their container's width. On screen plotly.js follows the window
  // (responsive); on paper the page is narrower than the window it was drawn in, and no
  // resize event says so. While the print layout is in place (Chromium and Safari switch
  // the "print" media query before they paginate, and paint what this listener draws), each
  // chart is redrawn at its printed width; when printing ends, back to the screen's.
  var PRINT = window.matchMedia("print");

  // A chart may be printed lower than it is shown (never higher): print.css gives the
  // height, in px, as the custom property --print-height of the chart's box (the
  // overview's small charts, one a row on paper); the figure's own height is kept in
  // data-height to come back to.
  function printHeight(gd, screenHeight) {
    var value = parseFloat(window.getComputedStyle(gd).getPropertyValue("--print-height"));
    if (!(value > 0)) {
      return null;
    }
    return screenHeight ? Math.min(value, screenHeight) : value;
  }

  function refit() {
    if (typeof Plotly === "undefined") {
      return;
    }
    drawn.forEach(function (gd) {
      var width = Math.floor(gd.getBoundingClientRect().width);
      if (width > 0) {
        // An explicit width while printing; none afterwards (autosize: the container's).
        var update = { width: PRINT.matches ? width : null };
        var screenHeight = parseFloat(gd.getAttribute("data-height")) || null;
        var paperHeight = PRINT.matches ? printHeight(gd, screenHeight) : null;
        if (paperHeight || screenHeight) {
          update.height = paperHeight || screenHeight;
        }
        Plotly.relayout(gd, update);
        // plotly.js 4.1.1 places a legend by the margins the chart had before the resize:
        // a legend that goes from two rows to one (a wider chart) is left over the plot.
        // Placing it once more, at the same spot, puts it above the plot again.
        var legend = gd.layout.showlegend && gd.layout.legend;
        if (legend && typeof legend.y === "number") {
          Plotly.relayout(gd, { "legend.y": legend.y });
        }
      }
    });
  }

  if (PRINT.addEventListener) {
    PRINT.addEventListener("change", refit);
  }

  function isLocalPath(href) {
    return typeof href === "string" && href.charAt(0) === "/" && href.charAt(1) !== "/";
  }

  function draw(holder) {
    var target = document.getElementById(holder.getAttribute("data-target"));
    if (!target) {
      return;
    }
    var figure;
    try {
      figure = JSON.parse(holder.textContent);
    } catch (err) {
      target.textContent = "This chart could not be read.";
      throw err;
    }
    var layout = figure.layout || {};
    if (layout.height) {
      target.setAttribute("data-height", String(layout.height));
    }
    Plotly.newPlot(target, figure.data || [], layout, CONFIG).then(function (gd) {
      target.setAttribute("data-drawn", "true");
      drawn.push(gd);
      // A screen reader gets the chart's "Show data" table, not the SVG's loose tick labels;
      // the toolbar's buttons, which have names, stay in reach of the keyboard.
      Array.prototype.forEach.call(gd.querySelectorAll("svg.main-svg"), function (svg) {
        svg.setAttribute("aria-hidden", "true");
      });
      // Bars whose customdata carries a page path (top organizations) open that page.
      gd.on("plotly_click", function (event) {
        var point = event && event.points && event.points[0];
        var data = point && point.customdata;
        var href = Array.isArray(data) ? data[data.length - 1] : null;
        if (isLocalPath(href)) {
          window.location.assign(href);
        }
      });
    });
  }

  function drawAll() {
    if (typeof Plotly === "undefined") {
      return;
    }
    var holders = document.querySelectorAll('script.js-figure[type="application/json"]');
    var index = 0;
    // One chart per task, with a frame painted in between: the first chart shows as soon
    // as it is drawn instead of after the whole page's charts.
    function next() {
      if (index >= holders.length) {
        return;
      }
      var holder = holders[index];
      index += 1;
      try {
        draw(holder);
      } finally {
        if (index < holders.length) {
          window.requestAnimationFrame(function () { window.setTimeout(next, 0); });
        }
      }
    }
    next();
  }

  // Loaded with defer (templates/_macros/ui.html), this file runs once the page is parsed,
  // just before DOMContentLoaded: the figures are all there. Loaded otherwise, it waits.
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", drawAll);
  } else {
    drawAll();
  }
})();

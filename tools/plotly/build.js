/* Build static/vendor/plotly-bar-scatter-<version>.min.js from the npm package plotly.js.
 *
 *   cd tools/plotly && npm ci && node build.js
 *
 * plotly.js's own core (src/core.js) registers the scatter trace and every component;
 * this build takes that file as it is in the installed package, leaves out the components
 * no chart of app/charts.py uses (they would be parsed, run and given defaults on every
 * page), registers the bar trace, and bundles it with esbuild the way plotly.js's
 * esbuild-config.js does (IIFE, global `Plotly`, es2016). Each left-out line must be found
 * in core.js, so an upgrade that moves them fails here instead of building something else.
 * The result is byte for byte reproducible from package-lock.json; its sha256 is recorded
 * in static/vendor/README.md and checked by tests/test_static.py.
 */
"use strict";

const crypto = require("crypto");
const fs = require("fs");
const path = require("path");
const esbuild = require("esbuild");

// Drawn by no chart (app/charts.py): no annotations, images, menus, sliders, range
// sliders or selectors, subplot grids, error bars, 3D, box or lasso selection (the
// toolbar's select buttons are removed in static/js/charts.js), pie. Shapes stay: the
// legend and the hover code read the layout's shapes even when there are none.
const LEFT_OUT = [
  "annotations", "annotations3d", "selections", "images", "updatemenus", "sliders",
  "rangeslider", "rangeselector", "grid", "errorbars",
];

const pkgDir = path.dirname(require.resolve("plotly.js/package.json"));
const version = require("plotly.js/package.json").version;
const vendor = path.resolve(__dirname, "../../static/vendor");
const outfile = path.join(vendor, `plotly-bar-scatter-${version}.min.js`);

let core = fs.readFileSync(path.join(pkgDir, "src/core.js"), "utf8");
for (const name of LEFT_OUT) {
  const line = `    require('./components/${name}'),\n`;
  if (!core.includes(line)) {
    throw new Error(`src/core.js of plotly.js ${version} has no line ${JSON.stringify(line)}`);
  }
  core = core.replace(line, "");
}
core = core.replace(/require\('\.\.?\//g, (m) =>
  m === "require('./" ? "require('plotly.js/src/" : "require('plotly.js/");

const work = fs.mkdtempSync(path.join(require("os").tmpdir(), "plotly-build-"));
fs.writeFileSync(path.join(work, "core.js"), core);
fs.writeFileSync(
  path.join(work, "index.js"),
  "'use strict';\nvar Plotly = require('./core');\n" +
    "Plotly.register([require('plotly.js/lib/bar')]);\nmodule.exports = Plotly;\n",
);

esbuild
  .build({
    entryPoints: [path.join(work, "index.js")],
    nodePaths: [path.resolve(__dirname, "node_modules")],
    outfile,
    bundle: true,
    format: "iife",
    globalName: "Plotly",
    minify: true,
    target: "es2016",
    define: { global: "window", "define.amd": "false" },
    // src/registry.js requires maplibre-gl's CSS for map subplots only: not in this bundle.
    loader: { ".css": "empty" },
    legalComments: "eof",
    banner: {
      js:
        `/**\n* plotly.js (bar, scatter - minified) v${version}\n` +
        "* Copyright 2012-2026, Plotly, Inc.\n* All rights reserved.\n" +
        "* Licensed under the MIT license\n" +
        "* Built by tools/plotly/build.js: the bar and scatter traces, without the components" +
        ` ${LEFT_OUT.join(", ")}\n*/`,
    },
    logLevel: "warning",
  })
  .then(() => {
    const bytes = fs.readFileSync(outfile);
    const sha = crypto.createHash("sha256").update(bytes).digest("hex");
    console.log(`${path.relative(process.cwd(), outfile)}: ${bytes.length} bytes, sha256 ${sha}`);
  })
  .finally(() => fs.rmSync(work, { recursive: true, force: true }));

// The case map: the reader's grid polygons drawn from the GeoJSON as SVG,
// the queue's cases as points over them (same filters), pan and zoom.
"use strict";

(function (G) {
  var T = G.T, h = G.h, svg = G.svg;
  var PER_PAGE = 200;
  var MAX_PAGES = 5;
  var LEVELS = ["city", "county", "township", "village", "grid", "micro_grid"];
  var DONE = ["resolved", "verified", "rated", "closed", "cancelled"];
  var WAITING = ["submitted", "received"];

  function group(c) {
    if (c.overdue) return "overdue";
    if (DONE.indexOf(c.status) >= 0) return "done";
    if (WAITING.indexOf(c.status) >= 0) return "waiting";
    return "open";
  }

  function fetchCases(filters) {
    var all = [];
    function page(n) {
      return G.api("/v1/centre/cases?" + G.filterQuery(filters, { page: n, per_page: PER_PAGE }))
        .then(function (data) {
          all = all.concat(data.cases);
          if (n * PER_PAGE < data.total && n < MAX_PAGES) return page(n + 1);
          return { cases: all, total: data.total };
        });
    }
    return page(1);
  }

  // Wheel and buttons zoom around a point, dragging pans: all by moving the
  // viewBox, so the outlines stay sharp at any scale.
  function panZoom(el, initial, onScale) {
    var box = initial.slice();
    function apply() {
      el.setAttribute("viewBox", box.join(" "));
      onScale(box[2] / initial[2]);
    }
    function zoom(factor, cx, cy) {
      var nw = Math.min(initial[2] * 4, Math.max(initial[2] / 64, box[2] * factor));
      var f = nw / box[2];
      box = [cx - (cx - box[0]) * f, cy - (cy - box[1]) * f, box[2] * f, box[3] * f];
      apply();
    }
    function toBox(clientX, clientY) {
      var r = el.getBoundingClientRect();
      return [box[0] + (clientX - r.left) / r.width * box[2], box[1] + (clientY - r.top) / r.height * box[3]];
    }
    el.addEventListener("wheel", function (e) {
      e.preventDefault();
      var p = toBox(e.clientX, e.clientY);
      zoom(e.deltaY > 0 ? 1.25 : 0.8, p[0], p[1]);
    }, { passive: false });
    var drag = null;
    el.addEventListener("pointerdown", function (e) {
      if (e.target.closest && e.target.closest("a")) return;
      drag = { x: e.clientX, y: e.clientY, box: box.slice() };
      el.setPointerCapture(e.pointerId);
      el.classList.add("dragging");
    });
    el.addEventListener("pointermove", function (e) {
      if (!drag) return;
      var r = el.getBoundingClientRect();
      box[0] = drag.box[0] - (e.clientX - drag.x) / r.width * box[2];
      box[1] = drag.box[1] - (e.clientY - drag.y) / r.height * box[3];
      apply();
    });
    function end() { drag = null; el.classList.remove("dragging"); }
    el.addEventListener("pointerup", end);
    el.addEventListener("pointercancel", end);
    return {
      zoomIn: function () { zoom(0.66, box[0] + box[2] / 2, box[1] + box[3] / 2); },
      zoomOut: function () { zoom(1.5, box[0] + box[2] / 2, box[1] + box[3] / 2); },
      reset: function () { box = initial.slice(); apply(); }
    };
  }

  G.frame("map", "map_title").then(function (ctx) {
    var main = ctx.main;
    var filters = G.readFilters();
    return Promise.all([G.grids(), G.api("/v1/centre/departments"), fetchCases(filters)]).then(function (got) {
      var map = got[0], departments = got[1], found = got[2];
      var shapes = map.features.filter(function (f) { return f.geometry; });
      shapes.sort(function (a, b) {
        return LEVELS.indexOf(a.properties.level) - LEVELS.indexOf(b.properties.level);
      });
      var placed = found.cases.filter(function (c) { return c.lat !== null && c.lon !== null; });
      // The first view fits the grids and the cases, not the whole county
      // around them: grids are where the work is.
      var grids = shapes.filter(function (f) {
        return f.properties.level === "grid" || f.properties.level === "micro_grid";
      });
      // A case in no grid may be far away (a point in another city): it is
      // drawn, and listed under the map, but does not set the first view.
      var inGrids = placed.filter(function (c) { return !c.unplaced; });
      var unplaced = found.cases.filter(function (c) { return c.unplaced; });
      var b = G.bounds(grids.length ? grids : shapes, inGrids.map(function (c) { return [c.lon, c.lat]; }));
      var legend = h("ul", { class: "legend" }, ["waiting", "open", "overdue", "done", "unplaced"].map(function (g) {
        return h("li", {}, h("span", { class: "dot " + g }), T("legend_" + g));
      }));
      G.append(main, [
        h("h1", {}, T("map_title")),
        G.filterForm(map, departments, filters, ctx.me, function (f) {
          location.search = G.filterQuery(f);
        })
      ]);
      if (!b) {
        main.appendChild(h("p", { class: "empty" }, T("case_no_position")));
        return;
      }
      var project = G.projection(b);
      var corner = project(b[2], b[1]);
      var margin = Math.max(corner[0], corner[1]) * 0.08;
      var initial = [-margin, -margin, corner[0] + 2 * margin, corner[1] + 2 * margin];
      var baseR = Math.max(initial[2], initial[3]) / 140;
      var points = placed.map(function (c) {
        var xy = project(c.lon, c.lat);
        return svg("a", { href: "/centre/cases/" + encodeURIComponent(c.case_id), class: "case-link" },
          svg("circle", { cx: xy[0], cy: xy[1], r: baseR, class: "case-dot " + group(c) + (c.unplaced ? " unplaced" : ""),
            "data-case": c.case_id, "data-unplaced": c.unplaced ? "true" : null },
            svg("title", {}, c.title + " · " + G.status(c.status) + (c.unplaced ? " · " + T("unplaced") : ""))));
      });
      // Grid names at the middle of each grid's outline, sized like the dots.
      var labels = svg("g", { class: "unit-labels" }, grids.filter(function (f) {
        return f.properties.level === "grid";
      }).map(function (f) {
        var gb = G.bounds([f]);
        var c = project((gb[0] + gb[2]) / 2, (gb[1] + gb[3]) / 2);
        return svg("text", { x: c[0], y: c[1], "text-anchor": "middle", "font-size": baseR * 2.2 }, f.properties.name);
      }));
      var layer = svg("g", { class: "cases" }, points);
      var el = svg("svg", { class: "case-map", viewBox: initial.join(" "), role: "img", "aria-label": T("map_title") },
        svg("g", { class: "units" }, shapes.map(function (f) {
          return G.unitPath(f, project, { "vector-effect": "non-scaling-stroke" });
        })),
        labels,
        layer);
      // Dots and names keep their size on screen (7 px, 12 px) at any zoom
      // and on any screen: sized in map units per screen pixel.
      function keepSizes() {
        var rect = el.getBoundingClientRect();
        var box = el.viewBox.baseVal;
        if (!rect.width || !rect.height) return;
        var perPx = Math.max(box.width / rect.width, box.height / rect.height);
        Array.prototype.forEach.call(layer.querySelectorAll("circle"), function (c) {
          c.setAttribute("r", 7 * perPx);
        });
        Array.prototype.forEach.call(labels.querySelectorAll("text"), function (t) {
          t.setAttribute("font-size", 12 * perPx);
        });
      }
      var control = panZoom(el, initial, keepSizes);
      window.addEventListener("resize", keepSizes);
      G.append(main, [
        h("div", { class: "map-bar" },
          h("span", { class: "muted", id: "map-count" }, T("map_count", placed.length, found.cases.length - placed.length)),
          found.total > found.cases.length ? h("span", { class: "muted" }, T("map_more", found.cases.length)) : null,
          legend,
          h("div", { class: "buttons" },
            h("button", { type: "button", onclick: control.zoomIn, "aria-label": T("map_zoom_in") }, "+"),
            h("button", { type: "button", onclick: control.zoomOut, "aria-label": T("map_zoom_out") }, "−"),
            h("button", { type: "button", onclick: control.reset }, T("map_reset")))),
        h("div", { class: "map-frame" }, el),
        unplaced.length ? h("section", { class: "card", id: "map-unplaced" },
          h("h2", {}, T("unplaced_count", unplaced.length)),
          h("p", { class: "muted small" }, T("unplaced_hint")),
          h("ul", {}, unplaced.map(function (c) {
            return h("li", {}, h("a", { href: "/centre/cases/" + encodeURIComponent(c.case_id) }, c.title));
          }))) : null
      ]);
      keepSizes();
    }).catch(function (err) { G.showError(main, err); });
  });
})(Gridcase);

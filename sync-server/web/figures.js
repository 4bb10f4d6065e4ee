// The figures: closure, on-time and satisfaction rates for an area and
// period, broken down by status, month, department, area and category, the
// department ranking and the early warnings, as SVG charts; and the export.
//
// Chart positions along x are percentages and along y pixels, so a chart
// fills any width (1366 px or a phone) with its text at a readable size.
"use strict";

(function (G) {
  var T = G.T, h = G.h, svg = G.svg;

  function pad(n) { return (n < 10 ? "0" : "") + n; }

  // The current month and the eleven before it, as dates on the
  // deployment's clock (the API reads dates on it too).
  function defaultPeriod() {
    var today = G.localDate(Date.now());
    var year = parseInt(today.slice(0, 4), 10), month = parseInt(today.slice(5, 7), 10) - 11;
    while (month < 1) { month += 12; year -= 1; }
    return { from: year + "-" + pad(month) + "-01", to: today };
  }

  // Rows of {label, value, text}: a label and value line with a bar under it.
  function barChart(rows, max, cls) {
    if (!rows.length) return h("p", { class: "muted" }, T("chart_no_data"));
    var rowH = 34;
    max = max || Math.max.apply(null, rows.map(function (r) { return r.value; }).concat([1]));
    return svg("svg", { class: "chart bars " + (cls || ""), width: "100%", height: rows.length * rowH, role: "img" },
      rows.map(function (r, i) {
        var y = i * rowH;
        var w = max > 0 ? Math.max(0, r.value / max) * 100 : 0;
        return svg("g", { class: "bar-row" },
          svg("text", { x: 0, y: y + 13, class: "label" }, r.label),
          svg("text", { x: "100%", y: y + 13, "text-anchor": "end", class: "value" }, r.text),
          svg("rect", { x: 0, y: y + 18, width: "100%", height: 9, rx: 3, class: "track" }),
          svg("rect", { x: 0, y: y + 18, width: w.toFixed(2) + "%", height: 9, rx: 3, class: "bar" }));
      }));
  }

  // Months: a column of cases for each, and the closure rate as a line.
  function monthChart(lines) {
    if (!lines.length) return h("p", { class: "muted" }, T("chart_no_data"));
    var height = 200, top = 16, bottom = 24, plot = height - top - bottom;
    var n = lines.length;
    var max = Math.max.apply(null, lines.map(function (l) { return l.cases; }).concat([1]));
    // At least six slots, so one month is a column, not a wall.
    var step = 100 / Math.max(n, 6);
    var offset = (100 - n * step) / 2;
    var parts = [
      svg("line", { x1: 0, x2: "100%", y1: top + plot, y2: top + plot, class: "axis" })
    ];
    var previous = null;
    lines.forEach(function (l, i) {
      var x = offset + i * step;
      var bh = l.cases / max * plot;
      parts.push(svg("rect", { x: (x + step * 0.2).toFixed(2) + "%", y: top + plot - bh, width: (step * 0.6).toFixed(2) + "%",
        height: bh, class: "bar" }, svg("title", {}, l.key + ": " + l.cases)));
      var inside = bh > 20;
      parts.push(svg("text", { x: (x + step / 2).toFixed(2) + "%", y: inside ? top + plot - 6 : top + plot - bh - 3,
        "text-anchor": "middle", class: inside ? "value inside" : "value" }, String(l.cases)));
      parts.push(svg("text", { x: (x + step / 2).toFixed(2) + "%", y: height - 6, "text-anchor": "middle", class: "label" },
        (l.key || "").slice(n > 6 ? 5 : 0)));
      if (l.closure_rate !== null && l.closure_rate !== undefined) {
        var point = { x: (x + step / 2).toFixed(2) + "%", y: top + plot - l.closure_rate * plot };
        if (previous) parts.push(svg("line", { x1: previous.x, y1: previous.y, x2: point.x, y2: point.y, class: "rate-line" }));
        parts.push(svg("circle", { cx: point.x, cy: point.y, r: 4, class: "rate-dot" },
          svg("title", {}, T("legend_rate") + " " + G.percent(l.closure_rate))));
        previous = point;
      }
    });
    return h("div", {},
      svg("svg", { class: "chart months", width: "100%", height: height, role: "img" }, parts),
      h("ul", { class: "legend" },
        h("li", {}, h("span", { class: "swatch bar" }), T("legend_cases")),
        h("li", {}, h("span", { class: "swatch rate" }), T("legend_rate"))));
  }

  function kpi(id, label, value, detail) {
    return h("div", { class: "kpi", id: id },
      h("div", { class: "kpi-label" }, T(label)),
      h("div", { class: "kpi-value" }, value),
      h("div", { class: "muted small" }, detail));
  }

  function tallyRows(lines, name) {
    return lines.filter(function (l) { return l.cases > 0; }).map(function (l) {
      return { label: name(l), value: l.cases, text: l.cases + " · " + T("col_closure") + " " + G.percent(l.closure_rate) };
    });
  }

  function card(title, body, wide) {
    return h("section", { class: "card chart-card" + (wide ? " wide" : "") }, h("h2", {}, T(title)), body);
  }

  G.frame("figures", "figures_title").then(function (ctx) {
    var main = ctx.main;
    var params = new URLSearchParams(location.search);
    var period = defaultPeriod();
    var chosen = {
      unit: params.get("unit") || "",
      from: params.get("from") || period.from,
      to: params.get("to") || period.to
    };
    return G.grids().then(function (map) {
      var units = map.features.filter(function (f) { return f.properties.level !== "micro_grid"; });
      var form = h("form", { class: "filters", method: "get" },
        h("label", { class: "field" }, h("span", {}, T("figures_unit")),
          h("select", { name: "unit", id: "f-unit" },
            h("option", { value: "" }, T("filter_any")),
            units.map(function (f) {
              return h("option", { value: f.properties.id, selected: f.properties.id === chosen.unit }, f.properties.name);
            }))),
        h("label", { class: "field" }, h("span", {}, T("figures_from")),
          h("input", { type: "date", name: "from", id: "f-from", value: chosen.from })),
        h("label", { class: "field" }, h("span", {}, T("figures_to")),
          h("input", { type: "date", name: "to", id: "f-to", value: chosen.to })),
        h("div", { class: "buttons" }, h("button", { type: "submit", class: "primary" }, T("figures_apply"))));
      G.append(main, [h("h1", {}, T("figures_title")), form]);
      var query = new URLSearchParams();
      Object.keys(chosen).forEach(function (k) { if (chosen[k]) query.set(k, chosen[k]); });
      var qs = query.toString();
      return G.api("/v1/figures?" + qs).then(function (f) {
        var t = f.total;
        var areaName = function (l) { return l.name || l.key; };
        G.append(main, [
          h("div", { class: "kpis" },
            kpi("kpi-cases", "kpi_cases", String(t.cases), ""),
            kpi("kpi-closure", "kpi_closure", G.percent(t.closure_rate), T("kpi_closure_detail", t.closed, t.cases - t.cancelled)),
            kpi("kpi-on-time", "kpi_on_time", G.percent(t.on_time_rate), T("kpi_on_time_detail", t.on_time, t.late)),
            kpi("kpi-satisfaction", "kpi_satisfaction", G.percent(t.satisfaction_rate), T("kpi_satisfaction_detail", t.smiley, t.frowny)),
            f.unplaced && f.unplaced.cases ? kpi("kpi-unplaced", "kpi_unplaced", String(f.unplaced.cases), T("unplaced_hint")) : null),
          h("div", { class: "charts" },
            card("chart_by_month", monthChart(f.by_month), true),
            card("chart_by_status", barChart(f.by_status.filter(function (s) { return s.count > 0; }).map(function (s) {
              return { label: G.status(s.status), value: s.count, text: String(s.count) };
            }))),
            card("chart_by_department", barChart(tallyRows(f.by_department, function (l) { return l.name || T("not_dispatched"); }))),
            card("chart_by_area", barChart(tallyRows(f.by_area, areaName))),
            card("chart_by_category", barChart(tallyRows(f.by_category, function (l) { return G.category(l.key); }))),
            card("chart_ranking", f.department_ranking.length ? h("div", { class: "table-wrap" }, h("table", { class: "ranking" },
              h("thead", {}, h("tr", {}, ["col_rank", "col_department", "col_cases", "col_on_time", "col_satisfaction", "col_closure"].map(function (k) {
                return h("th", { scope: "col" }, T(k));
              }))),
              h("tbody", {}, f.department_ranking.map(function (r) {
                return h("tr", {},
                  h("td", { class: "num" }, String(r.rank)), h("td", {}, r.department), h("td", { class: "num" }, String(r.cases)),
                  h("td", { class: "num" }, G.percent(r.on_time_rate)), h("td", { class: "num" }, G.percent(r.satisfaction_rate)),
                  h("td", { class: "num" }, G.percent(r.closure_rate)));
              })))) : h("p", { class: "muted" }, T("chart_no_data")), true),
            card("chart_warnings", f.warnings.length ? h("ul", { class: "warnings" }, f.warnings.map(function (w) {
              return h("li", {}, T("warning_line", w.month, w.area_name, G.category(w.category), w.count, w.previous_count));
            })) : h("p", { class: "muted", id: "no-warnings" }, T("warnings_none")), true)),
          h("section", { class: "card export" }, h("h2", {}, T("export_title")),
            h("div", { class: "buttons" },
              h("a", { class: "button", id: "export-csv", href: "/v1/export/cases.csv?" + qs, download: "cases.csv" }, T("export_csv")),
              h("a", { class: "button", id: "export-geojson", href: "/v1/export/cases.geojson?" + qs, download: "cases.geojson" }, T("export_geojson"))))
        ]);
      });
    }).catch(function (err) { G.showError(main, err); });
  });
})(Gridcase);

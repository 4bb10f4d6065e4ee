// The case queue: filters, search, paging; nearest deadline first.
"use strict";

(function (G) {
  var T = G.T, h = G.h;
  var PER_PAGE = 25;

  G.frame("queue", "queue_title").then(function (ctx) {
    var main = ctx.main;
    var filters = G.readFilters();
    var page = Math.max(1, parseInt(new URLSearchParams(location.search).get("page"), 10) || 1);
    return Promise.all([G.grids(), G.api("/v1/centre/departments")]).then(function (got) {
      var map = got[0], departments = got[1];
      var heading = h("h1", {}, T("queue_title"));
      G.append(main, [
        heading,
        G.filterForm(map, departments, filters, ctx.me, function (f) {
          location.search = G.filterQuery(f);
        })
      ]);
      // Cases outside every grid wait at the top-level centre until someone
      // places them: a badge says how many, and filters to them.
      if (ctx.me.staff.role !== "department") {
        G.api("/v1/centre/cases?unplaced=true&per_page=1").then(function (u) {
          if (!u.total) return;
          heading.appendChild(h("a", { id: "unplaced-badge", class: "badge unplaced", href: "?unplaced=true",
            title: T("unplaced_hint") }, T("unplaced_count", u.total)));
        }, function () {});
      }
      var results = h("section", { class: "results", "aria-live": "polite" }, h("p", { class: "muted" }, T("loading")));
      main.appendChild(results);
      var query = G.filterQuery(filters, { page: page, per_page: PER_PAGE });
      return G.api("/v1/centre/cases?" + query).then(function (data) {
        G.clear(results);
        if (!data.cases.length) {
          results.appendChild(h("p", { class: "empty" }, T("queue_empty")));
          return;
        }
        var table = h("table", { class: "queue" },
          h("thead", {}, h("tr", {},
            ["col_deadline", "col_status", "col_category", "col_title", "col_grid", "col_department", "col_chases"]
              .map(function (k) { return h("th", { scope: "col" }, T(k)); }))),
          h("tbody", {}, data.cases.map(function (c) {
            var href = "/centre/cases/" + encodeURIComponent(c.case_id);
            return h("tr", { class: c.overdue ? "is-overdue" : null, "data-case": c.case_id },
              h("td", { "data-label": T("col_deadline"), class: "nowrap" }, G.time(c.deadline)),
              h("td", { "data-label": T("col_status") }, G.statusBadge(c.status, c.overdue, c.unplaced)),
              h("td", { "data-label": T("col_category") }, G.category(c.category)),
              h("td", { "data-label": T("col_title"), class: "title" },
                h("a", { href: href }, c.title),
                c.reopen_reason ? h("div", { class: "muted small" }, T("case_reopen_reason"), "：", c.reopen_reason) : null),
              h("td", { "data-label": T("col_grid") }, c.unplaced ? T("unplaced") : G.unitName(map, c.grid_id)),
              h("td", { "data-label": T("col_department") }, c.department_name || T("none")),
              h("td", { "data-label": T("col_chases"), class: "num" }, String(c.chase_count)));
          })));
        results.appendChild(h("div", { class: "table-wrap" }, table));
        var pages = Math.max(1, Math.ceil(data.total / data.per_page));
        function pageLink(n, key) {
          if (n < 1 || n > pages) return h("span", { class: "button disabled", "aria-disabled": "true" }, T(key));
          return h("a", { class: "button", href: "?" + G.filterQuery(filters, { page: n }), rel: key === "page_next" ? "next" : "prev" }, T(key));
        }
        results.appendChild(h("nav", { class: "pager" },
          pageLink(page - 1, "page_prev"),
          h("span", { class: "muted" }, T("page_of", data.page, pages, data.total)),
          pageLink(page + 1, "page_next")));
      });
    }).catch(function (err) { G.showError(main, err); });
  });
})(Gridcase);

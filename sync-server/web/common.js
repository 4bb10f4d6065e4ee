// What every screen of the dashboard shares: texts, building the DOM (text
// nodes only: whatever a resident or grid leader typed can never become
// markup), calls to the centre's API with the session's CSRF token, the page
// frame, the grid map as SVG, and the case filters.
"use strict";

var Gridcase = (function () {
  var S = window.GRIDCASE_STRINGS;
  var boot = JSON.parse(document.getElementById("boot").textContent);
  var SVG_NS = "http://www.w3.org/2000/svg";

  function has(key) {
    return Object.prototype.hasOwnProperty.call(S, key);
  }

  function T(key) {
    var text = has(key) ? S[key] : key;
    var args = Array.prototype.slice.call(arguments, 1);
    return text.replace(/\{(\d+)\}/g, function (_, i) {
      return args[i] === undefined || args[i] === null ? "" : String(args[i]);
    });
  }

  function append(el, children) {
    children.forEach(function (c) {
      if (c === null || c === undefined || c === false) return;
      if (Array.isArray(c)) return append(el, c);
      el.appendChild(typeof c === "object" ? c : document.createTextNode(String(c)));
    });
    return el;
  }

  function setAttrs(el, attrs) {
    Object.keys(attrs || {}).forEach(function (k) {
      var v = attrs[k];
      if (v === null || v === undefined || v === false) return;
      if (k.slice(0, 2) === "on") el.addEventListener(k.slice(2), v);
      else if (k === "text") el.textContent = v;
      else el.setAttribute(k, v === true ? "" : String(v));
    });
    return el;
  }

  // h("a", {href: …}, "text", child…): an element with text children.
  function h(tag, attrs) {
    var el = setAttrs(document.createElement(tag), attrs);
    return append(el, Array.prototype.slice.call(arguments, 2));
  }

  function svg(tag, attrs) {
    var el = setAttrs(document.createElementNS(SVG_NS, tag), attrs);
    return append(el, Array.prototype.slice.call(arguments, 2));
  }

  function clear(el) {
    while (el.firstChild) el.removeChild(el.firstChild);
    return el;
  }

  var session = null;

  function toLogin() {
    var next = location.pathname + location.search;
    location.href = "/centre/login?next=" + encodeURIComponent(next);
  }

  // An API error as the reader should see it, in the page's language: the
  // answer's stable `reason` (else its `code`) translated, with the field's
  // name. Never the server's own words, which are English and for logs.
  function ApiError(status, body) {
    this.status = status;
    this.body = body || {};
    var b = this.body;
    var field = b.field && has("fieldname_" + b.field) ? T("fieldname_" + b.field) : "";
    var why = b.reason && has("reason_" + b.reason) ? T("reason_" + b.reason)
      : b.code && has("code_" + b.code) ? T("code_" + b.code) : "";
    if (status === 0) this.message = T("network_error");
    else if (why) this.message = field ? T("error_field", field, why) : why;
    else if (status === 409) this.message = T("error_not_allowed");
    else if (status === 403) this.message = T("error_forbidden");
    else if (status === 404) this.message = T("error_not_found");
    else if (status === 400) this.message = T("error_invalid", field);
    else this.message = T("error_generic", status);
  }

  function api(path, options) {
    options = options || {};
    var headers = { Accept: "application/json" };
    var init = { method: options.method || "GET", credentials: "same-origin", headers: headers };
    if (init.method !== "GET") {
      if (session) headers["X-CSRF-Token"] = session.csrf_token;
      if (options.file) {
        // A picture goes up as it is; the server makes the photo and thumbnail.
        headers["Content-Type"] = options.file.type || "application/octet-stream";
        init.body = options.file;
      } else {
        headers["Content-Type"] = "application/json";
        init.body = JSON.stringify(options.body || {});
      }
    }
    return fetch(path, init).then(
      function (resp) {
        if (resp.status === 401 && !options.allow401) {
          toLogin();
          return new Promise(function () {});
        }
        var type = resp.headers.get("Content-Type") || "";
        var parsed = type.indexOf("json") >= 0 ? resp.json() : resp.text();
        return parsed.then(function (body) {
          if (!resp.ok) throw new ApiError(resp.status, typeof body === "object" ? body : {});
          return body;
        });
      },
      function () {
        throw new ApiError(0);
      }
    );
  }

  function me() {
    return api("/v1/centre/me").then(function (m) {
      session = m;
      return m;
    });
  }

  // The same page in the other language (the server remembers the choice).
  function langHref() {
    var params = new URLSearchParams(location.search);
    params.set("lang", T("switch_lang_code"));
    return location.pathname + "?" + params.toString();
  }

  function logout() {
    api("/v1/centre/logout", { method: "POST" }).then(function () {
      location.href = "/centre/login";
    }, function () {
      location.href = "/centre/login";
    });
  }

  // The frame of a staff screen: header with navigation, who is logged in,
  // the language switch and logout; returns the main element to fill.
  function frame(screen, titleKey) {
    document.title = T(titleKey) + " · " + T("brand");
    var app = clear(document.getElementById("app"));
    var nav = h("nav", { class: "nav", "aria-label": T("brand") },
      [["queue", "nav_queue"], ["map", "nav_map"], ["figures", "nav_figures"]].map(function (n) {
        return h("a", { href: "/centre/" + n[0], class: n[0] === screen ? "current" : null,
          "aria-current": n[0] === screen ? "page" : null }, T(n[1]));
      }));
    var who = h("span", { class: "who" });
    var header = h("header", { class: "top" },
      h("a", { class: "brand", href: "/centre/queue" }, T("brand")),
      nav,
      h("div", { class: "account" },
        who,
        h("a", { class: "lang", href: langHref(), hreflang: T("switch_lang_code") }, T("switch_lang")),
        h("button", { type: "button", class: "link", id: "logout", onclick: logout }, T("logout"))));
    var main = h("main", { id: "main" }, h("p", { class: "muted" }, T("loading")));
    append(app, [header, main]);
    return me().then(function (m) {
      return grids().then(function (map) {
        var place = m.department_name || (m.staff.unit_id ? unitName(map, m.staff.unit_id) : "");
        append(who, [m.staff.name, " · ", T("role_" + m.staff.role), place ? " · " + place : ""]);
        clear(main);
        return { main: main, me: m };
      });
    });
  }

  function showError(main, err) {
    var text = err && err.message ? err.message : T("network_error");
    var box = h("p", { class: "error", role: "alert" }, text);
    main.insertBefore(box, main.firstChild);
    return box;
  }

  // Times on the deployment's clock (the server's --time-zone), whatever
  // the browser's own zone is.
  var ZONE = boot.time_zone;
  var timeFormat = new Intl.DateTimeFormat(boot.lang === "en" ? "en-GB" : "zh-CN", {
    timeZone: ZONE, year: "numeric", month: "2-digit", day: "2-digit",
    hour: "2-digit", minute: "2-digit", hour12: false
  });
  var partsFormat = new Intl.DateTimeFormat("en-US", {
    timeZone: ZONE, year: "numeric", month: "2-digit", day: "2-digit",
    hour: "2-digit", minute: "2-digit", hourCycle: "h23"
  });

  function time(ms) {
    return ms === null || ms === undefined ? T("none") : timeFormat.format(new Date(ms));
  }

  // The wall-clock reading of `ms` on the deployment's clock.
  function zoneParts(ms) {
    var p = {};
    partsFormat.formatToParts(new Date(ms)).forEach(function (x) { p[x.type] = x.value; });
    return { date: p.year + "-" + p.month + "-" + p.day, time: p.hour + ":" + p.minute };
  }

  // `ms` as a date-time picker's value (2026-12-01T18:00) and as a date
  // (2026-12-01), on the deployment's clock.
  function localInput(ms) {
    var p = zoneParts(ms);
    return p.date + "T" + p.time;
  }

  function localDate(ms) {
    return zoneParts(ms).date;
  }

  function percent(rate) {
    return rate === null || rate === undefined ? T("none") : (rate * 100).toFixed(1) + "%";
  }

  var categoryNames = {};
  boot.categories.forEach(function (c) {
    categoryNames[c.code] = boot.lang === "en" ? c.en : c.zh;
  });

  function category(code) {
    return categoryNames[code] || code;
  }

  function status(code) {
    return T("status_" + code);
  }

  function statusBadge(code, overdue, unplaced) {
    return h("span", { class: "badges" },
      h("span", { class: "badge status-" + code }, status(code)),
      overdue ? h("span", { class: "badge overdue" }, T("overdue")) : null,
      unplaced ? h("span", { class: "badge unplaced", title: T("unplaced_hint") }, T("unplaced")) : null);
  }

  // The reader's part of the grid map, with each unit by id.
  var gridsPromise = null;
  function grids() {
    if (!gridsPromise) {
      gridsPromise = api("/v1/centre/grids").then(function (fc) {
        var byId = {};
        (fc.features || []).forEach(function (f) {
          byId[f.properties.id] = f;
        });
        return { features: fc.features || [], byId: byId };
      });
    }
    return gridsPromise;
  }

  function unitName(map, id) {
    var f = id && map.byId[id];
    return f ? f.properties.name : id || T("none");
  }

  // Longitude/latitude to SVG units: longitudes shrink by cos(latitude) so a
  // square street block stays square at Liaoyuan's 43°N.
  function projection(bounds) {
    var midLat = (bounds[1] + bounds[3]) / 2;
    var k = Math.cos(midLat * Math.PI / 180);
    return function (lon, lat) {
      return [(lon - bounds[0]) * k * 1000, (bounds[3] - lat) * 1000];
    };
  }

  function rings(geometry) {
    if (!geometry) return [];
    if (geometry.type === "Polygon") return geometry.coordinates;
    if (geometry.type === "MultiPolygon") {
      return geometry.coordinates.reduce(function (all, p) { return all.concat(p); }, []);
    }
    return [];
  }

  function bounds(features, points) {
    var b = [Infinity, Infinity, -Infinity, -Infinity];
    function add(lon, lat) {
      b[0] = Math.min(b[0], lon); b[1] = Math.min(b[1], lat);
      b[2] = Math.max(b[2], lon); b[3] = Math.max(b[3], lat);
    }
    features.forEach(function (f) {
      rings(f.geometry).forEach(function (r) { r.forEach(function (p) { add(p[0], p[1]); }); });
    });
    (points || []).forEach(function (p) { add(p[0], p[1]); });
    if (!isFinite(b[0])) return null;
    if (b[2] - b[0] < 1e-4) { b[0] -= 0.005; b[2] += 0.005; }
    if (b[3] - b[1] < 1e-4) { b[1] -= 0.005; b[3] += 0.005; }
    return b;
  }

  // A unit's outline as one SVG path (holes cut out by the even-odd rule).
  function unitPath(feature, project, attrs) {
    var d = rings(feature.geometry).map(function (ring) {
      return ring.map(function (p, i) {
        var xy = project(p[0], p[1]);
        return (i ? "L" : "M") + xy[0].toFixed(2) + " " + xy[1].toFixed(2);
      }).join("") + "Z";
    }).join("");
    var a = { d: d, "fill-rule": "evenodd", class: "unit level-" + feature.properties.level };
    Object.keys(attrs || {}).forEach(function (k) { a[k] = attrs[k]; });
    return svg("path", a, svg("title", {}, feature.properties.name));
  }

  // The filters the queue and the map share, read from and written to the
  // address so a filtered view can be bookmarked and sent on.
  var FILTERS = ["status", "category", "unit", "department", "overdue", "unplaced", "mine", "q"];

  function readFilters() {
    var params = new URLSearchParams(location.search);
    var f = {};
    FILTERS.forEach(function (k) {
      var v = params.get(k);
      if (v) f[k] = v;
    });
    return f;
  }

  function filterQuery(f, extra) {
    var params = new URLSearchParams();
    FILTERS.forEach(function (k) { if (f[k]) params.set(k, f[k]); });
    Object.keys(extra || {}).forEach(function (k) { params.set(k, extra[k]); });
    return params.toString();
  }

  function select(name, label, options, value) {
    var s = h("select", { name: name, id: "f-" + name },
      h("option", { value: "" }, T("filter_any")),
      options.map(function (o) {
        return h("option", { value: o[0], selected: o[0] === value }, o[1]);
      }));
    return h("label", { class: "field" }, h("span", {}, label), s);
  }

  // The filter form; `onApply(filters)` is called on submit.
  function filterForm(map, departments, current, me, onApply) {
    var units = map.features
      .filter(function (f) { return f.properties.level !== "micro_grid"; })
      .map(function (f) { return [f.properties.id, f.properties.name]; });
    var form = h("form", { class: "filters", role: "search" },
      h("label", { class: "field grow" }, h("span", {}, T("filter_search")),
        h("input", { type: "search", name: "q", id: "f-q", value: current.q || "", maxlength: 100 })),
      select("status", T("filter_status"), boot.statuses.map(function (s) { return [s, status(s)]; }), current.status),
      select("category", T("filter_category"), boot.categories.map(function (c) { return [c.code, category(c.code)]; }), current.category),
      select("unit", T("filter_unit"), units, current.unit),
      me.staff.role === "department" ? null :
        select("department", T("filter_department"), departments.map(function (d) { return [d.id, d.name]; }), current.department),
      h("label", { class: "check" }, h("input", { type: "checkbox", name: "overdue", id: "f-overdue", value: "true", checked: current.overdue === "true" }), T("filter_overdue")),
      me.staff.role === "department" ? null :
        h("label", { class: "check" }, h("input", { type: "checkbox", name: "unplaced", id: "f-unplaced", value: "true", checked: current.unplaced === "true" }), T("filter_unplaced")),
      me.staff.role === "supervisor" ? null :
        h("label", { class: "check" }, h("input", { type: "checkbox", name: "mine", id: "f-mine", value: "true", checked: current.mine === "true" }), T("filter_mine")),
      h("div", { class: "buttons" },
        h("button", { type: "submit", class: "primary" }, T("filter_apply")),
        h("a", { href: location.pathname, class: "button" }, T("filter_reset"))));
    form.addEventListener("submit", function (e) {
      e.preventDefault();
      var f = {};
      new FormData(form).forEach(function (v, k) { if (v) f[k] = String(v); });
      onApply(f);
    });
    return form;
  }

  return {
    T: T, h: h, svg: svg, clear: clear, append: append, api: api, me: me, boot: boot,
    frame: frame, showError: showError, time: time, percent: percent,
    localInput: localInput, localDate: localDate, zone: ZONE,
    category: category, status: status, statusBadge: statusBadge,
    grids: grids, unitName: unitName, projection: projection, bounds: bounds,
    unitPath: unitPath, readFilters: readFilters, filterQuery: filterQuery,
    filterForm: filterForm, ApiError: ApiError, langHref: langHref,
    session: function () { return session; }
  };
})();

// One case: its facts, photos, position on its grid, timeline (who, when,
// what), and a form for each action the API says the reader may take now.
"use strict";

(function (G) {
  var T = G.T, h = G.h, svg = G.svg;
  var caseId = G.boot.case_id;
  var base = "/v1/centre/cases/" + encodeURIComponent(caseId);
  var HOUR = 3600 * 1000;
  var STEPS = ["scene", "progress", "result", "check"];

  function fact(label, value) {
    return [h("dt", {}, T(label)), h("dd", {}, value)];
  }

  function what(op, map) {
    var k = op.kind;
    var parts = [h("strong", {}, T("op_" + k))];
    function detail(text) { if (text) parts.push(h("div", { class: "detail" }, text)); }
    if (k === "create") detail(op.draft.title);
    if (k === "dispatch") {
      detail(T("case_to_department", op.department_name || op.department) + " · " + T("case_deadline_is", G.time(op.deadline)));
      detail(op.note);
    }
    if (k === "place") {
      detail(T("case_placed_in", G.unitName(map, op.grid_id)));
      detail(op.note);
    }
    if (k === "progress" || k === "resolve" || k === "chase") detail(op.note);
    if (k === "cancel" || k === "escalate") detail(op.reason);
    if (k === "verify") {
      detail(op.done ? T("case_verified_done") : T("case_verified_not_done"));
      detail(op.note);
    }
    if (k === "rate") {
      detail(op.face === "smiley" ? "☺ " + T("case_rating_smiley") : "☹ " + T("case_rating_frowny"));
      detail(op.comment);
    }
    return parts;
  }

  function who(actor, name) {
    return [name || T("role_" + actor.role),
      name ? h("span", { class: "muted" }, " · " + T("role_" + actor.role)) : null];
  }

  function timeline(entries, map) {
    return h("ol", { class: "timeline" }, entries.map(function (e) {
      return h("li", { class: "op op-" + e.kind, "data-kind": e.kind },
        h("div", { class: "when" }, G.time(e.device_time)),
        h("div", { class: "who" }, who(e.actor, e.actor_name)),
        h("div", { class: "what" }, what(e, map)));
    }));
  }

  // Photos by the step they show (the scene, the department's progress and
  // result, the grid leader's check on site), each with who took it and when.
  function photos(list) {
    if (!list.length) return h("p", { class: "muted" }, T("case_no_photos"));
    return STEPS.filter(function (step) {
      return list.some(function (p) { return p.step === step; });
    }).map(function (step) {
      return h("div", { class: "photo-step", "data-step": step },
        h("h3", {}, T("photo_step_" + step)),
        h("div", { class: "photos" }, list.filter(function (p) { return p.step === step; }).map(function (p) {
          return h("figure", { class: "photo", "data-step": step },
            h("a", { href: base + "/photos/" + p.sha256, target: "_blank", rel: "noopener" },
              h("img", { src: base + "/photos/" + p.thumb_sha256, alt: T("photo_step_" + step),
                width: 160, height: Math.round(160 * p.height / Math.max(1, p.width)) })),
            h("figcaption", { class: "muted small" }, who(p.actor, p.actor_name), " · ", G.time(p.at)));
        })));
    });
  }

  // The case's grid with the point in it.
  function position(map, view) {
    var loc = view.case.location;
    if (!loc) return h("p", { class: "muted" }, T("case_no_position"));
    var lon = loc.point.lon, lat = loc.point.lat;
    var grid = view.case.grid_id && map.byId[view.case.grid_id];
    var features = grid && grid.geometry ? [grid] : [];
    var b = G.bounds(features, [[lon, lat]]);
    var project = G.projection(b);
    var corner = project(b[2], b[1]);
    var w = corner[0], ht = corner[1], m = Math.max(w, ht) * 0.08;
    var xy = project(lon, lat);
    var r = Math.max(w, ht) * 0.035;
    return h("figure", { class: "position" },
      svg("svg", { viewBox: [-m, -m, w + 2 * m, ht + 2 * m].join(" "), class: "mini-map", role: "img",
        "aria-label": T("case_position") },
        features.map(function (f) { return G.unitPath(f, project, { "vector-effect": "non-scaling-stroke" }); }),
        svg("circle", { cx: xy[0], cy: xy[1], r: r, class: "case-point" })),
      h("figcaption", { class: "muted small" },
        (view.grid_name || "") + " · " + lat.toFixed(5) + ", " + lon.toFixed(5),
        loc.address ? " · " + loc.address : ""));
  }

  function textArea(name, required) {
    return h("label", { class: "field" }, h("span", {}, T(required ? "field_reason" : "field_note")),
      h("textarea", { name: name, rows: 2, maxlength: 2000, required: required }));
  }

  function actionForm(action, view, departments, map) {
    var c = view.case;
    var label = action === "dispatch" && c.department ? "action_reassign" : "action_" + action;
    var fields = [];
    var deadlineInput = null;
    if (action === "dispatch") {
      var now = Date.now();
      var deadline = c.deadline && c.deadline > now ? c.deadline
        : c.proposed_deadline && c.proposed_deadline > now ? c.proposed_deadline : now + 72 * HOUR;
      // On the deployment's clock; the picker refuses a time already past.
      deadlineInput = h("input", { type: "datetime-local", name: "deadline", required: true,
        value: G.localInput(deadline), min: G.localInput(now) });
      fields.push(
        h("label", { class: "field" }, h("span", {}, T("field_department")),
          h("select", { name: "department_id", required: true },
            h("option", { value: "" }, T("choose")),
            departments.map(function (d) {
              return h("option", { value: d.id, selected: d.id === view.desk.department_id }, d.name);
            }))),
        h("label", { class: "field" }, h("span", {}, T("field_deadline")), deadlineInput),
        textArea("note", false));
    } else if (action === "place") {
      var grids = map.features.filter(function (f) { return f.properties.level === "grid"; });
      fields.push(
        h("label", { class: "field" }, h("span", {}, T("field_grid")),
          h("select", { name: "grid_id", required: true },
            h("option", { value: "" }, T("choose")),
            grids.map(function (f) { return h("option", { value: f.properties.id }, f.properties.name); }))),
        textArea("note", false));
    } else if (action === "escalate" || action === "cancel") {
      fields.push(textArea("reason", true));
    } else if (action === "progress" || action === "resolve" || action === "chase") {
      fields.push(textArea("note", false));
    }
    if (action === "progress" || action === "resolve") {
      fields.push(h("label", { class: "field" }, h("span", {}, T("field_photos")),
        h("input", { type: "file", name: "photos", multiple: true, accept: "image/jpeg,image/png" })));
    }
    var error = h("p", { class: "error", role: "alert", hidden: true });
    var button = h("button", { type: "submit", class: action === "cancel" ? "danger" : "primary" }, T(label));
    // The dispatch form checks its deadline itself, so the refusal is in the
    // page's words rather than the browser's.
    var form = h("form", { class: "action action-" + action, "data-action": action,
      novalidate: action === "dispatch" }, fields, error, button);
    form.addEventListener("submit", function (e) {
      e.preventDefault();
      var body = {}, files = [];
      new FormData(form).forEach(function (v, k) {
        if (typeof v === "string") body[k] = v;
        else if (v.size > 0) files.push(v);
      });
      if (deadlineInput && deadlineInput.value && deadlineInput.value < G.localInput(Date.now())) {
        error.textContent = T("error_field", T("fieldname_deadline"), T("reason_in_the_past"));
        error.hidden = false;
        return;
      }
      // The picker's wall-clock time, read by the server on its own zone.
      if (body.deadline) { body.deadline_local = body.deadline; delete body.deadline; }
      button.disabled = true;
      // Photos first, one at a time, then the step they illustrate.
      var sent = files.reduce(function (done, file) {
        return done.then(function () {
          return G.api(base + "/photos", { method: "POST", file: file });
        });
      }, Promise.resolve());
      sent.then(function () {
        return G.api(base + "/" + action, { method: "POST", body: body });
      }).then(function () {
        location.reload();
      }, function (err) {
        button.disabled = false;
        error.textContent = err.message;
        error.hidden = false;
      });
    });
    return form;
  }

  G.frame("queue", "case_timeline").then(function (ctx) {
    var main = ctx.main;
    // Only the departments that serve this case's area can take it.
    var serving = "/v1/centre/departments?case=" + encodeURIComponent(caseId);
    return Promise.all([G.api(base), G.grids(), G.api(serving)]).then(function (got) {
      var view = got[0], map = got[1], departments = got[2];
      var c = view.case;
      document.title = c.title + " · " + T("brand");
      var facts = h("dl", { class: "facts" },
        fact("case_category", G.category(c.category)),
        fact("case_grid", view.desk.unplaced ? T("unplaced") : view.grid_name || T("none")),
        fact("case_queue_unit", view.desk.queue_unit_name || T("none")),
        fact("case_department", view.desk.department_name || T("none")),
        fact("case_deadline", G.time(c.deadline)),
        fact("case_proposed_deadline", G.time(c.proposed_deadline)),
        fact("case_occurred", G.time(c.occurred_at)),
        fact("case_received", G.time(view.desk.received_at)),
        fact("case_chases", String(c.chase_count)),
        view.desk.reopen_reason ? fact("case_reopen_reason", view.desk.reopen_reason) : null);
      var actions = view.actions.length
        ? view.actions.map(function (a) { return actionForm(a, view, departments, map); })
        : h("p", { class: "muted" }, T("case_no_actions"));
      G.append(main, [
        h("p", { class: "back" }, h("a", { href: "/centre/queue" }, "← " + T("case_back"))),
        h("div", { class: "case-head" },
          h("h1", { id: "case-title" }, c.title),
          G.statusBadge(c.status, view.desk.overdue, view.desk.unplaced)),
        h("div", { class: "case-grid" },
          h("div", { class: "case-main" },
            h("section", { class: "card" }, facts,
              c.description ? [h("h2", {}, T("case_description")), h("p", { class: "description" }, c.description)] : null),
            h("section", { class: "card", id: "photos" }, h("h2", {}, T("case_photos")), photos(view.photos)),
            h("section", { class: "card", id: "timeline" }, h("h2", {}, T("case_timeline")), timeline(view.timeline, map))),
          h("aside", { class: "case-side" },
            h("section", { class: "card", id: "actions" }, h("h2", {}, T("case_actions")), actions),
            h("section", { class: "card" }, h("h2", {}, T("case_position")), position(map, view))))
      ]);
    }).catch(function (err) { G.showError(main, err); });
  });
})(Gridcase);

// The login page: login and password, posted to the API from this origin
// only (the server refuses a login whose Origin is another site).
"use strict";

(function (G) {
  var T = G.T, h = G.h;

  // Only a path of this dashboard: never an address elsewhere.
  function nextPath() {
    var next = new URLSearchParams(location.search).get("next") || "";
    return /^\/centre\/[A-Za-z0-9_\-\/?=&%.]*$/.test(next) && next.indexOf("//") < 0
      ? next : "/centre/queue";
  }

  document.title = T("login_title") + " · " + T("brand");
  var error = h("p", { class: "error", role: "alert", hidden: true });
  var button = h("button", { type: "submit", class: "primary wide", id: "login-submit" }, T("login_submit"));
  var form = h("form", { class: "login-form", method: "post", action: "/v1/centre/login" },
    h("h1", {}, T("login_title")),
    h("p", { class: "muted" }, T("login_intro")),
    error,
    h("label", { class: "field" }, h("span", {}, T("login_login")),
      h("input", { name: "login", id: "login", autocomplete: "username", required: true, maxlength: 64, autofocus: true })),
    h("label", { class: "field" }, h("span", {}, T("login_password")),
      h("input", { name: "password", id: "password", type: "password", autocomplete: "current-password", required: true, maxlength: 1024 })),
    button);
  form.addEventListener("submit", function (e) {
    e.preventDefault();
    button.disabled = true;
    error.hidden = true;
    G.api("/v1/centre/login", {
      method: "POST", allow401: true,
      body: { login: form.login.value, password: form.password.value }
    }).then(function () {
      location.href = nextPath();
    }, function (err) {
      button.disabled = false;
      error.textContent = err.status === 401 ? T("login_failed")
        : err.status === 429 ? T("login_too_many") : err.message;
      error.hidden = false;
      form.password.value = "";
      form.password.focus();
    });
  });
  var app = document.getElementById("app");
  G.append(app, [
    h("div", { class: "login-page" },
      h("div", { class: "login-top" },
        h("span", { class: "brand" }, T("brand")),
        h("a", { class: "lang", href: G.langHref() }, T("switch_lang"))),
      form)
  ]);
})(Gridcase);

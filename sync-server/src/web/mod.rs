//! The centre's dashboard, served by the server itself: a page shell for each
//! screen (login, queue, case, map, figures) and the files in `web/` that
//! draw them in the browser over the JSON API of [`crate::centre`].
//!
//! Every user-entered text reaches the page through the DOM's text nodes
//! (`web/common.js`), never as markup. The language is Chinese unless the
//! reader chose English (`?lang=en`, remembered in a cookie).

pub mod assets;

use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;
use gridcase_core::case::{CaseStatus, Category};
use serde_json::json;

use crate::centre::session::StaffSession;
use crate::error::AppError;
use crate::AppState;

pub const LANG_COOKIE: &str = "gridcase_lang";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    Zh,
    En,
}

impl Lang {
    fn parse(s: &str) -> Option<Lang> {
        match s {
            "zh" => Some(Lang::Zh),
            "en" => Some(Lang::En),
            _ => None,
        }
    }

    fn code(self) -> &'static str {
        match self {
            Lang::Zh => "zh",
            Lang::En => "en",
        }
    }

    fn html_lang(self) -> &'static str {
        match self {
            Lang::Zh => "zh-CN",
            Lang::En => "en",
        }
    }
}

fn cookie_lang(headers: &HeaderMap) -> Option<Lang> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == LANG_COOKIE)
        .and_then(|(_, value)| Lang::parse(value.trim()))
}

fn query_lang(query: Option<&str>) -> Option<Lang> {
    form_urlencoded::parse(query.unwrap_or("").as_bytes())
        .find(|(k, _)| k == "lang")
        .and_then(|(_, v)| Lang::parse(&v))
}

/// The screens of the dashboard; each has its script in `web/`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Screen {
    Login,
    Queue,
    Case,
    Map,
    Figures,
}

impl Screen {
    fn name(self) -> &'static str {
        match self {
            Screen::Login => "login",
            Screen::Queue => "queue",
            Screen::Case => "case",
            Screen::Map => "map",
            Screen::Figures => "figures",
        }
    }
}

/// A JSON value made safe inside `<script type="application/json">`: no
/// `</script>` or `<!--` can close or bend the element.
fn script_json(value: &serde_json::Value) -> String {
    value
        .to_string()
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
}

fn shell(screen: Screen, lang: Lang, case_id: Option<&str>, time_zone: &str) -> String {
    let categories: Vec<_> = Category::ALL
        .iter()
        .map(|c| json!({"code": c.code(), "zh": c.name_zh(), "en": c.name_en()}))
        .collect();
    let statuses: Vec<_> = CaseStatus::ALL
        .iter()
        .filter(|s| **s != CaseStatus::Draft)
        .map(|s| s.as_str())
        .collect();
    let boot = script_json(&json!({
        "screen": screen.name(),
        "lang": lang.code(),
        "case_id": case_id,
        "categories": categories,
        "statuses": statuses,
        // Every time on the pages is read on the deployment's clock, not the
        // browser's.
        "time_zone": time_zone,
    }));
    format!(
        "<!doctype html>\n<html lang=\"{html_lang}\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<meta name=\"robots\" content=\"noindex\"><title>Gridcase</title>\
<link rel=\"icon\" href=\"{favicon}\"><link rel=\"stylesheet\" href=\"{css}\"></head>\
<body class=\"screen-{screen}\"><div id=\"app\"></div>\
<script type=\"application/json\" id=\"boot\">{boot}</script>\
<script src=\"{strings}\"></script><script src=\"{common}\"></script>\
<script src=\"{page}\"></script></body></html>\n",
        html_lang = lang.html_lang(),
        favicon = assets::url("favicon.svg"),
        css = assets::url("centre.css"),
        screen = screen.name(),
        strings = assets::url(&format!("{}.js", lang.code())),
        common = assets::url("common.js"),
        page = assets::url(&format!("{}.js", screen.name())),
    )
}

/// The headers every page carries: never cached (it shows a session's
/// data), scripts and styles only from this server, never framed.
fn page_response(html: String, set_lang: Option<Lang>) -> Response {
    let mut response = (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::X_FRAME_OPTIONS, "DENY"),
            (header::REFERRER_POLICY, "same-origin"),
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'self'; img-src 'self' data:; object-src 'none'; \
                 base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
            ),
        ],
        html,
    )
        .into_response();
    if let Some(lang) = set_lang {
        let cookie = format!(
            "{LANG_COOKIE}={}; Path=/; Max-Age=31536000; SameSite=Lax",
            lang.code()
        );
        if let Ok(value) = HeaderValue::from_str(&cookie) {
            response.headers_mut().append(header::SET_COOKIE, value);
        }
    }
    response
}

/// The screen for a logged-in member of staff; anyone else goes to the
/// login page first and comes back here after it.
fn staff_screen(
    state: &AppState,
    screen: Screen,
    session: Result<StaffSession, AppError>,
    headers: &HeaderMap,
    query: Option<&str>,
    path: &str,
    case_id: Option<&str>,
) -> Response {
    let chosen = query_lang(query);
    let lang = chosen.or_else(|| cookie_lang(headers)).unwrap_or(Lang::Zh);
    if session.is_err() {
        let next: String = form_urlencoded::byte_serialize(path.as_bytes()).collect();
        return Redirect::to(&format!("/centre/login?next={next}")).into_response();
    }
    page_response(shell(screen, lang, case_id, state.zone.name()), chosen)
}

async fn login_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let chosen = query_lang(query.as_deref());
    let lang = chosen.or_else(|| cookie_lang(&headers)).unwrap_or(Lang::Zh);
    page_response(shell(Screen::Login, lang, None, state.zone.name()), chosen)
}

async fn queue_page(
    State(state): State<AppState>,
    session: Result<StaffSession, AppError>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    staff_screen(
        &state,
        Screen::Queue,
        session,
        &headers,
        query.as_deref(),
        "/centre/queue",
        None,
    )
}

async fn map_page(
    State(state): State<AppState>,
    session: Result<StaffSession, AppError>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    staff_screen(
        &state,
        Screen::Map,
        session,
        &headers,
        query.as_deref(),
        "/centre/map",
        None,
    )
}

async fn figures_page(
    State(state): State<AppState>,
    session: Result<StaffSession, AppError>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    staff_screen(
        &state,
        Screen::Figures,
        session,
        &headers,
        query.as_deref(),
        "/centre/figures",
        None,
    )
}

async fn case_page(
    State(state): State<AppState>,
    session: Result<StaffSession, AppError>,
    headers: HeaderMap,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, AppError> {
    let case_id = gridcase_core::ids::CaseId::parse(&id)
        .map_err(|_| AppError::not_found("no such case"))?
        .to_string();
    Ok(staff_screen(
        &state,
        Screen::Case,
        session,
        &headers,
        query.as_deref(),
        &format!("/centre/cases/{case_id}"),
        Some(&case_id),
    ))
}

async fn to_queue() -> Redirect {
    Redirect::to("/centre/queue")
}

/// The dashboard's pages and files.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(to_queue))
        .route("/centre", get(to_queue))
        .route("/centre/", get(to_queue))
        .route("/centre/login", get(login_page))
        .route("/centre/queue", get(queue_page))
        .route("/centre/cases/{id}", get(case_page))
        .route("/centre/map", get(map_page))
        .route("/centre/figures", get(figures_page))
        .route("/centre/assets/{name}", get(assets::asset_handler))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_in_a_script_cannot_close_it() {
        let text = script_json(&json!({"t": "</script><script>alert(1)</script>"}));
        assert!(!text.contains('<'));
        assert!(!text.contains('>'));
        let back: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(back["t"], "</script><script>alert(1)</script>");
    }

    #[test]
    fn the_language_comes_from_the_query_then_the_cookie() {
        assert_eq!(query_lang(Some("a=1&lang=en")), Some(Lang::En));
        assert_eq!(query_lang(Some("lang=fr")), None);
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("x=1; gridcase_lang=en"),
        );
        assert_eq!(cookie_lang(&h), Some(Lang::En));
    }

    /// Every reason the API gives has its words in both languages, so no
    /// page ever shows the server's English instead.
    #[test]
    fn every_error_reason_is_translated() {
        for lang in ["zh.js", "en.js"] {
            let text = assets::ASSETS.iter().find(|a| a.name == lang).unwrap().body;
            for reason in crate::error::reasons::ALL {
                assert!(
                    text.contains(&format!("reason_{reason}:")),
                    "{lang} has no reason_{reason}"
                );
            }
            for code in [
                "invalid_request",
                "not_allowed",
                "forbidden",
                "not_found",
                "csrf_failed",
                "session_expired",
                "too_large",
                "unavailable",
            ] {
                assert!(
                    text.contains(&format!("code_{code}:")),
                    "{lang} has no code_{code}"
                );
            }
        }
    }

    #[test]
    fn every_page_names_existing_assets() {
        for screen in [
            Screen::Login,
            Screen::Queue,
            Screen::Case,
            Screen::Map,
            Screen::Figures,
        ] {
            for lang in [Lang::Zh, Lang::En] {
                let html = shell(screen, lang, None, "Asia/Shanghai");
                for part in html.split("/centre/assets/").skip(1) {
                    let name = part.split('?').next().unwrap();
                    assert!(
                        assets::ASSETS.iter().any(|a| a.name == name),
                        "{name} is not embedded"
                    );
                }
            }
        }
    }
}

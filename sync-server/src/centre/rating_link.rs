//! A resident's one-time rating link. The grid leader's terminal asks for one
//! for a verified case (`POST /v1/cases/{id}/rating-link`) and shows it with
//! its QR code; the resident opens `/r/{token}` on their own phone, sees the
//! case's public summary and the two faces, and rates once. No login: the
//! random token is the permission, and only its SHA-256 is stored. The page
//! is a public view ([`crate::public`]): the category, status and grid of the
//! case, and its title only for a problem in public space — never who
//! reported it, the description, the address or the point.

use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use gridcase_core::case::{CaseStatus, Face};
use gridcase_core::error::DomainError;
use gridcase_core::ids::CaseId;
use gridcase_core::op::{Actor, OpKind, Role};
use gridcase_core::protocol::RatingLink;
use gridcase_core::time::{now_millis, Millis};
use qrcode::render::svg;
use qrcode::QrCode;
use serde::Deserialize;

use super::random_hex;
use crate::accounts::{sha256, DeviceAuth};
use crate::cases;
use crate::error::{reasons, AppError};
use crate::store::rating_links::RatingLinkRow;
use crate::store::{ReadTx, StoreError};
use crate::AppState;

/// The actor id of ratings made through a link.
pub const RATING_LINK_ACTOR_ID: &str = "rating-link";
/// 128 random bits: unguessable, and a QR code small enough to scan off a
/// terminal's screen.
const TOKEN_BYTES: usize = 16;

fn base_url(state: &AppState, headers: &HeaderMap) -> Result<String, AppError> {
    if let Some(url) = &state.centre.public_url {
        return Ok(url.trim_end_matches('/').to_string());
    }
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| !h.is_empty() && !h.contains(['/', ' ', '"', '<', '>']))
        .ok_or_else(|| {
            AppError::invalid(
                "host",
                reasons::INVALID,
                "the Host header is missing or not valid",
            )
        })?;
    Ok(format!("http://{host}"))
}

pub fn qr_svg(text: &str) -> Result<String, AppError> {
    let code = QrCode::new(text.as_bytes()).map_err(|e| {
        tracing::error!(error = %e, "a rating link does not fit a QR code");
        AppError::internal()
    })?;
    Ok(code
        .render::<svg::Color>()
        .min_dimensions(240, 240)
        .dark_color(svg::Color("#000000"))
        .light_color(svg::Color("#ffffff"))
        .build())
}

/// `POST /v1/cases/{id}/rating-link`: a new link for a case of the device's
/// grids that waits for the resident's rating.
pub(crate) async fn issue_handler(
    State(state): State<AppState>,
    device: DeviceAuth,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<RatingLink>, AppError> {
    let case_id = CaseId::parse(&id).map_err(|e| AppError::input(&e))?;
    let base = base_url(&state, &headers)?;
    let token = random_hex::<TOKEN_BYTES>()?;
    let hash = sha256(token.as_bytes());
    let ttl = state.centre.rating_link_ttl;
    let expires_at = state
        .store
        .write(move |tx| {
            let (hash, device) = (hash.clone(), device.clone());
            Box::pin(async move {
                let not_found = || AppError::not_found("no such case");
                if !tx.case_visible_to(&case_id, &device.account_id).await? {
                    return Err(not_found());
                }
                let case = tx.load_case(&case_id).await?.ok_or_else(not_found)?;
                if case.status != CaseStatus::Verified {
                    return Err(AppError::not_allowed(
                        reasons::NOT_ALLOWED_IN_STATUS,
                        format!(
                            "only a verified case waits for a rating; this one is {}",
                            case.status
                        ),
                    ));
                }
                let now = now_millis();
                let expires_at = now.saturating_add(ttl);
                tx.insert_rating_link(&hash, &case_id, &device.device_id, now, expires_at)
                    .await?;
                Ok(expires_at)
            })
        })
        .await?;
    let url = format!("{base}/r/{token}");
    Ok(Json(RatingLink {
        qr_svg: qr_svg(&url)?,
        url,
        expires_at,
    }))
}

/// The part of a case a resident may see.
#[derive(Debug, Clone)]
struct PublicSummary {
    category_zh: &'static str,
    category_en: &'static str,
    /// `None` for a private category ([`crate::public::publicity`]).
    title: Option<String>,
    status: CaseStatus,
    grid_name: Option<String>,
}

enum LinkState {
    Open(PublicSummary),
    Used,
    Expired,
    /// Rated some other way already (on the terminal), or closed.
    NotAwaiting,
    Unknown,
}

/// The token's hash, if it can be a token at all.
fn token_hash(token: &str) -> Option<Vec<u8>> {
    (token.len() == TOKEN_BYTES * 2 && token.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| sha256(token.as_bytes()))
}

/// What the link `row` (found, or locked, by the caller) offers now.
async fn link_state(
    tx: &mut ReadTx<'_>,
    map: &gridcase_core::grid::GridMap,
    row: Option<RatingLinkRow>,
    now: Millis,
) -> Result<(LinkState, Option<CaseId>), StoreError> {
    let Some(RatingLinkRow {
        case_id,
        expires_at,
        used_at,
    }) = row
    else {
        return Ok((LinkState::Unknown, None));
    };
    if used_at.is_some() {
        return Ok((LinkState::Used, Some(case_id)));
    }
    if expires_at <= now {
        return Ok((LinkState::Expired, Some(case_id)));
    }
    let Some(case) = tx.load_case(&case_id).await? else {
        return Ok((LinkState::Unknown, None));
    };
    if case.status != CaseStatus::Verified {
        return Ok((LinkState::NotAwaiting, Some(case_id)));
    }
    let grid_name = case
        .grid_id
        .as_deref()
        .and_then(|g| map.get(g))
        .map(|u| u.name.clone());
    Ok((
        LinkState::Open(PublicSummary {
            category_zh: case.category.name_zh(),
            category_en: case.category.name_en(),
            title: (crate::public::publicity(case.category)
                == crate::public::Publicity::PublicSpace)
                .then_some(case.title),
            status: case.status,
            grid_name,
        }),
        Some(case_id),
    ))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lang {
    Zh,
    En,
}

#[derive(Debug, Default, Deserialize)]
struct LangQuery {
    lang: Option<String>,
}

fn lang_of(query: Option<&str>) -> Lang {
    let q: LangQuery = serde_urlencoded::from_str(query.unwrap_or("")).unwrap_or_default();
    lang_from(q.lang.as_deref())
}

fn lang_from(lang: Option<&str>) -> Lang {
    match lang {
        Some("en") => Lang::En,
        _ => Lang::Zh,
    }
}

/// `GET /r/{token}`
pub(crate) async fn page_handler(
    State(state): State<AppState>,
    Path(token): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, AppError> {
    let lang = lang_of(query.as_deref());
    let grids = state.grids.clone();
    let (link, _) = state
        .store
        .read(move |tx| {
            let (grids, hash) = (grids.clone(), token_hash(&token));
            Box::pin(async move {
                let Some(hash) = hash else {
                    return Ok::<_, StoreError>((LinkState::Unknown, None));
                };
                let map = grids.current(tx).await?;
                let row = tx.rating_link(&hash).await?;
                link_state(tx, &map, row, now_millis()).await
            })
        })
        .await
        .map_err(AppError::from)?;
    Ok(match link {
        LinkState::Open(summary) => html(StatusCode::OK, &page::form(lang, &summary)),
        other => closed_page(lang, &other),
    })
}

fn closed_page(lang: Lang, state: &LinkState) -> Response {
    let (status, which) = match state {
        LinkState::Used | LinkState::NotAwaiting => (StatusCode::GONE, page::Notice::AlreadyRated),
        LinkState::Expired => (StatusCode::GONE, page::Notice::Expired),
        LinkState::Unknown | LinkState::Open(_) => (StatusCode::NOT_FOUND, page::Notice::Unknown),
    };
    html(status, &page::notice(lang, which))
}

#[derive(Debug, Deserialize)]
struct RateForm {
    face: Option<String>,
    #[serde(default)]
    comment: String,
    lang: Option<String>,
}

/// `POST /r/{token}` (a form): records the resident's face, once.
pub(crate) async fn rate_handler(
    State(state): State<AppState>,
    Path(token): Path<String>,
    body: axum::body::Bytes,
) -> Result<Response, AppError> {
    let form: RateForm = serde_urlencoded::from_bytes(&body).map_err(|_| {
        AppError::invalid(
            "body",
            reasons::BAD_BODY,
            "the rating form could not be read",
        )
    })?;
    let lang = lang_from(form.lang.as_deref());
    let face = match form.face.as_deref() {
        Some("smiley") => Face::Smiley,
        Some("frowny") => Face::Frowny,
        _ => {
            return Ok(html(
                StatusCode::BAD_REQUEST,
                &page::notice(lang, page::Notice::ChooseFace),
            ))
        }
    };
    let grids = state.grids.clone();
    let comment = form.comment;
    let hash = token_hash(&token);
    let outcome = state
        .store
        .write(move |tx| {
            let (grids, hash, comment) = (grids.clone(), hash.clone(), comment.clone());
            Box::pin(async move {
                let Some(hash) = hash else {
                    return Ok::<_, StoreError>(Err(LinkState::Unknown));
                };
                let map = grids.current(tx).await?;
                let now = now_millis();
                let row = tx.lock_rating_link(&hash).await?;
                let (link, case_id) = link_state(tx, &map, row, now).await?;
                if !matches!(link, LinkState::Open(_)) {
                    return Ok(Err(link));
                }
                let Some(case_id) = case_id else {
                    return Ok(Err(LinkState::Unknown));
                };
                let actor = Actor {
                    role: Role::Resident,
                    id: RATING_LINK_ACTOR_ID.to_string(),
                };
                let kind = OpKind::Rate {
                    face,
                    comment: comment.trim().to_string(),
                };
                match cases::append_server_op(tx, &map, case_id, actor, kind, now).await? {
                    Ok(_) => {}
                    Err(DomainError::Invalid(_)) => return Ok(Ok(page::Notice::CommentTooLong)),
                    Err(DomainError::Transition(_)) => return Ok(Err(LinkState::NotAwaiting)),
                }
                tx.use_rating_link(&hash, now).await?;
                tracing::info!(case = %case_id, face = ?face, "resident rated through a link");
                Ok(Ok(page::Notice::Thanks))
            })
        })
        .await
        .map_err(AppError::from)?;
    Ok(match outcome {
        Ok(page::Notice::CommentTooLong) => html(
            StatusCode::BAD_REQUEST,
            &page::notice(lang, page::Notice::CommentTooLong),
        ),
        Ok(notice) => html(StatusCode::OK, &page::notice(lang, notice)),
        Err(link) => closed_page(lang, &link),
    })
}

fn html(status: StatusCode, body: &str) -> Response {
    (
        status,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            // The token is in the address: never cache it, never send it on.
            (header::CACHE_CONTROL, "no-store"),
            (header::REFERRER_POLICY, "no-referrer"),
            (header::X_FRAME_OPTIONS, "DENY"),
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
            ),
        ],
        body.to_string(),
    )
        .into_response()
}

/// The page itself: self-contained HTML, Chinese by default.
mod page {
    use super::{Lang, PublicSummary};
    use gridcase_core::case::CaseStatus;

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub(super) enum Notice {
        Thanks,
        AlreadyRated,
        Expired,
        Unknown,
        ChooseFace,
        CommentTooLong,
    }

    fn escape(text: &str) -> String {
        let mut out = String::with_capacity(text.len());
        for c in text.chars() {
            match c {
                '&' => out.push_str("&amp;"),
                '<' => out.push_str("&lt;"),
                '>' => out.push_str("&gt;"),
                '"' => out.push_str("&quot;"),
                '\'' => out.push_str("&#39;"),
                c => out.push(c),
            }
        }
        out
    }

    fn t(lang: Lang, zh: &'static str, en: &'static str) -> &'static str {
        match lang {
            Lang::Zh => zh,
            Lang::En => en,
        }
    }

    fn status_label(lang: Lang, status: CaseStatus) -> &'static str {
        match status {
            CaseStatus::Verified => t(lang, "已办结，待评价", "Done, awaiting your rating"),
            CaseStatus::Rated => t(lang, "已评价", "Rated"),
            CaseStatus::Closed => t(lang, "已结案", "Closed"),
            _ => t(lang, "办理中", "Being handled"),
        }
    }

    const STYLE: &str = "body{font-family:system-ui,-apple-system,'PingFang SC','Noto Sans CJK SC',sans-serif;margin:0;background:#f4f6f8;color:#1d2430}\
main{max-width:28rem;margin:0 auto;padding:1.25rem}\
h1{font-size:1.35rem;margin:.5rem 0 1rem}\
.card{background:#fff;border-radius:.75rem;padding:1rem 1.1rem;box-shadow:0 1px 3px rgba(0,0,0,.08);margin-bottom:1rem}\
dl{margin:0}dt{font-size:.85rem;color:#5b6575;margin-top:.6rem}dd{margin:.1rem 0 0;font-size:1.05rem}\
.faces{display:flex;gap:.75rem}\
.faces button{flex:1;font-size:1.1rem;padding:1rem .5rem;border-radius:.75rem;border:2px solid #d0d6de;background:#fff;color:inherit}\
.faces button span{display:block;font-size:2.6rem;line-height:1.2}\
.faces .smiley{border-color:#3a9d5d}.faces .frowny{border-color:#c8553d}\
textarea{width:100%;box-sizing:border-box;min-height:5rem;font:inherit;padding:.5rem;border-radius:.5rem;border:1px solid #d0d6de}\
label{display:block;margin-bottom:.35rem;color:#5b6575;font-size:.9rem}\
.lang{text-align:right;font-size:.9rem}.lang a{color:#2c6fbb}\
p.notice{font-size:1.15rem}";

    fn document(lang: Lang, title: &str, body: &str, switch: Option<&str>) -> String {
        let html_lang = t(lang, "zh-CN", "en");
        let switch = switch
            .map(|query| {
                let other = t(lang, "English", "中文");
                format!("<p class=\"lang\"><a href=\"?{query}\">{other}</a></p>")
            })
            .unwrap_or_default();
        format!(
            "<!doctype html><html lang=\"{html_lang}\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
<meta name=\"robots\" content=\"noindex\"><title>{title}</title><style>{STYLE}</style></head>\
<body><main>{switch}{body}</main></body></html>",
            title = escape(title)
        )
    }

    pub(super) fn form(lang: Lang, case: &PublicSummary) -> String {
        let heading = t(lang, "请为办理结果评价", "Please rate how this was handled");
        let (category, switch) = match lang {
            Lang::Zh => (case.category_zh, "lang=en"),
            Lang::En => (case.category_en, "lang=zh"),
        };
        let grid = case
            .grid_name
            .as_deref()
            .map(|g| {
                format!(
                    "<dt>{}</dt><dd>{}</dd>",
                    t(lang, "所在网格", "Grid"),
                    escape(g)
                )
            })
            .unwrap_or_default();
        let body = format!(
            "<h1>{heading}</h1>\
<section class=\"card\"><dl>\
<dt>{l_category}</dt><dd>{category}</dd>\
{title}{grid}\
<dt>{l_status}</dt><dd>{status}</dd></dl></section>\
<form method=\"post\" class=\"card\">\
<input type=\"hidden\" name=\"lang\" value=\"{lang_code}\">\
<label for=\"comment\">{l_comment}</label>\
<textarea id=\"comment\" name=\"comment\" maxlength=\"500\"></textarea>\
<p class=\"faces\">\
<button class=\"smiley\" type=\"submit\" name=\"face\" value=\"smiley\"><span aria-hidden=\"true\">😊</span>{l_smiley}</button>\
<button class=\"frowny\" type=\"submit\" name=\"face\" value=\"frowny\"><span aria-hidden=\"true\">☹️</span>{l_frowny}</button>\
</p></form>",
            l_category = t(lang, "事件类别", "Category"),
            category = escape(category),
            title = case
                .title
                .as_deref()
                .map(|title| format!("<dt>{}</dt><dd>{}</dd>", t(lang, "事件", "Case"), escape(title)))
                .unwrap_or_default(),
            l_status = t(lang, "状态", "Status"),
            status = status_label(lang, case.status),
            lang_code = t(lang, "zh", "en"),
            l_comment = t(lang, "意见（可不填）", "Comment (optional)"),
            l_smiley = t(lang, "满意", "Satisfied"),
            l_frowny = t(lang, "不满意", "Not satisfied"),
        );
        document(lang, heading, &body, Some(switch))
    }

    pub(super) fn notice(lang: Lang, which: Notice) -> String {
        let text = match which {
            Notice::Thanks => t(lang, "感谢您的评价！", "Thank you for your rating!"),
            Notice::AlreadyRated => t(
                lang,
                "此事件已评价过，感谢您的参与。",
                "This case has already been rated. Thank you.",
            ),
            Notice::Expired => t(
                lang,
                "此评价链接已过期，请联系网格员。",
                "This rating link has expired; please ask your grid leader.",
            ),
            Notice::Unknown => t(
                lang,
                "此评价链接无效，请核对或联系网格员。",
                "This rating link is not valid; please check it or ask your grid leader.",
            ),
            Notice::ChooseFace => t(
                lang,
                "请选择“满意”或“不满意”。",
                "Please choose “Satisfied” or “Not satisfied”.",
            ),
            Notice::CommentTooLong => t(
                lang,
                "意见太长，请不超过500字。",
                "The comment is too long; at most 500 characters.",
            ),
        };
        let title = t(lang, "群众评价", "Resident rating");
        document(
            lang,
            title,
            &format!(
                "<h1>{title}</h1><section class=\"card\"><p class=\"notice\">{text}</p></section>"
            ),
            None,
        )
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn text_is_escaped() {
            assert_eq!(
                escape("<script>\"x\"&'y'</script>"),
                "&lt;script&gt;&quot;x&quot;&amp;&#39;y&#39;&lt;/script&gt;"
            );
        }
    }
}

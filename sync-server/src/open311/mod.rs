//! Open311 GeoReport v2, so that existing 311 clients and aggregators can read
//! our cases and file new ones: services (our categories), service
//! definitions, requests (our cases) by search or by id, and POSTing a new
//! request. JSON or XML by the path's extension; errors in the spec's format
//! (`[{"code", "description"}]`, `<errors><error>…`).
//!
//! This server is one jurisdiction, so `jurisdiction_id` is accepted and not
//! needed. A POST is answered at once with the new `service_request_id`
//! (services are `realtime`), so there are no tokens to look up.

pub mod keys;
pub mod render;
pub mod requests;
pub mod services;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use gridcase_core::case::Category;
use gridcase_core::time::now_millis;

use crate::AppState;
use render::{Format, Open311Error};
use requests::{NewRequest, RequestQuery};

/// The routes under `/open311/v2`.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/open311/v2/{file}", get(get_top).post(post_top))
        .route("/open311/v2/services/{file}", get(get_definition))
        .route("/open311/v2/requests/{file}", get(get_request))
}

/// Form fields (`a=1&b=2`) as Open311 sends them, in body or query string.
pub fn pairs(text: &[u8]) -> Vec<(String, String)> {
    form_urlencoded::parse(text).into_owned().collect()
}

fn answer(format: Format, result: Result<render::Document, Open311Error>) -> Response {
    match result {
        Ok(doc) => doc.into_response(format, StatusCode::OK),
        Err(e) => e.into_response(format),
    }
}

/// `GET services.{format}` and `GET requests.{format}`.
async fn get_top(
    State(state): State<AppState>,
    Path(file): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let (stem, format) = match Format::split(&file) {
        Ok(split) => split,
        Err(e) => return e.into_response(Format::Json),
    };
    let result = match stem {
        "services" => Ok(services::services()),
        "requests" => search(&state, query.as_deref().unwrap_or("")).await,
        _ => Err(Open311Error::not_found("no such Open311 resource")),
    };
    answer(format, result)
}

async fn search(state: &AppState, query: &str) -> Result<render::Document, Open311Error> {
    let zone = state.zone.clone();
    let query = RequestQuery::parse(&pairs(query.as_bytes()), now_millis(), &zone)?;
    Ok(state
        .db
        .read(move |tx| requests::find(tx, &zone, &query))
        .await?)
}

/// `GET services/{service_code}.{format}`.
async fn get_definition(Path(file): Path<String>) -> Response {
    let (code, format) = match Format::split(&file) {
        Ok(split) => split,
        Err(e) => return e.into_response(Format::Json),
    };
    let result = Category::parse(code)
        .map(services::definition)
        .ok_or_else(|| Open311Error::not_found("service_code: no such service"));
    answer(format, result)
}

/// `GET requests/{service_request_id}.{format}`.
async fn get_request(State(state): State<AppState>, Path(file): Path<String>) -> Response {
    let (id, format) = match Format::split(&file) {
        Ok((id, format)) => (id.to_string(), format),
        Err(e) => return e.into_response(Format::Json),
    };
    let zone = state.zone.clone();
    let found = state
        .db
        .read(move |tx| {
            if !requests::exists(tx, &id)? {
                return Ok(None);
            }
            requests::find(tx, &zone, &RequestQuery::Ids(vec![id])).map(Some)
        })
        .await;
    let result = match found {
        Ok(Some(doc)) => Ok(doc),
        Ok(None) => Err(Open311Error::not_found(
            "service_request_id: no such request",
        )),
        Err(e) => Err(e.into()),
    };
    answer(format, result)
}

/// `POST requests.{format}`: form fields in the body (the query string is
/// read too, for clients that put `api_key` there).
async fn post_top(
    State(state): State<AppState>,
    Path(file): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let (stem, format) = match Format::split(&file) {
        Ok(split) => split,
        Err(e) => return e.into_response(Format::Json),
    };
    let result = if stem == "requests" {
        post_request(&state, query, &headers, body).await
    } else {
        Err(Open311Error::not_found("no such Open311 resource"))
    };
    answer(format, result)
}

async fn post_request(
    state: &AppState,
    query: Option<String>,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<render::Document, Open311Error> {
    let body = body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            Open311Error::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "the request body is too large",
            )
        } else {
            Open311Error::field("body", "could not be read")
        }
    })?;
    let multipart = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("multipart/"));
    if multipart {
        return Err(Open311Error::field(
            "media",
            "uploads are not accepted; send form fields (application/x-www-form-urlencoded) and media_url",
        ));
    }
    let mut fields = pairs(query.as_deref().unwrap_or("").as_bytes());
    fields.extend(pairs(&body));
    // The key first: a client without one learns nothing about its fields.
    let api_key = fields
        .iter()
        .find(|(k, _)| k == "api_key")
        .map(|(_, v)| v.trim().to_string())
        .unwrap_or_default();
    let key_id = state
        .db
        .read(move |tx| keys::check(tx, &api_key))
        .await?
        .ok_or_else(|| {
            Open311Error::new(
                StatusCode::FORBIDDEN,
                "api_key: missing, unknown or revoked",
            )
        })?;
    let now = now_millis();
    let request = NewRequest::parse(&fields, now, &state.zone)?;
    let grids = state.grids.clone();
    let case_id = state
        .db
        .write(move |tx| {
            let map = crate::db::grid_map(&grids, tx)?;
            requests::file(tx, &map, &key_id, request, now)
        })
        .await?;
    Ok(requests::filed(case_id))
}

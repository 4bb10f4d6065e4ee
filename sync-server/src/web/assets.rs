//! The dashboard's files, compiled into the binary: the centre's network
//! reaches no CDN, so the server hands out every byte the browser needs.
//!
//! Each file is named in pages with its content hash (`?v=…`), so a browser
//! may keep it for a year and still gets the new one the moment a new server
//! ships it.

use std::sync::OnceLock;

use axum::extract::{Path, RawQuery};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::accounts::sha256;
use crate::error::AppError;

pub struct Asset {
    pub name: &'static str,
    pub content_type: &'static str,
    pub body: &'static str,
}

macro_rules! asset {
    ($name:literal, $type:expr) => {
        Asset {
            name: $name,
            content_type: $type,
            body: include_str!(concat!("../../web/", $name)),
        }
    };
}

const JS: &str = "text/javascript; charset=utf-8";

pub static ASSETS: &[Asset] = &[
    asset!("centre.css", "text/css; charset=utf-8"),
    asset!("zh.js", JS),
    asset!("en.js", JS),
    asset!("common.js", JS),
    asset!("login.js", JS),
    asset!("queue.js", JS),
    asset!("case.js", JS),
    asset!("map.js", JS),
    asset!("figures.js", JS),
    asset!("favicon.svg", "image/svg+xml"),
];

fn find(name: &str) -> Option<&'static Asset> {
    ASSETS.iter().find(|a| a.name == name)
}

/// The first 16 hex digits of each asset's SHA-256, in [`ASSETS`] order.
fn versions() -> &'static [String] {
    static VERSIONS: OnceLock<Vec<String>> = OnceLock::new();
    VERSIONS.get_or_init(|| {
        ASSETS
            .iter()
            .map(|a| hex::encode(&sha256(a.body.as_bytes())[..8]))
            .collect()
    })
}

fn version(name: &str) -> &'static str {
    ASSETS
        .iter()
        .position(|a| a.name == name)
        .map_or("", |i| versions()[i].as_str())
}

/// The address of an asset in a page, with its version.
pub fn url(name: &str) -> String {
    format!("/centre/assets/{name}?v={}", version(name))
}

/// `GET /centre/assets/{name}`.
pub(crate) async fn asset_handler(
    Path(name): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, AppError> {
    let asset = find(&name).ok_or_else(|| AppError::not_found("no such file"))?;
    let wanted = query
        .as_deref()
        .and_then(|q| q.strip_prefix("v="))
        .unwrap_or("");
    // Only the address with the current version may be kept for good; any
    // other (an old page, a hand-typed address) is checked again each time.
    let cache = if wanted == version(&name) {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    Ok((
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, asset.content_type),
            (header::CACHE_CONTROL, cache),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        asset.body,
    )
        .into_response())
}

//! The HTTP side of sync: one small client per server, typed errors.

use std::time::Duration;

use reqwest::StatusCode;
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::SyncError;
use crate::protocol::{
    ApiError, EnrolRequest, EnrolResponse, RatingLink, SyncRequest, SyncResponse, UploadStatus,
    GRID_MAP_VERSION_HEADER,
};

pub(crate) struct SyncClient {
    http: reqwest::Client,
    base: String,
    token: Option<String>,
    wire: std::sync::Mutex<Wire>,
}

/// Counts what went over the wire, for the report and the benchmarks.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Wire {
    pub requests: u64,
    pub bytes_sent: u64,
    pub bytes_received: u64,
}

impl SyncClient {
    /// The HTTP client a terminal keeps for its whole life (see
    /// `Terminal::sync_client`).
    pub fn http(timeout: Duration) -> Result<reqwest::Client, SyncError> {
        reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10).min(timeout))
            .timeout(timeout)
            .pool_idle_timeout(Duration::from_secs(30))
            .user_agent(concat!("gridcase/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| SyncError::InvalidServer {
                reason: e.to_string(),
            })
    }

    pub fn new(
        http: reqwest::Client,
        base: &str,
        token: Option<String>,
    ) -> Result<Self, SyncError> {
        let base = base.trim_end_matches('/').to_owned();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(SyncError::InvalidServer {
                reason: "the server address must start with http:// or https://".into(),
            });
        }
        Ok(Self {
            http,
            base,
            token,
            wire: Default::default(),
        })
    }

    /// What went over the wire so far.
    pub fn wire(&self) -> Wire {
        *self.wire.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn count(&self, requests: u64, sent: u64, received: u64) {
        let mut w = self.wire.lock().unwrap_or_else(|e| e.into_inner());
        w.requests += requests;
        w.bytes_sent += sent;
        w.bytes_received += received;
    }

    fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    fn authed(&self, rb: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.token {
            Some(t) => rb.bearer_auth(t),
            None => rb,
        }
    }

    async fn send<T: DeserializeOwned>(
        &self,
        kind: &'static str,
        rb: reqwest::RequestBuilder,
        sent: u64,
    ) -> Result<T, SyncError> {
        let started = std::time::Instant::now();
        let result = async {
            // Request line and headers are small and similar each time; count bodies.
            self.count(1, sent, 0);
            let resp = self.authed(rb).send().await.map_err(transport_error)?;
            let status = resp.status();
            let bytes = resp.bytes().await.map_err(transport_error)?;
            self.count(0, 0, bytes.len() as u64);
            if status.is_success() {
                return serde_json::from_slice(&bytes).map_err(|e| SyncError::Protocol {
                    reason: format!("unreadable answer from the server: {e}"),
                });
            }
            Err(status_error(status, &bytes))
        }
        .await;
        log_request(kind, started, result.as_ref().err());
        result
    }

    async fn post_json<B: Serialize, T: DeserializeOwned>(
        &self,
        kind: &'static str,
        path: &str,
        body: &B,
    ) -> Result<T, SyncError> {
        let body = serde_json::to_vec(body).map_err(|e| SyncError::Protocol {
            reason: e.to_string(),
        })?;
        let n = body.len() as u64;
        let rb = self
            .http
            .post(self.url(path))
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body);
        self.send(kind, rb, n).await
    }

    pub async fn enrol(&self, req: &EnrolRequest) -> Result<EnrolResponse, SyncError> {
        self.post_json("enrol", "/v1/enrol", req).await
    }

    pub async fn sync(&self, req: &SyncRequest) -> Result<SyncResponse, SyncError> {
        let kind = if req.push.is_empty() { "pull" } else { "push" };
        self.post_json(kind, "/v1/sync", req).await
    }

    /// A new one-time rating link for a case the server holds as verified.
    pub async fn rating_link(&self, case_id: &crate::ids::CaseId) -> Result<RatingLink, SyncError> {
        let rb = self
            .http
            .post(self.url(&format!("/v1/cases/{case_id}/rating-link")));
        self.send("rating_link", rb, 0).await
    }

    /// The part of the server's grid map this device sees, and the map's version.
    pub async fn grids(&self) -> Result<(String, u64), SyncError> {
        let (bytes, headers) = self.get_bytes_with_headers("grids", "/v1/grids").await?;
        let version = headers
            .get(GRID_MAP_VERSION_HEADER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let text = String::from_utf8(bytes).map_err(|_| SyncError::Protocol {
            reason: "the grid map is not UTF-8".into(),
        })?;
        Ok((text, version))
    }

    pub async fn upload_status(&self, sha: &str) -> Result<UploadStatus, SyncError> {
        let rb = self.http.get(self.url(&format!("/v1/photos/{sha}/upload")));
        self.send("upload_status", rb, 0).await
    }

    pub async fn upload(
        &self,
        sha: &str,
        offset: u64,
        total: u64,
        chunk: Vec<u8>,
    ) -> Result<UploadStatus, SyncError> {
        let n = chunk.len() as u64;
        let rb = self
            .http
            .put(self.url(&format!("/v1/photos/{sha}?offset={offset}&total={total}")))
            .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
            .body(chunk);
        self.send("upload", rb, n).await
    }

    pub async fn download(&self, sha: &str) -> Result<Vec<u8>, SyncError> {
        Ok(self
            .get_bytes_with_headers("download", &format!("/v1/photos/{sha}"))
            .await?
            .0)
    }

    /// A GET whose answer is raw bytes (a file, GeoJSON), not a JSON document.
    async fn get_bytes_with_headers(
        &self,
        kind: &'static str,
        path: &str,
    ) -> Result<(Vec<u8>, reqwest::header::HeaderMap), SyncError> {
        let started = std::time::Instant::now();
        let result = self.get_bytes_untimed(path).await;
        log_request(kind, started, result.as_ref().err());
        result
    }

    async fn get_bytes_untimed(
        &self,
        path: &str,
    ) -> Result<(Vec<u8>, reqwest::header::HeaderMap), SyncError> {
        self.count(1, 0, 0);
        let resp = self
            .authed(self.http.get(self.url(path)))
            .send()
            .await
            .map_err(transport_error)?;
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = resp.bytes().await.map_err(transport_error)?;
        self.count(0, 0, bytes.len() as u64);
        if !status.is_success() {
            return Err(status_error(status, &bytes));
        }
        Ok((bytes.to_vec(), headers))
    }
}

/// Target of the one debug event per request (kind, milliseconds, error),
/// which the load generator collects into latency figures.
pub const REQUEST_LOG_TARGET: &str = "gridcase::request";

fn log_request(kind: &'static str, started: std::time::Instant, error: Option<&SyncError>) {
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    match error {
        None => tracing::debug!(target: REQUEST_LOG_TARGET, kind, ms, error = "", "request"),
        Some(e) => {
            tracing::debug!(target: REQUEST_LOG_TARGET, kind, ms, error = e.code(), "request")
        }
    }
}

fn transport_error(e: reqwest::Error) -> SyncError {
    if e.is_connect() {
        SyncError::Offline {
            reason: "cannot reach the server".into(),
        }
    } else if e.is_timeout() {
        SyncError::ServerUnavailable {
            reason: "the server did not answer in time".into(),
        }
    } else {
        // A connection cut mid-request or mid-answer.
        SyncError::ServerUnavailable {
            reason: "the connection broke".into(),
        }
    }
}

fn status_error(status: StatusCode, body: &[u8]) -> SyncError {
    let api: Option<ApiError> = serde_json::from_slice(body).ok();
    let code = api.as_ref().map(|a| a.code.clone()).unwrap_or_default();
    let message = api
        .map(|a| a.message)
        .unwrap_or_else(|| status.canonical_reason().unwrap_or("error").to_owned());
    match status {
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => SyncError::Unauthorised,
        s if s.is_server_error()
            || s == StatusCode::TOO_MANY_REQUESTS
            || s == StatusCode::REQUEST_TIMEOUT =>
        {
            SyncError::ServerUnavailable { reason: message }
        }
        _ => SyncError::Refused { code, message },
    }
}

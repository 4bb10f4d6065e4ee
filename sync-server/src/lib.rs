//! The Gridcase sync server: terminals enrol, push the ops they recorded,
//! upload photos resumably and pull what changed, over the JSON protocol of
//! [`gridcase_core::protocol`]. Every op is checked with the same rule
//! function the terminal runs ([`gridcase_core::op::apply`]).
//!
//! Runs on embedded defaults: SQLite and photo files in one data folder; or
//! on PostgreSQL (`--database-url`), with the photo files still in the data
//! folder (instances on one machine may share it until photos move to an
//! object store). Every SQL statement of the domains moved so far is behind
//! [`store`]; the rest still runs on the old path ([`db`]), on SQLite only.

pub mod accounts;
pub mod admin;
pub mod backup;
pub mod calendar;
pub mod cases;
pub mod centre;
pub mod db;
pub mod error;
pub mod export;
pub mod figures;
pub mod grids;
pub mod names;
pub mod open311;
pub mod photos;
pub mod public;
pub mod query;
pub mod status_sql;
pub mod store;
pub mod sync;
pub mod web;

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use gridcase_core::protocol::MAX_PHOTO_BYTES;
use serde_json::json;

use crate::db::Db;
use crate::error::{codes, AppError};
use crate::grids::GridCache;
use crate::photos::PhotoStore;
use crate::store::{Location, Store};

pub const DEFAULT_DATA_DIR: &str = "./gridcase-server-data";
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8787";
/// The largest `POST /v1/sync` body.
pub const SYNC_BODY_LIMIT: usize = 4 * 1024 * 1024;
/// The largest body of the other JSON endpoints (enrolment).
pub const SMALL_BODY_LIMIT: usize = 64 * 1024;

/// PostgreSQL connections one instance keeps at most, by default.
pub const DEFAULT_DATABASE_CONNECTIONS: usize = 16;

#[derive(Debug, Clone)]
pub struct Config {
    /// The folder with the photo files, and the SQLite database unless
    /// `database_url` is given.
    pub data_dir: PathBuf,
    /// A PostgreSQL database (`postgres://user@host/db`) instead of SQLite in
    /// the data folder.
    pub database_url: Option<String>,
    /// PostgreSQL connections this instance keeps at most.
    pub database_connections: usize,
    pub listen: SocketAddr,
    /// Read connections to SQLite (the writer is one more).
    pub read_connections: usize,
    pub sync_body_limit: usize,
    /// The deployment's clock: every time people read, every day and month
    /// counted, and what terminals are told to show.
    pub time_zone: gridcase_core::zone::Zone,
    /// Staff sessions, the deadline scheduler, rating links.
    pub centre: centre::CentreConfig,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data_dir: PathBuf::from(DEFAULT_DATA_DIR),
            database_url: None,
            database_connections: DEFAULT_DATABASE_CONNECTIONS,
            listen: DEFAULT_LISTEN.parse().expect("a valid default address"),
            read_connections: 4,
            sync_body_limit: SYNC_BODY_LIMIT,
            time_zone: gridcase_core::zone::Zone::default(),
            centre: centre::CentreConfig::default(),
        }
    }
}

pub fn database_path(data_dir: &Path) -> PathBuf {
    data_dir.join("gridcase.db")
}

impl Config {
    /// Where the database is: PostgreSQL if a URL is given, else SQLite in
    /// the data folder.
    pub fn location(&self) -> Location {
        database_location(
            &self.data_dir,
            self.database_url.as_deref(),
            self.read_connections,
            self.database_connections,
        )
    }
}

/// The database of a deployment: the PostgreSQL at `url`, else the SQLite
/// file in `data_dir`.
pub fn database_location(
    data_dir: &Path,
    url: Option<&str>,
    read_connections: usize,
    database_connections: usize,
) -> Location {
    match url {
        Some(url) => Location::Postgres {
            url: url.to_string(),
            max_connections: database_connections,
        },
        None => Location::Sqlite {
            path: database_path(data_dir),
            read_connections,
        },
    }
}

/// What every handler shares. Cloning is cheap.
#[derive(Clone)]
pub struct AppState {
    /// The database, for every domain moved behind the store.
    pub store: Store,
    /// The old path of the domains not moved yet (SQLite only; on
    /// PostgreSQL they answer `unavailable`).
    pub db: Db,
    pub grids: Arc<GridCache>,
    pub photos: Arc<PhotoStore>,
    pub centre: Arc<centre::CentreConfig>,
    /// The deployment's clock (see [`Config::time_zone`]).
    pub zone: gridcase_core::zone::Zone,
    sync_body_limit: usize,
}

impl AppState {
    /// Opens (creating if needed) the data folder, database and photo store.
    pub async fn open(config: &Config) -> anyhow::Result<AppState> {
        std::fs::create_dir_all(&config.data_dir)
            .with_context(|| format!("creating the data folder {}", config.data_dir.display()))?;
        let store = Store::open(&config.location())
            .await
            .context("opening the database")?;
        let photos = PhotoStore::open(&config.data_dir).context("opening the photo folders")?;
        Ok(AppState {
            db: Db::over(&store),
            store,
            grids: Arc::new(GridCache::default()),
            photos: Arc::new(photos),
            centre: Arc::new(config.centre.clone()),
            zone: config.time_zone.clone(),
            sync_body_limit: config.sync_body_limit,
        })
    }
}

/// The whole API.
pub fn build_app(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/v1/enrol", post(accounts::enrol_handler))
        .route("/v1/grids", get(grids::grids_handler))
        .route(
            "/v1/sync",
            post(sync::sync_handler).layer(DefaultBodyLimit::max(state.sync_body_limit)),
        )
        .route(
            "/v1/photos/{sha}/upload",
            get(photos::upload_status_handler),
        )
        .route(
            "/v1/photos/{sha}",
            // The upload streams its body and bounds it by `total` itself.
            get(photos::download_handler)
                .put(photos::upload_handler)
                .layer(DefaultBodyLimit::max(MAX_PHOTO_BYTES as usize)),
        )
        .merge(centre::routes())
        .route("/v1/figures", get(figures::figures_handler))
        .route("/v1/export/cases.csv", get(export::csv_handler))
        .route("/v1/export/cases.geojson", get(export::geojson_handler))
        .merge(open311::routes())
        .merge(web::routes())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(SMALL_BODY_LIMIT))
        .layer(middleware::from_fn(log_request))
        .with_state(state)
}

/// `GET /healthz`: the process answers and the database can be read.
async fn healthz(State(state): State<AppState>) -> Response {
    match state
        .store
        .read(|tx| Box::pin(async move { tx.ping().await.map_err(AppError::from) }))
        .await
    {
        Ok(_) => Json(json!({"status": "ok"})).into_response(),
        Err(e) => e.into_response(),
    }
}

async fn not_found() -> AppError {
    AppError::not_found("no such endpoint")
}

async fn method_not_allowed() -> AppError {
    AppError::new(
        axum::http::StatusCode::METHOD_NOT_ALLOWED,
        codes::METHOD_NOT_ALLOWED,
        "this endpoint does not take that method",
    )
}

/// One log line per request: method, path, status, time. Never bodies.
async fn log_request(req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let response = next.run(req).await;
    let status = response.status();
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    if status.is_server_error() {
        tracing::warn!(%method, %path, status = status.as_u16(), ms, "request");
    } else if status.is_client_error() {
        tracing::info!(%method, %path, status = status.as_u16(), ms, "request");
    } else {
        tracing::debug!(%method, %path, status = status.as_u16(), ms, "request");
    }
    response
}

/// Serves the API on `listener` until `shutdown` completes, then lets
/// in-flight requests finish; runs the deadline scheduler meanwhile.
pub async fn serve_on(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let on_postgres = state.store.kind() == store::BackendKind::Postgres;
    if on_postgres && state.centre.scheduler_period.is_some() {
        tracing::warn!("the deadline scheduler does not run on PostgreSQL yet (issue 11)");
    }
    let scheduler = state
        .centre
        .scheduler_period
        .filter(|_| !on_postgres)
        .map(|period| centre::scheduler::spawn(state.clone(), period));
    let served = axum::serve(listener, build_app(state))
        .with_graceful_shutdown(shutdown)
        .await;
    if let Some(scheduler) = scheduler {
        scheduler.stop().await;
    }
    served
}

/// Opens everything in `config` and serves until `shutdown` completes.
pub async fn serve(
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    std::fs::create_dir_all(&config.data_dir)?;
    // Held until the server stops: `admin restore` refuses to run meanwhile.
    // On PostgreSQL there is no database file to restore under it, and
    // several instances may share the data folder's photos.
    let _lock = match config.database_url {
        None => Some(backup::lock_data_dir(&config.data_dir)?),
        Some(_) => None,
    };
    let state = AppState::open(&config).await?;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("listening on {}", config.listen))?;
    let addr = listener.local_addr()?;
    tracing::info!(%addr, data_dir = %config.data_dir.display(), database = state.store.kind().as_str(), time_zone = config.time_zone.name(), "gridcase-server listening");
    serve_on(listener, state, shutdown).await?;
    tracing::info!("gridcase-server stopped");
    Ok(())
}

/// Completes on SIGINT (Ctrl-C) or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutting down: finishing in-flight requests");
}

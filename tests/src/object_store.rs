//! A real S3-compatible object store for the tests: `s3s-fs` on 127.0.0.1, a
//! free port and a temporary folder, with its own access key, and a bucket per
//! test; the endpoint and credentials as the AWS environment variables the
//! server reads.
//!
//! ```no_run
//! # fn main() -> anyhow::Result<()> {
//! use gridcase_tests::object_store::ObjectStoreServer;
//! let s3 = ObjectStoreServer::shared()?; // one per test binary, stopped at exit
//! let bucket = s3.fresh_bucket("photos")?; // "photos-1"
//! // spawn gridcase-server with .envs(s3.env()) and --photo-store s3://{bucket}/cases
//! # Ok(()) }
//! ```
//!
//! **The server: `s3s-fs` 0.14.1 from crates.io** (`cargo install --locked`,
//! by `scripts/install-services.sh`, into `~/.cargo/bin`). Found as
//! `GRIDCASE_S3S_FS`, on `PATH`, or in `$CARGO_HOME/bin`.
//! - It keeps S3's rules where they bite a resumable upload: every part but
//!   the last must be at least 5 MiB (`EntityTooSmall` at completion), part
//!   numbers 1..=10000, SigV4 on every request and presigned (query) SigV4
//!   URLs; multipart create, upload part, list parts, complete and abort.
//!   Tested in `tests/tests/services.rs`.
//! - It installs from the registry the workspace already uses, as one small
//!   binary (about 7 CPU-minutes to build on this machine's cores, overlapped
//!   with the Rust build by the test command). SeaweedFS's `weed` cannot be
//!   `go install`ed (its `go.mod` has a `replace` directive, which `go install
//!   pkg@version` refuses) and would need a wrapper module around ~500 Go
//!   modules; MinIO installs with `go install` but is a far larger build.
//! - What it does **not** do, so the server must not rely on it (real S3
//!   does these, but a design that needs them would be untested here): no
//!   `ListMultipartUploads` and no lifecycle rules, so abandoned uploads are
//!   cleaned up by the server itself (upload ids recorded in the database,
//!   aborted by the scheduler); `ListParts` answers sizes but no ETags, so the
//!   server records each part's ETag when it uploads it; a completion that
//!   fails (a small middle part) also ends the upload; parts must be listed
//!   1..n without gaps at completion; path-style addressing only
//!   (`http://host:port/bucket/key`).
//!
//! **The client: the AWS SDK (`aws-sdk-s3`)**, used here to make buckets and
//! by the self-tests, and the one the server should use, over rustls on ring
//! ([`s3_client`]); chosen over Apache Arrow's `object_store` because:
//! - resumable uploads across instances need the multipart calls one by one:
//!   `object_store` 0.13/0.14 has create/put part/complete/abort but no
//!   `ListParts`, `ListMultipartUploads` or lifecycle configuration (what a
//!   real store's own incomplete-upload expiry is set with);
//! - `object_store` 0.14 moved to reqwest 0.13 with aws-lc-rs for its `aws`
//!   feature (ring only with its `aws-base` + `ring` features and a TLS
//!   stack wired by hand); 0.13.2 is the last on reqwest 0.12 and ring;
//! - the SDK's cost is build time: `aws-sdk-s3` is one large generated
//!   crate. Added to a tokio + reqwest crate, the SDK (with `aws-config`)
//!   took 533 CPU-seconds to build here, `object_store` 0.13.2 358; in this
//!   crate's build the `aws-*` crates are about a sixth of the time. It
//!   builds without OpenSSL or aws-lc with
//!   `default-features = false` and `aws-smithy-http-client`'s `rustls-ring`.
//!
//! Two settings a server must copy from [`s3_client`] for S3-compatible
//! stores: path-style requests, and checksums only when an operation
//! requires them (the SDK's default since 2025 adds CRC32 trailers that many
//! S3-compatible stores reject).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use anyhow::{anyhow, bail, Result};

use crate::service::{self, LogTail};

/// The version `scripts/install-services.sh` installs.
pub const S3S_FS_VERSION: &str = "0.14.1";
/// Any region: s3s-fs does not check it, but every S3 client wants one.
pub const REGION: &str = "us-east-1";

/// The `s3s-fs` binary (see the module docs).
pub fn s3s_fs_bin() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os("GRIDCASE_S3S_FS") {
        return Ok(PathBuf::from(p));
    }
    let cargo_bin = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))
        .map(|d| d.join("bin"));
    let extra: Vec<String> = cargo_bin
        .iter()
        .filter_map(|d| d.to_str().map(String::from))
        .collect();
    let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
    service::find_program("s3s-fs", &extra).ok_or_else(|| {
        anyhow!(
            "s3s-fs not found (GRIDCASE_S3S_FS, PATH, ~/.cargo/bin): run \
             scripts/install-services.sh (cargo install s3s-fs --version {S3S_FS_VERSION} \
             --locked --features binary)"
        )
    })
}

/// A running `s3s-fs`.
pub struct ObjectStoreServer {
    pub addr: SocketAddr,
    /// `http://127.0.0.1:PORT`
    pub endpoint: String,
    pub access_key: String,
    pub secret_key: String,
    root: PathBuf,
    tmp: Mutex<Option<tempfile::TempDir>>,
    child: Mutex<Option<Child>>,
    log: LogTail,
    next_bucket: AtomicU32,
}

impl ObjectStoreServer {
    /// The store all tests of this test binary share (each takes its own
    /// bucket, [`Self::fresh_bucket`]), stopped and removed at exit.
    pub fn shared() -> Result<&'static ObjectStoreServer> {
        static SHARED: OnceLock<std::result::Result<ObjectStoreServer, String>> = OnceLock::new();
        let server = SHARED.get_or_init(|| {
            let started = ObjectStoreServer::start().map_err(|e| format!("{e:#}"));
            if started.is_ok() {
                service::at_exit(|| {
                    if let Some(Ok(s)) = SHARED.get() {
                        s.shut_down();
                    }
                });
            }
            started
        });
        server.as_ref().map_err(|e| anyhow!("{e}"))
    }

    /// A store of this test's own (to kill and restart it, say).
    pub fn start() -> Result<ObjectStoreServer> {
        let bin = service::find_or_install("s3", s3s_fs_bin)?;
        let tmp = tempfile::Builder::new().prefix("gridcase-s3-").tempdir()?;
        let root = tmp.path().join("root");
        std::fs::create_dir(&root)?;
        let mut server = ObjectStoreServer {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            endpoint: String::new(),
            access_key: format!("GRIDCASE{}", random_alnum(12)),
            secret_key: random_alnum(40),
            root,
            tmp: Mutex::new(Some(tmp)),
            child: Mutex::new(None),
            log: LogTail::default(),
            next_bucket: AtomicU32::new(1),
        };
        let port = service::retry_on_port("s3s-fs", |port| {
            server.spawn(&bin, port)?;
            Ok(port)
        })?;
        server.addr.set_port(port);
        server.endpoint = format!("http://{}", server.addr);
        Ok(server)
    }

    fn spawn(&self, bin: &Path, port: u16) -> Result<()> {
        let mut cmd = Command::new(bin);
        cmd.args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .args(["--access-key", &self.access_key])
            .args(["--secret-key", &self.secret_key])
            .arg(&self.root)
            .env("RUST_LOG", "s3s_fs=info,s3s=warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = service::spawn_tied(cmd, libc::SIGKILL, None)?;
        self.log.follow(child.stdout.take().expect("piped"));
        self.log.follow(child.stderr.take().expect("piped"));
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        if let Err(e) = service::wait_until(
            "s3s-fs",
            &mut child,
            &self.log,
            Duration::from_secs(30),
            || service::is_listening(addr),
        ) {
            service::stop_child(&mut child, libc::SIGKILL, Duration::ZERO);
            return Err(e);
        }
        *self.child.lock().unwrap_or_else(|e| e.into_inner()) = Some(child);
        Ok(())
    }

    /// The environment the server reads its photo store's endpoint and
    /// credentials from (issue 12).
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT_URL", self.endpoint.clone()),
            ("AWS_ACCESS_KEY_ID", self.access_key.clone()),
            ("AWS_SECRET_ACCESS_KEY", self.secret_key.clone()),
            ("AWS_REGION", REGION.to_string()),
        ]
    }

    /// A client of this store, as the server would build it from [`Self::env`].
    pub fn client(&self) -> aws_sdk_s3::Client {
        s3_client(&self.endpoint, &self.access_key, &self.secret_key, REGION)
    }

    /// Creates bucket `name` (S3's rules: 3 to 63 of a-z, 0-9, `-`).
    pub fn create_bucket(&self, name: &str) -> Result<()> {
        let valid = (3..=63).contains(&name.len())
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            && !name.starts_with('-')
            && !name.ends_with('-');
        if !valid {
            bail!("bucket name {name:?}: 3 to 63 of a-z, 0-9 and -, not starting or ending with -");
        }
        let client = self.client();
        let name = name.to_string();
        service::block_on_own_runtime(async move {
            client
                .create_bucket()
                .bucket(&name)
                .send()
                .await
                .map_err(|e| anyhow!("creating bucket {name}: {}", sdk_error(&e)))?;
            Ok(())
        })
    }

    /// [`Self::create_bucket`] with a name unique on this store,
    /// `{prefix}-{n}`; returns it.
    pub fn fresh_bucket(&self, prefix: &str) -> Result<String> {
        let n = self.next_bucket.fetch_add(1, Ordering::Relaxed);
        let mut prefix: String = prefix
            .chars()
            .map(|c| {
                let c = c.to_ascii_lowercase();
                if c.is_ascii_alphanumeric() {
                    c
                } else {
                    '-'
                }
            })
            .collect();
        prefix.truncate(50);
        let name = format!("{}-{n}", prefix.trim_matches('-'));
        let name = if name.len() < 3 {
            format!("b-{name}")
        } else {
            name
        };
        self.create_bucket(&name)?;
        Ok(name)
    }

    /// The folder s3s-fs keeps the buckets in (a bucket is a folder, an
    /// object a file: for a test that must see what is stored, say after a
    /// failed upload).
    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn log_tail(&self) -> String {
        self.log.tail()
    }

    /// Kills the store (SIGKILL), as an outage.
    pub fn kill(&self) {
        if let Some(mut child) = self.child.lock().unwrap_or_else(|e| e.into_inner()).take() {
            service::stop_child(&mut child, libc::SIGKILL, Duration::ZERO);
        }
    }

    /// Starts it again on its port, with what it stored.
    pub fn restart(&self) -> Result<()> {
        self.kill();
        self.spawn(&s3s_fs_bin()?, self.addr.port())
    }

    fn shut_down(&self) {
        self.kill();
        if let Some(tmp) = self.tmp.lock().unwrap_or_else(|e| e.into_inner()).take() {
            let _ = tmp.close();
        }
    }
}

impl Drop for ObjectStoreServer {
    fn drop(&mut self) {
        self.shut_down();
    }
}

/// An S3 client for an S3-compatible endpoint, on rustls with ring, with the
/// settings such stores need (see the module docs).
pub fn s3_client(
    endpoint: &str,
    access_key: &str,
    secret_key: &str,
    region: &str,
) -> aws_sdk_s3::Client {
    use aws_sdk_s3::config::{
        BehaviorVersion, Credentials, Region, RequestChecksumCalculation,
        ResponseChecksumValidation,
    };
    use aws_smithy_http_client::tls;
    let http = aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(
            tls::rustls_provider::CryptoMode::Ring,
        ))
        .build_https();
    let config = aws_sdk_s3::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .http_client(http)
        .endpoint_url(endpoint)
        .region(Region::new(region.to_string()))
        .credentials_provider(Credentials::new(
            access_key,
            secret_key,
            None,
            None,
            "gridcase-tests",
        ))
        .force_path_style(true)
        .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
        .response_checksum_validation(ResponseChecksumValidation::WhenRequired)
        .build();
    aws_sdk_s3::Client::from_conf(config)
}

/// An SDK error with its S3 code and message (the SDK's `Display` says only
/// "service error").
pub fn sdk_error<E, R>(e: &aws_sdk_s3::error::SdkError<E, R>) -> String
where
    E: aws_sdk_s3::error::ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    match e.as_service_error() {
        Some(service) => format!(
            "{}: {}",
            service.code().unwrap_or("no code"),
            service.message().unwrap_or("no message")
        ),
        None => format!("{}", aws_sdk_s3::error::DisplayErrorContext(e)),
    }
}

fn random_alnum(n: usize) -> String {
    (0..n).map(|_| fastrand::alphanumeric()).collect()
}

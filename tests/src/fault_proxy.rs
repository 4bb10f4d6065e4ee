//! A fault-injecting HTTP/1.1 proxy between terminals and the server, on
//! 127.0.0.1. It reads each request's head, decides its fate, then forwards
//! the body as it arrives (so a request can fail while the client is still
//! sending it), reads the server's whole response (`Content-Length`,
//! chunked, or to the end) and relays it byte for byte. Client connections
//! are kept alive, as a pooling client (reqwest) expects.
//!
//! Fates are reproducible: the fate of the proxy's `n`-th request is drawn
//! from an RNG seeded with (seed, n) alone, so with one proxy per terminal a
//! fault depends on (seed, terminal, that terminal's request number), never
//! on how requests of different terminals interleave. [`ProxyStats::fates`]
//! lists them for a failure report and for comparing two runs.
//!
//! With faults on, each request may be:
//! - **dropped mid-request**: only part of the request (head or body) is
//!   forwarded, then both connections close, the client possibly still
//!   sending (the server sees a truncated request; the client an error);
//! - **answered, then the answer lost**: the whole request is forwarded and
//!   the server's whole response read (it has committed), then the client's
//!   connection is closed without it;
//! - **answered in part**: the response's head and part of its body reach
//!   the client, then the connection closes (a pull page or a photo arriving
//!   half);
//! - **stalled** before forwarding or before relaying the answer: briefly, or
//!   longer than the client's timeout (`long_stall_ms`);
//! - **answered 503** by the proxy itself, without asking the server;
//! - **abandoned**: forwarded and answered by the server, then held until the
//!   client gives up; [`FaultProxy::abandoned`] tells the test to drop the
//!   sync at that moment, as an app does when the grid leader leaves the
//!   screen (only for sync, upload and download requests).
//!
//! [`FaultProxy::fail_next`] applies one fault to the next requests to a
//! path, whether random faults are on or not, and [`FaultProxy::set_upstream`]
//! follows a restarted server. A one-shot **cut** cuts an upload: after `n`
//! bytes of request bodies to a path prefix, the request carrying byte `n` is
//! forwarded only up to it and both connections are closed.
//!
//! Counters see the real bytes on the wire between client and proxy, headers
//! included, and which endpoint each request was for.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

const MAX_HEAD: usize = 64 * 1024;

/// Probabilities per request (they add up to at most 1) and the stall lengths.
#[derive(Debug, Clone)]
pub struct FaultConfig {
    pub drop_mid_request: f64,
    pub lose_response: f64,
    pub cut_response: f64,
    pub stall: f64,
    pub stall_past_timeout: f64,
    pub answer_503: f64,
    pub abandon: f64,
    /// Short stalls, milliseconds, drawn uniformly from this range.
    pub stall_ms: (u64, u64),
    /// A stall longer than the client's request timeout.
    pub long_stall_ms: u64,
}

impl Default for FaultConfig {
    fn default() -> Self {
        FaultConfig {
            drop_mid_request: 0.08,
            lose_response: 0.08,
            cut_response: 0.05,
            stall: 0.06,
            stall_past_timeout: 0.0,
            answer_503: 0.05,
            abandon: 0.0,
            stall_ms: (20, 250),
            long_stall_ms: 0,
        }
    }
}

/// What happened to one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Fate {
    Relayed,
    DroppedMidRequest,
    LostResponse,
    /// Part of the response's body reached the client.
    CutResponse,
    /// Held longer than the client's timeout (before or after the server).
    StalledPastTimeout,
    Answered503,
    /// Answered by the server, held until the test dropped the sync.
    Abandoned,
    Cut,
    /// The server could not be reached or answered garbage.
    UpstreamFailed,
}

/// One request through the proxy.
#[derive(Debug, Clone)]
pub struct Exchange {
    /// The proxy's request number (from 0), which its fate was drawn from.
    pub n: u64,
    pub method: String,
    pub path: String,
    /// What the request was for: see [`endpoint`].
    pub endpoint: &'static str,
    pub request_head: u64,
    pub request_body: u64,
    /// Bytes of the request the server received (all of it unless cut or dropped).
    pub forwarded: u64,
    /// Bytes sent back to the client.
    pub response: u64,
    /// Bytes of the response's body the server sent (all of it reached the
    /// client only if `fate` is `Relayed`).
    pub response_body: u64,
    pub status: Option<u16>,
    pub stalled_ms: u64,
    pub fate: Fate,
}

impl Exchange {
    /// A drop that landed inside the request's body (not in its head).
    pub fn dropped_inside_body(&self) -> bool {
        self.fate == Fate::DroppedMidRequest
            && self.forwarded > self.request_head
            && self.forwarded < self.request_head + self.request_body
    }
}

/// What a request is for, from its method, path and the start of its body:
/// `enrol`, `grids`, `push`, `pull`, `upload`, `upload_status`, `download`,
/// `rating_link`, or `other`.
pub fn endpoint(method: &str, path: &str, body_start: &[u8]) -> &'static str {
    let path = path.split('?').next().unwrap_or_default();
    match (method, path) {
        ("POST", "/v1/enrol") => "enrol",
        ("GET", "/v1/grids") => "grids",
        ("POST", "/v1/sync") => {
            // The push comes first in the body; an empty one is a pull.
            if body_start.starts_with(br#"{"push":[]"#) {
                "pull"
            } else {
                "push"
            }
        }
        ("PUT", p) if p.starts_with("/v1/photos/") => "upload",
        ("GET", p) if p.starts_with("/v1/photos/") && p.ends_with("/upload") => "upload_status",
        ("GET", p) if p.starts_with("/v1/photos/") => "download",
        ("POST", p) if p.ends_with("/rating-link") => "rating_link",
        _ => "other",
    }
}

#[derive(Debug, Clone, Default)]
pub struct ProxyStats {
    pub connections: u64,
    pub exchanges: Vec<Exchange>,
}

impl ProxyStats {
    pub fn requests(&self) -> u64 {
        self.exchanges.len() as u64
    }
    /// Bytes the clients sent (request heads and bodies).
    pub fn bytes_from_clients(&self) -> u64 {
        self.exchanges
            .iter()
            .map(|e| e.request_head + e.request_body)
            .sum()
    }
    /// Bytes the clients received (response heads and bodies).
    pub fn bytes_to_clients(&self) -> u64 {
        self.exchanges.iter().map(|e| e.response).sum()
    }
    pub fn count(&self, fate: Fate) -> u64 {
        self.exchanges.iter().filter(|e| e.fate == fate).count() as u64
    }
    /// Requests to `endpoint` that met `fate`.
    pub fn count_at(&self, endpoint: &str, fate: Fate) -> u64 {
        self.exchanges
            .iter()
            .filter(|e| e.endpoint == endpoint && e.fate == fate)
            .count() as u64
    }
    pub fn stalls(&self) -> u64 {
        self.exchanges.iter().filter(|e| e.stalled_ms > 0).count() as u64
    }
    /// (endpoint, fate) → requests, for the report.
    pub fn by_endpoint(&self) -> std::collections::BTreeMap<(&'static str, Fate), u64> {
        let mut out = std::collections::BTreeMap::new();
        for e in &self.exchanges {
            *out.entry((e.endpoint, e.fate)).or_default() += 1;
        }
        out
    }
    /// Every request's fate, in request order: `n endpoint fate` and what was
    /// kept of a dropped request or a stall, the same for the same seed.
    pub fn fates(&self) -> Vec<String> {
        let mut ex: Vec<&Exchange> = self.exchanges.iter().collect();
        ex.sort_by_key(|e| e.n);
        ex.iter()
            .map(|e| {
                let mut line = format!("{} {} {:?}", e.n, e.endpoint, e.fate);
                if matches!(e.fate, Fate::DroppedMidRequest | Fate::Cut) {
                    line += &format!(" kept {}/{}", e.forwarded, e.request_head + e.request_body);
                }
                if e.stalled_ms > 0 {
                    line += &format!(" stalled {} ms", e.stalled_ms);
                }
                line
            })
            .collect()
    }
    /// A one-line summary.
    pub fn summary(&self) -> String {
        format!(
            "{} connections, {} requests: {} relayed, {} dropped mid-request ({} inside a body), {} responses lost, {} cut mid-body, {} answered 503, {} abandoned, {} stalled ({} past the timeout), {} cut, {} upstream failures",
            self.connections,
            self.requests(),
            self.count(Fate::Relayed),
            self.count(Fate::DroppedMidRequest),
            self.exchanges.iter().filter(|e| e.dropped_inside_body()).count(),
            self.count(Fate::LostResponse),
            self.count(Fate::CutResponse),
            self.count(Fate::Answered503),
            self.count(Fate::Abandoned),
            self.stalls(),
            self.count(Fate::StalledPastTimeout),
            self.count(Fate::Cut),
            self.count(Fate::UpstreamFailed),
        )
    }
}

/// A fault to apply to chosen requests (see [`FaultProxy::fail_next`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    DropMidRequest,
    LoseResponse,
    CutResponse,
    Answer503,
}

#[derive(Debug)]
struct CutPlan {
    path_prefix: String,
    remaining: u64,
}

struct Shared {
    upstream: Mutex<SocketAddr>,
    /// (path prefix, fault, how many more times)
    targeted: Mutex<Vec<(String, Fault, u32)>>,
    faults_on: AtomicBool,
    config: Mutex<FaultConfig>,
    seed: u64,
    next_request: AtomicU64,
    stats: Mutex<ProxyStats>,
    cut: Mutex<Option<CutPlan>>,
    abandon_tx: tokio::sync::mpsc::UnboundedSender<()>,
    abandon_rx: tokio::sync::Mutex<tokio::sync::mpsc::UnboundedReceiver<()>>,
}

/// A running proxy; stops (with all its connections) when dropped.
pub struct FaultProxy {
    pub addr: SocketAddr,
    /// `http://127.0.0.1:PORT`
    pub url: String,
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

#[derive(Debug, Clone, Copy)]
enum Plan {
    Relay {
        stall_before: u64,
        stall_after: u64,
    },
    /// Keep this many bytes of the raw request (head and body).
    DropMidRequest {
        keep: usize,
    },
    LoseResponse,
    /// Send this share (0..1) of the response's body, then close.
    CutResponse {
        share: f64,
    },
    StallPastTimeout {
        before_server: bool,
        ms: u64,
    },
    Answer503,
    Abandon,
    Cut {
        keep: usize,
    },
}

/// SplitMix64 of (seed, n): the seed of request `n`'s own RNG.
fn request_seed(seed: u64, n: u64) -> u64 {
    let mut z = seed ^ n.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl FaultProxy {
    /// Listens on 127.0.0.1:0 in front of `upstream`, faults off.
    pub async fn start(upstream: SocketAddr, seed: u64) -> std::io::Result<FaultProxy> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (abandon_tx, abandon_rx) = tokio::sync::mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            upstream: Mutex::new(upstream),
            targeted: Mutex::new(Vec::new()),
            faults_on: AtomicBool::new(false),
            config: Mutex::new(FaultConfig::default()),
            seed,
            next_request: AtomicU64::new(0),
            stats: Mutex::new(ProxyStats::default()),
            cut: Mutex::new(None),
            abandon_tx,
            abandon_rx: tokio::sync::Mutex::new(abandon_rx),
        });
        let s = shared.clone();
        let task = tokio::spawn(async move {
            let mut conns = tokio::task::JoinSet::new();
            loop {
                tokio::select! {
                    accepted = listener.accept() => {
                        let Ok((client, _)) = accepted else { continue };
                        let _ = client.set_nodelay(true);
                        lock(&s.stats).connections += 1;
                        conns.spawn(serve_client(client, s.clone()));
                    }
                    Some(_) = conns.join_next(), if !conns.is_empty() => {}
                }
            }
        });
        Ok(FaultProxy {
            addr,
            url: format!("http://{addr}"),
            shared,
            task,
        })
    }

    pub fn set_faults(&self, on: bool) {
        self.shared.faults_on.store(on, Ordering::SeqCst);
    }

    pub fn faults_on(&self) -> bool {
        self.shared.faults_on.load(Ordering::SeqCst)
    }

    pub fn set_config(&self, config: FaultConfig) {
        *lock(&self.shared.config) = config;
    }

    /// Arms the one-shot cut: after `after` more bytes of bodies of requests
    /// whose path starts with `path_prefix`, cut (works with faults on or off).
    pub fn cut_request_body_after(&self, path_prefix: &str, after: u64) {
        *lock(&self.shared.cut) = Some(CutPlan {
            path_prefix: path_prefix.to_string(),
            remaining: after,
        });
    }

    /// Applies `fault` to the next `times` requests whose path starts with
    /// `path_prefix` (with faults on or off).
    pub fn fail_next(&self, path_prefix: &str, fault: Fault, times: u32) {
        lock(&self.shared.targeted).push((path_prefix.to_string(), fault, times));
    }

    /// Sends later requests to another server address (a restarted server).
    pub fn set_upstream(&self, upstream: SocketAddr) {
        *lock(&self.shared.upstream) = upstream;
    }

    /// Whether an armed cut has not happened yet.
    pub fn cut_pending(&self) -> bool {
        lock(&self.shared.cut).is_some()
    }

    /// Forgets abandonments nobody waited for (call before each sync).
    pub async fn clear_abandoned(&self) {
        let mut rx = self.shared.abandon_rx.lock().await;
        while rx.try_recv().is_ok() {}
    }

    /// Completes when the proxy holds a request it chose to abandon: the
    /// moment for the test to drop the sync that sent it.
    pub async fn abandoned(&self) {
        let mut rx = self.shared.abandon_rx.lock().await;
        if rx.recv().await.is_none() {
            std::future::pending::<()>().await;
        }
    }

    pub fn stats(&self) -> ProxyStats {
        lock(&self.shared.stats).clone()
    }

    /// The counters so far, and zero them.
    pub fn take_stats(&self) -> ProxyStats {
        std::mem::take(&mut *lock(&self.shared.stats))
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A connection with a read buffer, for reading HTTP/1.1 messages whole.
struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
}

/// A message read whole, as its raw bytes.
struct Message {
    raw: Vec<u8>,
    head_len: usize,
    first_line: String,
    headers: Vec<(String, String)>,
}

impl Message {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    fn wants_close(&self) -> bool {
        self.header("connection")
            .is_some_and(|v| v.to_ascii_lowercase().contains("close"))
            || self.first_line.ends_with("HTTP/1.0")
    }
}

fn invalid(msg: &str) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, msg.to_string())
}

impl Conn {
    fn new(stream: TcpStream) -> Conn {
        Conn {
            stream,
            buf: Vec::with_capacity(16 * 1024),
        }
    }

    /// Reads more bytes into the buffer; `false` at the end of the stream.
    async fn fill(&mut self) -> std::io::Result<bool> {
        let mut chunk = [0u8; 64 * 1024];
        let n = self.stream.read(&mut chunk).await?;
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(n > 0)
    }

    fn take(&mut self, n: usize) -> Vec<u8> {
        let rest = self.buf.split_off(n);
        std::mem::replace(&mut self.buf, rest)
    }

    /// The head up to and including the empty line; `None` at a clean end.
    async fn read_head(&mut self) -> std::io::Result<Option<Vec<u8>>> {
        loop {
            if let Some(i) = find(&self.buf, b"\r\n\r\n") {
                return Ok(Some(self.take(i + 4)));
            }
            if self.buf.len() > MAX_HEAD {
                return Err(invalid("head too large"));
            }
            if !self.fill().await? {
                return if self.buf.is_empty() {
                    Ok(None)
                } else {
                    Err(invalid("the stream ended inside a head"))
                };
            }
        }
    }

    async fn read_exact_n(&mut self, n: usize) -> std::io::Result<Vec<u8>> {
        while self.buf.len() < n {
            if !self.fill().await? {
                return Err(invalid("the stream ended inside a body"));
            }
        }
        Ok(self.take(n))
    }

    async fn read_line(&mut self) -> std::io::Result<Vec<u8>> {
        loop {
            if let Some(i) = find(&self.buf, b"\r\n") {
                return Ok(self.take(i + 2));
            }
            if self.buf.len() > MAX_HEAD {
                return Err(invalid("line too long"));
            }
            if !self.fill().await? {
                return Err(invalid("the stream ended inside a chunk"));
            }
        }
    }

    async fn read_chunked(&mut self, out: &mut Vec<u8>) -> std::io::Result<()> {
        loop {
            let line = self.read_line().await?;
            out.extend_from_slice(&line);
            let text = std::str::from_utf8(&line).map_err(|_| invalid("chunk size"))?;
            let size = text.trim().split(';').next().unwrap_or_default();
            let size = usize::from_str_radix(size.trim(), 16).map_err(|_| invalid("chunk size"))?;
            if size == 0 {
                // Trailers, then the empty line.
                loop {
                    let line = self.read_line().await?;
                    out.extend_from_slice(&line);
                    if line == b"\r\n" {
                        return Ok(());
                    }
                }
            }
            let data = self.read_exact_n(size + 2).await?;
            out.extend_from_slice(&data);
        }
    }

    async fn read_to_end(&mut self, out: &mut Vec<u8>) -> std::io::Result<()> {
        while self.fill().await? {}
        out.append(&mut self.buf);
        Ok(())
    }

    /// One request or response, whole. `request_method` is set when reading a
    /// response (a HEAD response has no body).
    async fn read_message(
        &mut self,
        request_method: Option<&str>,
    ) -> std::io::Result<Option<Message>> {
        let Some(head) = self.read_head().await? else {
            return Ok(None);
        };
        let text = String::from_utf8_lossy(&head).to_string();
        let mut lines = text.split("\r\n");
        let first_line = lines.next().unwrap_or_default().to_string();
        let headers: Vec<(String, String)> = lines
            .filter(|l| !l.is_empty())
            .filter_map(|l| {
                l.split_once(':')
                    .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
            })
            .collect();
        let mut msg = Message {
            head_len: head.len(),
            raw: head,
            first_line,
            headers,
        };
        let chunked = msg
            .header("transfer-encoding")
            .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
        let length = msg
            .header("content-length")
            .map(|v| v.parse::<usize>().map_err(|_| invalid("content-length")))
            .transpose()?;
        let mut raw = std::mem::take(&mut msg.raw);
        match request_method {
            None => {
                // A request: a body only if framed.
                if chunked {
                    self.read_chunked(&mut raw).await?;
                } else if let Some(n) = length {
                    raw.extend(self.read_exact_n(n).await?);
                }
            }
            Some(method) => {
                let status: u16 = msg
                    .first_line
                    .split_whitespace()
                    .nth(1)
                    .and_then(|s| s.parse().ok())
                    .ok_or_else(|| invalid("status line"))?;
                let no_body = method == "HEAD"
                    || (100..200).contains(&status)
                    || status == 204
                    || status == 304;
                if no_body {
                } else if chunked {
                    self.read_chunked(&mut raw).await?;
                } else if let Some(n) = length {
                    raw.extend(self.read_exact_n(n).await?);
                } else {
                    self.read_to_end(&mut raw).await?;
                }
            }
        }
        msg.raw = raw;
        Ok(Some(msg))
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn status_of(msg: &Message) -> Option<u16> {
    msg.first_line.split_whitespace().nth(1)?.parse().ok()
}

/// The head of a request, parsed.
fn parse_head(head: Vec<u8>) -> Message {
    let text = String::from_utf8_lossy(&head).to_string();
    let mut lines = text.split("\r\n");
    let first_line = lines.next().unwrap_or_default().to_string();
    let headers = lines
        .filter(|l| !l.is_empty())
        .filter_map(|l| {
            l.split_once(':')
                .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        })
        .collect();
    Message {
        head_len: head.len(),
        raw: head,
        first_line,
        headers,
    }
}

fn decide(
    shared: &Shared,
    n: u64,
    endpoint: &str,
    path: &str,
    head_len: usize,
    raw_len: usize,
) -> Plan {
    let body_len = (raw_len - head_len) as u64;
    {
        let mut cut = lock(&shared.cut);
        if let Some(plan) = cut.as_mut() {
            if body_len > 0 && path.starts_with(&plan.path_prefix) {
                if body_len > plan.remaining {
                    let keep = head_len + plan.remaining as usize;
                    *cut = None;
                    return Plan::Cut { keep };
                }
                plan.remaining -= body_len;
            }
        }
    }
    // The request's own RNG: its fate depends on (seed, n) only.
    let mut rng = fastrand::Rng::with_seed(request_seed(shared.seed, n));
    {
        let mut targeted = lock(&shared.targeted);
        if let Some(rule) = targeted
            .iter_mut()
            .find(|(prefix, _, n)| *n > 0 && path.starts_with(prefix.as_str()))
        {
            rule.2 -= 1;
            let fault = rule.1;
            targeted.retain(|(_, _, n)| *n > 0);
            return match fault {
                Fault::DropMidRequest => Plan::DropMidRequest {
                    keep: head_len.min(raw_len) / 2,
                },
                Fault::LoseResponse => Plan::LoseResponse,
                Fault::CutResponse => Plan::CutResponse { share: 0.5 },
                Fault::Answer503 => Plan::Answer503,
            };
        }
    }
    if !shared.faults_on.load(Ordering::SeqCst) {
        return Plan::Relay {
            stall_before: 0,
            stall_after: 0,
        };
    }
    let config = lock(&shared.config).clone();
    let mut r = rng.f64();
    let mut next = |p: f64| {
        let hit = r < p;
        r -= p;
        hit
    };
    if next(config.drop_mid_request) {
        // Somewhere in the head or the body, never the whole request.
        let keep = rng.usize(0..raw_len.max(1));
        return Plan::DropMidRequest { keep };
    }
    if next(config.lose_response) {
        return Plan::LoseResponse;
    }
    if next(config.cut_response) {
        return Plan::CutResponse {
            share: rng.f64() * 0.9,
        };
    }
    if next(config.answer_503) {
        return Plan::Answer503;
    }
    if next(config.stall_past_timeout) && config.long_stall_ms > 0 {
        return Plan::StallPastTimeout {
            before_server: rng.bool(),
            ms: config.long_stall_ms,
        };
    }
    let abandonable = matches!(endpoint, "push" | "pull" | "upload" | "download");
    if next(config.abandon) && abandonable {
        return Plan::Abandon;
    }
    if next(config.stall) {
        let ms = rng.u64(config.stall_ms.0..=config.stall_ms.1);
        return if rng.bool() {
            Plan::Relay {
                stall_before: ms,
                stall_after: 0,
            }
        } else {
            Plan::Relay {
                stall_before: 0,
                stall_after: ms,
            }
        };
    }
    Plan::Relay {
        stall_before: 0,
        stall_after: 0,
    }
}

const BODY_503: &str =
    r#"{"code":"unavailable","message":"the proxy in front of the server is unavailable"}"#;

/// A request's body: already read whole (chunked), or still on the client's
/// connection (`Content-Length`), forwarded as it arrives.
enum Body {
    Read(Vec<u8>),
    Streaming(usize),
}

impl Body {
    fn len(&self) -> usize {
        match self {
            Body::Read(b) => b.len(),
            Body::Streaming(n) => *n,
        }
    }
}

/// Forwards the first `limit` bytes of the body to `up` (a `None` upstream
/// drains them); answers how many were forwarded.
async fn forward_body(
    client: &mut Conn,
    body: &Body,
    up: &mut Option<TcpStream>,
    limit: usize,
) -> std::io::Result<usize> {
    let limit = limit.min(body.len());
    match body {
        Body::Read(bytes) => {
            if let Some(up) = up {
                up.write_all(&bytes[..limit]).await?;
            }
        }
        Body::Streaming(_) => {
            let mut sent = 0;
            while sent < limit {
                if client.buf.is_empty() && !client.fill().await? {
                    return Err(invalid("the client's stream ended inside a body"));
                }
                let take = client.buf.len().min(limit - sent);
                let chunk = client.take(take);
                if let Some(up) = up {
                    up.write_all(&chunk).await?;
                }
                sent += take;
            }
        }
    }
    Ok(limit)
}

async fn connect_upstream(shared: &Shared) -> std::io::Result<TcpStream> {
    let upstream = *lock(&shared.upstream);
    let up = TcpStream::connect(upstream).await?;
    up.set_nodelay(true)?;
    Ok(up)
}

async fn serve_client(client: TcpStream, shared: Arc<Shared>) {
    let mut client = Conn::new(client);
    loop {
        let head = match client.read_head().await {
            Ok(Some(head)) => head,
            _ => return,
        };
        let req = parse_head(head);
        let mut parts = req.first_line.split_whitespace();
        let method = parts.next().unwrap_or_default().to_string();
        let path = parts.next().unwrap_or_default().to_string();
        let chunked = req
            .header("transfer-encoding")
            .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
        let body = if chunked {
            let mut raw = Vec::new();
            if client.read_chunked(&mut raw).await.is_err() {
                return;
            }
            Body::Read(raw)
        } else {
            let len = req
                .header("content-length")
                .and_then(|v| v.parse::<usize>().ok())
                .unwrap_or(0);
            Body::Streaming(len)
        };
        // Enough of the body to tell a push from a pull.
        let start = match &body {
            Body::Read(b) => b[..b.len().min(16)].to_vec(),
            Body::Streaming(len) => {
                let want = (*len).min(16);
                while client.buf.len() < want {
                    match client.fill().await {
                        Ok(true) => {}
                        _ => return,
                    }
                }
                client.buf[..want].to_vec()
            }
        };
        let endpoint = endpoint(&method, &path, &start);
        let n = shared.next_request.fetch_add(1, Ordering::SeqCst);
        let head_len = req.head_len;
        let raw_len = head_len + body.len();
        let mut ex = Exchange {
            n,
            method: method.clone(),
            path: path.clone(),
            endpoint,
            request_head: head_len as u64,
            request_body: body.len() as u64,
            forwarded: 0,
            response: 0,
            response_body: 0,
            status: None,
            stalled_ms: 0,
            fate: Fate::Relayed,
        };
        let plan = decide(&shared, n, endpoint, &path, head_len, raw_len);
        let record = |ex: Exchange| lock(&shared.stats).exchanges.push(ex);
        match plan {
            Plan::Answer503 => {
                // Take the body in first, as a proxy that refuses would.
                let _ = forward_body(&mut client, &body, &mut None, usize::MAX).await;
                let resp = format!(
                    "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{BODY_503}",
                    BODY_503.len()
                );
                let _ = client.stream.write_all(resp.as_bytes()).await;
                ex.response = resp.len() as u64;
                ex.status = Some(503);
                ex.fate = Fate::Answered503;
                record(ex);
                return;
            }
            Plan::DropMidRequest { keep } | Plan::Cut { keep } => {
                ex.fate = if matches!(plan, Plan::Cut { .. }) {
                    Fate::Cut
                } else {
                    Fate::DroppedMidRequest
                };
                if let Ok(up) = connect_upstream(&shared).await {
                    let mut up = Some(up);
                    let head_part = keep.min(head_len);
                    let mut sent = 0;
                    if let Some(u) = up.as_mut() {
                        if u.write_all(&req.raw[..head_part]).await.is_ok() {
                            sent = head_part;
                        }
                    }
                    if keep > head_len {
                        if let Ok(b) =
                            forward_body(&mut client, &body, &mut up, keep - head_len).await
                        {
                            sent += b;
                        }
                    }
                    ex.forwarded = sent as u64;
                    if let Some(mut u) = up {
                        let _ = u.flush().await;
                        // Give the server a moment to take in what arrived,
                        // then cut both sides, the client perhaps mid-send.
                        tokio::time::sleep(Duration::from_millis(2)).await;
                        drop(u);
                    }
                }
                record(ex);
                return;
            }
            _ => {}
        }
        let (stall_before, stall_after) = match plan {
            Plan::Relay {
                stall_before,
                stall_after,
            } => (stall_before, stall_after),
            Plan::StallPastTimeout {
                before_server: true,
                ms,
            } => (ms, 0),
            Plan::StallPastTimeout {
                before_server: false,
                ms,
            } => (0, ms),
            _ => (0, 0),
        };
        ex.stalled_ms = stall_before + stall_after;
        if stall_before > 0 {
            tokio::time::sleep(Duration::from_millis(stall_before)).await;
        }
        let resp = async {
            let mut up = Some(connect_upstream(&shared).await?);
            if let Some(u) = up.as_mut() {
                u.write_all(&req.raw).await?;
            }
            forward_body(&mut client, &body, &mut up, usize::MAX).await?;
            let up = up.expect("connected");
            let mut up = Conn::new(up);
            up.stream.flush().await?;
            up.read_message(Some(&method)).await
        }
        .await;
        ex.forwarded = raw_len as u64;
        let resp = match resp {
            Ok(Some(resp)) => resp,
            _ => {
                ex.fate = Fate::UpstreamFailed;
                record(ex);
                return;
            }
        };
        ex.status = status_of(&resp);
        ex.response_body = (resp.raw.len() - resp.head_len) as u64;
        match plan {
            Plan::LoseResponse => {
                ex.fate = Fate::LostResponse;
                record(ex);
                return;
            }
            Plan::CutResponse { share } => {
                let body_len = resp.raw.len() - resp.head_len;
                let keep = resp.head_len
                    + ((body_len as f64 * share) as usize).min(body_len.saturating_sub(1));
                let _ = client.stream.write_all(&resp.raw[..keep]).await;
                let _ = client.stream.flush().await;
                ex.response = keep as u64;
                ex.fate = Fate::CutResponse;
                record(ex);
                return;
            }
            Plan::Abandon => {
                // The server has answered; hold the answer until the test
                // drops the sync (the client's side closes) or 30 s pass.
                let _ = shared.abandon_tx.send(());
                let mut byte = [0u8; 1];
                let _ =
                    tokio::time::timeout(Duration::from_secs(30), client.stream.read(&mut byte))
                        .await;
                ex.fate = Fate::Abandoned;
                record(ex);
                return;
            }
            _ => {}
        }
        if stall_after > 0 {
            tokio::time::sleep(Duration::from_millis(stall_after)).await;
        }
        if matches!(plan, Plan::StallPastTimeout { .. }) {
            // The client has given up by now: whatever it gets is too late.
            ex.fate = Fate::StalledPastTimeout;
            let _ = client.stream.write_all(&resp.raw).await;
            record(ex);
            return;
        }
        if client.stream.write_all(&resp.raw).await.is_err() {
            ex.fate = Fate::UpstreamFailed;
            record(ex);
            return;
        }
        ex.response = resp.raw.len() as u64;
        let close = req.wants_close() || resp.wants_close();
        record(ex);
        if close {
            return;
        }
    }
}

//! A fault-injecting HTTP/1.1 proxy between terminals and the server, on
//! 127.0.0.1. It reads each request whole from the client (head, and a
//! `Content-Length` or chunked body), sends it on a fresh connection to the
//! server, reads the whole response (`Content-Length`, chunked, or to the end),
//! and relays it byte for byte. Client connections are kept alive, as a
//! pooling client (reqwest) expects.
//!
//! With faults on, a seeded RNG decides for each request whether to:
//! - **drop mid-request**: forward only part of the request, then close both
//!   connections (the server sees a truncated request; the client an error);
//! - **lose the response**: forward the whole request, read the server's whole
//!   response (it has committed), then close the client's connection without
//!   sending it;
//! - **stall**: wait before forwarding the request or before relaying the answer;
//! - **answer 503** itself, without asking the server.
//!
//! [`FaultProxy::fail_next`] applies one of these faults to the next requests
//! to a path, whether random faults are on or not, for targeted tests, and
//! [`FaultProxy::set_upstream`] follows a restarted server.
//!
//! A one-shot **cut** cuts an upload: after `n` bytes of request bodies to a
//! path prefix, the request carrying byte `n` is forwarded only up to it and
//! both connections are closed.
//!
//! Counters see the real bytes on the wire between client and proxy, headers
//! included.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

const MAX_HEAD: usize = 64 * 1024;

/// Probabilities per request (they add up to at most 1) and the stall range.
#[derive(Debug, Clone)]
pub struct FaultConfig {
    pub drop_mid_request: f64,
    pub lose_response: f64,
    pub stall: f64,
    pub answer_503: f64,
    /// Stall length, milliseconds, drawn uniformly from this range.
    pub stall_ms: (u64, u64),
}

impl Default for FaultConfig {
    fn default() -> Self {
        FaultConfig {
            drop_mid_request: 0.08,
            lose_response: 0.08,
            stall: 0.06,
            answer_503: 0.05,
            stall_ms: (20, 250),
        }
    }
}

/// What happened to one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fate {
    Relayed,
    DroppedMidRequest,
    LostResponse,
    Answered503,
    Cut,
    /// The server could not be reached or answered garbage.
    UpstreamFailed,
}

/// One request through the proxy.
#[derive(Debug, Clone)]
pub struct Exchange {
    pub method: String,
    pub path: String,
    pub request_head: u64,
    pub request_body: u64,
    /// Bytes of the request the server received (all of it unless cut or dropped).
    pub forwarded: u64,
    /// Bytes sent back to the client.
    pub response: u64,
    pub status: Option<u16>,
    pub stalled_ms: u64,
    pub fate: Fate,
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
    pub fn stalls(&self) -> u64 {
        self.exchanges.iter().filter(|e| e.stalled_ms > 0).count() as u64
    }
    /// A one-line summary.
    pub fn summary(&self) -> String {
        format!(
            "{} connections, {} requests: {} relayed, {} dropped mid-request, {} responses lost, {} answered 503, {} cut, {} stalled, {} upstream failures",
            self.connections,
            self.requests(),
            self.count(Fate::Relayed),
            self.count(Fate::DroppedMidRequest),
            self.count(Fate::LostResponse),
            self.count(Fate::Answered503),
            self.count(Fate::Cut),
            self.stalls(),
            self.count(Fate::UpstreamFailed),
        )
    }
}

/// A fault to apply to chosen requests (see [`FaultProxy::fail_next`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    DropMidRequest,
    LoseResponse,
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
    rng: Mutex<fastrand::Rng>,
    stats: Mutex<ProxyStats>,
    cut: Mutex<Option<CutPlan>>,
}

/// A running proxy; stops (with all its connections) when dropped.
pub struct FaultProxy {
    pub addr: SocketAddr,
    /// `http://127.0.0.1:PORT`
    pub url: String,
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

enum Plan {
    Relay { stall_before: u64, stall_after: u64 },
    DropMidRequest { keep: usize },
    LoseResponse,
    Answer503,
    Cut { keep: usize },
}

impl FaultProxy {
    /// Listens on 127.0.0.1:0 in front of `upstream`, faults off.
    pub async fn start(upstream: SocketAddr, seed: u64) -> std::io::Result<FaultProxy> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            upstream: Mutex::new(upstream),
            targeted: Mutex::new(Vec::new()),
            faults_on: AtomicBool::new(false),
            config: Mutex::new(FaultConfig::default()),
            rng: Mutex::new(fastrand::Rng::with_seed(seed)),
            stats: Mutex::new(ProxyStats::default()),
            cut: Mutex::new(None),
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

fn decide(shared: &Shared, method: &str, path: &str, head_len: usize, raw_len: usize) -> Plan {
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
    let _ = method;
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
    let mut rng = lock(&shared.rng);
    let mut r = rng.f64();
    if r < config.drop_mid_request {
        // Somewhere in the head or the body, never the whole request.
        let keep = rng.usize(0..raw_len.max(1));
        return Plan::DropMidRequest { keep };
    }
    r -= config.drop_mid_request;
    if r < config.lose_response {
        return Plan::LoseResponse;
    }
    r -= config.lose_response;
    if r < config.answer_503 {
        return Plan::Answer503;
    }
    r -= config.answer_503;
    if r < config.stall {
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

async fn serve_client(client: TcpStream, shared: Arc<Shared>) {
    let mut client = Conn::new(client);
    loop {
        let req = match client.read_message(None).await {
            Ok(Some(req)) => req,
            _ => return,
        };
        let mut parts = req.first_line.split_whitespace();
        let method = parts.next().unwrap_or_default().to_string();
        let path = parts.next().unwrap_or_default().to_string();
        let mut ex = Exchange {
            method: method.clone(),
            path: path.clone(),
            request_head: req.head_len as u64,
            request_body: (req.raw.len() - req.head_len) as u64,
            forwarded: 0,
            response: 0,
            status: None,
            stalled_ms: 0,
            fate: Fate::Relayed,
        };
        let plan = decide(&shared, &method, &path, req.head_len, req.raw.len());
        let record = |ex: Exchange| lock(&shared.stats).exchanges.push(ex);
        let (stall_before, stall_after, lose) = match plan {
            Plan::Answer503 => {
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
                let upstream = *lock(&shared.upstream);
                if let Ok(mut up) = TcpStream::connect(upstream).await {
                    let _ = up.set_nodelay(true);
                    if up.write_all(&req.raw[..keep]).await.is_ok() {
                        ex.forwarded = keep as u64;
                    }
                    let _ = up.flush().await;
                    // Give the server a moment to take in what arrived, then
                    // cut both sides.
                    tokio::time::sleep(Duration::from_millis(2)).await;
                    drop(up);
                }
                record(ex);
                return;
            }
            Plan::LoseResponse => (0, 0, true),
            Plan::Relay {
                stall_before,
                stall_after,
            } => (stall_before, stall_after, false),
        };
        ex.stalled_ms = stall_before + stall_after;
        if stall_before > 0 {
            tokio::time::sleep(Duration::from_millis(stall_before)).await;
        }
        let upstream = *lock(&shared.upstream);
        let resp = async {
            let up = TcpStream::connect(upstream).await?;
            up.set_nodelay(true)?;
            let mut up = Conn::new(up);
            up.stream.write_all(&req.raw).await?;
            up.stream.flush().await?;
            up.read_message(Some(&method)).await
        }
        .await;
        ex.forwarded = req.raw.len() as u64;
        let resp = match resp {
            Ok(Some(resp)) => resp,
            _ => {
                ex.fate = Fate::UpstreamFailed;
                record(ex);
                return;
            }
        };
        ex.status = status_of(&resp);
        if lose {
            ex.fate = Fate::LostResponse;
            record(ex);
            return;
        }
        if stall_after > 0 {
            tokio::time::sleep(Duration::from_millis(stall_after)).await;
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

//! nginx as the load balancer in front of several server instances: round
//! robin, no sticky sessions, on 127.0.0.1 and a free port, everything it
//! writes (config, pid, logs, temporary files) in a temporary folder.
//!
//! ```no_run
//! # fn main() -> anyhow::Result<()> {
//! use gridcase_tests::balancer::Balancer;
//! # let (a, b): (std::net::SocketAddr, std::net::SocketAddr) = todo!();
//! let lb = Balancer::start(&[a, b])?; // two gridcase-server instances
//! // terminals and the dashboard talk to lb.url only
//! lb.set_upstreams(&[b])?; // a restarted instance on a new port, say
//! # Ok(()) }
//! ```
//!
//! nginx is Debian's (`apt-get install nginx`, by
//! `scripts/install-services.sh`): `GRIDCASE_NGINX`, `PATH`, or
//! `/usr/sbin/nginx`. It runs in the foreground as our child (`daemon off`,
//! with a parent-death signal, [`crate::service`]); as root, as the
//! unprivileged account of [`crate::service::ServiceUser`].
//!
//! **What the config does, and why (the fault tests depend on it):**
//! - Round robin over the upstreams, no affinity: consecutive requests go to
//!   different instances, so sessions, CSRF tokens and resumable uploads must
//!   work on any instance.
//! - Streams both ways: `proxy_request_buffering off` (an upload reaches the
//!   instance as the terminal sends it, so a cut upload is cut at the
//!   instance too, and resumes from what it really got), `proxy_buffering
//!   off` (downloads are not staged on the balancer's disk),
//!   `client_max_body_size 0` (the server sets its own limits). HTTP/1.1
//!   with kept-alive connections to the upstreams.
//! - Failover: `proxy_next_upstream error timeout http_502 http_503`. A
//!   request whose instance refuses the connection (killed, restarting) is
//!   passed to the next one whatever its method, since nothing was sent. An
//!   instance that dies after the request went out: nginx passes it on only
//!   for idempotent methods (GET, HEAD, PUT, DELETE, OPTIONS); a POST gets a
//!   502 and the client must retry, which the sync protocol's op ids make
//!   safe. With request buffering off, a request whose body has started to
//!   go out is never passed on. `max_fails=1 fail_timeout=1s`: a failed
//!   instance is left out for a second, then tried again (a restarted one
//!   comes back quickly).
//! - Timeouts: connect 1 s (loopback answers at once or never), send and read
//!   [`BalancerOptions::read_timeout`] (30 s by default: longer than any
//!   request of the server, short enough that a stalled instance fails a
//!   test quickly).
//! - `X-Forwarded-For` (the client's address appended), `X-Forwarded-Proto`,
//!   `X-Real-IP` and the client's `Host` are passed to the instance.
//! - The access log names the upstream of each request
//!   ([`Balancer::access_log`]), for tests that must see where requests went.
//! - `GET /__balancer/generation` is answered by nginx itself with the
//!   config's generation, so [`Balancer::set_upstreams`] returns only once
//!   the new config serves.

use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};

use crate::service::{self, LogTail, ServiceUser};

/// How the balancer is set up.
#[derive(Debug, Clone)]
pub struct BalancerOptions {
    /// `proxy_read_timeout` and `proxy_send_timeout`.
    pub read_timeout: Duration,
    /// `proxy_next_upstream_tries`: 0 tries every upstream once.
    pub next_upstream_tries: u32,
}

impl Default for BalancerOptions {
    fn default() -> Self {
        BalancerOptions {
            read_timeout: Duration::from_secs(30),
            next_upstream_tries: 0,
        }
    }
}

/// The nginx binary (see the module docs).
pub fn nginx_bin() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os("GRIDCASE_NGINX") {
        return Ok(PathBuf::from(p));
    }
    service::find_program("nginx", &["/usr/sbin"]).ok_or_else(|| {
        anyhow!(
            "nginx not found (GRIDCASE_NGINX, PATH, /usr/sbin): run scripts/install-services.sh \
             as root (apt-get install nginx)"
        )
    })
}

/// A running nginx in front of some upstreams.
pub struct Balancer {
    pub addr: SocketAddr,
    /// `http://127.0.0.1:PORT`
    pub url: String,
    bin: PathBuf,
    dir: PathBuf,
    opts: BalancerOptions,
    state: Mutex<State>,
    log: LogTail,
    user: Option<ServiceUser>,
    _tmp: tempfile::TempDir,
}

struct State {
    child: Option<Child>,
    upstreams: Vec<SocketAddr>,
    generation: u64,
}

impl Balancer {
    /// nginx in front of `upstreams` (at least one), round robin.
    pub fn start(upstreams: &[SocketAddr]) -> Result<Balancer> {
        Self::start_with(upstreams, BalancerOptions::default())
    }

    pub fn start_with(upstreams: &[SocketAddr], opts: BalancerOptions) -> Result<Balancer> {
        if upstreams.is_empty() {
            bail!("a balancer needs at least one upstream");
        }
        let bin = service::find_or_install("nginx", nginx_bin)?;
        let user = ServiceUser::when_root()?;
        let tmp = tempfile::Builder::new().prefix("gridcase-lb-").tempdir()?;
        let dir = tmp.path().to_path_buf();
        for sub in ["logs", "temp"] {
            std::fs::create_dir(dir.join(sub))?;
        }
        let mut lb = Balancer {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            url: String::new(),
            bin,
            dir,
            opts,
            state: Mutex::new(State {
                child: None,
                upstreams: upstreams.to_vec(),
                generation: 1,
            }),
            log: LogTail::default(),
            user,
            _tmp: tmp,
        };
        let port = service::retry_on_port("nginx", |port| {
            lb.addr.set_port(port);
            lb.spawn()?;
            Ok(port)
        })?;
        lb.addr.set_port(port);
        lb.url = format!("http://{}", lb.addr);
        Ok(lb)
    }

    fn conf_path(&self) -> PathBuf {
        self.dir.join("nginx.conf")
    }

    fn write_conf(&self, state: &State) -> Result<()> {
        let conf = render_conf(
            &self.dir,
            self.addr,
            &state.upstreams,
            state.generation,
            &self.opts,
        );
        // Written whole, then renamed: a reload never reads half a file.
        let tmp = self.dir.join("nginx.conf.new");
        std::fs::write(&tmp, conf)?;
        std::fs::rename(&tmp, self.conf_path())?;
        if let Some(u) = &self.user {
            u.own(&self.dir)?;
        }
        Ok(())
    }

    fn nginx_command(&self) -> Command {
        let mut cmd = Command::new(&self.bin);
        // -e: the log for errors before the config is read (else nginx opens
        // its compiled-in /var/log/nginx/error.log); -p: the prefix for
        // relative paths.
        cmd.current_dir(&self.dir)
            .arg("-e")
            .arg(self.dir.join("logs/error.log"))
            .arg("-p")
            .arg(&self.dir)
            .arg("-c")
            .arg(self.conf_path())
            .stdin(Stdio::null());
        cmd
    }

    fn spawn(&self) -> Result<()> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        self.write_conf(&state)?;
        let mut check = self.nginx_command();
        check.arg("-t").arg("-q");
        if let Some(u) = &self.user {
            check.uid(u.uid).gid(u.gid);
        }
        let out = check.output().context("running nginx -t")?;
        if !out.status.success() {
            bail!(
                "nginx rejected its config: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let mut cmd = self.nginx_command();
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        // SIGTERM: fast shutdown, the master stops its workers.
        let mut child = service::spawn_tied(cmd, libc::SIGTERM, self.user.as_ref())?;
        self.log.follow(child.stdout.take().expect("piped"));
        self.log.follow(child.stderr.take().expect("piped"));
        let generation = state.generation;
        let addr = self.addr;
        let ready = service::wait_until(
            "nginx",
            &mut child,
            &self.log,
            Duration::from_secs(20),
            || serves_generation(addr, generation),
        );
        if let Err(e) = ready {
            service::stop_child(&mut child, libc::SIGTERM, Duration::from_secs(5));
            return Err(e.context(service::file_tail(&self.dir.join("logs/error.log"), 20)));
        }
        state.child = Some(child);
        Ok(())
    }

    /// The upstreams now.
    pub fn upstreams(&self) -> Vec<SocketAddr> {
        self.state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .upstreams
            .clone()
    }

    /// Replaces the upstreams and reloads nginx (SIGHUP: new workers take new
    /// connections, the old ones finish their requests). Returns once the new
    /// config answers.
    pub fn set_upstreams(&self, upstreams: &[SocketAddr]) -> Result<()> {
        if upstreams.is_empty() {
            bail!("a balancer needs at least one upstream");
        }
        let generation = {
            let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
            state.upstreams = upstreams.to_vec();
            state.generation += 1;
            self.write_conf(&state)?;
            let child = state
                .child
                .as_ref()
                .ok_or_else(|| anyhow!("the balancer is stopped"))?;
            // SAFETY: kill(2) on our own running child.
            unsafe {
                libc::kill(child.id() as libc::pid_t, libc::SIGHUP);
            }
            state.generation
        };
        let started = Instant::now();
        while !serves_generation(self.addr, generation) {
            if started.elapsed() > Duration::from_secs(20) {
                bail!(
                    "nginx did not load the new upstreams:\n{}",
                    self.error_log()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }

    /// Each proxied request so far, oldest first: `(method and path,
    /// status, the upstream(s) tried)` (nginx lists every upstream it tried,
    /// `a, b` when it passed the request on).
    pub fn access_log(&self) -> Vec<(String, u16, String)> {
        let text = std::fs::read_to_string(self.dir.join("logs/access.log")).unwrap_or_default();
        text.lines()
            .filter_map(|l| {
                let mut f = l.split('\t');
                let request = f.next()?.to_string();
                let status = f.next()?.parse().ok()?;
                let upstream = f.next()?.to_string();
                Some((request, status, upstream))
            })
            .collect()
    }

    /// The end of nginx's error log.
    pub fn error_log(&self) -> String {
        service::file_tail(&self.dir.join("logs/error.log"), 40)
    }

    /// The master process's id (for its CPU time).
    pub fn pid(&self) -> Option<u32> {
        self.state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .child
            .as_ref()
            .map(|c| c.id())
    }

    /// Stops nginx (fast shutdown). Dropping the balancer does too.
    pub fn stop(&self) {
        let child = self
            .state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .child
            .take();
        if let Some(mut child) = child {
            service::stop_child(&mut child, libc::SIGTERM, Duration::from_secs(10));
        }
    }
}

impl Drop for Balancer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Whether nginx at `addr` answers `/__balancer/generation` with `generation`.
/// A plain request on a new connection: a kept-alive one could still be held
/// by a worker of the old config.
fn serves_generation(addr: SocketAddr, generation: u64) -> bool {
    use std::io::{Read, Write};
    let Ok(mut s) = std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    if s.write_all(b"GET /__balancer/generation HTTP/1.0\r\nHost: balancer\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut answer = String::new();
    let _ = s.read_to_string(&mut answer);
    answer.starts_with("HTTP/1.1 200") && answer.ends_with(&format!("\ngeneration {generation}"))
}

fn render_conf(
    dir: &Path,
    listen: SocketAddr,
    upstreams: &[SocketAddr],
    generation: u64,
    opts: &BalancerOptions,
) -> String {
    let d = dir.display();
    let servers: String = upstreams
        .iter()
        .map(|u| format!("        server {u} max_fails=1 fail_timeout=1s;\n"))
        .collect();
    let timeout = opts.read_timeout.as_secs().max(1);
    let tries = opts.next_upstream_tries;
    format!(
        r#"# Written by tests/src/balancer.rs (generation {generation}).
daemon off;
master_process on;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/logs/error.log notice;

events {{
    worker_connections 4096;
}}

http {{
    log_format upstreams "$request\t$status\t$upstream_addr\t$request_time";
    access_log {d}/logs/access.log upstreams;
    client_body_temp_path {d}/temp/body;
    proxy_temp_path {d}/temp/proxy;
    fastcgi_temp_path {d}/temp/fastcgi;
    uwsgi_temp_path {d}/temp/uwsgi;
    scgi_temp_path {d}/temp/scgi;

    upstream gridcase {{
{servers}        keepalive 32;
    }}

    server {{
        listen {listen};
        client_max_body_size 0;

        location = /__balancer/generation {{
            access_log off;
            default_type text/plain;
            return 200 "generation {generation}";
        }}

        location / {{
            proxy_pass http://gridcase;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $http_host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_set_header X-Real-IP $remote_addr;
            proxy_request_buffering off;
            proxy_buffering off;
            proxy_connect_timeout 1s;
            proxy_send_timeout {timeout}s;
            proxy_read_timeout {timeout}s;
            proxy_next_upstream error timeout http_502 http_503;
            proxy_next_upstream_tries {tries};
            proxy_next_upstream_timeout {timeout}s;
        }}
    }}
}}
"#
    )
}

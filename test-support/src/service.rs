//! What the harnesses of real services (PostgreSQL, the object store, the
//! balancer) share: a free loopback port, processes that die with the test
//! binary, an unprivileged user to run them as when the tests run as root,
//! the last lines a service logged, and a cleanup at process exit.
//!
//! **Processes die with the test binary.** Each service is our child with
//! `PR_SET_PDEATHSIG`, so a test binary that is killed (SIGKILL, a CI timeout)
//! takes its services with it instead of leaving a PostgreSQL on a port. Linux
//! sends that signal when the *thread* that forked the child exits, and
//! libtest runs each test on a thread of its own, so every service is forked
//! from one keeper thread that lives as long as the process ([`spawn_tied`]).
//!
//! **Cleanup at exit.** Statics are never dropped, so a service shared by all
//! tests of a binary registers its stop with [`at_exit`]; libtest returns from
//! `main` normally even when tests panicked (it catches them), and the
//! registered stops run then.

use std::collections::VecDeque;
use std::ffi::CString;
use std::io::{BufRead, BufReader, Read};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};

/// The account services run as when the tests run as root (PostgreSQL
/// refuses to run as root; nginx's workers would switch to `nobody`).
/// `GRIDCASE_SERVICE_USER` names another; Debian's `postgres` account is used
/// when it is there; otherwise a system account `gridcase-test` is made with
/// `useradd` (what `scripts/install-services.sh` does too).
pub const SERVICE_USER: &str = "gridcase-test";

/// A port on 127.0.0.1 that was free a moment ago. Another process may take
/// it before the service binds it, so callers retry a start that fails to
/// bind ([`retry_on_port`]).
pub fn free_port() -> Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").context("binding 127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

/// Runs `start` with fresh free ports until it succeeds, up to 5 times: the
/// port found free may be taken before the service binds it.
pub fn retry_on_port<T>(what: &str, mut start: impl FnMut(u16) -> Result<T>) -> Result<T> {
    let mut last = None;
    for _ in 0..5 {
        match start(free_port()?) {
            Ok(v) => return Ok(v),
            Err(e) => last = Some(e),
        }
    }
    Err(last.expect("tried at least once")).with_context(|| format!("starting {what}"))
}

/// Whether something accepts TCP connections at `addr`.
pub fn is_listening(addr: SocketAddr) -> bool {
    TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
}

/// Waits until `ready` says so, the process exits, or `timeout` passes.
pub fn wait_until(
    what: &str,
    child: &mut Child,
    log: &LogTail,
    timeout: Duration,
    mut ready: impl FnMut() -> bool,
) -> Result<()> {
    let started = Instant::now();
    loop {
        if ready() {
            return Ok(());
        }
        if let Some(status) = child.try_wait()? {
            // Let the log readers catch up with what it said before it died.
            std::thread::sleep(Duration::from_millis(50));
            bail!("{what} exited ({status}):\n{}", log.tail());
        }
        if started.elapsed() > timeout {
            bail!("{what} was not ready after {timeout:?}:\n{}", log.tail());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The last lines a service wrote to a pipe, kept for error messages. Reading
/// goes on in a thread so a chatty service never blocks on a full pipe.
#[derive(Clone, Default)]
pub struct LogTail(Arc<Mutex<VecDeque<String>>>);

impl LogTail {
    const KEPT: usize = 200;

    /// Starts reading `from` (a child's stdout or stderr) into this tail.
    pub fn follow(&self, from: impl Read + Send + 'static) {
        let keep = self.0.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(from).lines().map_while(Result::ok) {
                let mut kept = keep.lock().unwrap_or_else(|e| e.into_inner());
                if kept.len() == Self::KEPT {
                    kept.pop_front();
                }
                kept.push_back(line);
            }
        });
    }

    pub fn tail(&self) -> String {
        let kept = self.0.lock().unwrap_or_else(|e| e.into_inner());
        kept.iter().cloned().collect::<Vec<_>>().join("\n")
    }

    /// Whether a kept line contains `needle`.
    pub fn contains(&self, needle: &str) -> bool {
        let kept = self.0.lock().unwrap_or_else(|e| e.into_inner());
        kept.iter().any(|l| l.contains(needle))
    }
}

/// The tail of a log file (services that write their own, like PostgreSQL
/// and nginx), for error messages.
pub fn file_tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

type SpawnRequest = (Command, mpsc::Sender<std::io::Result<Child>>);

/// Spawns `cmd` so that it gets `signal` when this process exits, however it
/// exits (see the module docs). The child runs as `user` when given.
pub fn spawn_tied(
    mut cmd: Command,
    signal: libc::c_int,
    user: Option<&ServiceUser>,
) -> Result<Child> {
    if let Some(u) = user {
        // std drops the supplementary groups, then sets the group and the
        // user, before it runs the pre_exec hook below.
        cmd.uid(u.uid).gid(u.gid);
    }
    // SAFETY: only async-signal-safe calls (prctl, getppid, _exit) between
    // fork and exec. PR_SET_PDEATHSIG is cleared by a change of user, which
    // std makes before this hook, so it is set here, after it.
    unsafe {
        let parent = libc::getpid();
        cmd.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, signal as libc::c_ulong, 0, 0, 0) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // The parent may have died before the prctl took effect.
            if libc::getppid() != parent {
                libc::_exit(1);
            }
            Ok(())
        });
    }
    static KEEPER: OnceLock<Mutex<mpsc::Sender<SpawnRequest>>> = OnceLock::new();
    let keeper = KEEPER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<SpawnRequest>();
        std::thread::Builder::new()
            .name("service-keeper".into())
            .spawn(move || {
                // Lives as long as the process: it is the parent thread of
                // every service, so their death signal fires at process exit.
                for (mut cmd, reply) in rx {
                    let _ = reply.send(cmd.spawn());
                }
                loop {
                    std::thread::park();
                }
            })
            .expect("spawning the service keeper thread");
        Mutex::new(tx)
    });
    let (reply, answer) = mpsc::channel();
    keeper
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .send((cmd, reply))
        .map_err(|_| anyhow!("the service keeper thread is gone"))?;
    answer
        .recv()
        .map_err(|_| anyhow!("the service keeper thread is gone"))?
        .context("spawning a service")
}

/// Sends `signal` to `child` and waits up to `grace` for it to exit, then
/// kills it. Never fails: it is used in cleanups.
pub fn stop_child(child: &mut Child, signal: libc::c_int, grace: Duration) {
    if let Ok(Some(_)) = child.try_wait() {
        return;
    }
    // SAFETY: kill(2) on our own child's pid, which we have not reaped.
    unsafe {
        libc::kill(child.id() as libc::pid_t, signal);
    }
    let started = Instant::now();
    while started.elapsed() < grace {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let _ = child.kill();
    let _ = child.wait();
}

type ExitHook = Box<dyn FnOnce() + Send>;

static EXIT_HOOKS: Mutex<Vec<ExitHook>> = Mutex::new(Vec::new());

/// Runs `hook` when the process exits normally (libtest's `main` returning,
/// whatever the tests did), last registered first.
pub fn at_exit(hook: impl FnOnce() + Send + 'static) {
    static REGISTERED: OnceLock<()> = OnceLock::new();
    REGISTERED.get_or_init(|| {
        extern "C" fn run_hooks() {
            let hooks = std::mem::take(&mut *EXIT_HOOKS.lock().unwrap_or_else(|e| e.into_inner()));
            for hook in hooks.into_iter().rev() {
                // A panic must not unwind out of an extern "C" function.
                let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(hook));
            }
        }
        // SAFETY: registers a plain function; it runs once, at exit.
        unsafe {
            libc::atexit(run_hooks);
        }
    });
    EXIT_HOOKS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(Box::new(hook));
}

/// The account a service runs as, when the tests run as root.
#[derive(Debug, Clone)]
pub struct ServiceUser {
    pub name: String,
    pub uid: libc::uid_t,
    pub gid: libc::gid_t,
}

impl ServiceUser {
    /// `None` when not root (services run as whoever runs the tests);
    /// otherwise the account described at [`SERVICE_USER`], made if missing.
    pub fn when_root() -> Result<Option<ServiceUser>> {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            return Ok(None);
        }
        static FOUND: OnceLock<std::result::Result<ServiceUser, String>> = OnceLock::new();
        FOUND
            .get_or_init(|| Self::find_or_make().map_err(|e| format!("{e:#}")))
            .clone()
            .map(Some)
            .map_err(|e| anyhow!(e))
    }

    fn find_or_make() -> Result<ServiceUser> {
        if let Ok(name) = std::env::var("GRIDCASE_SERVICE_USER") {
            return Self::lookup(&name)?
                .ok_or_else(|| anyhow!("GRIDCASE_SERVICE_USER={name}: no such user"));
        }
        for name in ["postgres", SERVICE_USER] {
            if let Some(u) = Self::lookup(name)? {
                return Ok(u);
            }
        }
        let out = Command::new("useradd")
            .args(["--system", "--no-create-home", "--user-group"])
            .args(["--shell", "/usr/sbin/nologin", SERVICE_USER])
            .output()
            .context("running useradd (the services refuse to run as root)")?;
        // Another test binary may have made it at the same moment.
        if let Some(u) = Self::lookup(SERVICE_USER)? {
            return Ok(u);
        }
        bail!(
            "useradd {SERVICE_USER} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    }

    fn lookup(name: &str) -> Result<Option<ServiceUser>> {
        let c = CString::new(name)?;
        // SAFETY: getpwnam returns a pointer into static storage or null; the
        // fields are copied out at once. Called under a OnceLock, so no other
        // getpw* call of ours races it.
        unsafe {
            let pw = libc::getpwnam(c.as_ptr());
            if pw.is_null() {
                return Ok(None);
            }
            Ok(Some(ServiceUser {
                name: name.to_string(),
                uid: (*pw).pw_uid,
                gid: (*pw).pw_gid,
            }))
        }
    }

    /// Hands `path` and everything under it to this account.
    pub fn own(&self, path: &Path) -> Result<()> {
        let c = CString::new(path.as_os_str().as_encoded_bytes())?;
        // SAFETY: lchown on a path we made.
        if unsafe { libc::lchown(c.as_ptr(), self.uid, self.gid) } != 0 {
            return Err(std::io::Error::last_os_error())
                .with_context(|| format!("chown {}", path.display()));
        }
        if path.is_dir() && !path.is_symlink() {
            for entry in std::fs::read_dir(path)? {
                self.own(&entry?.path())?;
            }
        }
        Ok(())
    }
}

/// A program found on `PATH` or in one of `extra` folders.
pub fn find_program(name: &str, extra: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(extra.iter().map(PathBuf::from))
        .map(|d| d.join(name))
        .find(|p| is_executable(p))
}

pub fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    p.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Runs `f` on a thread of its own with a small tokio runtime: the harnesses'
/// set-up calls are synchronous and must work both from a plain `#[test]` and
/// from inside a `#[tokio::test]` (where `block_on` would panic).
pub fn block_on_own_runtime<T: Send + 'static>(
    f: impl std::future::Future<Output = Result<T>> + Send + 'static,
) -> Result<T> {
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("building a tokio runtime")?
            .block_on(f)
    })
    .join()
    .map_err(|_| anyhow!("the set-up thread panicked"))?
}

/// Runs `scripts/install-services.sh WHAT` (once per process and service), for
/// a harness that did not find its service: `cargo test` alone then works on
/// a fresh machine (as root for apt), as the test command does. The script
/// waits for a run already in progress (the test command's background one).
pub fn install(what: &str) -> Result<()> {
    static DONE: Mutex<Vec<(String, std::result::Result<(), String>)>> = Mutex::new(Vec::new());
    let mut done = DONE.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, r)) = done.iter().find(|(w, _)| w == what) {
        return r.clone().map_err(|e| anyhow!(e));
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/install-services.sh");
    eprintln!("{what} not found: running {} {what}…", script.display());
    let result = Command::new("bash")
        .arg(&script)
        .arg(what)
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| format!("running {}: {e}", script.display()))
        .and_then(|out| {
            eprint!("{}", String::from_utf8_lossy(&out.stdout));
            if out.status.success() {
                Ok(())
            } else {
                Err(format!(
                    "{} {what} failed ({}):\n{}{}",
                    script.display(),
                    out.status,
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                ))
            }
        });
    done.push((what.to_string(), result.clone()));
    result.map_err(|e| anyhow!(e))
}

/// `find()`, and when it fails, [`install`] `what` and `find()` again.
pub fn find_or_install<T>(what: &str, find: impl Fn() -> Result<T>) -> Result<T> {
    match find() {
        Ok(v) => Ok(v),
        Err(first) => {
            install(what).with_context(|| format!("{first:#}"))?;
            find()
        }
    }
}

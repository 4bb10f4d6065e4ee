//! The services a deployment past one machine runs on (issues 11 and 12),
//! as the tests start them: a throwaway PostgreSQL cluster, an S3-compatible
//! object store and nginx as the balancer. Each harness is proved here with
//! the client the server will use, so a failure in a store-layer test is
//! never the harness's.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use gridcase_tests::balancer::Balancer;
use gridcase_tests::object_store::{s3_client, sdk_error, ObjectStoreServer};
use gridcase_tests::postgres::{PgCluster, PgOptions};
use gridcase_tests::service;

// ---------------------------------------------------------------- PostgreSQL

fn pool(url: &str) -> Result<deadpool_postgres::Pool> {
    let config: tokio_postgres::Config = url.parse()?;
    let manager = deadpool_postgres::Manager::from_config(
        config,
        tokio_postgres::NoTls,
        deadpool_postgres::ManagerConfig {
            recycling_method: deadpool_postgres::RecyclingMethod::Fast,
        },
    );
    Ok(deadpool_postgres::Pool::builder(manager)
        .max_size(4)
        .runtime(deadpool_postgres::Runtime::Tokio1)
        .build()?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_gives_each_test_its_own_database_on_one_cluster() -> Result<()> {
    let pg = PgCluster::shared()?;
    let first = pg.fresh_database("services_first")?;
    let second = pg.fresh_database("services_first")?;
    assert_ne!(first, second, "a fresh database each time");
    let (a, b) = (pool(&first)?, pool(&second)?);

    let client = a.get().await?;
    let version: String = client.query_one("SHOW server_version", &[]).await?.get(0);
    let major: u32 = version.split('.').next().unwrap_or_default().parse()?;
    assert!(major >= 15, "PostgreSQL {version}");
    client
        .batch_execute("CREATE TABLE cases (id text PRIMARY KEY, title text NOT NULL)")
        .await?;
    let inserted = client
        .execute(
            "INSERT INTO cases VALUES ($1, $2) ON CONFLICT (id) DO NOTHING",
            &[&"c1", &"路灯不亮"],
        )
        .await?;
    assert_eq!(inserted, 1);
    let title: String = client
        .query_one("SELECT title FROM cases WHERE id = $1", &[&"c1"])
        .await?
        .get(0);
    assert_eq!(title, "路灯不亮", "UTF-8 round trip");

    // The other database does not see the first one's table.
    let other = b.get().await?;
    let seen: i64 = other
        .query_one(
            "SELECT count(*) FROM information_schema.tables WHERE table_name = 'cases'",
            &[],
        )
        .await?
        .get(0);
    assert_eq!(seen, 0);

    // The server gets a database owner, not a superuser, as in a deployment.
    let superuser: bool = client
        .query_one(
            "SELECT rolsuper FROM pg_roles WHERE rolname = current_user",
            &[],
        )
        .await?
        .get(0);
    assert!(!superuser);

    // Tuned for tests, but commits still reach the kernel before they return.
    for (setting, want) in [
        ("fsync", "off"),
        ("synchronous_commit", "on"),
        ("listen_addresses", "127.0.0.1"),
        ("TimeZone", "UTC"),
    ] {
        let got: String = client
            .query_one(format!("SHOW {setting}").as_str(), &[])
            .await?
            .get(0);
        assert_eq!(got, want, "{setting}");
    }

    // Passwords are checked (SCRAM), so a wrong URL fails as it would live.
    let (credentials, rest) = first.split_once('@').expect("URL has credentials");
    let (user, _) = credentials.rsplit_once(':').expect("user:password");
    let wrong = format!("{user}:wrong@{rest}");
    let refused = tokio_postgres::connect(&wrong, tokio_postgres::NoTls).await;
    assert!(refused.is_err(), "a wrong password must be refused");
    Ok(())
}

#[test]
fn postgres_database_names_are_checked() -> Result<()> {
    let pg = PgCluster::shared()?;
    for bad in ["", "Caps", "1st", "semi;colon", "quote\"", &"x".repeat(64)] {
        let err = pg.create_database(bad).expect_err(bad);
        assert!(format!("{err}").contains("database name"), "{bad}: {err}");
    }
    let url = pg.fresh_database("A test: with spaces")?;
    assert!(url.contains("/a_test__with_spaces_"), "{url}");
    Ok(())
}

/// Commits survive a crash of PostgreSQL on the tuned cluster (fsync off, see
/// tests/src/postgres.rs) as on a durable one; a durable cluster has fsync on.
#[test]
fn postgres_keeps_what_was_committed_through_a_crash() -> Result<()> {
    for durable in [false, true] {
        let pg = PgCluster::start_with(PgOptions {
            durable,
            ..PgOptions::default()
        })?;
        let url = pg.fresh_database("crash")?;
        let rows = service::block_on_own_runtime({
            let url = url.clone();
            async move {
                let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await?;
                tokio::spawn(conn);
                let fsync: String = client.query_one("SHOW fsync", &[]).await?.get(0);
                assert_eq!(fsync, if durable { "on" } else { "off" });
                client
                    .batch_execute(
                        "CREATE TABLE ops (seq bigint PRIMARY KEY);
                         INSERT INTO ops SELECT generate_series(1, 1000);",
                    )
                    .await?;
                Ok(1000i64)
            }
        })?;
        pg.crash();
        assert!(!pg.is_running());
        pg.restart()
            .with_context(|| format!("restarting after a crash:\n{}", pg.log_tail()))?;
        let after = service::block_on_own_runtime(async move {
            let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await?;
            tokio::spawn(conn);
            Ok(client
                .query_one("SELECT count(*) FROM ops", &[])
                .await?
                .get::<_, i64>(0))
        })?;
        assert_eq!(after, rows, "durable={durable}");
        assert!(
            pg.log_tail().contains("database system was interrupted")
                || pg.log_tail().contains("not properly shut down"),
            "the restart recovered from a crash:\n{}",
            pg.log_tail()
        );
    }
    Ok(())
}

const CHILD_MODE: &str = "GRIDCASE_SERVICES_CHILD";

/// Not a test on its own: the child process of the next test (it returns at
/// once unless that test set `GRIDCASE_SERVICES_CHILD`).
#[test]
fn postgres_child_process() -> Result<()> {
    let Ok(mode) = std::env::var(CHILD_MODE) else {
        return Ok(());
    };
    // Started from a thread that ends before the cluster is used: the
    // cluster must outlive it (the death signal is tied to the keeper
    // thread, not to whichever test thread started the service).
    let (port, dir) = std::thread::spawn(|| -> Result<(u16, PathBuf)> {
        let pg = PgCluster::shared()?;
        Ok((pg.port(), pg.data_dir().to_path_buf()))
    })
    .join()
    .expect("no panic")?;
    println!("READY {port} {}", dir.display());
    if mode == "hang" {
        std::thread::sleep(Duration::from_secs(120));
    }
    Ok(())
}

fn run_child(mode: &str) -> Result<(std::process::Child, u16, PathBuf)> {
    use std::io::BufRead;
    let mut child = std::process::Command::new(std::env::current_exe()?)
        .args(["--exact", "postgres_child_process", "--nocapture"])
        .env(CHILD_MODE, mode)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()?;
    let mut lines = std::io::BufReader::new(child.stdout.take().expect("piped")).lines();
    for line in lines.by_ref() {
        let line = line?;
        if let Some(rest) = line.strip_prefix("READY ") {
            let (port, dir) = rest.split_once(' ').context("READY port dir")?;
            let ready = (port.parse()?, PathBuf::from(dir));
            // Keep reading: a child whose stdout is closed fails as it
            // prints its test results.
            std::thread::spawn(move || lines.for_each(drop));
            return Ok((child, ready.0, ready.1));
        }
    }
    anyhow::bail!("the child process ended without starting its cluster")
}

fn eventually(what: &str, mut ok: impl FnMut() -> bool) {
    let started = std::time::Instant::now();
    while !ok() {
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "not after 15 s: {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A test binary that ends stops its cluster and removes its folder; one
/// that is killed (SIGKILL, a CI timeout) takes its cluster with it, and the
/// next start removes the folder it left.
#[test]
fn postgres_cluster_ends_with_its_test_binary() -> Result<()> {
    let (mut child, port, data) = run_child("exit")?;
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    assert!(child.wait()?.success());
    assert!(!service::is_listening(addr), "stopped at exit");
    let folder = data
        .parent()
        .expect("data is in the cluster's folder")
        .to_path_buf();
    assert!(!folder.exists(), "{} removed at exit", folder.display());

    let (mut child, port, data) = run_child("hang")?;
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    assert!(
        service::is_listening(addr),
        "alive while its test binary is"
    );
    child.kill()?;
    child.wait()?;
    eventually("postgres stops when its test binary is killed", || {
        !service::is_listening(addr)
    });
    let folder = data
        .parent()
        .expect("in the cluster's folder")
        .to_path_buf();
    assert!(folder.exists(), "a killed binary cannot clean up");
    // The next start sweeps what the killed one left.
    let _next = PgCluster::start()?;
    assert!(!folder.exists(), "{} swept", folder.display());
    Ok(())
}

// -------------------------------------------------------------- object store

const MIB: usize = 1024 * 1024;

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn object_store_does_multipart_uploads_across_clients() -> Result<()> {
    let s3 = ObjectStoreServer::shared()?;
    let bucket = s3.fresh_bucket("multipart")?;
    // Two clients built only from the environment the server reads, as two
    // server instances would be.
    let env: std::collections::HashMap<_, _> = s3.env().into_iter().collect();
    let from_env = || {
        s3_client(
            &env["AWS_ENDPOINT_URL"],
            &env["AWS_ACCESS_KEY_ID"],
            &env["AWS_SECRET_ACCESS_KEY"],
            &env["AWS_REGION"],
        )
    };
    let (one, two) = (from_env(), from_env());
    let key = "cases/c1/photo.jpg";
    let (part1, part2) = (pattern(5 * MIB, 1), pattern(300 * 1024, 2));

    let upload = one
        .create_multipart_upload()
        .bucket(&bucket)
        .key(key)
        .content_type("image/jpeg")
        .send()
        .await
        .map_err(|e| anyhow::anyhow!(sdk_error(&e)))?;
    let id = upload.upload_id().context("an upload id")?.to_string();
    let etag1 = one
        .upload_part()
        .bucket(&bucket)
        .key(key)
        .upload_id(&id)
        .part_number(1)
        .body(ByteStream::from(part1.clone()))
        .send()
        .await
        .map_err(|e| anyhow::anyhow!(sdk_error(&e)))?
        .e_tag()
        .context("an ETag")?
        .to_string();
    // The second part from the other client (the upload resumed elsewhere).
    let etag2 = two
        .upload_part()
        .bucket(&bucket)
        .key(key)
        .upload_id(&id)
        .part_number(2)
        .body(ByteStream::from(part2.clone()))
        .send()
        .await
        .map_err(|e| anyhow::anyhow!(sdk_error(&e)))?
        .e_tag()
        .context("an ETag")?
        .to_string();

    let listed = two
        .list_parts()
        .bucket(&bucket)
        .key(key)
        .upload_id(&id)
        .send()
        .await
        .map_err(|e| anyhow::anyhow!(sdk_error(&e)))?;
    let mut parts: Vec<(i32, i64)> = listed
        .parts()
        .iter()
        .map(|p| (p.part_number().unwrap_or(0), p.size().unwrap_or(-1)))
        .collect();
    parts.sort();
    assert_eq!(
        parts,
        vec![(1, part1.len() as i64), (2, part2.len() as i64)],
        "list parts says what arrived"
    );

    // Nothing is visible before completion.
    let early = one.head_object().bucket(&bucket).key(key).send().await;
    assert!(early.is_err(), "no object before the upload completes");

    let done = CompletedMultipartUpload::builder()
        .parts(CompletedPart::builder().part_number(1).e_tag(etag1).build())
        .parts(CompletedPart::builder().part_number(2).e_tag(etag2).build())
        .build();
    one.complete_multipart_upload()
        .bucket(&bucket)
        .key(key)
        .upload_id(&id)
        .multipart_upload(done)
        .send()
        .await
        .map_err(|e| anyhow::anyhow!(sdk_error(&e)))?;

    let got = two
        .get_object()
        .bucket(&bucket)
        .key(key)
        .send()
        .await
        .map_err(|e| anyhow::anyhow!(sdk_error(&e)))?;
    assert_eq!(
        got.content_length(),
        Some((part1.len() + part2.len()) as i64)
    );
    let body = got.body.collect().await?.into_bytes();
    assert!(
        body[..part1.len()] == part1[..] && body[part1.len()..] == part2[..],
        "the object is the parts in order"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn object_store_keeps_s3s_rules_for_small_parts_and_aborts() -> Result<()> {
    let s3 = ObjectStoreServer::shared()?;
    let bucket = s3.fresh_bucket("rules")?;
    let client = s3.client();

    // A middle part under 5 MiB is refused at completion, as S3 does.
    let key = "small-parts";
    let id = client
        .create_multipart_upload()
        .bucket(&bucket)
        .key(key)
        .send()
        .await
        .map_err(|e| anyhow::anyhow!(sdk_error(&e)))?
        .upload_id()
        .context("an upload id")?
        .to_string();
    let mut done = CompletedMultipartUpload::builder();
    for n in 1..=2 {
        let etag = client
            .upload_part()
            .bucket(&bucket)
            .key(key)
            .upload_id(&id)
            .part_number(n)
            .body(ByteStream::from(pattern(64 * 1024, n as u8)))
            .send()
            .await
            .map_err(|e| anyhow::anyhow!(sdk_error(&e)))?
            .e_tag()
            .context("an ETag")?
            .to_string();
        done = done.parts(CompletedPart::builder().part_number(n).e_tag(etag).build());
    }
    let refused = client
        .complete_multipart_upload()
        .bucket(&bucket)
        .key(key)
        .upload_id(&id)
        .multipart_upload(done.build())
        .send()
        .await
        .expect_err("a 64 KiB middle part must be refused");
    assert_eq!(
        refused
            .as_service_error()
            .and_then(|e| aws_sdk_s3::error::ProvideErrorMetadata::code(e)),
        Some("EntityTooSmall"),
        "{}",
        sdk_error(&refused)
    );

    // An aborted upload leaves nothing: no parts, no object.
    let key = "aborted";
    let id = client
        .create_multipart_upload()
        .bucket(&bucket)
        .key(key)
        .send()
        .await
        .map_err(|e| anyhow::anyhow!(sdk_error(&e)))?
        .upload_id()
        .context("an upload id")?
        .to_string();
    client
        .upload_part()
        .bucket(&bucket)
        .key(key)
        .upload_id(&id)
        .part_number(1)
        .body(ByteStream::from(pattern(MIB, 7)))
        .send()
        .await
        .map_err(|e| anyhow::anyhow!(sdk_error(&e)))?;
    client
        .abort_multipart_upload()
        .bucket(&bucket)
        .key(key)
        .upload_id(&id)
        .send()
        .await
        .map_err(|e| anyhow::anyhow!(sdk_error(&e)))?;
    let parts = client
        .list_parts()
        .bucket(&bucket)
        .key(key)
        .upload_id(&id)
        .send()
        .await
        .map(|l| l.parts().len());
    assert!(
        matches!(parts, Ok(0) | Err(_)),
        "no parts after an abort: {parts:?}"
    );
    assert!(client
        .head_object()
        .bucket(&bucket)
        .key(key)
        .send()
        .await
        .is_err());
    let left: Vec<_> = walk(&s3.root().to_path_buf())
        .into_iter()
        .filter(|p| p.to_string_lossy().contains(&id))
        .collect();
    assert!(
        left.is_empty(),
        "the aborted upload's files are gone: {left:?}"
    );
    Ok(())
}

fn walk(dir: &PathBuf) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn object_store_serves_presigned_gets_and_refuses_unsigned_ones() -> Result<()> {
    use aws_sdk_s3::presigning::PresigningConfig;
    let s3 = ObjectStoreServer::shared()?;
    let bucket = s3.fresh_bucket("presigned")?;
    let client = s3.client();
    let photo = gridcase_tests::sample_jpeg(320, 240, 5);
    client
        .put_object()
        .bucket(&bucket)
        .key("p.jpg")
        .content_type("image/jpeg")
        .body(ByteStream::from(photo.clone()))
        .send()
        .await
        .map_err(|e| anyhow::anyhow!(sdk_error(&e)))?;

    let presigned = client
        .get_object()
        .bucket(&bucket)
        .key("p.jpg")
        .presigned(PresigningConfig::expires_in(Duration::from_secs(300))?)
        .await?;
    let url = presigned.uri().to_string();
    assert!(url.contains("X-Amz-Signature="), "{url}");
    let http = reqwest::Client::new();
    let got = http.get(&url).send().await?;
    assert_eq!(got.status(), 200);
    assert_eq!(got.bytes().await?.as_ref(), &photo[..]);

    // A link whose signature was changed, and the object's plain URL, are
    // refused.
    let sig_at = url.find("X-Amz-Signature=").expect("signed") + "X-Amz-Signature=".len();
    let mut tampered = url.clone().into_bytes();
    tampered[sig_at] = if tampered[sig_at] == b'0' { b'1' } else { b'0' };
    let tampered = String::from_utf8(tampered)?;
    assert_eq!(http.get(&tampered).send().await?.status(), 403);
    let plain = format!("{}/{bucket}/p.jpg", s3.endpoint);
    assert_eq!(http.get(&plain).send().await?.status(), 403);
    Ok(())
}

#[test]
fn object_store_restarts_with_what_it_stored() -> Result<()> {
    let s3 = ObjectStoreServer::start()?;
    let bucket = s3.fresh_bucket("restart")?;
    let client = s3.client();
    let put = {
        let (client, bucket) = (client.clone(), bucket.clone());
        move || {
            let (client, bucket) = (client.clone(), bucket.clone());
            service::block_on_own_runtime(async move {
                client
                    .put_object()
                    .bucket(&bucket)
                    .key("k")
                    .body(ByteStream::from_static(b"kept"))
                    .send()
                    .await
                    .map_err(|e| anyhow::anyhow!(sdk_error(&e)))?;
                Ok(())
            })
        }
    };
    put()?;
    s3.kill();
    assert!(put().is_err(), "a killed store refuses");
    s3.restart()?;
    let body = service::block_on_own_runtime(async move {
        let got = client
            .get_object()
            .bucket(&bucket)
            .key("k")
            .send()
            .await
            .map_err(|e| anyhow::anyhow!(sdk_error(&e)))?;
        Ok(got.body.collect().await?.into_bytes().to_vec())
    })?;
    assert_eq!(body, b"kept");
    Ok(())
}

// ------------------------------------------------------------------ balancer

/// What the upstreams of one test share: the streaming checkpoints.
#[derive(Default)]
struct Checkpoints {
    upload_first_chunk: tokio::sync::Notify,
    download_go_on: tokio::sync::Notify,
}

/// A tiny HTTP server on its own runtime, so killing it closes its listener
/// and every connection at once, as a killed process does.
struct Upstream {
    addr: SocketAddr,
    rt: Option<tokio::runtime::Runtime>,
}

impl Upstream {
    fn start(name: &'static str, checkpoints: Arc<Checkpoints>) -> Result<Upstream> {
        use axum::body::Body;
        use axum::extract::State;
        use axum::http::HeaderMap;
        use axum::routing::{get, post};
        type Shared = State<(&'static str, Arc<Checkpoints>)>;

        async fn who(State((name, _)): Shared, headers: HeaderMap) -> String {
            let xff = headers
                .get("x-forwarded-for")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("-");
            format!("{name} {xff}")
        }
        async fn upload(State((name, cp)): Shared, body: Body) -> String {
            use futures_util::StreamExt;
            let mut stream = body.into_data_stream();
            let mut total = 0;
            let mut first = true;
            while let Some(Ok(chunk)) = stream.next().await {
                total += chunk.len();
                if first {
                    first = false;
                    cp.upload_first_chunk.notify_one();
                }
            }
            format!("{name} {total}")
        }
        async fn download(State((_, cp)): Shared) -> Body {
            let stream = futures_util::stream::unfold(0, move |step| {
                let cp = cp.clone();
                async move {
                    match step {
                        0 => Some((Ok::<_, std::io::Error>(vec![b'a'; 1000]), 1)),
                        1 => {
                            cp.download_go_on.notified().await;
                            Some((Ok(vec![b'b'; 1000]), 2))
                        }
                        _ => None,
                    }
                }
            });
            Body::from_stream(stream)
        }

        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()?;
        // Bound here, not with block_on: the tests call this from inside
        // their own runtime.
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let listener = {
            let _in = rt.enter();
            tokio::net::TcpListener::from_std(listener)?
        };
        let app = axum::Router::new()
            .route("/who", get(who).post(who))
            .route("/upload", post(upload))
            .route("/download", get(download))
            .with_state((name, checkpoints));
        rt.spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Upstream { addr, rt: Some(rt) })
    }

    fn kill(&mut self) {
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.kill();
    }
}

/// An upstream that accepts a request and closes the connection without an
/// answer: an instance that dies while it handles a request.
fn dying_upstream() -> Result<SocketAddr> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    std::thread::spawn(move || {
        use std::io::Read;
        for mut conn in listener.incoming().flatten() {
            let _ = conn.set_read_timeout(Some(Duration::from_millis(200)));
            let mut buf = [0u8; 4096];
            let _ = conn.read(&mut buf);
            drop(conn);
        }
    });
    Ok(addr)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn balancer_alternates_instances_and_passes_the_client_address() -> Result<()> {
    let cp = Arc::new(Checkpoints::default());
    let a = Upstream::start("A", cp.clone())?;
    let b = Upstream::start("B", cp.clone())?;
    let lb = Balancer::start(&[a.addr, b.addr])?;
    let http = reqwest::Client::new();
    let mut seen = Vec::new();
    for _ in 0..8 {
        let text = http
            .get(format!("{}/who", lb.url))
            .send()
            .await?
            .text()
            .await?;
        let (name, xff) = text.split_once(' ').context("name xff")?;
        assert_eq!(xff, "127.0.0.1", "X-Forwarded-For names the client");
        seen.push(name.to_string());
    }
    // Round robin on one kept-alive client connection: no stickiness.
    for pair in seen.windows(2) {
        assert_ne!(pair[0], pair[1], "consecutive requests alternate: {seen:?}");
    }
    // A forwarded-for that came with the request is kept, ours appended.
    let text = http
        .get(format!("{}/who", lb.url))
        .header("X-Forwarded-For", "10.1.2.3")
        .send()
        .await?
        .text()
        .await?;
    assert!(text.ends_with(" 10.1.2.3, 127.0.0.1"), "{text}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn balancer_streams_uploads_and_downloads() -> Result<()> {
    let cp = Arc::new(Checkpoints::default());
    let a = Upstream::start("A", cp.clone())?;
    let b = Upstream::start("B", cp.clone())?;
    let lb = Balancer::start(&[a.addr, b.addr])?;
    let http = reqwest::Client::new();
    let wait = Duration::from_secs(10);

    // The instance has the upload's first chunk while the terminal still
    // holds the rest: nothing is staged on the balancer.
    let (tx, rx) = tokio::sync::mpsc::channel::<Vec<u8>>(1);
    let body = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|c| (Ok::<_, std::io::Error>(c), rx))
    });
    let sent = tokio::spawn(
        http.post(format!("{}/upload", lb.url))
            .body(reqwest::Body::wrap_stream(body))
            .send(),
    );
    tx.send(vec![1u8; 64 * 1024]).await?;
    tokio::time::timeout(wait, cp.upload_first_chunk.notified())
        .await
        .context("the upload's first chunk did not reach the instance before the rest was sent")?;
    tx.send(vec![2u8; 64 * 1024]).await?;
    drop(tx);
    let answer = sent.await??.text().await?;
    assert!(answer.ends_with(&format!(" {}", 128 * 1024)), "{answer}");

    // The terminal has the download's first chunk while the instance still
    // holds the rest.
    let mut got = http.get(format!("{}/download", lb.url)).send().await?;
    let first = tokio::time::timeout(wait, got.chunk())
        .await
        .context("the download's first chunk did not reach the client before the rest")??
        .context("a first chunk")?;
    assert_eq!(first[0], b'a');
    cp.download_go_on.notify_one();
    let mut total = first.len();
    while let Some(chunk) = got.chunk().await? {
        total += chunk.len();
    }
    assert_eq!(total, 2000);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn balancer_skips_a_killed_instance() -> Result<()> {
    let cp = Arc::new(Checkpoints::default());
    let mut a = Upstream::start("A", cp.clone())?;
    let b = Upstream::start("B", cp.clone())?;
    let lb = Balancer::start(&[a.addr, b.addr])?;
    let http = reqwest::Client::new();
    let who = |method: reqwest::Method| {
        let (http, url) = (http.clone(), format!("{}/who", lb.url));
        async move {
            let r = http.request(method, url).send().await?;
            let status = r.status().as_u16();
            anyhow::Ok((status, r.text().await?))
        }
    };
    assert_eq!(who(reqwest::Method::GET).await?.0, 200);

    // A killed instance refuses connections: every request, GET or POST,
    // goes to the other one (nothing had been sent).
    a.kill();
    for method in [reqwest::Method::GET, reqwest::Method::POST] {
        for _ in 0..4 {
            let (status, text) = who(method.clone()).await?;
            assert_eq!(
                (status, text.split(' ').next()),
                (200, Some("B")),
                "{method}"
            );
        }
    }

    // An instance that dies while it handles the request: a GET is passed on
    // to the other instance; a POST is not (it may have been applied), the
    // client gets a 502 and retries itself.
    let dying = dying_upstream()?;
    lb.set_upstreams(&[dying, b.addr])?;
    let (mut get_passed_on, mut post_refused) = (false, false);
    for _ in 0..12 {
        if get_passed_on && post_refused {
            break;
        }
        // Past fail_timeout, so the dying instance is tried again.
        tokio::time::sleep(Duration::from_millis(1100)).await;
        let method = if get_passed_on {
            reqwest::Method::POST
        } else {
            reqwest::Method::GET
        };
        let before = lb.access_log().len();
        let (status, _) = who(method.clone()).await?;
        // nginx logs a request just after it answers.
        let mut log = lb.access_log();
        for _ in 0..100 {
            if log.len() > before {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
            log = lb.access_log();
        }
        let (_, logged_status, tried) = log.get(before).context("logged")?.clone();
        assert_eq!(status, logged_status);
        if !tried.starts_with(&dying.to_string()) {
            continue; // round robin sent it to B first
        }
        if method == reqwest::Method::GET {
            assert_eq!(status, 200, "a GET is passed on: tried {tried}");
            assert!(tried.contains(&b.addr.to_string()), "{tried}");
            get_passed_on = true;
        } else {
            assert_eq!(status, 502, "a POST is not passed on: tried {tried}");
            assert!(!tried.contains(&b.addr.to_string()), "{tried}");
            post_refused = true;
        }
    }
    assert!(
        get_passed_on && post_refused,
        "round robin sent both kinds to the dying instance:\n{:?}\n{}",
        lb.access_log(),
        lb.error_log()
    );
    Ok(())
}

//! SIGTERM on the real `gridcase-server` binary while a request is in flight:
//! a terminal's photo upload, half sent. The server stops taking new
//! connections, lets the upload finish (the terminal gets its answer and the
//! file is whole on disk), then exits cleanly.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use anyhow::{ensure, Context, Result};
use gridcase_core::photo::sha256_hex;
use gridcase_tests::device::{SimDevice, G01};
use gridcase_tests::server::ServerProcess;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_a_request_in_flight_finish_then_stops() -> Result<()> {
    let mut server = ServerProcess::start()?;
    let leader = server.create_leader("张网格长", &[G01])?;
    let device = SimDevice::open("shutdown")?;
    device.enrol(&server.url, &leader.code).await?;
    let token = device
        .terminal
        .store()
        .sync_account()?
        .context("enrolled")?
        .token;
    let photo: Vec<u8> = (0..200_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let sha = sha256_hex(&photo);

    // The upload's head and the first half of its body, then SIGTERM.
    let mut conn = TcpStream::connect(server.addr)?;
    conn.set_read_timeout(Some(Duration::from_secs(20)))?;
    let head = format!(
        "PUT /v1/photos/{sha}?offset=0&total={} HTTP/1.1\r\nhost: {}\r\nauthorization: Bearer {token}\r\ncontent-type: application/octet-stream\r\ncontent-length: {}\r\n\r\n",
        photo.len(),
        server.addr,
        photo.len()
    );
    conn.write_all(head.as_bytes())?;
    conn.write_all(&photo[..photo.len() / 2])?;
    conn.flush()?;
    std::thread::sleep(Duration::from_millis(300));
    server.terminate();
    std::thread::sleep(Duration::from_millis(300));
    ensure!(
        server.wait_exit(Duration::ZERO)?.is_none(),
        "the server exited with a request in flight"
    );
    // No new work is taken meanwhile.
    let refused = TcpStream::connect_timeout(&server.addr, Duration::from_secs(2));
    ensure!(
        refused.is_err(),
        "a new connection was accepted after SIGTERM"
    );

    // The rest of the body: the upload completes and is answered.
    conn.write_all(&photo[photo.len() / 2..])?;
    conn.flush()?;
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    while !answer.windows(4).any(|w| w == b"\r\n\r\n") || !answer.ends_with(b"}") {
        let n = conn.read(&mut buf)?;
        if n == 0 {
            break;
        }
        answer.extend_from_slice(&buf[..n]);
    }
    let answer = String::from_utf8_lossy(&answer);
    ensure!(
        answer.starts_with("HTTP/1.1 200"),
        "the upload's answer: {answer}"
    );
    ensure!(answer.contains("\"complete\":true"), "{answer}");
    drop(conn);

    let status = server
        .wait_exit(Duration::from_secs(10))?
        .context("the server did not stop after its last request")?;
    ensure!(status.success(), "the server stopped with {status}");
    let file = server
        .photo_file(&sha)
        .context("the uploaded photo is not on disk")?;
    ensure!(
        std::fs::read(file)? == photo,
        "the photo on disk is not whole"
    );
    ensure!(
        server.partial_uploads().is_empty(),
        "a partial upload is left"
    );
    Ok(())
}

use std::time::Duration;

use futures_util::StreamExt;

use gridcase_core::ids::CaseId;
use gridcase_core::protocol::{UploadStatus, MAX_PHOTO_BYTES};
use reqwest::StatusCode;

use crate::common::*;

#[tokio::test]
async fn an_upload_in_two_parts_completes_and_is_not_sent_again() {
    let server = Server::start().await;
    let dev = server.leader("张三", &["g-1"]).await;
    let data = photo_bytes(7, 500_000);
    let sha = sha256_hex(&data);
    let total = data.len() as u64;

    let status = server.upload_status(&dev, &sha).await;
    assert_eq!(
        status,
        UploadStatus {
            sha256: sha.clone(),
            received: 0,
            complete: false
        }
    );

    let (code, body) = server
        .put_photo(&dev, &sha, 0, total, data[..200_000].to_vec())
        .await;
    assert_eq!(code, StatusCode::OK, "{body}");
    assert_eq!(body["received"], 200_000);
    assert_eq!(body["complete"], false);
    assert_eq!(server.upload_status(&dev, &sha).await.received, 200_000);

    // Sending from the wrong place is refused, and changes nothing.
    let (code, body) = server
        .put_photo(&dev, &sha, 100, total, data[100..].to_vec())
        .await;
    assert_eq!(code, StatusCode::CONFLICT);
    assert_eq!(body["code"], "upload_offset_mismatch");
    assert_eq!(server.upload_status(&dev, &sha).await.received, 200_000);

    let (code, body) = server
        .put_photo(&dev, &sha, 200_000, total, data[200_000..].to_vec())
        .await;
    assert_eq!(code, StatusCode::OK, "{body}");
    assert_eq!(body["complete"], true);
    assert_eq!(body["received"], total);

    // Stored content-addressed; nothing left in the upload folder.
    let stored = server.dir.path().join("photos").join(&sha[..2]).join(&sha);
    assert_eq!(std::fs::read(stored).unwrap(), data);
    assert_eq!(
        std::fs::read_dir(server.dir.path().join("uploads"))
            .unwrap()
            .count(),
        0
    );

    // Another device about to send the same file learns it is there already.
    let other = server.leader("李四", &["g-2"]).await;
    let status = server.upload_status(&other, &sha).await;
    assert!(status.complete);
    assert_eq!(status.received, total);
    let (code, body) = server.put_photo(&other, &sha, 0, total, data.clone()).await;
    assert_eq!(code, StatusCode::OK);
    assert_eq!(body["complete"], true);
}

#[tokio::test]
async fn an_upload_cut_midway_resumes_from_what_arrived() {
    let server = Server::start().await;
    let dev = server.leader("张三", &["g-1"]).await;
    let data = photo_bytes(9, 400_000);
    let sha = sha256_hex(&data);
    let total = data.len() as u64;

    // The connection drops after the first 150 kB.
    let first = data[..150_000].to_vec();
    let stream = futures_util::stream::iter(vec![Ok::<_, std::io::Error>(first)]).chain(
        futures_util::stream::once(async {
            tokio::time::sleep(Duration::from_millis(200)).await;
            Err(std::io::Error::new(
                std::io::ErrorKind::ConnectionReset,
                "signal lost",
            ))
        }),
    );
    let cut = server
        .http
        .put(server.url(&format!("/v1/photos/{sha}?offset=0&total={total}")))
        .bearer_auth(&dev.token)
        .body(reqwest::Body::wrap_stream(stream))
        .send()
        .await;
    assert!(cut.is_err() || !cut.unwrap().status().is_success());

    // Resume from what the server holds, once it has noticed the cut.
    let mut sent_again = None;
    for _ in 0..100 {
        let status = server.upload_status(&dev, &sha).await;
        let from = status.received;
        let (code, body) = server
            .put_photo(&dev, &sha, from, total, data[from as usize..].to_vec())
            .await;
        if code == StatusCode::OK {
            assert_eq!(body["complete"], true, "{body}");
            sent_again = Some(total - from);
            break;
        }
        assert_eq!(code, StatusCode::CONFLICT, "{body}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let sent_again = sent_again.expect("the upload resumed");
    assert_eq!(sent_again, total - 150_000, "the first part was kept");
    let stored = server.dir.path().join("photos").join(&sha[..2]).join(&sha);
    assert_eq!(std::fs::read(stored).unwrap(), data);
}

#[tokio::test]
async fn bytes_that_do_not_match_the_hash_are_discarded() {
    let server = Server::start().await;
    let dev = server.leader("张三", &["g-1"]).await;
    let data = photo_bytes(11, 10_000);
    let sha = sha256_hex(&data);
    let mut corrupted = data.clone();
    corrupted[5_000] ^= 0xff;

    let (code, _) = server
        .put_photo(&dev, &sha, 0, 10_000, corrupted[..4_000].to_vec())
        .await;
    assert_eq!(code, StatusCode::OK);
    let (code, body) = server
        .put_photo(&dev, &sha, 4_000, 10_000, corrupted[4_000..].to_vec())
        .await;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["code"], "photo_hash_mismatch");
    let status = server.upload_status(&dev, &sha).await;
    assert_eq!(status.received, 0, "the partial file is gone");
    assert!(!status.complete);

    // A correct upload afterwards works.
    server.upload(&dev, &data).await;
}

#[tokio::test]
async fn upload_sizes_are_bounded() {
    let server = Server::start().await;
    let dev = server.leader("张三", &["g-1"]).await;
    let sha = "b".repeat(64);
    let (code, body) = server
        .put_photo(&dev, &sha, 0, MAX_PHOTO_BYTES + 1, vec![1, 2, 3])
        .await;
    assert_eq!(code, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(body["code"], "too_large");

    let (code, body) = server.put_photo(&dev, &sha, 0, 0, vec![]).await;
    assert_eq!(code, StatusCode::BAD_REQUEST);
    assert_eq!(body["code"], "invalid_request");

    // More bytes than the total announced: refused, nothing kept.
    let (code, body) = server.put_photo(&dev, &sha, 0, 10, vec![0; 11]).await;
    assert_eq!(code, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["code"], "invalid_request");
    assert_eq!(server.upload_status(&dev, &sha).await.received, 0);

    let (code, body) = server
        .send(
            server
                .http
                .put(server.url(&format!("/v1/photos/{sha}?offset=zero&total=10")))
                .bearer_auth(&dev.token)
                .body(vec![0u8; 10]),
        )
        .await;
    assert_eq!(code, StatusCode::BAD_REQUEST);
    assert_eq!(body["code"], "invalid_request");
}

#[tokio::test]
async fn a_name_that_is_not_a_sha_never_reaches_the_file_system() {
    let server = Server::start().await;
    let dev = server.leader("张三", &["g-1"]).await;
    let upper = "A".repeat(64);
    let short = "a".repeat(63);
    let names = [
        "..%2F..%2Fgridcase.db",
        "..%2f..%2f..%2fetc%2fpasswd",
        "%2e%2e",
        "..",
        upper.as_str(),
        short.as_str(),
        "%00",
    ];
    for name in names {
        for (method, path) in [
            ("GET", format!("/v1/photos/{name}")),
            ("GET", format!("/v1/photos/{name}/upload")),
            ("PUT", format!("/v1/photos/{name}?offset=0&total=3")),
        ] {
            let url = format!("{}{}", server.url, path);
            let req = match method {
                "GET" => server.http.get(&url),
                _ => server.http.put(&url).body(vec![1, 2, 3]),
            };
            let (status, body) = server.send(req.bearer_auth(&dev.token)).await;
            assert!(
                status == StatusCode::BAD_REQUEST || status == StatusCode::NOT_FOUND,
                "{method} {path}: {status} {body}"
            );
            assert!(
                body["code"] == "invalid_request" || body["code"] == "not_found",
                "{body}"
            );
        }
    }
    // Nothing was written anywhere in the data folder but the database.
    assert_eq!(
        std::fs::read_dir(server.dir.path().join("uploads"))
            .unwrap()
            .count(),
        0
    );
    assert_eq!(
        std::fs::read_dir(server.dir.path().join("photos"))
            .unwrap()
            .count(),
        0
    );
}

#[tokio::test]
async fn a_photo_is_served_only_to_devices_that_see_its_case() {
    let server = Server::start().await;
    let a = server.leader("张三", &["g-1"]).await;
    let b = server.leader("李四", &["g-2"]).await;
    let township = server.leader("街道", &["t-1"]).await;
    let (photo, thumb) = (photo_bytes(21, 50_000), photo_bytes(22, 5_000));
    let sha = server.upload(&a, &photo).await;
    let thumb_sha = server.upload(&a, &thumb).await;

    // Uploaded but not attached to any case yet: nobody may fetch it.
    let get = |dev: &Device, sha: &str| {
        server
            .http
            .get(server.url(&format!("/v1/photos/{sha}")))
            .bearer_auth(&dev.token)
            .send()
    };
    assert_eq!(get(&a, &sha).await.unwrap().status(), StatusCode::NOT_FOUND);

    let id = CaseId::new();
    assert_accepted(
        &server
            .push(
                &a,
                &[
                    create(&a, id, Some(in_g1())),
                    attach(&a, id, photo_ref(&photo, &thumb)),
                    submit(&a, id),
                ],
            )
            .await,
    );
    for (dev, sha, data) in [(&a, &sha, &photo), (&township, &thumb_sha, &thumb)] {
        let resp = get(dev, sha).await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(resp.headers()["content-type"], "image/jpeg");
        assert_eq!(&resp.bytes().await.unwrap()[..], &data[..]);
    }
    let resp = get(&b, &sha).await.unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["code"], "not_found");
}

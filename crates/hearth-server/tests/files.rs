//! File attachments end to end: streamed uploads (raw and multipart) and their limit, downloads
//! with ranges and caching, content-addressed storage, images and thumbnails, who may read a
//! file, messages that carry files, and the S3 store against a local moto server.

mod common;

use common::{Account, Backend, Deployment, Node, all_hits, expect_count};
use futures_util::StreamExt;
use hearth_core::files::{BlobStore, FileLimits};
use serde_json::{Value, json};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

/// Uploads `bytes` as a raw body; the status and the JSON answer.
async fn upload_raw(
    node: &Node,
    account: &Account,
    name: &str,
    content_type: &str,
    bytes: Vec<u8>,
) -> (u16, Value) {
    let response = node
        .http
        .post(node.url("/api/files"))
        .query(&[("name", name)])
        .header("cookie", format!("sid={}", account.sid))
        .header("content-type", content_type)
        .body(bytes)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

/// Uploads one file and returns its description, asserting success.
async fn upload(node: &Node, account: &Account, name: &str, bytes: Vec<u8>) -> Value {
    let (status, body) = upload_raw(node, account, name, "application/octet-stream", bytes).await;
    assert_eq!(status, 201, "{body}");
    body[0].clone()
}

async fn get(
    node: &Node,
    account: &Account,
    path: &str,
    headers: &[(&str, &str)],
) -> reqwest::Response {
    let mut request = node
        .http
        .get(node.url(path))
        .header("cookie", format!("sid={}", account.sid));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.send().await.unwrap()
}

fn header<'a>(response: &'a reqwest::Response, name: &str) -> &'a str {
    response
        .headers()
        .get(name)
        .unwrap_or_else(|| panic!("{name} header"))
        .to_str()
        .unwrap()
}

/// Deterministic incompressible-looking bytes.
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..len)
        .map(|_| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 33) as u8
        })
        .collect()
}

fn png(width: u32, height: u32) -> Vec<u8> {
    let image = image::RgbaImage::from_fn(width, height, |x, y| {
        image::Rgba([(x % 256) as u8, (y % 256) as u8, 128, 255])
    });
    let mut out = Vec::new();
    image::DynamicImage::ImageRgba8(image)
        .write_to(&mut std::io::Cursor::new(&mut out), image::ImageFormat::Png)
        .unwrap();
    out
}

fn jpeg(width: u32, height: u32) -> Vec<u8> {
    let image = image::RgbImage::from_fn(width, height, |x, y| {
        image::Rgb([(x % 256) as u8, (y % 256) as u8, 64])
    });
    let mut out = Vec::new();
    image::DynamicImage::ImageRgb8(image)
        .write_to(
            &mut std::io::Cursor::new(&mut out),
            image::ImageFormat::Jpeg,
        )
        .unwrap();
    out
}

/// Regular files under `dir`, recursively (0 if it does not exist).
fn files_under(dir: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| {
            let path = e.path();
            if path.is_dir() { files_under(&path) } else { 1 }
        })
        .sum()
}

async fn group(node: &Node, owner: &Account, members: &[&Account]) -> i64 {
    let ids: Vec<i64> = members.iter().map(|m| m.id).collect();
    node.ok(
        owner,
        "POST",
        "/api/groups",
        Some(json!({"name": "files", "members": ids})),
    )
    .await["conversationId"]
        .as_i64()
        .unwrap()
}

/// Ann and Bob, friends, in a group of Ann's, and Carol, a stranger to both:
/// (ann, bob, carol, group).
async fn a_group_and_a_stranger(node: &Node) -> (Account, Account, Account, i64) {
    let ann = node.register("ann").await;
    let bob = node.register("bob").await;
    let carol = node.register("carol").await;
    node.befriend(&ann, &bob).await;
    let group = group(node, &ann, &[&bob]).await;
    (ann, bob, carol, group)
}

async fn send_file(
    node: &Node,
    account: &Account,
    conversation: i64,
    kind: &str,
    file_id: &str,
    caption: &str,
) -> (u16, Value) {
    node.call(
        Some(account),
        "POST",
        &format!("/api/conversations/{conversation}/messages"),
        Some(
            json!({"clientMsgId": common::unique("c"), "kind": kind, "content": caption,
                    "fileId": file_id}),
        ),
    )
    .await
}

on_both_backends!(
    round_trip_of_one_byte_and_ten_mebibytes,
    |backend: Backend| async move {
        let deployment = Deployment::new(backend);
        let node = deployment.start().await;
        let ann = node.register("ann").await;

        let (status, body) = upload_raw(
            &node,
            &ann,
            "a.txt",
            "text/plain; charset=utf-8",
            b"x".to_vec(),
        )
        .await;
        assert_eq!(status, 201, "{body}");
        let one = &body[0];
        assert_eq!(one["name"], "a.txt");
        assert_eq!(one["size"], 1);
        assert_eq!(one["contentType"], "text/plain");
        assert_eq!(one["hasThumbnail"], false);
        assert_eq!(one["uploaderId"], ann.id);
        let id = one["id"].as_str().unwrap();
        assert_eq!(id.len(), 32);
        assert_eq!(
            one["sha256"],
            "2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881"
        );
        let response = get(&node, &ann, &format!("/api/files/{id}"), &[]).await;
        assert_eq!(response.status(), 200);
        assert_eq!(header(&response, "content-type"), "text/plain");
        assert_eq!(header(&response, "content-length"), "1");
        assert_eq!(header(&response, "accept-ranges"), "bytes");
        assert_eq!(
            header(&response, "etag"),
            format!("\"{}\"", one["sha256"].as_str().unwrap())
        );
        assert_eq!(
            header(&response, "cache-control"),
            "private, max-age=31536000, immutable"
        );
        assert_eq!(
            header(&response, "content-disposition"),
            "attachment; filename=\"a.txt\"; filename*=UTF-8''a.txt"
        );
        assert_eq!(header(&response, "x-content-type-options"), "nosniff");
        assert_eq!(response.bytes().await.unwrap().as_ref(), b"x");

        let big = noise(10 << 20, 1);
        let ten = upload(&node, &ann, "报告 2024.bin", big.clone()).await;
        assert_eq!(ten["size"], 10 << 20);
        let tid = ten["id"].as_str().unwrap();
        let response = get(&node, &ann, &format!("/api/files/{tid}"), &[]).await;
        assert_eq!(response.status(), 200);
        assert_eq!(header(&response, "content-length"), (10 << 20).to_string());
        assert!(
            header(&response, "content-disposition")
                .ends_with("filename*=UTF-8''%E6%8A%A5%E5%91%8A%202024.bin")
        );
        let downloaded = response.bytes().await.unwrap();
        assert!(
            downloaded.as_ref() == big.as_slice(),
            "10 MiB come back intact"
        );

        // Metadata, one and several.
        let meta = node
            .ok(&ann, "GET", &format!("/api/files/{tid}/meta"), None)
            .await;
        assert_eq!(meta, ten);
        let both = node
            .ok(
                &ann,
                "GET",
                &format!("/api/files?ids={id},{tid},{id}"),
                None,
            )
            .await;
        assert_eq!(both, json!([one, ten]));
        // No session: 401, like every other endpoint.
        let response = node
            .http
            .get(node.url(&format!("/api/files/{id}")))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 401);
        assert_eq!(files_under(&deployment.files_dir.join("tmp")), 0);
        node.stop().await;
        deployment.cleanup().await;
    }
);

on_both_backends!(
    over_the_limit_is_refused_and_leaves_nothing,
    |backend: Backend| async move {
        let mut deployment = Deployment::new(backend);
        deployment.config.files.limits = FileLimits {
            max_upload_bytes: 64 * 1024,
            ..FileLimits::default()
        };
        let node = deployment.start().await;
        let ann = node.register("ann").await;
        let tmp = deployment.files_dir.join("tmp");
        let blobs = deployment.files_dir.join("blobs");

        // Declared too large: refused before reading.
        let (status, body) = upload_raw(
            &node,
            &ann,
            "big.bin",
            "application/octet-stream",
            noise(64 * 1024 + 1, 2),
        )
        .await;
        assert_eq!(
            (status, body["id"].as_str().unwrap()),
            (413, "file_too_large"),
            "{body}"
        );
        assert!(body["message"].as_str().unwrap().contains("65536"));

        // Streamed without a length: refused at the first chunk past the limit.
        let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
            (0..64).map(|i| Ok(noise(16 * 1024, i))).collect();
        let response = node
            .http
            .post(node.url("/api/files?name=stream.bin"))
            .header("cookie", format!("sid={}", ann.sid))
            .body(reqwest::Body::wrap_stream(futures_util::stream::iter(
                chunks,
            )))
            .send()
            .await
            .expect("the client reads the 413, not a reset");
        assert_eq!(response.status(), 413);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["id"], "file_too_large");

        // One part of several over the limit: the whole request is refused, no part is kept.
        let form = reqwest::multipart::Form::new()
            .part(
                "f",
                reqwest::multipart::Part::bytes(b"small".to_vec()).file_name("ok.txt"),
            )
            .part(
                "f",
                reqwest::multipart::Part::bytes(noise(200 * 1024, 3)).file_name("big.bin"),
            );
        let response = node
            .http
            .post(node.url("/api/files"))
            .header("cookie", format!("sid={}", ann.sid))
            .multipart(form)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 413);

        assert_eq!(files_under(&tmp), 0, "no staging file is left");
        assert_eq!(files_under(&blobs), 0, "no blob was stored");
        let (status, _) = node.call(Some(&ann), "GET", "/api/sync", None).await;
        assert_eq!(status, 200);

        // Exactly at the limit is fine.
        let at = upload(&node, &ann, "at.bin", noise(64 * 1024, 4)).await;
        assert_eq!(at["size"], 64 * 1024);
        assert_eq!(files_under(&blobs), 1);
        // Bad input.
        let (status, body) = upload_raw(&node, &ann, "", "text/plain", b"x".to_vec()).await;
        assert_eq!((status, body["id"].as_str().unwrap()), (400, "bad_name"));
        let (status, body) = upload_raw(&node, &ann, "e.txt", "text/plain", Vec::new()).await;
        assert_eq!((status, body["id"].as_str().unwrap()), (400, "empty_file"));
        // An empty part refuses its request before any part is stored.
        let form = reqwest::multipart::Form::new()
            .part(
                "f",
                reqwest::multipart::Part::bytes(b"fine".to_vec()).file_name("fine.txt"),
            )
            .part(
                "f",
                reqwest::multipart::Part::bytes(Vec::new()).file_name("empty.txt"),
            );
        let response = node
            .http
            .post(node.url("/api/files"))
            .header("cookie", format!("sid={}", ann.sid))
            .multipart(form)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400);
        assert_eq!(files_under(&blobs), 1, "the fine part was not stored");
        assert_eq!(files_under(&tmp), 0);
        node.stop().await;
        deployment.cleanup().await;
    }
);

on_both_backends!(
    multipart_with_several_files,
    |backend: Backend| async move {
        let deployment = Deployment::new(backend);
        let node = deployment.start().await;
        let ann = node.register("ann").await;
        let photo = jpeg(40, 30);
        let form = reqwest::multipart::Form::new()
            .part(
                "file",
                reqwest::multipart::Part::bytes(b"hello".to_vec())
                    .file_name("hello.txt")
                    .mime_str("text/plain")
                    .unwrap(),
            )
            .part(
                "file",
                reqwest::multipart::Part::bytes(photo.clone())
                    .file_name("C:\\fakepath\\photo.jpg")
                    // Wrong on purpose: the bytes decide.
                    .mime_str("application/pdf")
                    .unwrap(),
            )
            .part(
                "other",
                reqwest::multipart::Part::bytes(b"%PDF-1.4".to_vec())
                    .file_name("doc.pdf")
                    .mime_str("application/pdf")
                    .unwrap(),
            );
        let response = node
            .http
            .post(node.url("/api/files"))
            .header("cookie", format!("sid={}", ann.sid))
            .multipart(form)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201);
        let files: Value = response.json().await.unwrap();
        let names: Vec<&str> = files
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["hello.txt", "photo.jpg", "doc.pdf"]);
        assert_eq!(files[0]["contentType"], "text/plain");
        assert_eq!(files[1]["contentType"], "image/jpeg");
        assert_eq!(
            (files[1]["width"].as_i64(), files[1]["height"].as_i64()),
            (Some(40), Some(30))
        );
        assert_eq!(files[2]["contentType"], "application/pdf");
        let photo_id = files[1]["id"].as_str().unwrap();
        let response = get(&node, &ann, &format!("/api/files/{photo_id}"), &[]).await;
        assert!(
            header(&response, "content-disposition").starts_with("inline; filename=\"photo.jpg\"")
        );
        assert_eq!(response.bytes().await.unwrap().as_ref(), photo.as_slice());

        // A part that is not a file, and too many files.
        let form = reqwest::multipart::Form::new().text("note", "hi");
        let response = node
            .http
            .post(node.url("/api/files"))
            .header("cookie", format!("sid={}", ann.sid))
            .multipart(form)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400);
        let mut form = reqwest::multipart::Form::new();
        for i in 0..11 {
            form = form.part(
                "f",
                reqwest::multipart::Part::bytes(vec![i]).file_name(format!("{i}")),
            );
        }
        let response = node
            .http
            .post(node.url("/api/files"))
            .header("cookie", format!("sid={}", ann.sid))
            .multipart(form)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["id"], "too_many_files");
        assert_eq!(files_under(&deployment.files_dir.join("tmp")), 0);
        node.stop().await;
        deployment.cleanup().await;
    }
);

on_both_backends!(ranges_etags_and_dedupe, |backend: Backend| async move {
    let deployment = Deployment::new(backend);
    let node = deployment.start().await;
    let ann = node.register("ann").await;
    let bytes: Vec<u8> = (0u8..100).collect();
    let file = upload(&node, &ann, "digits.bin", bytes.clone()).await;
    let path = format!("/api/files/{}", file["id"].as_str().unwrap());
    let etag = format!("\"{}\"", file["sha256"].as_str().unwrap());

    for (range, want, content_range) in [
        ("bytes=0-9", &bytes[0..10], "bytes 0-9/100"),
        ("bytes=-5", &bytes[95..], "bytes 95-99/100"),
        ("bytes=90-", &bytes[90..], "bytes 90-99/100"),
        ("bytes=98-200", &bytes[98..], "bytes 98-99/100"),
    ] {
        let response = get(&node, &ann, &path, &[("range", range)]).await;
        assert_eq!(response.status(), 206, "{range}");
        assert_eq!(header(&response, "content-range"), content_range);
        assert_eq!(header(&response, "content-length"), want.len().to_string());
        assert_eq!(response.bytes().await.unwrap().as_ref(), want, "{range}");
    }
    let response = get(&node, &ann, &path, &[("range", "bytes=100-")]).await;
    assert_eq!(response.status(), 416);
    assert_eq!(header(&response, "content-range"), "bytes */100");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["id"], "range_not_satisfiable");
    // A stale If-Range gets the whole (new) file.
    let response = get(
        &node,
        &ann,
        &path,
        &[("range", "bytes=0-9"), ("if-range", "\"old\"")],
    )
    .await;
    assert_eq!(response.status(), 200);
    let response = get(
        &node,
        &ann,
        &path,
        &[("range", "bytes=0-9"), ("if-range", &etag)],
    )
    .await;
    assert_eq!(response.status(), 206);

    // Conditional requests.
    let response = get(&node, &ann, &path, &[("if-none-match", &etag)]).await;
    assert_eq!(response.status(), 304);
    assert_eq!(header(&response, "etag"), etag);
    assert!(response.bytes().await.unwrap().is_empty());
    let response = get(&node, &ann, &path, &[("if-none-match", "\"other\"")]).await;
    assert_eq!(response.status(), 200);

    // The same bytes again: another record, the same blob.
    let again = upload(&node, &ann, "copy.bin", bytes.clone()).await;
    assert_ne!(again["id"], file["id"]);
    assert_eq!(again["sha256"], file["sha256"]);
    assert_eq!(again["name"], "copy.bin");
    assert_eq!(files_under(&deployment.files_dir.join("blobs")), 1);
    node.stop().await;
    deployment.cleanup().await;
});

on_both_backends!(
    images_get_dimensions_and_a_thumbnail,
    |backend: Backend| async move {
        let deployment = Deployment::new(backend);
        let node = deployment.start().await;
        let ann = node.register("ann").await;
        // Declared as something else: the bytes make it an image.
        let (status, body) = upload_raw(
            &node,
            &ann,
            "wide.png",
            "application/octet-stream",
            png(800, 600),
        )
        .await;
        assert_eq!(status, 201, "{body}");
        let image = &body[0];
        assert_eq!(image["contentType"], "image/png");
        assert_eq!(
            (image["width"].as_i64(), image["height"].as_i64()),
            (Some(800), Some(600))
        );
        assert_eq!(image["hasThumbnail"], true);
        let id = image["id"].as_str().unwrap();
        let response = get(&node, &ann, &format!("/api/files/{id}/thumbnail"), &[]).await;
        assert_eq!(response.status(), 200);
        assert_eq!(header(&response, "content-type"), "image/png");
        let etag = header(&response, "etag").to_owned();
        let thumbnail = image::load_from_memory(&response.bytes().await.unwrap()).unwrap();
        assert_eq!((thumbnail.width(), thumbnail.height()), (320, 240));
        let response = get(
            &node,
            &ann,
            &format!("/api/files/{id}/thumbnail"),
            &[("if-none-match", &etag)],
        )
        .await;
        assert_eq!(response.status(), 304);

        // Claiming to be an image does not make bytes one.
        let (status, body) = upload_raw(
            &node,
            &ann,
            "fake.png",
            "image/png",
            b"<svg onload=alert(1)>".to_vec(),
        )
        .await;
        assert_eq!(status, 201);
        assert_eq!(body[0]["contentType"], "application/octet-stream");
        assert_eq!(body[0]["hasThumbnail"], false);
        assert!(body[0].get("width").is_none());
        let fake = body[0]["id"].as_str().unwrap();
        let (status, body) = node
            .call(
                Some(&ann),
                "GET",
                &format!("/api/files/{fake}/thumbnail"),
                None,
            )
            .await;
        assert_eq!(
            (status, body["id"].as_str().unwrap()),
            (404, "no_thumbnail")
        );
        let response = get(&node, &ann, &format!("/api/files/{fake}"), &[]).await;
        assert!(header(&response, "content-disposition").starts_with("attachment"));
        node.stop().await;
        deployment.cleanup().await;
    }
);

on_both_backends!(
    avatars_are_thumbnails_of_own_images_shown_to_every_user,
    |backend: Backend| async move {
        let deployment = Deployment::new(backend);
        let node = deployment.start().await;
        let ann = node.register("ann").await;
        let bob = node.register("bob").await;
        let avatar = format!("/api/users/{}/avatar", ann.id);

        // No avatar chosen: a generated picture with the name's first letter, for anyone
        // signed in, revalidated by its entity tag.
        let (_, me) = node.call(Some(&ann), "GET", "/api/me", None).await;
        assert_eq!(me["avatar"], Value::Null, "{me}");
        let response = get(&node, &bob, &avatar, &[]).await;
        assert_eq!(response.status(), 200);
        assert_eq!(header(&response, "content-type"), "image/svg+xml");
        assert_eq!(header(&response, "cache-control"), "private, max-age=60");
        assert_eq!(header(&response, "x-content-type-options"), "nosniff");
        let default_tag = header(&response, "etag").to_owned();
        assert!(response.text().await.unwrap().contains(">A</text>"));
        let response = get(&node, &bob, &avatar, &[("if-none-match", &default_tag)]).await;
        assert_eq!(response.status(), 304);
        let response = node.http.get(node.url(&avatar)).send().await.unwrap();
        assert_eq!(response.status(), 401, "avatars are for signed-in users");
        let (status, body) = node
            .call(Some(&bob), "GET", "/api/users/999999999/avatar", None)
            .await;
        assert_eq!((status, body["id"].as_str()), (404, Some("no_user")));

        // Only an image of one's own, of which a thumbnail was made, can be an avatar; a
        // refused request changes nothing, the name included.
        let photo = upload(&node, &ann, "me.png", png(800, 600)).await;
        let photo_id = photo["id"].as_str().unwrap().to_owned();
        let text = upload(&node, &ann, "notes.txt", b"hello".to_vec()).await;
        let bobs = upload(&node, &bob, "bob.png", png(64, 64)).await;
        for (file, why) in [
            (text["id"].clone(), "not an image"),
            (bobs["id"].clone(), "someone else's"),
            (json!("0123456789abcdef0123456789abcdef"), "unknown"),
            (json!("../../etc/passwd"), "not an id"),
            (json!(42), "not a string"),
        ] {
            let (status, body) = node
                .call(
                    Some(&ann),
                    "PATCH",
                    "/api/me",
                    Some(json!({"avatar": file, "username": "renamed-by-mistake"})),
                )
                .await;
            assert_eq!(
                (status, body["id"].as_str()),
                (400, Some("BAD_REQUEST")),
                "{why}: {body}"
            );
        }
        let (_, me) = node.call(Some(&ann), "GET", "/api/me", None).await;
        assert_eq!(
            (me["avatar"].clone(), me["username"].clone()),
            (Value::Null, json!(ann.username))
        );

        // Chosen: every user gets the thumbnail (never the full image), and the file itself
        // stays private to its uploader.
        let (status, me) = node
            .call(
                Some(&ann),
                "PATCH",
                "/api/me",
                Some(json!({"avatar": photo_id})),
            )
            .await;
        assert_eq!(
            (status, me["avatar"].as_str()),
            (200, Some(photo_id.as_str())),
            "{me}"
        );
        let (_, me) = node.call(Some(&ann), "GET", "/api/me", None).await;
        assert_eq!(me["avatar"].as_str(), Some(photo_id.as_str()));
        let response = get(&node, &bob, &avatar, &[("if-none-match", &default_tag)]).await;
        assert_eq!(
            response.status(),
            200,
            "a new picture is not the old one's tag"
        );
        assert_eq!(header(&response, "content-type"), "image/png");
        let tag = header(&response, "etag").to_owned();
        let picture = image::load_from_memory(&response.bytes().await.unwrap()).unwrap();
        assert_eq!((picture.width(), picture.height()), (320, 240));
        let response = get(&node, &bob, &avatar, &[("if-none-match", &tag)]).await;
        assert_eq!(response.status(), 304);
        let response = get(&node, &bob, &format!("/api/files/{photo_id}"), &[]).await;
        assert_eq!(response.status(), 403);

        // Moderation: an admin sees which file it is and can take it away; she may choose
        // another (the same one, here) afterwards.
        let moderator = node.register("moderator").await;
        common::make_admin(&deployment, &moderator).await;
        let (_, listed) = node
            .call(
                Some(&moderator),
                "GET",
                &format!("/api/admin/users/{}", ann.id),
                None,
            )
            .await;
        assert_eq!(
            listed["avatar"].as_str(),
            Some(photo_id.as_str()),
            "{listed}"
        );
        let removal = format!("/api/admin/users/{}/avatar", ann.id);
        let (status, _) = node.call(Some(&bob), "DELETE", &removal, None).await;
        assert_eq!(status, 403, "only admins remove avatars");
        let (status, removed) = node.call(Some(&moderator), "DELETE", &removal, None).await;
        assert_eq!(
            (status, removed["avatar"].clone()),
            (200, Value::Null),
            "{removed}"
        );
        let response = get(&node, &bob, &avatar, &[]).await;
        assert_eq!(header(&response, "content-type"), "image/svg+xml");
        let (status, _) = node
            .call(
                Some(&moderator),
                "DELETE",
                "/api/admin/users/999999999/avatar",
                None,
            )
            .await;
        assert_eq!(status, 404);
        let (status, _) = node
            .call(
                Some(&ann),
                "PATCH",
                "/api/me",
                Some(json!({"avatar": photo_id})),
            )
            .await;
        assert_eq!(status, 200);

        // A rename keeps the avatar; `null` removes it and the generated picture is back.
        let (status, me) = node
            .call(
                Some(&ann),
                "PATCH",
                "/api/me",
                Some(json!({"username": common::unique("anna")})),
            )
            .await;
        assert_eq!(
            (status, me["avatar"].as_str()),
            (200, Some(photo_id.as_str()))
        );
        let (status, me) = node
            .call(
                Some(&ann),
                "PATCH",
                "/api/me",
                Some(json!({"avatar": null})),
            )
            .await;
        assert_eq!((status, me["avatar"].clone()), (200, Value::Null));
        let response = get(&node, &bob, &avatar, &[]).await;
        assert_eq!(header(&response, "content-type"), "image/svg+xml");
        node.stop().await;
        deployment.cleanup().await;
    }
);

on_both_backends!(
    images_and_files_are_found_by_their_names,
    |backend: Backend| async move {
        let deployment = Deployment::new(backend);
        let node = deployment.start().await;
        let (ann, bob, carol, group) = a_group_and_a_stranger(&node).await;

        let report = upload(&node, &ann, "quarterly-report.pdf", noise(300, 7)).await;
        let image = upload(&node, &ann, "harbour.png", png(8, 8)).await;
        for (kind, file, caption) in [("file", &report, ""), ("image", &image, "at dusk")] {
            let (status, ack) = send_file(
                &node,
                &ann,
                group,
                kind,
                file["id"].as_str().unwrap(),
                caption,
            )
            .await;
            assert_eq!(status, 200, "{ack}");
        }

        // A word of the name finds the file (it has no caption); the hit describes the file.
        let hits = expect_count(&node, &bob, "quarterly", "", 1).await;
        assert_eq!(hits[0]["message"]["kind"], "file");
        assert_eq!(hits[0]["message"]["file"]["name"], "quarterly-report.pdf");
        assert_eq!(hits[0]["snippet"]["text"], "quarterly-report.pdf");
        // The image by its name and by its caption.
        assert_eq!(
            expect_count(&node, &bob, "harbour", "", 1).await[0]["message"]["kind"],
            "image"
        );
        assert_eq!(
            expect_count(&node, &bob, "dusk", "", 1).await[0]["message"]["kind"],
            "image"
        );
        // Names are searched as the messages are: not by someone outside the group.
        assert!(all_hits(&node, &carol, "quarterly", "").await.is_empty());
        node.stop().await;
        deployment.cleanup().await;
    }
);

on_both_backends!(
    files_are_read_by_uploader_and_members_only,
    |backend: Backend| async move {
        let deployment = Deployment::new(backend);
        let node = deployment.start().await;
        let (ann, bob, carol, group) = a_group_and_a_stranger(&node).await;
        let (mut bob_socket, _) = node.connect(&bob).await;

        let image = upload(&node, &ann, "cat.png", png(64, 48)).await;
        let id = image["id"].as_str().unwrap().to_owned();
        // Not shared yet: only Ann.
        let (status, denied) = node
            .call(Some(&bob), "GET", &format!("/api/files/{id}/meta"), None)
            .await;
        assert_eq!(
            (status, denied["id"].as_str().unwrap()),
            (403, "file_forbidden")
        );

        let (status, ack) = send_file(&node, &ann, group, "image", &id, "our cat").await;
        assert_eq!(status, 200, "{ack}");
        // Pushed with the file described.
        let pushed = bob_socket
            .until_with("message", |m| m["kind"] == "image")
            .await;
        assert_eq!(pushed["content"], "our cat");
        assert_eq!(
            pushed["file"],
            json!({"id": id, "name": "cat.png", "size": image["size"], "contentType": "image/png",
               "width": 64, "height": 48, "hasThumbnail": true})
        );
        // Pulled the same way.
        let page = node
            .ok(
                &bob,
                "GET",
                &format!("/api/conversations/{group}/messages?after=0"),
                None,
            )
            .await;
        let pulled = page["messages"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["kind"] == "image")
            .unwrap()
            .clone();
        assert_eq!(pulled["file"], pushed["file"]);

        // Bob, a member, reads it; Carol, a stranger, gets exactly what an unknown id gets.
        for path in [
            format!("/api/files/{id}"),
            format!("/api/files/{id}/thumbnail"),
        ] {
            assert_eq!(get(&node, &bob, &path, &[]).await.status(), 200, "{path}");
        }
        let mut answers = Vec::new();
        for path in [
            format!("/api/files/{id}"),
            format!("/api/files/{id}/meta"),
            format!("/api/files/{id}/thumbnail"),
            format!("/api/files?ids={id}"),
            format!("/api/files/{}", "0".repeat(32)),
            "/api/files/not-an-id".to_owned(),
        ] {
            let (status, body) = node.call(Some(&carol), "GET", &path, None).await;
            answers.push((status, body));
        }
        assert!(answers.iter().all(|a| *a == answers[0]), "{answers:?}");
        assert_eq!(answers[0].0, 403);
        assert_eq!(answers[0].1["id"], "file_forbidden");
        // Bob may forward it (it was shared with him), Carol may not use it anywhere.
        let bob_dm = node
            .ok(&bob, "POST", "/api/direct", Some(json!({"userId": ann.id})))
            .await;
        let (status, _) = send_file(
            &node,
            &bob,
            bob_dm["conversationId"].as_i64().unwrap(),
            "file",
            &id,
            "",
        )
        .await;
        assert_eq!(status, 200);

        // Recalled: the group message no longer shares it; the direct one still does.
        let seq = ack["seq"].as_i64().unwrap();
        node.ok(
            &ann,
            "POST",
            &format!("/api/conversations/{group}/messages/{seq}/recall"),
            None,
        )
        .await;
        let page = node
            .ok(
                &bob,
                "GET",
                &format!("/api/conversations/{group}/messages?after=0"),
                None,
            )
            .await;
        let recalled = page["messages"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["seq"] == seq)
            .unwrap()
            .clone();
        assert!(recalled.get("file").is_none(), "{recalled}");
        assert_eq!(
            get(&node, &bob, &format!("/api/files/{id}"), &[])
                .await
                .status(),
            200
        );

        // A member who leaves loses access with their membership.
        let only_group = upload(&node, &ann, "plan.txt", b"plan".to_vec()).await;
        let plan = only_group["id"].as_str().unwrap();
        let (status, _) = send_file(&node, &ann, group, "file", plan, "the plan").await;
        assert_eq!(status, 200);
        assert_eq!(
            get(&node, &bob, &format!("/api/files/{plan}"), &[])
                .await
                .status(),
            200
        );
        node.ok(&bob, "POST", &format!("/api/groups/{group}/leave"), None)
            .await;
        assert_eq!(
            get(&node, &bob, &format!("/api/files/{plan}"), &[])
                .await
                .status(),
            403
        );
        node.stop().await;
        deployment.cleanup().await;
    }
);

on_both_backends!(
    sends_with_files_are_checked,
    |backend: Backend| async move {
        let deployment = Deployment::new(backend);
        let node = deployment.start().await;
        let (ann, bob, carol, group) = a_group_and_a_stranger(&node).await;
        let carols = upload(&node, &carol, "secret.png", png(8, 8)).await;
        let carols = carols["id"].as_str().unwrap();
        let text = upload(&node, &ann, "notes.txt", b"notes".to_vec()).await;
        let text = text["id"].as_str().unwrap();

        let refusals = [
            ("image", carols.to_owned(), 403, "file_forbidden"),
            ("file", "f".repeat(32), 403, "file_forbidden"),
            ("image", text.to_owned(), 400, "not_an_image"),
            ("text", text.to_owned(), 400, "unexpected_file"),
        ];
        for (kind, file, status, code) in refusals {
            let (got, body) = send_file(&node, &ann, group, kind, &file, "x").await;
            assert_eq!(
                (got, body["id"].as_str().unwrap()),
                (status, code),
                "{kind} {file}"
            );
        }
        let (status, body) = node
            .call(
                Some(&ann),
                "POST",
                &format!("/api/conversations/{group}/messages"),
                Some(json!({"clientMsgId": "v1", "kind": "voice", "content": ""})),
            )
            .await;
        assert_eq!(
            (status, body["id"].as_str().unwrap()),
            (400, "file_required")
        );
        // Over the socket too, refused with the clientMsgId.
        let (mut socket, _) = node.connect(&ann).await;
        socket
            .send(
                json!({"type": "send", "payload": {"conversationId": group, "clientMsgId": "ws-1",
                     "kind": "image", "content": "", "fileId": carols}}),
            )
            .await;
        let (error, _) = socket.until("error").await;
        assert_eq!(error["code"], "file_forbidden");
        assert_eq!(error["clientMsgId"], "ws-1");
        // A file message with an empty caption is fine.
        socket
            .send(
                json!({"type": "send", "payload": {"conversationId": group, "clientMsgId": "ws-2",
                     "kind": "file", "content": "", "fileId": text}}),
            )
            .await;
        let (ack, _) = socket.until("ack").await;
        assert_eq!(ack["clientMsgId"], "ws-2");
        // Nothing refused was stored: the group has its creation message and the file.
        let page = node
            .ok(
                &bob,
                "GET",
                &format!("/api/conversations/{group}/messages?after=0"),
                None,
            )
            .await;
        let kinds: Vec<&str> = page["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["kind"].as_str().unwrap())
            .collect();
        assert_eq!(kinds, ["system", "file"]);
        node.stop().await;
        deployment.cleanup().await;
    }
);

/// A moto S3 server on a free loopback port, stopped when dropped.
struct Moto {
    child: Child,
    endpoint: String,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn start_moto() -> Moto {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new("moto_server")
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("cannot run moto_server ({e}): pip install 'moto[server]' (scripts/services.sh does)")
        });
    let moto = Moto {
        child,
        endpoint: format!("http://127.0.0.1:{port}"),
    };
    let client = reqwest::Client::new();
    for _ in 0..150 {
        if client.get(&moto.endpoint).send().await.is_ok() {
            return moto;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!(
        "moto_server did not come up on {} within 30 s",
        moto.endpoint
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_store_round_trip_and_ranges_against_moto() {
    let moto = start_moto().await;
    let bucket = "hearth-test";
    let created = reqwest::Client::new()
        .put(format!("{}/{bucket}", moto.endpoint))
        .send()
        .await
        .unwrap();
    assert!(
        created.status().is_success(),
        "create bucket: {}",
        created.status()
    );
    let credentials = hearth_blobs::S3Credentials {
        access_key_id: Some("testing".into()),
        secret_access_key: Some("testing".into()),
        region: Some("us-east-1".into()),
    };
    let url = format!(
        "s3://{bucket}/blobs?endpoint={}&allow_http=true",
        moto.endpoint
    );
    let config = hearth_blobs::S3Config::from_url(&url, &credentials).unwrap();
    let s3: Arc<dyn BlobStore> = Arc::new(hearth_blobs::S3Blobs::connect(&config).unwrap());

    let mut deployment = Deployment::new(Backend::Sqlite);
    deployment.config.files.blobs = s3.clone();
    let node = deployment.start().await;
    let ann = node.register("ann").await;

    // Larger than one part (8 MiB): a multipart upload to S3.
    let big = noise(9 << 20, 7);
    let file = upload(&node, &ann, "big.bin", big.clone()).await;
    let path = format!("/api/files/{}", file["id"].as_str().unwrap());
    let response = get(&node, &ann, &path, &[]).await;
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "content-length"), (9 << 20).to_string());
    assert!(response.bytes().await.unwrap().as_ref() == big.as_slice());
    let response = get(&node, &ann, &path, &[("range", "bytes=8388600-8388615")]).await;
    assert_eq!(response.status(), 206);
    assert_eq!(
        response.bytes().await.unwrap().as_ref(),
        &big[8_388_600..8_388_616]
    );
    let response = get(&node, &ann, &path, &[("range", "bytes=-3")]).await;
    assert_eq!(
        response.bytes().await.unwrap().as_ref(),
        &big[big.len() - 3..]
    );

    // Small files and thumbnails in one request; the same bytes twice are one object.
    let image = upload(&node, &ann, "p.png", png(400, 100)).await;
    assert_eq!(image["hasThumbnail"], true);
    let thumb = get(
        &node,
        &ann,
        &format!("/api/files/{}/thumbnail", image["id"].as_str().unwrap()),
        &[],
    )
    .await;
    let thumb = image::load_from_memory(&thumb.bytes().await.unwrap()).unwrap();
    assert_eq!((thumb.width(), thumb.height()), (320, 80));
    let again = upload(&node, &ann, "again.bin", big).await;
    assert_eq!(again["sha256"], file["sha256"]);
    let key = file["sha256"].as_str().unwrap();
    assert!(s3.exists(key).await.unwrap());
    let mut stream = s3.get(key, Some(0..4)).await.unwrap().stream;
    let mut first = Vec::new();
    while let Some(chunk) = stream.next().await {
        first.extend_from_slice(&chunk.unwrap());
    }
    assert_eq!(first.len(), 4);
    // Only staging is on local disk, and it is empty.
    assert_eq!(files_under(&deployment.files_dir.join("tmp")), 0);
    assert_eq!(files_under(&deployment.files_dir.join("blobs")), 0);
    s3.delete(key).await.unwrap();
    assert!(!s3.exists(key).await.unwrap());
    node.stop().await;
    deployment.cleanup().await;
}

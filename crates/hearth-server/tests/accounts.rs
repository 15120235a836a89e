//! Accounts, login, sessions: the HTTP API's table of cases, on both backends.

mod common;

use common::{Backend, Deployment, session_cookie};
use serde_json::{Value, json};
use std::time::Duration;

/// POSTs `body` (raw text, with a content type) and returns `(status, error id or "")`.
async fn post_raw(
    node: &common::Node,
    path: &str,
    content_type: &str,
    body: String,
) -> (u16, String) {
    let response = node
        .http
        .post(node.url(path))
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    let id = if text.is_empty() {
        String::new()
    } else {
        let body: Value = serde_json::from_str(&text)
            .unwrap_or_else(|_| panic!("error bodies are JSON, got {text:?}"));
        assert!(
            body["message"].as_str().is_some_and(|m| !m.is_empty()),
            "message in {body}"
        );
        body["id"].as_str().unwrap().to_owned()
    };
    (status, id)
}

async fn post(node: &common::Node, path: &str, body: Value) -> (u16, String) {
    post_raw(node, path, "application/json", body.to_string()).await
}

on_both_backends!(create_account_table, |backend: Backend| async move {
    let deployment = Deployment::new(backend);
    let node = deployment.start().await;
    let tag = format!("{:x}", std::process::id());
    let account = |u: &str, e: &str, p: &str| json!({"username": u, "email": e, "password": p});
    let taken_name = format!("taken{tag}");
    let taken_email = format!("taken{tag}@example.com");
    assert_eq!(
        post(
            &node,
            "/api/create-account",
            account(&taken_name, &taken_email, "0123456789")
        )
        .await,
        (204, String::new())
    );

    let long_email = format!("{}@example.com", "a".repeat(89)); // 101 bytes
    let cases: Vec<(&str, Value, u16, &str)> = vec![
        (
            "username exactly 4 bytes",
            account("abcd", &format!("four{tag}@example.com"), "0123456789"),
            204,
            "",
        ),
        (
            "username 100 bytes",
            account(
                &"u".repeat(100),
                &format!("hundred{tag}@example.com"),
                "0123456789",
            ),
            204,
            "",
        ),
        (
            "password 100 bytes",
            account(
                &format!("pw100{tag}"),
                &format!("pw100{tag}@example.com"),
                &"p".repeat(100),
            ),
            204,
            "",
        ),
        (
            "duplicate username",
            account(
                &taken_name,
                &format!("other{tag}@example.com"),
                "0123456789",
            ),
            400,
            "USERNAME_EXISTS",
        ),
        (
            "duplicate username, other case",
            account(
                &taken_name.to_uppercase(),
                &format!("other2{tag}@example.com"),
                "0123456789",
            ),
            400,
            "USERNAME_EXISTS",
        ),
        (
            "duplicate email",
            account(&format!("fresh{tag}"), &taken_email, "0123456789"),
            400,
            "EMAIL_EXISTS",
        ),
        (
            "duplicate email, other case",
            account(
                &format!("fresh2{tag}"),
                &taken_email.to_uppercase(),
                "0123456789",
            ),
            400,
            "EMAIL_EXISTS",
        ),
        (
            "username 3 bytes",
            account("abc", &format!("abc{tag}@example.com"), "0123456789"),
            400,
            "BAD_REQUEST",
        ),
        (
            "username 101 bytes",
            account(
                &"u".repeat(101),
                &format!("u101{tag}@example.com"),
                "0123456789",
            ),
            400,
            "BAD_REQUEST",
        ),
        (
            "email without @",
            account(
                &format!("noat{tag}"),
                "no-at-sign.example.com",
                "0123456789",
            ),
            400,
            "BAD_REQUEST",
        ),
        (
            "email without domain dot",
            account(&format!("nodot{tag}"), "a@localhost", "0123456789"),
            400,
            "BAD_REQUEST",
        ),
        (
            "email 101 bytes",
            account(&format!("longmail{tag}"), &long_email, "0123456789"),
            400,
            "BAD_REQUEST",
        ),
        (
            "password 9 bytes",
            account(
                &format!("pw9{tag}"),
                &format!("pw9{tag}@example.com"),
                "012345678",
            ),
            400,
            "BAD_REQUEST",
        ),
        (
            "password 101 bytes",
            account(
                &format!("pw101{tag}"),
                &format!("pw101{tag}@example.com"),
                &"p".repeat(101),
            ),
            400,
            "BAD_REQUEST",
        ),
        (
            "missing password",
            json!({"username": format!("miss{tag}"), "email": format!("miss{tag}@example.com")}),
            400,
            "BAD_REQUEST",
        ),
        (
            "extra field",
            json!({"username": format!("extra{tag}"), "email": format!("extra{tag}@example.com"), "password": "0123456789", "admin": true}),
            400,
            "BAD_REQUEST",
        ),
        (
            "wrong type",
            json!({"username": 12345, "email": format!("type{tag}@example.com"), "password": "0123456789"}),
            400,
            "BAD_REQUEST",
        ),
        ("not an object", json!(["a", "b"]), 400, "BAD_REQUEST"),
    ];
    for (name, body, status, id) in cases {
        assert_eq!(
            post(&node, "/api/create-account", body).await,
            (status, id.to_owned()),
            "case: {name}"
        );
    }
    let body = account(
        &format!("ctype{tag}"),
        &format!("ctype{tag}@example.com"),
        "0123456789",
    )
    .to_string();
    assert_eq!(
        post_raw(&node, "/api/create-account", "text/plain", body).await,
        (400, "BAD_REQUEST".into()),
        "wrong content type"
    );
    assert_eq!(
        post_raw(
            &node,
            "/api/create-account",
            "application/json",
            "{not json".into()
        )
        .await,
        (400, "BAD_REQUEST".into()),
        "invalid JSON"
    );
    // A repeated key is refused, not read as its last value (no account is made).
    let repeated = format!(
        r#"{{"username":"rep{tag}","email":"rep{tag}@example.com","password":"0123456789","username":"admin{tag}"}}"#
    );
    assert_eq!(
        post_raw(&node, "/api/create-account", "application/json", repeated).await,
        (400, "BAD_REQUEST".into()),
        "a repeated key"
    );
    let login = json!({"email": format!("rep{tag}@example.com"), "password": "0123456789"});
    assert_eq!(post(&node, "/api/login", login).await.0, 400);
    assert_eq!(
        post_raw(
            &node,
            "/api/create-account",
            "application/json",
            "x".repeat(100_000)
        )
        .await,
        (413, "PAYLOAD_TOO_LARGE".into()),
        "oversized body"
    );

    node.stop().await;
    deployment.cleanup().await;
});

on_both_backends!(login_table, |backend: Backend| async move {
    let deployment = Deployment::new(backend);
    let node = deployment.start().await;
    let alice = node.register("alice").await;
    let login = |e: &str, p: &str| json!({"email": e, "password": p});
    let cases: Vec<(&str, Value, u16, &str)> = vec![
        (
            "right credentials",
            login(&alice.email, &alice.password),
            204,
            "",
        ),
        (
            "email in other case",
            login(&alice.email.to_uppercase(), &alice.password),
            204,
            "",
        ),
        (
            "wrong password",
            login(&alice.email, "wrong password!"),
            400,
            "LOGIN_FAILED",
        ),
        (
            "unknown email",
            login("nobody-here@example.com", &alice.password),
            400,
            "LOGIN_FAILED",
        ),
        (
            "password too short",
            login(&alice.email, "short"),
            400,
            "BAD_REQUEST",
        ),
        (
            "malformed email",
            login("not-an-email", &alice.password),
            400,
            "BAD_REQUEST",
        ),
        (
            "missing email",
            json!({"password": alice.password}),
            400,
            "BAD_REQUEST",
        ),
        (
            "extra field",
            json!({"email": alice.email, "password": alice.password, "x": 1}),
            400,
            "BAD_REQUEST",
        ),
        (
            "the fields as an array (serde alone would take it)",
            json!([alice.email, alice.password]),
            400,
            "BAD_REQUEST",
        ),
    ];
    for (name, body, status, id) in cases {
        assert_eq!(
            post(&node, "/api/login", body).await,
            (status, id.to_owned()),
            "case: {name}"
        );
    }
    assert_eq!(
        post_raw(
            &node,
            "/api/login",
            "text/plain",
            login(&alice.email, &alice.password).to_string()
        )
        .await,
        (400, "BAD_REQUEST".into()),
        "wrong content type"
    );

    // The cookie is exactly what the reference client expects.
    let response = node
        .post_json("/api/login", login(&alice.email, &alice.password))
        .await;
    let set_cookie = response.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .to_owned();
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=3600"] {
        assert!(
            set_cookie.contains(attribute),
            "{attribute} in {set_cookie}"
        );
    }
    let sid = session_cookie(&response).unwrap();
    assert_ne!(sid, alice.sid, "every login is a new session");

    // /api/me with and without a session.
    let me = node.get_as("/api/me", Some(&sid)).await;
    assert_eq!(me.status(), 200);
    let me: Value = me.json().await.unwrap();
    assert_eq!(
        me,
        json!({"id": alice.id, "username": alice.username, "email": alice.email, "avatar": null})
    );
    let anonymous = node.get_as("/api/me", None).await;
    assert_eq!(anonymous.status(), 401);
    let forged = node
        .get_as(
            "/api/me",
            Some("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"),
        )
        .await;
    assert_eq!(forged.status(), 401);

    // Logout revokes: the cookie no longer works over HTTP or WebSocket.
    let out = node
        .http
        .post(node.url("/api/logout"))
        .header("cookie", format!("sid={sid}"))
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), 204);
    assert!(
        out.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .contains("Max-Age=0")
    );
    let after = node.get_as("/api/me", Some(&sid)).await;
    assert_eq!(after.status(), 401);
    let mut socket = node.connect_with_cookie(Some(&sid)).await;
    assert_eq!(socket.expect_close().await, Some(1008));
    // Alice's other session is untouched.
    let (_still, hello) = node.connect(&alice).await;
    assert_eq!(hello["me"]["id"], alice.id);

    node.stop().await;
    deployment.cleanup().await;
});

on_both_backends!(
    bearer_tokens_for_native_clients,
    |backend: Backend| async move {
        let deployment = Deployment::new(backend);
        let node = deployment.start().await;
        let bob = node.register("bob").await;
        let response = node
            .post_json(
                "/api/sessions",
                json!({"email": bob.email, "password": bob.password}),
            )
            .await;
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.unwrap();
        let token = body["token"].as_str().unwrap().to_owned();
        assert_eq!(body["user"]["id"], bob.id);
        assert!(body["expiresAt"].as_i64().unwrap() > 0);
        let me = node
            .http
            .get(node.url("/api/me"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(me.status(), 200);

        // The same token authenticates a WebSocket through the Authorization header.
        use tokio_tungstenite::tungstenite::client::IntoClientRequest;
        let mut request = node.ws_url.as_str().into_client_request().unwrap();
        request
            .headers_mut()
            .insert("authorization", format!("Bearer {token}").parse().unwrap());
        let (stream, _) = tokio_tungstenite::connect_async(request).await.unwrap();
        let mut client = common::Client { stream };
        let hello = client.expect("hello").await;
        assert_eq!(hello["me"]["username"], bob.username.as_str());

        let wrong = node
            .post_json(
                "/api/sessions",
                json!({"email": bob.email, "password": "not the password"}),
            )
            .await;
        assert_eq!(wrong.status(), 400);
        node.stop().await;
        deployment.cleanup().await;
    }
);

on_both_backends!(
    expired_session_is_refused_with_1008,
    |backend: Backend| async move {
        let mut deployment = Deployment::new(backend);
        deployment.config.session_ttl = Duration::from_secs(1);
        let node = deployment.start().await;
        let carol = node.register("carol").await;
        let (_socket, _) = node.connect(&carol).await;
        tokio::time::sleep(Duration::from_millis(1_500)).await;
        let mut late = node.connect_with_cookie(Some(&carol.sid)).await;
        assert_eq!(late.expect_close().await, Some(1008));
        let me = node.get_as("/api/me", Some(&carol.sid)).await;
        assert_eq!(me.status(), 401);
        let mut anonymous = node.connect_with_cookie(None).await;
        assert_eq!(anonymous.expect_close().await, Some(1008));
        node.stop().await;
        deployment.cleanup().await;
    }
);

on_both_backends!(
    concurrent_duplicate_signups_make_one_account,
    |backend: Backend| async move {
        let deployment = Deployment::new(backend);
        let node = deployment.start().await;
        let name = format!("racer{:x}", std::process::id());
        let attempts = (0..8).map(|i| {
        let body = json!({"username": name, "email": format!("racer{i}-{name}@example.com"), "password": "0123456789"});
        let request = node.http.post(node.url("/api/create-account")).json(&body).send();
        async move { request.await.unwrap().status().as_u16() }
    });
        let statuses = futures_util::future::join_all(attempts).await;
        assert_eq!(
            statuses.iter().filter(|s| **s == 204).count(),
            1,
            "{statuses:?}"
        );
        assert_eq!(
            statuses.iter().filter(|s| **s == 400).count(),
            7,
            "{statuses:?}"
        );
        node.stop().await;
        deployment.cleanup().await;
    }
);

on_both_backends!(
    unknown_endpoints_and_methods,
    |backend: Backend| async move {
        let deployment = Deployment::new(backend);
        let node = deployment.start().await;
        let missing = node
            .http
            .get(node.url("/api/does-not-exist"))
            .send()
            .await
            .unwrap();
        assert_eq!(missing.status(), 404);
        assert_eq!(missing.json::<Value>().await.unwrap()["id"], "NOT_FOUND");
        let wrong_method = node.get_as("/api/login", None).await;
        assert_eq!(wrong_method.status(), 405);
        assert_eq!(
            wrong_method.json::<Value>().await.unwrap()["id"],
            "METHOD_NOT_ALLOWED"
        );
        let page = node.get_as("/", None).await;
        assert_eq!(page.status(), 200);
        assert!(
            page.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/html")
        );
        assert!(
            page.text().await.unwrap().contains("<div"),
            "the web client is embedded"
        );
        node.stop().await;
        deployment.cleanup().await;
    }
);

on_both_backends!(
    logout_closes_the_sessions_open_sockets,
    |backend: Backend| async move {
        let deployment = Deployment::new(backend);
        let node = deployment.start().await;
        let user = node.register("leaver").await;
        let other = node.register("stayer").await;
        let (mut socket, _) = node.connect(&user).await;
        let (mut bystander, _) = node.connect(&other).await;
        let response = node
            .http
            .post(node.url("/api/logout"))
            .header("cookie", format!("sid={}", user.sid))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 204);
        assert_eq!(
            socket.expect_close().await,
            Some(1008),
            "the open socket ends with the session"
        );
        bystander.post("general", &["still here"]).await;
        bystander.expect("serverMessages").await;
        node.stop().await;
        deployment.cleanup().await;
    }
);

on_both_backends!(
    profile_and_password_changes,
    |backend: Backend| async move {
        let deployment = Deployment::new(backend);
        let node = deployment.start().await;
        let mut ann = node.register("ann").await;
        let bob = node.register("bob").await;

        // Rename: validated as at sign-up, free names only (case-insensitively), seen by others.
        let new_name = common::unique("annie");
        let (status, me) = node
            .call(
                Some(&ann),
                "PATCH",
                "/api/me",
                Some(json!({"username": new_name})),
            )
            .await;
        assert_eq!(
            (status, me["username"].as_str()),
            (200, Some(new_name.as_str())),
            "{me}"
        );
        let (status, error) = node
            .call(
                Some(&ann),
                "PATCH",
                "/api/me",
                Some(json!({"username": bob.username.to_uppercase()})),
            )
            .await;
        assert_eq!(
            (status, error["id"].as_str()),
            (400, Some("USERNAME_EXISTS"))
        );
        let (status, error) = node
            .call(
                Some(&ann),
                "PATCH",
                "/api/me",
                Some(json!({"username": "an\u{200B}n"})),
            )
            .await;
        assert_eq!((status, error["id"].as_str()), (400, Some("BAD_REQUEST")));
        // Bob's name in disguise: fullwidth letters, or a Cyrillic "о" for the Latin one.
        let fullwidth: String = bob
            .username
            .chars()
            .map(|c| match c {
                '!'..='~' => char::from_u32(c as u32 + 0xFEE0).unwrap(),
                c => c,
            })
            .collect();
        let cyrillic = bob.username.replacen('o', "\u{043E}", 1);
        for disguise in [fullwidth, cyrillic] {
            let (status, error) = node
                .call(
                    Some(&ann),
                    "PATCH",
                    "/api/me",
                    Some(json!({"username": disguise})),
                )
                .await;
            assert_eq!(
                (status, error["id"].as_str()),
                (400, Some("BAD_REQUEST")),
                "{disguise}: {error}"
            );
        }
        let found = node
            .ok(&bob, "GET", &format!("/api/users?q={new_name}"), None)
            .await;
        assert_eq!(found[0]["username"], new_name.as_str(), "{found}");
        let (status, _) = node
            .call(
                None,
                "PATCH",
                "/api/me",
                Some(json!({"username": "nobody1"})),
            )
            .await;
        assert_eq!(status, 401);

        // Password: the current one must be right; then every session ends (and its
        // sockets), a new one is handed back, and only the new password logs in.
        let (mut old_socket, _) = node.connect(&ann).await;
        let change =
            |current: &str, new: &str| json!({"currentPassword": current, "newPassword": new});
        let (status, error) = node
            .call(
                Some(&ann),
                "POST",
                "/api/me/password",
                Some(change("not the password", "a brand new secret")),
            )
            .await;
        assert_eq!(
            (status, error["id"].as_str()),
            (400, Some("WRONG_PASSWORD"))
        );
        let (status, error) = node
            .call(
                Some(&ann),
                "POST",
                "/api/me/password",
                Some(change(&ann.password, "short")),
            )
            .await;
        assert_eq!((status, error["id"].as_str()), (400, Some("BAD_REQUEST")));
        let response = node
            .http
            .post(node.url("/api/me/password"))
            .header("cookie", format!("sid={}", ann.sid))
            .json(&change(&ann.password, "a brand new secret"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let cookie = session_cookie(&response).expect("a new session cookie");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["token"].as_str(), Some(cookie.as_str()));
        assert_eq!(
            old_socket.expect_close().await,
            Some(1008),
            "the old session's socket ends"
        );
        let old_sid = std::mem::replace(&mut ann.sid, cookie);
        assert_eq!(node.get_as("/api/me", Some(&old_sid)).await.status(), 401);
        assert_eq!(node.get_as("/api/me", Some(&ann.sid)).await.status(), 200);
        let login = |password: &str| json!({"email": ann.email, "password": password});
        assert_eq!(
            post(&node, "/api/login", login(&ann.password)).await,
            (400, "LOGIN_FAILED".into())
        );
        assert_eq!(
            post(&node, "/api/login", login("a brand new secret"))
                .await
                .0,
            204
        );
        node.stop().await;
        deployment.cleanup().await;
    }
);

on_both_backends!(
    open_sockets_post_under_the_new_name_and_close_on_a_password_change,
    |backend: Backend| async move {
        let deployment = Deployment::new(backend);
        let node = deployment.start().await;
        // In cluster mode the second socket is on another node: the rename reaches it by bus.
        let other = match backend {
            Backend::Cluster => Some(deployment.start().await),
            Backend::Sqlite => None,
        };
        let far = other.as_ref().unwrap_or(&node);
        let mut ann = node.register("ann").await;
        let bob = node.register("bob").await;
        node.befriend(&ann, &bob).await;
        let (mut near_socket, _) = node.connect(&ann).await;
        let (mut far_socket, _) = far.connect(&ann).await;
        let mut friend = far.device(&bob, "web").await;
        let new_name = common::unique("renamed");
        let (status, me) = node
            .call(
                Some(&ann),
                "PATCH",
                "/api/me",
                Some(json!({"username": new_name})),
            )
            .await;
        assert_eq!(status, 200, "{me}");
        // A friend's open client is told, on whichever node it is.
        let (profile, _) = friend.until("profile").await;
        assert_eq!(
            profile,
            json!({"userId": ann.id, "username": new_name.as_str(), "avatar": null})
        );
        for (socket, text) in [
            (&mut near_socket, "from near"),
            (&mut far_socket, "from far"),
        ] {
            socket.post("general", &[text]).await;
            let batch = socket
                .until_with("serverMessages", |p| p["messages"][0]["content"] == text)
                .await;
            assert_eq!(
                batch["messages"][0]["user"]["username"],
                new_name.as_str(),
                "a socket opened before the rename posts under the new name: {batch}"
            );
        }

        // A password change ends every session: the sockets on every node close at once.
        let (status, session) = node
            .call(
                Some(&ann),
                "POST",
                "/api/me/password",
                Some(json!({"currentPassword": ann.password, "newPassword": "a-new-password-42"})),
            )
            .await;
        assert_eq!(status, 200, "{session}");
        ann.password = "a-new-password-42".to_owned();
        for socket in [&mut near_socket, &mut far_socket] {
            // Room messages posted above may still be ahead of the close frame.
            let code = loop {
                if let common::Event::Closed(code) = socket.next_event().await {
                    break code;
                }
            };
            assert_eq!(code, Some(1008));
        }
        if let Some(other) = other {
            other.stop().await;
        }
        node.stop().await;
        deployment.cleanup().await;
    }
);

//! Abuse limits and the Origin check: each limit triggers with the documented refusal, and
//! recovers once the advertised wait has passed.

mod common;

use common::{Account, Backend, Deployment, Event, Node};
use hearth_server::{Rate, RateLimits};
use serde_json::{Value, json};
use std::time::Duration;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;

/// A node whose limits are all generous except the ones a test tightens.
async fn node_with(limits: RateLimits) -> (Deployment, Node) {
    let mut deployment = Deployment::new(Backend::Sqlite);
    deployment.config.rate_limits = limits;
    let node = deployment.start().await;
    (deployment, node)
}

fn generous() -> RateLimits {
    let lots = Rate {
        burst: 10_000,
        per_minute: 10_000,
    };
    RateLimits {
        enabled: true,
        signups_per_ip: lots,
        logins_per_ip: lots,
        logins_per_account: lots,
        messages_per_user: lots,
        friend_requests_per_user: lots,
        join_requests_per_user: lots,
        uploads_per_user: lots,
        connections_per_ip: lots,
        max_sockets_per_user: 1_000,
        max_sockets_per_ip: 1_000,
    }
}

/// One every five seconds after a burst of `burst`: slow enough that nothing refills while
/// a test uses up the burst (password hashing is slow in debug builds), quick to recover.
fn tight(burst: u32) -> Rate {
    Rate {
        burst,
        per_minute: 12,
    }
}

/// Asserts a 429 `rate_limited` with a consistent `Retry-After` and `retryAfterMs`; returns
/// the wait.
async fn assert_limited(response: reqwest::Response) -> Duration {
    assert_limited_body(response).await.1
}

async fn login(node: &Node, body: &Value) -> reqwest::Response {
    node.post_json("/api/login", body.clone()).await
}

/// [`assert_limited`] for a refusal by `limit` (its message names it).
async fn refused_by(response: reqwest::Response, limit: &str) -> Duration {
    let (message, wait) = assert_limited_body(response).await;
    assert!(message.contains(limit), "{message} is not {limit}");
    wait
}

/// [`assert_limited`], also returning the refusal's message.
async fn assert_limited_body(response: reqwest::Response) -> (String, Duration) {
    assert_eq!(response.status(), 429);
    let retry_after: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["id"], "rate_limited", "{body}");
    let wait_ms = body["retryAfterMs"].as_u64().expect("retryAfterMs");
    assert!(
        wait_ms <= retry_after * 1000,
        "{wait_ms} ms vs {retry_after} s"
    );
    assert!(retry_after >= 1);
    let message = body["message"].as_str().unwrap_or_default().to_owned();
    (message, Duration::from_millis(wait_ms + 50))
}

fn signup_body(name: &str) -> Value {
    let username = common::unique(name);
    json!({"username": username, "email": format!("{username}@example.com"), "password": "correct horse battery"})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signups_per_ip_trigger_and_recover() {
    let (deployment, node) = node_with(RateLimits {
        signups_per_ip: tight(2),
        ..generous()
    })
    .await;
    for name in ["s1", "s2"] {
        let response = node
            .post_json("/api/create-account", signup_body(name))
            .await;
        assert_eq!(response.status(), 204);
    }
    let refused = node
        .post_json("/api/create-account", signup_body("s3"))
        .await;
    let wait = assert_limited(refused).await;
    tokio::time::sleep(wait).await;
    let response = node
        .post_json("/api/create-account", signup_body("s4"))
        .await;
    assert_eq!(
        response.status(),
        204,
        "recovered after the advertised wait"
    );
    node.stop().await;
    deployment.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_logins_back_off_and_a_good_login_recovers() {
    let (deployment, node) = node_with(generous()).await;
    let ann = node.register("ann").await;
    let wrong = json!({"email": ann.email, "password": "not the password"});
    for _ in 0..5 {
        let response = node.post_json("/api/login", wrong.clone()).await;
        assert_eq!(response.status(), 400, "a wrong password is LOGIN_FAILED");
    }
    // The account is now locked for a moment, even with the right password, and from the
    // bearer-token login too.
    let right = json!({"email": ann.email, "password": ann.password});
    let wait = assert_limited(node.post_json("/api/login", right.clone()).await).await;
    assert_limited(node.post_json("/api/sessions", right.clone()).await).await;
    tokio::time::sleep(wait).await;
    let response = node.post_json("/api/login", right.clone()).await;
    assert_eq!(response.status(), 204, "recovered");
    node.stop().await;
    deployment.cleanup().await;
}

/// Cluster mode: the per-account login limits are kept in Redis, so more nodes give a password
/// guesser nothing. Each node alone would allow every attempt below.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_limits_are_shared_by_the_nodes_of_a_cluster() {
    let mut deployment = Deployment::new(Backend::Cluster);
    deployment.config.rate_limits = RateLimits {
        // Nothing refills during the test (a debug build hashes a password in ~0.5 s).
        logins_per_account: Rate {
            burst: 8,
            per_minute: 1,
        },
        ..generous()
    };
    let a = deployment.start().await;
    let b = deployment.start().await;

    // The attempt rate: a burst of eight, whichever nodes they reach (four each).
    let ann = a.register("ann").await;
    let right = json!({"email": ann.email, "password": ann.password});
    for node in [&a, &b, &a, &b, &a, &b, &a, &b] {
        assert_eq!(login(node, &right).await.status(), 204);
    }
    refused_by(login(&a, &right).await, "logins_per_account").await;

    // The lock-out: five failures, three on one node and two on the other.
    let ben = a.register("ben").await;
    let wrong = json!({"email": ben.email.to_uppercase(), "password": "not the password"});
    let right = json!({"email": ben.email, "password": ben.password});
    for node in [&a, &b, &a, &b, &a] {
        assert_eq!(login(node, &wrong).await.status(), 400);
    }
    let wait = refused_by(login(&b, &right).await, "login_lockout").await;
    assert!(wait <= Duration::from_millis(1_050), "{wait:?}");
    tokio::time::sleep(wait).await;
    assert_eq!(login(&b, &right).await.status(), 204, "recovered");
    // The success forgot the failures on every node: one more failure does not lock.
    assert_eq!(login(&a, &wrong).await.status(), 400);
    assert_eq!(login(&a, &right).await.status(), 204);

    a.stop().await;
    b.stop().await;
    deployment.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logins_per_ip_and_per_account() {
    let (deployment, node) = node_with(RateLimits {
        logins_per_account: tight(2),
        ..generous()
    })
    .await;
    let ann = node.register("ann").await;
    let right = json!({"email": ann.email, "password": ann.password});
    for _ in 0..2 {
        assert_eq!(
            node.post_json("/api/login", right.clone()).await.status(),
            204
        );
    }
    let wait = assert_limited(node.post_json("/api/login", right.clone()).await).await;
    tokio::time::sleep(wait).await;
    assert_eq!(node.post_json("/api/login", right).await.status(), 204);
    node.stop().await;
    deployment.cleanup().await;

    let (deployment, node) = node_with(RateLimits {
        logins_per_ip: tight(1),
        ..generous()
    })
    .await;
    let ben = node.register("ben").await;
    let cid = node.register("cid").await;
    let login = |a: &Account| json!({"email": a.email, "password": a.password});
    assert_eq!(
        node.post_json("/api/login", login(&ben)).await.status(),
        204
    );
    // Another account from the same address is refused too.
    assert_limited(node.post_json("/api/login", login(&cid)).await).await;
    node.stop().await;
    deployment.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_per_user_on_the_socket_and_over_http() {
    let (deployment, node) = node_with(RateLimits {
        messages_per_user: tight(3),
        ..generous()
    })
    .await;
    let ann = node.register("ann").await;
    let bob = node.register("bob").await;
    node.befriend(&ann, &bob).await;
    let dm = node.direct(&ann, &bob).await;
    let (mut socket, _) = node.connect(&ann).await;
    socket.post("general", &["one", "two", "three"]).await;
    socket.expect("serverMessages").await;
    // The burst of three is used up: the next frame is refused whole.
    socket.post("general", &["four"]).await;
    let error = socket.expect("error").await;
    assert_eq!(error["code"], "rate_limited", "{error}");
    let wait = error["retryAfterMs"].as_u64().expect("retryAfterMs");
    assert!(wait <= 5_000, "{wait}");
    // A native send is refused with its clientMsgId, so the client knows which one.
    socket.send(json!({"type": "send", "payload": {"conversationId": dm, "clientMsgId": "c-1", "kind": "text", "content": "hi"}})).await;
    let (error, _) = socket.until("error").await;
    assert_eq!(error["code"], "rate_limited");
    assert_eq!(error["clientMsgId"], "c-1");
    let response = node
        .http
        .post(node.url(&format!("/api/conversations/{dm}/messages")))
        .header("cookie", format!("sid={}", ann.sid))
        .json(&json!({"clientMsgId": "c-2", "kind": "text", "content": "hi"}))
        .send()
        .await
        .unwrap();
    let wait = assert_limited(response).await;
    // Nothing refused was stored; after the wait, sending works again.
    tokio::time::sleep(wait).await;
    socket.post("general", &["five"]).await;
    let (frame, _) = socket.until("serverMessages").await;
    assert_eq!(common::contents(&frame["messages"]), ["five"]);
    // A frame larger than the burst passes once the bucket is full again, taking all of it
    // (with the burst below the frame limit it was refused forever, "retry in 60 s").
    tokio::time::sleep(Duration::from_secs(15)).await;
    socket.post("general", &["6", "7", "8", "9"]).await;
    let (frame, _) = socket.until("serverMessages").await;
    assert_eq!(common::contents(&frame["messages"]), ["6", "7", "8", "9"]);
    // A frame over the size limit is refused for its size, not counted as a rate.
    let too_many: Vec<String> = (0..101).map(|n| n.to_string()).collect();
    let too_many: Vec<&str> = too_many.iter().map(String::as_str).collect();
    socket.post("general", &too_many).await;
    let error = socket.expect("error").await;
    assert_eq!(error["code"], "too_many_messages", "{error}");
    let stored = deployment
        .count("SELECT COUNT(*) FROM messages WHERE sender_id = ?", ann.id)
        .await;
    assert_eq!(stored, 8, "one, two, three, five, 6–9");
    node.stop().await;
    deployment.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn friend_and_join_requests_per_user() {
    let (deployment, node) = node_with(RateLimits {
        friend_requests_per_user: tight(1),
        join_requests_per_user: tight(1),
        ..generous()
    })
    .await;
    let ann = node.register("ann").await;
    let bob = node.register("bob").await;
    let cid = node.register("cid").await;
    let ask = |to: &Account| {
        node.http
            .post(node.url("/api/friends/requests"))
            .header("cookie", format!("sid={}", ann.sid))
            .json(&json!({"userId": to.id, "note": "hi"}))
            .send()
    };
    assert_eq!(ask(&bob).await.unwrap().status(), 204);
    let wait = assert_limited(ask(&cid).await.unwrap()).await;
    tokio::time::sleep(wait).await;
    assert_eq!(ask(&cid).await.unwrap().status(), 204);

    let group = |name: &str| {
        let body = json!({"name": name, "members": []});
        node.ok(&bob, "POST", "/api/groups", Some(body))
    };
    let g1 = group("g1").await["conversationId"].as_i64().unwrap();
    let g2 = group("g2").await["conversationId"].as_i64().unwrap();
    let join = |g: i64| {
        node.http
            .post(node.url(&format!("/api/groups/{g}/join-requests")))
            .header("cookie", format!("sid={}", cid.sid))
            .json(&json!({"note": "let me in"}))
            .send()
    };
    assert_eq!(join(g1).await.unwrap().status(), 204);
    let wait = assert_limited(join(g2).await.unwrap()).await;
    tokio::time::sleep(wait).await;
    assert_eq!(join(g2).await.unwrap().status(), 204);
    node.stop().await;
    deployment.cleanup().await;
}

/// Opens a socket and returns the first thing it says.
async fn first_event(node: &Node, account: &Account) -> (common::Client, Event) {
    let mut client = node.connect_with_cookie(Some(&account.sid)).await;
    let event = client.next_event().await;
    (client, event)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_per_ip_and_open_sockets_per_user() {
    let (deployment, node) = node_with(RateLimits {
        max_sockets_per_user: 2,
        ..generous()
    })
    .await;
    let ann = node.register("ann").await;
    let (first, _) = node.connect(&ann).await;
    let (_second, _) = node.connect(&ann).await;
    let (_third, event) = first_event(&node, &ann).await;
    assert!(
        matches!(event, Event::Closed(Some(1013))),
        "a third socket is refused with 1013: {event:?}"
    );
    first.close().await;
    // The slot is given back when a socket ends.
    let mut recovered = None;
    for _ in 0..50 {
        let (client, event) = first_event(&node, &ann).await;
        if let Event::Frame(frame) = &event {
            assert_eq!(frame["type"], "hello");
            recovered = Some(client);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(recovered.is_some(), "a socket opens again after one closed");
    node.stop().await;
    deployment.cleanup().await;

    let (deployment, node) = node_with(RateLimits {
        connections_per_ip: tight(2),
        ..generous()
    })
    .await;
    let bob = node.register("bob").await;
    let (_a, _) = node.connect(&bob).await;
    let (_b, _) = node.connect(&bob).await;
    let (_c, event) = first_event(&node, &bob).await;
    assert!(matches!(event, Event::Closed(Some(1013))), "{event:?}");
    tokio::time::sleep(Duration::from_millis(5_100)).await;
    let (_d, event) = first_event(&node, &bob).await;
    assert!(matches!(event, Event::Frame(_)), "recovered: {event:?}");
    node.stop().await;
    deployment.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cross_origin_sockets_and_cookie_posts_are_refused() {
    let (deployment, node) = node_with(generous()).await;
    let ann = node.register("ann").await;
    let upgrade = |origin: &'static str| {
        let mut request = node.ws_url.as_str().into_client_request().unwrap();
        let headers = request.headers_mut();
        headers.insert(
            "cookie",
            HeaderValue::from_str(&format!("sid={}", ann.sid)).unwrap(),
        );
        headers.insert("origin", HeaderValue::from_static(origin));
        tokio_tungstenite::connect_async(request)
    };
    match upgrade("http://evil.example").await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 403)
        }
        other => panic!(
            "a cross-origin upgrade must be refused: {:?}",
            other.map(|_| ())
        ),
    }
    let same = node.base.clone();
    let same: &'static str = Box::leak(same.into_boxed_str());
    assert!(
        upgrade(same).await.is_ok(),
        "the server's own origin may connect"
    );

    let post = |origin: &str| {
        node.http
            .post(node.url("/api/groups"))
            .header("cookie", format!("sid={}", ann.sid))
            .header("origin", origin)
            .json(&json!({"name": "g", "members": []}))
            .send()
    };
    let refused = post("http://evil.example").await.unwrap();
    assert_eq!(refused.status(), 403);
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["id"], "bad_origin");
    assert_eq!(post(&node.base).await.unwrap().status(), 200);
    // Logging in from a foreign page is refused as well (login CSRF).
    let login = node
        .http
        .post(node.url("/api/login"))
        .header("origin", "http://evil.example")
        .json(&json!({"email": ann.email, "password": ann.password}))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 403);
    node.stop().await;
    deployment.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_per_user_trigger_and_recover() {
    let (deployment, node) = node_with(RateLimits {
        uploads_per_user: tight(1),
        ..generous()
    })
    .await;
    let ann = node.register("ann").await;
    let upload = || {
        node.http
            .post(node.url("/api/files?name=note.txt"))
            .header("cookie", format!("sid={}", ann.sid))
            .header("content-type", "text/plain")
            .body("hello")
            .send()
    };
    assert_eq!(upload().await.unwrap().status(), 201);
    let wait = assert_limited(upload().await.unwrap()).await;
    tokio::time::sleep(wait).await;
    assert_eq!(upload().await.unwrap().status(), 201, "recovered");
    node.stop().await;
    deployment.cleanup().await;
}

/// A connection that does not finish its request's headers in time is closed: half a request,
/// nothing at all, or an idle kept-alive connection. Without the deadline each held a
/// descriptor for good (slowloris).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_slow_to_send_headers_are_closed() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut deployment = Deployment::new(Backend::Sqlite);
    deployment.config.limits.header_read_timeout_secs = 1;
    let node = deployment.start().await;
    let address = node.base.trim_start_matches("http://").to_owned();
    let closed_within = |mut stream: tokio::net::TcpStream| async move {
        let mut buffer = Vec::new();
        tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut buffer))
            .await
            .expect("the server closes the connection")
            .map(|_| String::from_utf8_lossy(&buffer).into_owned())
    };

    let mut half = tokio::net::TcpStream::connect(&address).await.unwrap();
    half.write_all(b"GET /api/me HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let silent = tokio::net::TcpStream::connect(&address).await.unwrap();
    let mut kept_alive = tokio::net::TcpStream::connect(&address).await.unwrap();
    kept_alive
        .write_all(b"GET /api/me HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    for stream in [half, silent] {
        // Closed, or reset: either way the descriptor is given back.
        if let Ok(answer) = closed_within(stream).await {
            assert!(!answer.contains("200"), "{answer:?}");
        }
    }
    // The complete request was answered (401: no session), then the idle connection closed.
    let answer = closed_within(kept_alive).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
    node.stop().await;
    deployment.cleanup().await;
}

/// Request heads past the limits are refused with a JSON body saying why (not hyper's bare
/// 414/431), and one far past them is still refused, by hyper itself.
#[tokio::test]
async fn oversized_request_heads_get_json_errors() {
    let deployment = Deployment::new(Backend::Sqlite);
    let node = deployment.start().await;
    let refused = |response: reqwest::Response| async move {
        let status = response.status().as_u16();
        let body: Value = response.json().await.expect("a JSON body");
        (status, body["id"].as_str().unwrap_or_default().to_owned())
    };
    let long_query = format!("/api/me?pad={}", "x".repeat(9_000));
    let response = node.http.get(node.url(&long_query)).send().await.unwrap();
    assert_eq!(refused(response).await, (414, "URI_TOO_LONG".to_owned()));

    let mut many = node.http.get(node.url("/api/me"));
    for i in 0..120 {
        many = many.header(format!("x-pad-{i}"), "1");
    }
    assert_eq!(
        refused(many.send().await.unwrap()).await,
        (431, "HEADERS_TOO_LARGE".to_owned())
    );
    let big = node
        .http
        .get(node.url("/api/me"))
        .header("x-pad", "y".repeat(20_000))
        .send()
        .await
        .unwrap();
    assert_eq!(refused(big).await, (431, "HEADERS_TOO_LARGE".to_owned()));

    // Within the limits the request goes through as usual.
    let fine = node
        .http
        .get(node.url(&format!("/api/me?pad={}", "x".repeat(7_000))))
        .header("x-pad", "y".repeat(10_000))
        .send()
        .await
        .unwrap();
    assert_eq!(fine.status(), 401);

    // Past hyper's own buffer: still refused (no body to read), and the server stays up.
    let huge = node
        .http
        .get(node.url("/api/me"))
        .header("x-pad", "z".repeat(100_000))
        .send()
        .await;
    assert!(huge.map_or(true, |r| r.status().as_u16() == 431));
    assert_eq!(node.get_as("/api/me", None).await.status(), 401);
    node.stop().await;
    deployment.cleanup().await;
}

//! Operations, on both backends: the probes, `/metrics` after a scripted session, and the
//! admin API (roles, bans, session revocation, rooms, stats).
//!
//! Metrics are process-wide, so the tests of this binary run one at a time (`SERIAL`) and the
//! metrics tests compare what a scrape says before and after their script.

mod common;

use common::{Account, Backend, Deployment, Event, Node, make_admin};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::time::Duration;
use tokio::sync::{Mutex, MutexGuard};

static SERIAL: Mutex<()> = Mutex::const_new(());

async fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().await
}

/// A scrape: every sample by its series (`name{label="value",…}` exactly as rendered).
struct Scrape(HashMap<String, f64>);

impl Scrape {
    async fn take(node: &Node) -> Scrape {
        let response = node.get_as("/metrics", None).await;
        assert_eq!(response.status(), 200);
        assert!(
            response.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/plain"),
        );
        let text = response.text().await.unwrap();
        let samples = text
            .lines()
            .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
            .filter_map(|line| {
                let (series, value) = line.rsplit_once(' ')?;
                Some((series.to_owned(), value.parse().ok()?))
            })
            .collect();
        Scrape(samples)
    }

    /// The sum of the samples of `name` whose labels include all of `labels`; `None` if the
    /// series is not exposed at all.
    fn get(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let mut found = None;
        for (series, value) in &self.0 {
            let (series_name, series_labels) = match series.split_once('{') {
                Some((n, l)) => (n, l),
                None => (series.as_str(), ""),
            };
            if series_name != name {
                continue;
            }
            if labels
                .iter()
                .all(|(k, v)| series_labels.contains(&format!("{k}=\"{v}\"")))
            {
                *found.get_or_insert(0.0) += value;
            }
        }
        found
    }

    fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.get(name, labels)
            .unwrap_or_else(|| panic!("{name}{labels:?} is not exposed"))
    }
}

/// How much a series grew between two scrapes (absent before counts as 0).
fn delta(before: &Scrape, after: &Scrape, name: &str, labels: &[(&str, &str)]) -> f64 {
    after.value(name, labels) - before.get(name, labels).unwrap_or(0.0)
}

on_both_backends!(probes_answer, |backend: Backend| async move {
    let _serial = serial().await;
    let deployment = Deployment::new(backend);
    let node = deployment.start().await;

    let response = node.get_as("/healthz", None).await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.json::<Value>().await.unwrap(),
        json!({"status": "ok"})
    );

    let response = node.get_as("/readyz", None).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], "ok", "{body}");
    assert_eq!(body["checks"]["database"], "ok", "{body}");
    assert_eq!(body["checks"]["sessions"], "ok", "{body}");
    match backend {
        // The embedded bus is in-process: nothing to check.
        Backend::Sqlite => assert!(body["checks"].get("bus").is_none(), "{body}"),
        Backend::Cluster => assert_eq!(body["checks"]["bus"], "ok", "{body}"),
    }
    node.stop().await;
    deployment.cleanup().await;
});

on_both_backends!(
    metrics_count_a_scripted_session,
    |backend: Backend| async move {
        let _serial = serial().await;
        let deployment = Deployment::new(backend);
        let node = deployment.start().await;
        let before = Scrape::take(&node).await;

        // Two accounts (sign-up logs each in), friends, then one of them logs in again.
        let ann = node.register("ann").await;
        let bob = node.register("bob").await;
        node.befriend(&ann, &bob).await;
        let login = node
            .post_json(
                "/api/login",
                json!({"email": ann.email, "password": ann.password}),
            )
            .await;
        assert_eq!(login.status(), 204);

        // One socket: two room posts (three messages), one direct message.
        let (mut socket, _) = node.connect(&ann).await;
        socket.post("general", &["one", "two"]).await;
        socket.expect("serverMessages").await;
        socket.post("random", &["three"]).await;
        socket.expect("serverMessages").await;
        let direct = node
            .ok(&ann, "POST", "/api/direct", Some(json!({"userId": bob.id})))
            .await["conversationId"]
            .as_i64()
            .unwrap();
        socket.send_im(direct, "dm-1", "hello bob").await;
        // The limiter's helper (called by the rate limiter) shows up as its own series.
        hearth_server::telemetry::rate_limited("ops_test");

        // The direct message's push to the sender's own socket may travel the bus (cluster)
        // and land after the ack: scrape until it is counted.
        let mut during = Scrape::take(&node).await;
        for _ in 0..50 {
            if delta(
                &before,
                &during,
                "hearth_frames_out_total",
                &[("stream", "other")],
            ) >= 3.0
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
            during = Scrape::take(&node).await;
        }
        let d = |name: &str, labels: &[(&str, &str)]| delta(&before, &during, name, labels);
        assert_eq!(
            d("hearth_connections_open", &[("platform", "web")]),
            1.0,
            "one socket open"
        );
        assert_eq!(
            d("hearth_frames_in_total", &[("type", "clientMessages")]),
            2.0
        );
        assert_eq!(d("hearth_frames_in_total", &[("type", "send")]), 1.0);
        assert_eq!(d("hearth_messages_stored_total", &[("kind", "room")]), 3.0);
        assert_eq!(
            d("hearth_messages_stored_total", &[("kind", "direct")]),
            1.0
        );
        assert_eq!(
            d("hearth_frames_out_total", &[("stream", "rooms")]),
            2.0,
            "each room post broadcast to the one socket"
        );
        // hello, the ack and at least the direct message's push.
        assert!(d("hearth_frames_out_total", &[("stream", "other")]) >= 3.0);
        assert!(d("hearth_fanout_seconds_count", &[]) >= 1.0);
        assert!(during.value("hearth_fanout_seconds_sum", &[]) >= 0.0);
        assert!(d("hearth_fanout_seconds_bucket", &[("le", "+Inf")]) >= 1.0);
        // Store timings: two sign-ups, three sessions (two sign-ups and a login).
        assert_eq!(
            d(
                "hearth_store_op_seconds_count",
                &[("store", "users"), ("op", "insert_user")]
            ),
            2.0
        );
        assert_eq!(
            d(
                "hearth_store_op_seconds_count",
                &[("store", "sessions"), ("op", "insert_session")]
            ),
            3.0
        );
        assert!(
            d(
                "hearth_store_op_seconds_count",
                &[("store", "messages"), ("op", "append_messages")]
            ) >= 2.0
        );
        assert_eq!(
            d("hearth_rate_limited_total", &[("limit", "ops_test")]),
            1.0
        );
        // Sampled at scrape time; nothing is waiting now.
        assert_eq!(during.value("hearth_fanout_queue_batches", &[]), 0.0);
        assert_eq!(
            during.value("hearth_socket_backlog_bytes", &[("stat", "max")]),
            0.0
        );
        assert_eq!(
            during.value("hearth_writer_queue_posts", &[("stat", "total")]),
            0.0
        );
        assert_eq!(
            d(
                "hearth_slow_sockets_dropped_total",
                &[("reason", "too_slow")]
            ),
            0.0
        );
        assert!(
            during
                .get(
                    "hearth_slow_sockets_dropped_total",
                    &[("reason", "stalled")]
                )
                .is_some()
        );

        socket.close().await;
        let mut closed = false;
        for _ in 0..50 {
            let after = Scrape::take(&node).await;
            if delta(
                &before,
                &after,
                "hearth_connections_open",
                &[("platform", "web")],
            ) == 0.0
            {
                closed = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(closed, "the gauge goes back down when the socket closes");
        node.stop().await;
        deployment.cleanup().await;
    }
);

on_both_backends!(
    a_dropped_slow_socket_is_counted,
    |backend: Backend| async move {
        let _serial = serial().await;
        let mut deployment = Deployment::new(backend);
        deployment.config.limits.socket_backlog_bytes = 256 * 1024;
        let node = deployment.start().await;
        let before = Scrape::take(&node).await;
        let (mut fast, _) = node.connect(&node.register("fast").await).await;
        let (mut stalled, _) = node.connect(&node.register("stalled").await).await;
        // As in the rooms tests: ~100 KB per broadcast outgrows the kernel's buffers and the
        // 256 KiB backlog of the socket that never reads.
        let content = "x".repeat(4_000);
        let batch: Vec<&str> = vec![content.as_str(); 25];
        for _ in 0..250 {
            fast.post("general", &batch).await;
            fast.expect("serverMessages").await;
        }
        let code = loop {
            if let Event::Closed(code) = stalled.next_event().await {
                break code;
            }
        };
        assert_eq!(code, Some(4001));
        let after = Scrape::take(&node).await;
        assert_eq!(
            delta(
                &before,
                &after,
                "hearth_slow_sockets_dropped_total",
                &[("reason", "too_slow")]
            ),
            1.0
        );
        fast.close().await;
        node.stop().await;
        deployment.cleanup().await;
    }
);

async fn login_status(node: &Node, account: &Account) -> (u16, Value) {
    let response = node
        .post_json(
            "/api/login",
            json!({"email": account.email, "password": account.password}),
        )
        .await;
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

on_both_backends!(admin_api, |backend: Backend| async move {
    let _serial = serial().await;
    let deployment = Deployment::new(backend);
    let node = deployment.start().await;
    let admin = node.register("admin").await;
    let victim = node.register("victim").await;
    let other = node.register("other").await;

    // Not logged in: 401. Logged in, not an admin: 403.
    let (status, body) = node.call(None, "GET", "/api/admin/users", None).await;
    assert_eq!((status, body["id"].as_str()), (401, Some("UNAUTHORIZED")));
    let (status, body) = node
        .call(Some(&admin), "GET", "/api/admin/users", None)
        .await;
    assert_eq!((status, body["id"].as_str()), (403, Some("FORBIDDEN")));
    let (status, _) = node
        .call(
            Some(&victim),
            "POST",
            &format!("/api/admin/users/{}/ban", admin.id),
            None,
        )
        .await;
    assert_eq!(status, 403);

    make_admin(&deployment, &admin).await;

    // List, filtered by prefix.
    let prefix = &victim.username[..victim.username.len() - 2];
    let body = node
        .ok(
            &admin,
            "GET",
            &format!("/api/admin/users?prefix={prefix}"),
            None,
        )
        .await;
    let listed = body["users"].as_array().unwrap();
    let entry = listed
        .iter()
        .find(|u| u["id"] == victim.id)
        .expect("the victim is listed");
    assert_eq!(entry["username"], victim.username.as_str());
    assert_eq!(entry["role"], "user");
    assert_eq!(entry["banned"], false);
    assert!(listed.iter().all(|u| {
        u["username"]
            .as_str()
            .unwrap()
            .to_lowercase()
            .starts_with(&prefix.to_lowercase())
    }));

    // Ban: the open socket closes with 1008, login fails, sessions are gone.
    let (mut socket, _) = node.connect(&victim).await;
    let body = node
        .ok(
            &admin,
            "POST",
            &format!("/api/admin/users/{}/ban", victim.id),
            None,
        )
        .await;
    assert_eq!(body["banned"], true);
    assert!(body["bannedAt"].as_i64().is_some());
    let closed = loop {
        match socket.next_event().await {
            Event::Closed(code) => break code,
            Event::Frame(_) => {}
        }
    };
    assert_eq!(closed, Some(1008));
    let (status, body) = login_status(&node, &victim).await;
    assert_eq!((status, body["id"].as_str()), (403, Some("ACCOUNT_BANNED")));
    let (status, _) = node.call(Some(&victim), "GET", "/api/me", None).await;
    assert_eq!(status, 401);
    if backend == Backend::Sqlite {
        let sessions = deployment
            .count("SELECT COUNT(*) FROM sessions WHERE user_id = ?", victim.id)
            .await;
        assert_eq!(sessions, 0);
    }

    // Unban: logging in works again, but the old session stays revoked.
    let body = node
        .ok(
            &admin,
            "POST",
            &format!("/api/admin/users/{}/unban", victim.id),
            None,
        )
        .await;
    assert_eq!(body["banned"], false);
    let (status, _) = node.call(Some(&victim), "GET", "/api/me", None).await;
    assert_eq!(status, 401, "a ban revokes sessions for good");
    assert_eq!(login_status(&node, &victim).await.0, 204);

    // Revoking sessions.
    let body = node
        .ok(
            &admin,
            "POST",
            &format!("/api/admin/users/{}/revoke-sessions", other.id),
            None,
        )
        .await;
    assert_eq!(body["revoked"], 1);
    let (status, _) = node.call(Some(&other), "GET", "/api/me", None).await;
    assert_eq!(status, 401);
    let (status, body) = node
        .call(Some(&admin), "POST", "/api/admin/users/999999999/ban", None)
        .await;
    assert_eq!((status, body["id"].as_str()), (404, Some("NOT_FOUND")));

    // Rooms: create, list, refuse duplicates and configured rooms, delete.
    let (status, body) = node
        .call(
            Some(&admin),
            "POST",
            "/api/admin/rooms",
            Some(json!({"id": "ops-empty", "name": "Empty"})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["id"], "ops-empty");
    assert_eq!(body["messages"], 0);
    let (status, body) = node
        .call(
            Some(&admin),
            "POST",
            "/api/admin/rooms",
            Some(json!({"id": "ops-empty", "name": "Again"})),
        )
        .await;
    assert_eq!((status, body["id"].as_str()), (409, Some("ROOM_EXISTS")));
    let (status, body) = node
        .call(
            Some(&admin),
            "POST",
            "/api/admin/rooms",
            Some(json!({"id": "no spaces", "name": "Bad"})),
        )
        .await;
    assert_eq!((status, body["id"].as_str()), (400, Some("BAD_REQUEST")));
    let rooms = node.ok(&admin, "GET", "/api/admin/rooms", None).await;
    let ids: Vec<&str> = rooms["rooms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["general", "random", "help", "ops-empty"]);
    let (status, body) = node
        .call(Some(&admin), "DELETE", "/api/admin/rooms/general", None)
        .await;
    assert_eq!(
        (status, body["id"].as_str()),
        (409, Some("ROOM_CONFIGURED"))
    );
    let body = node
        .ok(&admin, "DELETE", "/api/admin/rooms/ops-empty", None)
        .await;
    assert_eq!(body["deletedMessages"], 0);
    let (status, _) = node
        .call(Some(&admin), "DELETE", "/api/admin/rooms/ops-empty", None)
        .await;
    assert_eq!(status, 404);

    // A room with messages: nodes serve a new room after a restart; deleting it needs force.
    node.ok(
        &admin,
        "POST",
        "/api/admin/rooms",
        Some(json!({"id": "ops-full", "name": "Full"})),
    )
    .await;
    node.stop().await;
    let node = deployment.start().await;
    let (mut socket, hello) = node.connect(&admin).await;
    common::room(&hello, "ops-full");
    socket.post("ops-full", &["a", "b"]).await;
    socket.expect("serverMessages").await;
    socket.close().await;
    let (status, body) = node
        .call(Some(&admin), "DELETE", "/api/admin/rooms/ops-full", None)
        .await;
    assert_eq!(
        (status, body["id"].as_str()),
        (409, Some("ROOM_HAS_MESSAGES"))
    );
    let body = node
        .ok(
            &admin,
            "DELETE",
            "/api/admin/rooms/ops-full?force=true",
            None,
        )
        .await;
    assert_eq!(body["deletedMessages"], 2);

    // Stats and roles.
    let stats = node.ok(&admin, "GET", "/api/admin/stats", None).await;
    assert_eq!(stats["users"], 3, "{stats}");
    assert_eq!(stats["admins"], 1, "{stats}");
    assert_eq!(stats["bannedUsers"], 0, "{stats}");
    assert_eq!(stats["rooms"], 3, "{stats}");
    assert_eq!(stats["messages"], 0, "{stats}");
    // At least the admin's session and the victim's login after the unban.
    assert!(stats["sessions"].as_u64().unwrap() >= 2, "{stats}");
    let body = node
        .ok(
            &admin,
            "POST",
            &format!("/api/admin/users/{}/grant-admin", other.id),
            None,
        )
        .await;
    assert_eq!(body["role"], "admin");
    // No admin can lock themself out over the API; another admin can.
    for action in ["ban", "revoke-admin"] {
        let (status, body) = node
            .call(
                Some(&admin),
                "POST",
                &format!("/api/admin/users/{}/{action}", admin.id),
                None,
            )
            .await;
        assert_eq!(
            (status, body["id"].as_str()),
            (400, Some("BAD_REQUEST")),
            "{action}"
        );
    }
    let me = node
        .ok(
            &admin,
            "GET",
            &format!("/api/admin/users/{}", admin.id),
            None,
        )
        .await;
    assert_eq!(
        (me["role"].as_str(), me["banned"].as_bool()),
        (Some("admin"), Some(false)),
        "{me}"
    );
    // (Its sessions were revoked above: a fresh one.)
    let session = node
        .post_json(
            "/api/sessions",
            json!({"email": other.email, "password": other.password}),
        )
        .await
        .json::<Value>()
        .await
        .unwrap();
    let other = Account {
        sid: session["token"].as_str().unwrap().to_owned(),
        ..other.clone()
    };
    let body = node
        .ok(
            &other,
            "POST",
            &format!("/api/admin/users/{}/revoke-admin", admin.id),
            None,
        )
        .await;
    assert_eq!(body["role"], "user");
    node.stop().await;
    deployment.cleanup().await;
});

//! Public rooms over real WebSockets: fan-out, history paging, connect races, restarts.

mod common;

use common::{Backend, Client, Deployment, Event, contents, id_parts, room};
use futures_util::StreamExt;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

/// Reads `serverMessages` frames until `count` messages have arrived; returns them per room,
/// in arrival order.
async fn collect_messages(client: &mut Client, count: usize) -> BTreeMap<String, Vec<Value>> {
    let mut by_room: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    let mut seen = 0;
    while seen < count {
        let payload = client.expect("serverMessages").await;
        let messages = payload["messages"].as_array().unwrap().clone();
        seen += messages.len();
        by_room
            .entry(payload["roomId"].as_str().unwrap().to_owned())
            .or_default()
            .extend(messages);
    }
    assert_eq!(seen, count, "no more messages than were sent");
    by_room
}

on_both_backends!(
    three_users_in_several_rooms,
    |backend: Backend| async move {
        let deployment = Deployment::new(backend);
        let node = deployment.start().await;
        let users = [
            node.register("ann").await,
            node.register("ben").await,
            node.register("cid").await,
        ];
        let mut clients = Vec::new();
        for user in &users {
            let (client, hello) = node.connect(user).await;
            assert_eq!(
                hello["me"],
                json!({"id": user.id, "username": user.username})
            );
            let ids: Vec<&str> = hello["rooms"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["id"].as_str().unwrap())
                .collect();
            assert_eq!(ids, ["general", "random", "help"]);
            clients.push(client);
        }
        // Each user posts into two rooms, some frames carrying several messages.
        let plan: [(&str, Vec<&str>); 3] = [
            ("general", vec!["ann-1", "ann-2"]),
            ("random", vec!["ben-1"]),
            ("help", vec!["cid-1", "cid-2", "cid-3"]),
        ];
        for round in 0..5 {
            for (i, client) in clients.iter_mut().enumerate() {
                let (room_id, batch) = &plan[(i + round) % 3];
                let tagged: Vec<String> =
                    batch.iter().map(|c| format!("{c}/r{round}/u{i}")).collect();
                let refs: Vec<&str> = tagged.iter().map(String::as_str).collect();
                client.post(room_id, &refs).await;
            }
        }
        let total: usize = (0..5)
            .map(|round| (0..3).map(|i| plan[(i + round) % 3].1.len()).sum::<usize>())
            .sum();
        let mut views = Vec::new();
        for client in clients.iter_mut() {
            let view = collect_messages(client, total).await;
            client.expect_silence(Duration::from_millis(200)).await;
            views.push(view);
        }
        // Every socket saw the same messages in the same order, per room.
        assert_eq!(views[0], views[1]);
        assert_eq!(views[1], views[2]);
        for (room_id, messages) in &views[0] {
            let mut last = (0, 0);
            for m in messages {
                let id = id_parts(&m["id"]);
                assert!(
                    id > last,
                    "ids increase within {room_id}: {last:?} then {id:?}"
                );
                last = id;
                assert_eq!(m["timestamp"].as_i64().unwrap(), id.0);
                // Each message carries its real sender.
                let content = m["content"].as_str().unwrap();
                let sender: usize = content.rsplit("/u").next().unwrap().parse().unwrap();
                assert_eq!(
                    m["user"],
                    json!({"id": users[sender].id, "username": users[sender].username})
                );
            }
            // Each sender's messages keep their send order.
            for sender in 0..3 {
                let mine: Vec<&str> = messages
                    .iter()
                    .map(|m| m["content"].as_str().unwrap())
                    .filter(|c| c.ends_with(&format!("/u{sender}")))
                    .collect();
                let mut sorted = mine.clone();
                sorted.sort_by_key(|c| {
                    c.split("/r")
                        .nth(1)
                        .unwrap()
                        .split('/')
                        .next()
                        .unwrap()
                        .parse::<u32>()
                        .unwrap()
                });
                assert_eq!(mine, sorted, "send order of user {sender} in {room_id}");
            }
        }
        node.stop().await;
        deployment.cleanup().await;
    }
);

/// Posts `n` messages into `room_id` (10 per frame) and waits for their echoes.
async fn fill(client: &mut Client, room_id: &str, n: usize, prefix: &str) {
    let all: Vec<String> = (0..n).map(|i| format!("{prefix}{i}")).collect();
    for chunk in all.chunks(10) {
        let refs: Vec<&str> = chunk.iter().map(String::as_str).collect();
        client.post(room_id, &refs).await;
    }
    let mut echoed = 0;
    while echoed < n {
        let payload = client.expect("serverMessages").await;
        if payload["roomId"] == room_id {
            echoed += payload["messages"].as_array().unwrap().len();
        }
    }
}

on_both_backends!(
    history_pages_back_to_the_first_message,
    |backend: Backend| async move {
        let deployment = Deployment::new(backend);
        let node = deployment.start().await;
        let writer = node.register("writer").await;
        let (mut w, _) = node.connect(&writer).await;
        fill(&mut w, "general", 257, "g").await;
        fill(&mut w, "random", 100, "r").await;
        fill(&mut w, "help", 101, "h").await;

        let reader = node.register("reader").await;
        let (mut r, hello) = node.connect(&reader).await;
        // hasMoreMessages is exact at the page boundary (the reference gets 100 wrong).
        assert_eq!(room(&hello, "random")["hasMoreMessages"], false);
        assert_eq!(
            room(&hello, "random")["messages"].as_array().unwrap().len(),
            100
        );
        assert_eq!(room(&hello, "help")["hasMoreMessages"], true);

        let general = room(&hello, "general");
        assert_eq!(general["hasMoreMessages"], true);
        let mut all = general["messages"].as_array().unwrap().clone();
        assert_eq!(all.len(), 100);
        let mut pages = 0;
        let mut has_more = true;
        while has_more {
            let oldest = all.last().unwrap()["id"].clone();
            r.send(json!({"type": "requestRoomHistory", "payload": {"roomId": "general", "firstMessageId": oldest}})).await;
            let page = r.expect("roomHistory").await;
            assert_eq!(page["roomId"], "general");
            let messages = page["messages"].as_array().unwrap();
            assert!(
                !messages.is_empty(),
                "a page is only requested while more exist"
            );
            assert!(
                id_parts(&messages[0]["id"]) < id_parts(&oldest),
                "strictly older"
            );
            has_more = page["hasMoreMessages"].as_bool().unwrap();
            all.extend(messages.iter().cloned());
            pages += 1;
            assert!(pages < 10, "paging terminates");
        }
        assert_eq!(pages, 2, "257 messages: hello + 100 + 57");
        // Newest first, every message exactly once, nothing missing.
        let expected: Vec<String> = (0..257).rev().map(|i| format!("g{i}")).collect();
        assert_eq!(contents(&Value::Array(all.clone())), expected);
        let seqs: Vec<i64> = all.iter().map(|m| id_parts(&m["id"]).1).collect();
        assert_eq!(seqs, (1..=257).rev().collect::<Vec<_>>());

        // Before the first message there is nothing, and nothing more.
        let first = all.last().unwrap()["id"].clone();
        r.send(json!({"type": "requestRoomHistory", "payload": {"roomId": "general", "firstMessageId": first}})).await;
        let page = r.expect("roomHistory").await;
        assert_eq!(page["messages"], json!([]));
        assert_eq!(page["hasMoreMessages"], false);

        // Paging is by the id's sequence part; a wrong time part changes nothing.
        for forged in ["1-101", "9999999999999-101"] {
            r.send(json!({"type": "requestRoomHistory", "payload": {"roomId": "general", "firstMessageId": forged}})).await;
            let page = r.expect("roomHistory").await;
            let seqs: Vec<i64> = page["messages"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| id_parts(&m["id"]).1)
                .collect();
            assert_eq!(
                seqs,
                (1..=100).rev().collect::<Vec<_>>(),
                "forged id {forged}"
            );
            assert_eq!(page["hasMoreMessages"], false);
        }

        // help has 101: hello has 100, the last page has exactly one and no more.
        let help_oldest = room(&hello, "help")["messages"]
            .as_array()
            .unwrap()
            .last()
            .unwrap()["id"]
            .clone();
        r.send(json!({"type": "requestRoomHistory", "payload": {"roomId": "help", "firstMessageId": help_oldest}})).await;
        let page = r.expect("roomHistory").await;
        assert_eq!(contents(&page["messages"]), ["h0"]);
        assert_eq!(page["hasMoreMessages"], false);

        node.stop().await;
        deployment.cleanup().await;
    }
);

on_both_backends!(
    connecting_while_messages_flow_has_no_gap_or_duplicate,
    |backend: Backend| async move {
        let deployment = Deployment::new(backend);
        let node = deployment.start().await;
        let sender = node.register("sender").await;
        let (mut s, _) = node.connect(&sender).await;
        const TOTAL: usize = 300;
        // The sender posts one message per frame, each after the previous echo, while readers
        // connect at staggered moments.
        let send = async {
            for i in 0..TOTAL {
                s.post("general", &[&format!("m{i}")]).await;
                let payload = s.expect("serverMessages").await;
                assert_eq!(contents(&payload["messages"]), [format!("m{i}")]);
            }
        };
        let readers = async {
            let mut tasks = Vec::new();
            for k in 0..8u64 {
                tokio::time::sleep(Duration::from_millis(15 * k)).await;
                let user = node.register("reader").await;
                let (client, hello) = node.connect(&user).await;
                tasks.push((client, hello));
            }
            tasks
        };
        let ((), readers) = tokio::join!(send, readers);
        for (mut client, hello) in readers {
            let snapshot = room(&hello, "general")["messages"]
                .as_array()
                .unwrap()
                .clone();
            let mut seqs: Vec<i64> = snapshot
                .iter()
                .rev()
                .map(|m| id_parts(&m["id"]).1)
                .collect();
            while seqs.last().copied() != Some(TOTAL as i64) {
                let payload = client.expect("serverMessages").await;
                assert_eq!(payload["roomId"], "general");
                seqs.extend(
                    payload["messages"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|m| id_parts(&m["id"]).1),
                );
            }
            let start = seqs[0];
            if snapshot.is_empty() {
                assert_eq!(
                    start, 1,
                    "a reader who connected before any message gets the first"
                );
            }
            let expected: Vec<i64> = (start..=TOTAL as i64).collect();
            assert_eq!(
                seqs, expected,
                "hello + live must be contiguous without repeats"
            );
            client.expect_silence(Duration::from_millis(100)).await;
        }
        node.stop().await;
        deployment.cleanup().await;
    }
);

on_both_backends!(
    restart_keeps_every_broadcast_message,
    |backend: Backend| async move {
        let deployment = Deployment::new(backend);
        let node = deployment.start().await;
        let alice = node.register("alice").await;
        let (mut a, _) = node.connect(&alice).await;
        let mut broadcast = Vec::new();
        for i in 0..40 {
            a.post("random", &[&format!("before-{i}")]).await;
        }
        for _ in 0..40 {
            let payload = a.expect("serverMessages").await;
            broadcast.extend(payload["messages"].as_array().unwrap().iter().cloned());
        }
        // Stop mid-conversation: the socket is told to reconnect.
        let stopping = tokio::spawn(node.stop());
        assert_eq!(a.expect_close().await, Some(1012));
        stopping.await.unwrap();

        let node = deployment.start().await;
        let (mut a, hello) = node.connect(&alice).await;
        let history: Vec<Value> = room(&hello, "random")["messages"]
            .as_array()
            .unwrap()
            .iter()
            .rev()
            .cloned()
            .collect();
        assert_eq!(
            history, broadcast,
            "every broadcast message survives the restart, ids and all"
        );
        // Sequence numbers carry on after the restart.
        a.post("random", &["after"]).await;
        let payload = a.expect("serverMessages").await;
        let after = id_parts(&payload["messages"][0]["id"]);
        assert_eq!(after.1, 41);
        assert!(after > id_parts(&broadcast.last().unwrap()["id"]));
        node.stop().await;
        deployment.cleanup().await;
    }
);

on_both_backends!(
    users_see_each_others_names_and_rooms_are_independent,
    |backend: Backend| async move {
        let deployment = Deployment::new(backend);
        let node = deployment.start().await;
        let a = node.register("dora").await;
        let b = node.register("eli").await;
        let (mut ca, _) = node.connect(&a).await;
        let (mut cb, _) = node.connect(&b).await;
        ca.post("help", &["question"]).await;
        cb.post("general", &["hello all"]).await;
        let mut per_client: Vec<HashMap<String, Vec<String>>> = Vec::new();
        for client in [&mut ca, &mut cb] {
            let view = collect_messages(client, 2).await;
            per_client.push(
                view.iter()
                    .map(|(k, v)| (k.clone(), contents(&Value::Array(v.clone()))))
                    .collect(),
            );
        }
        for view in &per_client {
            assert_eq!(view["help"], ["question"]);
            assert_eq!(view["general"], ["hello all"]);
            assert!(!view.contains_key("random"));
        }
        node.stop().await;
        deployment.cleanup().await;
    }
);

on_both_backends!(
    one_broadcast_frame_per_posted_frame,
    |backend: Backend| async move {
        let deployment = Deployment::new(backend);
        let node = deployment.start().await;
        let mut clients = Vec::new();
        for name in ["fay", "gus", "hal"] {
            let user = node.register(name).await;
            clients.push(node.connect(&user).await.0);
        }
        // Pipelined posts from several sockets are stored in shared transactions, but each frame
        // is echoed as its own serverMessages frame: clients may wait for their own echo.
        for round in 0..30 {
            for (i, client) in clients.iter_mut().enumerate() {
                let batch: Vec<String> = (0..3).map(|k| format!("c{i}-r{round}-m{k}")).collect();
                let refs: Vec<&str> = batch.iter().map(String::as_str).collect();
                client.post("general", &refs).await;
            }
        }
        for client in clients.iter_mut() {
            for _ in 0..90 {
                let frame = client.expect("serverMessages").await;
                let texts = contents(&frame["messages"]);
                assert_eq!(texts.len(), 3, "one frame per posted frame: {texts:?}");
                let prefix = texts[0].rsplit_once("-m").unwrap().0.to_owned();
                assert!(texts.iter().all(|t| t.starts_with(&prefix)), "{texts:?}");
            }
            client.expect_silence(Duration::from_millis(200)).await;
        }
        node.stop().await;
        deployment.cleanup().await;
    }
);

on_both_backends!(
    a_client_that_stops_reading_is_closed_with_4001,
    |backend: Backend| async move {
        let mut deployment = Deployment::new(backend);
        deployment.config.limits.socket_backlog_bytes = 256 * 1024;
        let node = deployment.start().await;
        let (mut fast, _) = node.connect(&node.register("fast").await).await;
        let (mut stalled, _) = node.connect(&node.register("stalled").await).await;
        // ~100 KB per broadcast frame; 250 of them outgrow the kernel's socket buffers plus
        // the server's 256 KiB backlog for the socket that never reads.
        let content = "x".repeat(4_000);
        let batch: Vec<&str> = vec![content.as_str(); 25];
        // Four posts in flight: quick, so the stalled client starts reading soon after the
        // server gave up on it (a closing socket waits a bounded time for its close frame to be
        // taken), while the fast client keeps up with its own echoes.
        for sent in 0..250 {
            fast.post("general", &batch).await;
            if sent >= 3 {
                let frame = fast.expect("serverMessages").await;
                assert_eq!(frame["messages"].as_array().unwrap().len(), 25);
            }
        }
        for _ in 0..3 {
            fast.expect("serverMessages").await;
        }
        // The stalled client finally reads: stale frames, then the 4001 close.
        let mut frames = 0;
        let code = loop {
            match stalled.next_event().await {
                Event::Frame(_) => frames += 1,
                Event::Closed(code) => break code,
            }
        };
        assert_eq!(code, Some(4001), "closed as too slow after {frames} frames");
        assert!(
            frames < 250,
            "the server dropped what the client could not take"
        );
        // The fast client is unaffected.
        fast.post("general", &["still here"]).await;
        let frame = fast.expect("serverMessages").await;
        assert_eq!(contents(&frame["messages"]), ["still here"]);
        node.stop().await;
        deployment.cleanup().await;
    }
);

on_both_backends!(
    a_peer_that_answers_no_pings_is_closed_with_1001,
    |backend: Backend| async move {
        let mut deployment = Deployment::new(backend);
        deployment.config.limits.ping_interval_secs = 1;
        deployment.config.limits.idle_timeout_secs = 2;
        let node = deployment.start().await;
        let (mut silent, _) = node.connect(&node.register("silent").await).await;
        let (mut lively, _) = node.connect(&node.register("lively").await).await;
        // The silent client reads nothing (so answers no ping) for a while; the lively one
        // keeps reading, and its WebSocket layer answers the pings.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(4);
        while tokio::time::Instant::now() < deadline {
            let _ = tokio::time::timeout(Duration::from_millis(200), lively.stream.next()).await;
        }
        let mut code = None;
        for _ in 0..20 {
            match silent.next_event().await {
                Event::Frame(_) => {}
                Event::Closed(c) => {
                    code = c;
                    break;
                }
            }
        }
        assert_eq!(code, Some(1001), "the silent peer is closed as idle");
        lively.post("general", &["still here"]).await;
        let (frame, _) = lively.until("serverMessages").await;
        assert_eq!(contents(&frame["messages"]), ["still here"]);
        node.stop().await;
        deployment.cleanup().await;
    }
);

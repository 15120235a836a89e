//! Instant messaging end to end, on both backends: friends, direct and group conversations,
//! acknowledged sends with retry dedupe, offline sync, multi-device, receipts, typing,
//! presence, recall/edit/delete-for-me, and a table of forbidden actions.

mod common;

use common::{Account, Backend, Client, Deployment, Node};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::time::Duration;

/// Inbox event kinds in `body` (a sync state or a list of events).
fn kinds(events: &Value) -> Vec<String> {
    events
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap().to_owned())
        .collect()
}

async fn inbox(node: &Node, account: &Account) -> Vec<String> {
    let sync = node.ok(account, "GET", "/api/sync", None).await;
    kinds(&sync["inbox"])
}

async fn group(node: &Node, owner: &Account, name: &str, members: &[&Account]) -> i64 {
    let ids: Vec<i64> = members.iter().map(|m| m.id).collect();
    let body = node
        .ok(
            owner,
            "POST",
            "/api/groups",
            Some(json!({"name": name, "members": ids})),
        )
        .await;
    body["conversationId"].as_i64().unwrap()
}

async fn make_admin(node: &Node, owner: &Account, group: i64, admin: &Account) {
    node.ok(
        owner,
        "POST",
        &format!("/api/groups/{group}/role"),
        Some(json!({"userId": admin.id, "role": "admin"})),
    )
    .await;
}

async fn direct(node: &Node, a: &Account, b: &Account) -> i64 {
    let body = node
        .ok(a, "POST", "/api/direct", Some(json!({"userId": b.id})))
        .await;
    body["conversationId"].as_i64().unwrap()
}

/// Every message of a conversation as `account` pulls it, in pages of 200.
async fn pull_all(node: &Node, account: &Account, conversation: i64) -> Vec<Value> {
    let mut all: Vec<Value> = Vec::new();
    let mut after = 0;
    loop {
        let page = node
            .ok(
                account,
                "GET",
                &format!("/api/conversations/{conversation}/messages?after={after}&limit=200"),
                None,
            )
            .await;
        let messages = page["messages"].as_array().unwrap().clone();
        if messages.is_empty() {
            assert_eq!(
                after,
                page["lastSeq"].as_i64().unwrap(),
                "pulled up to lastSeq"
            );
            return all;
        }
        after = messages.last().unwrap()["seq"].as_i64().unwrap();
        all.extend(messages);
    }
}

/// Rows stored in `conversation`, read from the database itself.
async fn stored_count(deployment: &Deployment, conversation: i64) -> i64 {
    deployment
        .count(
            "SELECT COUNT(*) FROM messages WHERE conversation_id = ?",
            conversation,
        )
        .await
}

fn texts(messages: &[Value]) -> Vec<String> {
    messages
        .iter()
        .filter(|m| m["kind"] == "text")
        .map(|m| m["content"].as_str().unwrap().to_owned())
        .collect()
}

on_both_backends!(friend_lifecycle, |backend: Backend| async move {
    let deployment = Deployment::new(backend);
    let node = deployment.start().await;
    let ann = node.register("ann").await;
    let bob = node.register("bob").await;
    let (mut bob_socket, _) = node.connect(&bob).await;

    // Request with a note: Bob is told live, and it is pending on both sides.
    node.ok(
        &ann,
        "POST",
        "/api/friends/requests",
        Some(json!({"userId": bob.id, "note": "we met at the meetup"})),
    )
    .await;
    let (event, _) = bob_socket.until("event").await;
    assert_eq!(event["kind"], "friend_request");
    assert_eq!(event["payload"]["from"]["id"], ann.id);
    assert_eq!(event["payload"]["note"], "we met at the meetup");
    let pending = node.ok(&bob, "GET", "/api/friends/requests", None).await;
    assert_eq!(pending["incoming"][0]["from"]["id"], ann.id);
    let pending = node.ok(&ann, "GET", "/api/friends/requests", None).await;
    assert_eq!(pending["outgoing"][0]["to"]["id"], bob.id);
    // A second request either way is refused while one is pending.
    let (status, body) = node
        .call(
            Some(&ann),
            "POST",
            "/api/friends/requests",
            Some(json!({"userId": bob.id})),
        )
        .await;
    assert_eq!(
        (status, body["id"].as_str().unwrap()),
        (409, "request_pending")
    );
    let (status, _) = node
        .call(
            Some(&bob),
            "POST",
            "/api/friends/requests",
            Some(json!({"userId": ann.id})),
        )
        .await;
    assert_eq!(status, 409);

    // Reject: Ann learns it (she is offline: at next sync).
    node.ok(
        &bob,
        "POST",
        &format!("/api/friends/requests/{}/reject", ann.id),
        None,
    )
    .await;
    assert!(
        inbox(&node, &ann)
            .await
            .contains(&"friend_rejected".to_owned())
    );
    assert_eq!(
        node.ok(&bob, "GET", "/api/friends/requests", None).await["incoming"],
        json!([])
    );

    // Cancel: a new request, withdrawn by Ann; Bob is told live.
    node.ok(
        &ann,
        "POST",
        "/api/friends/requests",
        Some(json!({"userId": bob.id})),
    )
    .await;
    node.ok(
        &ann,
        "POST",
        &format!("/api/friends/requests/{}/cancel", bob.id),
        None,
    )
    .await;
    let event = bob_socket.event("friend_request_canceled").await;
    assert_eq!(event["payload"]["from"]["id"], ann.id);
    let (status, _) = node
        .call(
            Some(&bob),
            "POST",
            &format!("/api/friends/requests/{}/accept", ann.id),
            None,
        )
        .await;
    assert_eq!(status, 404, "a canceled request cannot be accepted");

    // Accept: both list each other.
    node.befriend(&ann, &bob).await;
    let friends = node.ok(&ann, "GET", "/api/friends", None).await;
    assert_eq!(friends, json!([{"id": bob.id, "username": bob.username}]));
    let (status, body) = node
        .call(
            Some(&ann),
            "POST",
            "/api/friends/requests",
            Some(json!({"userId": bob.id})),
        )
        .await;
    assert_eq!(
        (status, body["id"].as_str().unwrap()),
        (409, "already_friends")
    );
    assert!(
        inbox(&node, &ann)
            .await
            .contains(&"friend_accepted".to_owned())
    );

    // Remove: gone for both; Bob is told.
    node.ok(&ann, "DELETE", &format!("/api/friends/{}", bob.id), None)
        .await;
    assert_eq!(node.ok(&bob, "GET", "/api/friends", None).await, json!([]));
    let event = bob_socket.event("friend_removed").await;
    assert_eq!(event["payload"]["by"]["id"], ann.id);

    // Block: no more requests or direct messages either way; unblock restores requests only.
    node.befriend(&ann, &bob).await;
    node.ok(&bob, "POST", "/api/blocks", Some(json!({"userId": ann.id})))
        .await;
    assert_eq!(
        node.ok(&bob, "GET", "/api/friends", None).await,
        json!([]),
        "blocking ends the friendship"
    );
    let (status, body) = node
        .call(
            Some(&ann),
            "POST",
            "/api/friends/requests",
            Some(json!({"userId": bob.id})),
        )
        .await;
    assert_eq!((status, body["id"].as_str().unwrap()), (403, "blocked"));
    let (status, _) = node
        .call(
            Some(&ann),
            "POST",
            "/api/direct",
            Some(json!({"userId": bob.id})),
        )
        .await;
    assert_eq!(status, 403);
    assert_eq!(
        node.ok(&bob, "GET", "/api/blocks", None).await[0]["id"],
        ann.id
    );
    node.ok(&bob, "DELETE", &format!("/api/blocks/{}", ann.id), None)
        .await;
    node.ok(
        &ann,
        "POST",
        "/api/friends/requests",
        Some(json!({"userId": bob.id})),
    )
    .await;

    // Concurrent duplicate requests: exactly one is created.
    let cid = node.register("cid").await;
    let dee = node.register("dee").await;
    let attempts = (0..10).map(|i| {
        let (from, to) = if i % 2 == 0 {
            (&cid, &dee)
        } else {
            (&dee, &cid)
        };
        node.call(
            Some(from),
            "POST",
            "/api/friends/requests",
            Some(json!({"userId": to.id})),
        )
    });
    let statuses: Vec<u16> = futures_util::future::join_all(attempts)
        .await
        .into_iter()
        .map(|(s, _)| s)
        .collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 204).count(),
        1,
        "{statuses:?}"
    );
    let pending = deployment
        .count(
            "SELECT COUNT(*) FROM friend_requests WHERE status = 'pending' AND from_id = ?",
            cid.id,
        )
        .await
        + deployment
            .count(
                "SELECT COUNT(*) FROM friend_requests WHERE status = 'pending' AND to_id = ?",
                cid.id,
            )
            .await;
    assert_eq!(pending, 1, "one pending request row in the database");
    node.stop().await;
    deployment.cleanup().await;
});

// A node remembers what each send checked (membership, friendship, blocks); every change
// must reach the next send at once, also for a sender whose checks are remembered.
on_both_backends!(
    send_checks_follow_every_change,
    |backend: Backend| async move {
        let deployment = Deployment::new(backend);
        let node = deployment.start().await;
        let ann = node.register("ann").await;
        let bob = node.register("bob").await;
        let cid = node.register("cid").await;
        node.befriend(&ann, &bob).await;
        node.befriend(&ann, &cid).await;
        let dm = direct(&node, &ann, &bob).await;
        let mut a = node.device(&ann, "web").await;
        let mut b = node.device(&bob, "web").await;
        assert_eq!(a.send_refusal(dm, "a1").await, None);
        assert_eq!(b.send_refusal(dm, "b1").await, None);

        node.ok(&bob, "POST", "/api/blocks", Some(json!({"userId": ann.id})))
            .await;
        assert_eq!(a.send_refusal(dm, "a2").await.as_deref(), Some("blocked"));
        assert_eq!(b.send_refusal(dm, "b2").await.as_deref(), Some("blocked"));
        node.ok(&bob, "DELETE", &format!("/api/blocks/{}", ann.id), None)
            .await;
        // Blocking ended the friendship.
        assert_eq!(
            a.send_refusal(dm, "a3").await.as_deref(),
            Some("not_friends")
        );
        node.befriend(&ann, &bob).await;
        assert_eq!(a.send_refusal(dm, "a4").await, None);
        node.ok(&bob, "DELETE", &format!("/api/friends/{}", ann.id), None)
            .await;
        assert_eq!(
            a.send_refusal(dm, "a5").await.as_deref(),
            Some("not_friends")
        );

        // Groups: kicked, invited back, dissolved.
        let g = group(&node, &ann, "team", &[&cid]).await;
        let mut c = node.device(&cid, "web").await;
        assert_eq!(c.send_refusal(g, "c1").await, None);
        node.ok(
            &ann,
            "POST",
            &format!("/api/groups/{g}/kick"),
            Some(json!({"userId": cid.id})),
        )
        .await;
        assert_eq!(c.send_refusal(g, "c2").await.as_deref(), Some("not_member"));
        node.ok(
            &ann,
            "POST",
            &format!("/api/groups/{g}/invite"),
            Some(json!({"userIds": [cid.id]})),
        )
        .await;
        assert_eq!(c.send_refusal(g, "c3").await, None);
        node.ok(&ann, "POST", &format!("/api/groups/{g}/dissolve"), None)
            .await;
        assert_eq!(c.send_refusal(g, "c4").await.as_deref(), Some("not_member"));
        node.stop().await;
        deployment.cleanup().await;
    }
);

on_both_backends!(
    offline_sync_delivers_everything_once_in_order,
    |backend: Backend| async move {
        let deployment = Deployment::new(backend);
        let node = deployment.start().await;
        let ann = node.register("ann").await;
        let bob = node.register("bob").await;
        let cat = node.register("cat").await;
        node.befriend(&ann, &bob).await;
        node.befriend(&ann, &cat).await;
        let dm = direct(&node, &ann, &bob).await;
        let g1 = group(&node, &ann, "first", &[&bob, &cat]).await;
        let g2 = group(&node, &ann, "second", &[&bob]).await;

        // Bob is offline; Ann sends 500 messages over the three conversations, pipelined.
        let mut a = node.device(&ann, "desktop").await;
        let targets = [dm, g1, g2];
        let mut sent: HashMap<i64, Vec<String>> = HashMap::new();
        for i in 0..500 {
            let conversation = targets[i % 3];
            let text = format!("m{i}");
            a.send(json!({"type": "send", "payload": {"conversationId": conversation, "clientMsgId": format!("c{i}"), "content": text}})).await;
            sent.entry(conversation).or_default().push(text);
        }
        let mut acks = 0;
        while acks < 500 {
            let frame = a.recv().await;
            match frame["type"].as_str().unwrap() {
                "ack" => acks += 1,
                "message" => {}
                other => panic!("unexpected {other}: {frame}"),
            }
        }

        // Bob connects and syncs: positions and unread counts, then pulls every range.
        let mut b = node.device(&bob, "android").await;
        b.send(json!({"type": "sync", "payload": {"inboxAfter": 0}}))
            .await;
        let (state, _) = b.until("syncState").await;
        let conversations = state["conversations"].as_array().unwrap();
        assert_eq!(conversations.len(), 3);
        assert!(
            kinds(&state["inbox"])
                .iter()
                .filter(|k| *k == "group_added")
                .count()
                == 2
        );
        for c in conversations {
            let id = c["id"].as_i64().unwrap();
            let all = pull_all(&node, &bob, id).await;
            let seqs: Vec<i64> = all.iter().map(|m| m["seq"].as_i64().unwrap()).collect();
            let last = c["lastSeq"].as_i64().unwrap();
            assert_eq!(
                seqs,
                (1..=last).collect::<Vec<_>>(),
                "every seq once, in order"
            );
            assert_eq!(texts(&all), sent[&id], "the texts in send order");
            // Nothing read yet: Ann's messages are unread, counted one by one among the newest
            // 100 (the group's system messages do not count), every older one as one.
            let counted = all
                .iter()
                .filter(|m| m["seq"].as_i64().unwrap() > last - 100 && m["kind"] != "system")
                .count() as i64;
            assert_eq!(
                c["unread"].as_i64().unwrap(),
                counted + (last - 100).max(0),
                "nothing read yet: {c}"
            );
            assert_eq!(c["readSeq"], 0);
            if id == dm {
                assert_eq!(c["kind"], "direct");
                assert_eq!(c["peer"]["id"], ann.id);
            }
        }
        // Ann's own messages are read for her.
        let ann_state = node.ok(&ann, "GET", "/api/sync", None).await;
        for c in ann_state["conversations"].as_array().unwrap() {
            assert_eq!(c["unread"], 0, "a sender has read their own messages: {c}");
        }
        // Reading clears the count.
        node.ok(
            &bob,
            "POST",
            &format!("/api/conversations/{dm}/read"),
            Some(json!({"seq": 10_000})),
        )
        .await;
        let after = node.ok(&bob, "GET", "/api/sync", None).await;
        let dm_state = after["conversations"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["id"] == dm)
            .unwrap()
            .clone();
        assert_eq!(dm_state["unread"], 0);
        assert_eq!(
            dm_state["readSeq"], dm_state["lastSeq"],
            "a read position past the end is clamped"
        );
        node.stop().await;
        deployment.cleanup().await;
    }
);

on_both_backends!(retry_storm_stores_once, |backend: Backend| async move {
    let deployment = Deployment::new(backend);
    let node = deployment.start().await;
    let ann = node.register("ann").await;
    let bob = node.register("bob").await;
    node.befriend(&ann, &bob).await;
    let dm = direct(&node, &ann, &bob).await;
    let body = json!({"clientMsgId": "retry-me", "content": "only once"});
    let path = format!("/api/conversations/{dm}/messages");
    let attempts = (0..20).map(|_| node.call(Some(&ann), "POST", &path, Some(body.clone())));
    let answers = futures_util::future::join_all(attempts).await;
    for (status, ack) in &answers {
        assert_eq!(*status, 200, "{ack}");
        assert_eq!(ack, &answers[0].1, "every retry gets the same ack");
    }
    assert_eq!(answers[0].1["seq"], 1);
    assert_eq!(stored_count(&deployment, dm).await, 1, "one row stored");
    // The same over WebSocket, pipelined on one socket and across two sockets.
    let mut s1 = node.device(&ann, "web").await;
    let mut s2 = node.device(&ann, "ios").await;
    for s in [&mut s1, &mut s2] {
        for _ in 0..10 {
            s.send(json!({"type": "send", "payload": {"conversationId": dm, "clientMsgId": "ws-retry", "content": "x"}})).await;
        }
    }
    let mut acks = Vec::new();
    for s in [&mut s1, &mut s2] {
        let mut mine = 0;
        while mine < 10 {
            let frame = s.recv().await;
            if frame["type"] == "ack" {
                acks.push(frame["payload"].clone());
                mine += 1;
            }
        }
    }
    assert_eq!(acks.len(), 20);
    assert!(acks.iter().all(|a| a == &acks[0]), "{acks:?}");
    assert_eq!(stored_count(&deployment, dm).await, 2);
    node.stop().await;
    deployment.cleanup().await;
});

// Retries and fresh sends of other conversations share commits (SQLite stores every
// conversation's appends in one transaction): a retry refused by the unique key must not
// sink, delay forever or duplicate the fresh sends beside it.
on_both_backends!(
    retries_beside_fresh_sends_in_other_conversations,
    |backend: Backend| async move {
        let deployment = Deployment::new(backend);
        let node = deployment.start().await;
        let ann = node.register("ann").await;
        let bob = node.register("bob").await;
        let cat = node.register("cat").await;
        node.befriend(&ann, &bob).await;
        node.befriend(&cat, &bob).await;
        let ann_bob = direct(&node, &ann, &bob).await;
        let cat_bob = direct(&node, &cat, &bob).await;
        let first_path = format!("/api/conversations/{ann_bob}/messages");
        let (status, first) = node
            .call(
                Some(&ann),
                "POST",
                &first_path,
                Some(json!({"clientMsgId": "old", "content": "stored before"})),
            )
            .await;
        assert_eq!(status, 200, "{first}");

        let retries = (0..30).map(|_| {
            node.call(
                Some(&ann),
                "POST",
                &first_path,
                Some(json!({"clientMsgId": "old", "content": "stored before"})),
            )
        });
        let cat_path = format!("/api/conversations/{cat_bob}/messages");
        let fresh = (0..30).map(|i| {
            node.call(
                Some(&cat),
                "POST",
                &cat_path,
                Some(json!({"clientMsgId": format!("fresh-{i}"), "content": format!("fresh {i}")})),
            )
        });
        let (retried, fresh) = tokio::join!(
            futures_util::future::join_all(retries),
            futures_util::future::join_all(fresh)
        );
        for (status, ack) in &retried {
            assert_eq!(*status, 200, "{ack}");
            assert_eq!(ack, &first, "a retry gets the first ack");
        }
        let mut seqs: Vec<i64> = fresh
            .iter()
            .map(|(status, ack)| {
                assert_eq!(*status, 200, "{ack}");
                ack["seq"].as_i64().unwrap()
            })
            .collect();
        seqs.sort_unstable();
        assert_eq!(
            seqs,
            (1..=30).collect::<Vec<_>>(),
            "each fresh send once, no gaps"
        );
        let stored = pull_all(&node, &bob, cat_bob).await;
        assert_eq!(stored.len(), 30);
        assert_eq!(stored_count(&deployment, ann_bob).await, 1);
        node.stop().await;
        deployment.cleanup().await;
    }
);

// A client may send without waiting for acks: more sends than the server keeps in flight per
// socket (32) are all stored once, in the order sent, and acked in that order.
on_both_backends!(
    pipelined_sends_keep_their_order,
    |backend: Backend| async move {
        let deployment = Deployment::new(backend);
        let node = deployment.start().await;
        let ann = node.register("ann").await;
        let bob = node.register("bob").await;
        node.befriend(&ann, &bob).await;
        let dm = direct(&node, &ann, &bob).await;
        let mut socket = node.device(&ann, "web").await;
        const SENDS: usize = 100;
        for i in 0..SENDS {
            socket
            .send(json!({"type": "send", "payload": {"conversationId": dm, "clientMsgId": format!("p-{i}"), "content": format!("pipelined {i}")}}))
            .await;
        }
        // A read in the middle of the stream is answered too (nothing is stuck behind the acks).
        socket
            .send(json!({"type": "read", "payload": {"conversationId": dm, "seq": 1}}))
            .await;
        let mut acks = Vec::new();
        while acks.len() < SENDS {
            let frame = socket.recv().await;
            if frame["type"] == "ack" {
                acks.push(frame["payload"].clone());
            }
        }
        for (i, ack) in acks.iter().enumerate() {
            assert_eq!(ack["clientMsgId"], format!("p-{i}"), "acks in send order");
            assert_eq!(ack["seq"], i as i64 + 1, "stored in send order");
        }
        let stored = pull_all(&node, &bob, dm).await;
        let expected: Vec<String> = (0..SENDS).map(|i| format!("pipelined {i}")).collect();
        assert_eq!(texts(&stored), expected);
        node.stop().await;
        deployment.cleanup().await;
    }
);

on_both_backends!(two_devices_of_one_user, |backend: Backend| async move {
    let deployment = Deployment::new(backend);
    let node = deployment.start().await;
    let ann = node.register("ann").await;
    let bob = node.register("bob").await;
    node.befriend(&ann, &bob).await;
    let dm = direct(&node, &ann, &bob).await;
    let mut phone = node.device(&bob, "android").await;
    let mut laptop = node.device(&bob, "desktop").await;
    let mut a = node.device(&ann, "web").await;

    // Both of Bob's devices receive Ann's message.
    a.send_im(dm, "hello-1", "hello bob").await;
    for device in [&mut phone, &mut laptop] {
        let (message, _) = device.until("message").await;
        assert_eq!(message["content"], "hello bob");
        assert_eq!(message["seq"], 1);
    }
    // What Bob sends from the phone shows on the laptop (and on Ann's side).
    let ack = phone.send_im(dm, "from-phone", "sent from my phone").await;
    let (echo, _) = laptop.until("message").await;
    assert_eq!(echo["content"], "sent from my phone");
    assert_eq!(echo["clientMsgId"], "from-phone");
    assert_eq!(echo["seq"], ack["seq"]);
    let seen = a.until_with("message", |m| m["seq"] == 2).await;
    assert_eq!(seen["sender"]["id"], bob.id);

    // Ann writes twice more; Bob reads on the phone; the laptop is told and its count clears.
    a.send_im(dm, "hello-2", "two").await;
    a.send_im(dm, "hello-3", "three").await;
    let state = node.ok(&bob, "GET", "/api/sync", None).await;
    assert_eq!(state["conversations"][0]["unread"], 2, "{state}");
    phone
        .send(json!({"type": "read", "payload": {"conversationId": dm, "seq": 4}}))
        .await;
    let (receipt, _) = laptop.until("receipt").await;
    assert_eq!(
        receipt,
        json!({"conversationId": dm, "userId": bob.id, "seq": 4})
    );
    let (receipt, _) = a.until("receipt").await;
    assert_eq!(
        receipt["userId"], bob.id,
        "the sender gets the read receipt"
    );
    let state = node.ok(&bob, "GET", "/api/sync", None).await;
    assert_eq!(state["conversations"][0]["unread"], 0);
    assert_eq!(member_entry(&node, &ann, dm, &bob).await["readSeq"], 4);

    // Typing reaches the others, not the typist's own devices.
    a.send(json!({"type": "typing", "payload": {"conversationId": dm}}))
        .await;
    let (typing, _) = phone.until("typing").await;
    assert_eq!(typing, json!({"conversationId": dm, "userId": ann.id}));
    // Repeated at once, it is not passed on again: a flood of typing notices reaches nobody.
    a.send(json!({"type": "typing", "payload": {"conversationId": dm}}))
        .await;
    phone.expect_silence(Duration::from_millis(300)).await;

    // Presence: Bob is online on two platforms; friends may ask, and see last-seen after.
    let presence = node
        .ok(&ann, "GET", &format!("/api/presence?ids={}", bob.id), None)
        .await;
    assert_eq!(presence[0]["online"], true);
    assert_eq!(presence[0]["platforms"], json!(["android", "desktop"]));
    phone.close().await;
    laptop.close().await;
    let offline = a.until_with("presence", |p| p["userId"] == bob.id).await;
    assert_eq!(offline["online"], false);
    assert!(offline["lastSeen"].as_i64().unwrap() > 0);
    node.stop().await;
    deployment.cleanup().await;
});

/// The types of the frames `client` receives for `wait`.
async fn frame_types_within(client: &mut Client, wait: Duration) -> Vec<String> {
    let mut types = Vec::new();
    while let Ok(frame) = tokio::time::timeout(wait, client.recv()).await {
        types.push(frame["type"].as_str().unwrap_or_default().to_owned());
    }
    types
}

/// `user`'s entry in `conversation`'s member list, as `viewer` reads it.
async fn member_entry(node: &Node, viewer: &Account, conversation: i64, user: &Account) -> Value {
    let members = node
        .ok(
            viewer,
            "GET",
            &format!("/api/conversations/{conversation}/members"),
            None,
        )
        .await;
    members
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["user"]["id"] == user.id)
        .unwrap()
        .clone()
}

on_both_backends!(delivery_receipts, |backend: Backend| async move {
    let mut deployment = Deployment::new(backend);
    // Three-member groups keep them; the four-member one below does not.
    deployment.config.policy.delivery_receipts_max_members = 3;
    let node = deployment.start().await;
    let ann = node.register("ann").await;
    let bob = node.register("bob").await;
    let cat = node.register("cat").await;
    node.befriend(&ann, &bob).await;
    node.befriend(&ann, &cat).await;
    let dm = direct(&node, &ann, &bob).await;
    let mut a = node.device(&ann, "web").await;
    let mut b = node.device(&bob, "android").await;
    let mut b2 = node.device(&bob, "desktop").await;
    a.send_im(dm, "d1", "one").await;
    a.send_im(dm, "d2", "two").await;

    // Bob's phone has both: Ann is told (a `delivery`, not a `receipt`); Bob's own devices
    // are not.
    b.send(json!({"type": "delivered", "payload": {"conversationId": dm, "seq": 2}}))
        .await;
    let (delivery, skipped) = a.until("delivery").await;
    assert_eq!(
        delivery,
        json!({"conversationId": dm, "userId": bob.id, "seq": 2})
    );
    assert!(
        skipped.iter().all(|f| f["type"] != "receipt"),
        "{skipped:?}"
    );
    let entry = member_entry(&node, &ann, dm, &bob).await;
    assert_eq!(
        (entry["deliveredSeq"].clone(), entry["readSeq"].clone()),
        (json!(2), json!(0))
    );
    // Behind, equal, or past the newest message (taken as the newest): no news.
    for seq in [1, 2, 99] {
        b.send(json!({"type": "delivered", "payload": {"conversationId": dm, "seq": seq}}))
            .await;
    }
    a.expect_silence(Duration::from_millis(300)).await;
    let on_own_device = frame_types_within(&mut b2, Duration::from_millis(100)).await;
    assert!(
        !on_own_device.contains(&"delivery".to_owned()),
        "{on_own_device:?}"
    );

    // Reading delivers too; a delivery behind the read position is no news.
    a.send_im(dm, "d3", "three").await;
    b.send(json!({"type": "read", "payload": {"conversationId": dm, "seq": 3}}))
        .await;
    a.until("receipt").await;
    let entry = member_entry(&node, &ann, dm, &bob).await;
    assert_eq!(
        (entry["deliveredSeq"].clone(), entry["readSeq"].clone()),
        (json!(3), json!(3))
    );
    b.send(json!({"type": "delivered", "payload": {"conversationId": dm, "seq": 3}}))
        .await;
    a.expect_silence(Duration::from_millis(300)).await;

    // A small group: every other member is told.
    let g = group(&node, &ann, "trio", &[&bob, &cat]).await;
    let mut c = node.device(&cat, "web").await;
    a.send_im(g, "g1", "hi all").await;
    c.send(json!({"type": "delivered", "payload": {"conversationId": g, "seq": 2}}))
        .await;
    for device in [&mut a, &mut b] {
        let delivery = device
            .until_with("delivery", |d| d["conversationId"] == g)
            .await;
        assert_eq!(delivery["userId"], cat.id);
        assert_eq!(delivery["seq"], 2);
    }
    // Over HTTP too (a device that pulled with no socket open).
    a.send_im(g, "g2", "again").await;
    let (status, _) = node
        .call(
            Some(&bob),
            "POST",
            &format!("/api/conversations/{g}/delivered"),
            Some(json!({"seq": 3})),
        )
        .await;
    assert_eq!(status, 204);
    let delivery = c.until_with("delivery", |d| d["userId"] == bob.id).await;
    assert_eq!(
        delivery,
        json!({"conversationId": g, "userId": bob.id, "seq": 3})
    );
    // A group past the limit: accepted, kept by nobody, told to nobody.
    let dan = node.register("dan").await;
    node.befriend(&ann, &dan).await;
    let big = group(&node, &ann, "four", &[&bob, &cat, &dan]).await;
    a.send_im(big, "b1", "hello four").await;
    c.send(json!({"type": "delivered", "payload": {"conversationId": big, "seq": 2}}))
        .await;
    let told = frame_types_within(&mut a, Duration::from_millis(300)).await;
    assert!(!told.contains(&"delivery".to_owned()), "{told:?}");
    assert_eq!(
        member_entry(&node, &ann, big, &cat).await["deliveredSeq"],
        0
    );
    // Not a member: refused like every other frame.
    let eve = node.register("eve").await;
    let mut d = node.device(&eve, "web").await;
    d.send(json!({"type": "delivered", "payload": {"conversationId": dm, "seq": 1}}))
        .await;
    let (error, _) = d.until("error").await;
    assert_eq!(error["code"], "not_member");

    // Across a block, positions stop: Ann is told nothing, and the member list no longer
    // shows how far Bob got (it read as it did before, through polling).
    a.send_im(dm, "d4", "still there?").await;
    node.ok(&bob, "POST", "/api/blocks", Some(json!({"userId": ann.id})))
        .await;
    b.send(json!({"type": "delivered", "payload": {"conversationId": dm, "seq": 4}}))
        .await;
    b.send(json!({"type": "read", "payload": {"conversationId": dm, "seq": 4}}))
        .await;
    b.until("receipt").await;
    let told = frame_types_within(&mut a, Duration::from_millis(300)).await;
    assert!(
        told.iter().all(|t| t != "delivery" && t != "receipt"),
        "{told:?}"
    );
    let entry = member_entry(&node, &ann, dm, &bob).await;
    assert_eq!(
        (entry["deliveredSeq"].clone(), entry["readSeq"].clone()),
        (json!(0), json!(0))
    );
    let own = member_entry(&node, &bob, dm, &bob).await;
    assert_eq!(
        own["readSeq"], 4,
        "the reader still sees their own position"
    );
    node.stop().await;
    deployment.cleanup().await;
});

on_both_backends!(
    recall_edit_and_delete_for_me,
    |backend: Backend| async move {
        let mut deployment = Deployment::new(backend);
        deployment.config.policy.recall_window_secs = 2;
        let node = deployment.start().await;
        let ann = node.register("ann").await;
        let bob = node.register("bob").await;
        node.befriend(&ann, &bob).await;
        let dm = direct(&node, &ann, &bob).await;
        let mut a = node.device(&ann, "web").await;
        let mut b = node.device(&bob, "web").await;
        a.send_im(dm, "m1", "oops, wrong chat").await;
        a.send_im(dm, "m2", "helo").await;
        a.send_im(dm, "m3", "keep me").await;

        node.ok(
            &ann,
            "POST",
            &format!("/api/conversations/{dm}/messages/1/recall"),
            None,
        )
        .await;
        node.ok(
            &ann,
            "PATCH",
            &format!("/api/conversations/{dm}/messages/2"),
            Some(json!({"content": "hello"})),
        )
        .await;
        // Members see both changes as system messages, in order.
        let mut system = Vec::new();
        while system.len() < 2 {
            let (m, _) = b.until("message").await;
            if m["kind"] == "system" {
                system.push(serde_json::from_str::<Value>(m["content"].as_str().unwrap()).unwrap());
            }
        }
        assert_eq!(system[0], json!({"event": "recalled", "seq": 1}));
        assert_eq!(
            system[1],
            json!({"event": "edited", "seq": 2, "content": "hello"})
        );
        let all = pull_all(&node, &bob, dm).await;
        assert_eq!(all[0]["recalled"], true);
        assert_eq!(all[0]["content"], "");
        assert_eq!(all[1]["content"], "hello");
        assert!(all[1]["editedAt"].as_i64().is_some());
        // Bob's unread count: the edited message and the third — not the recalled one, nor
        // the two system messages that changed them.
        let state = node.ok(&bob, "GET", "/api/sync", None).await;
        assert_eq!(state["conversations"][0]["lastSeq"], 5, "{state}");
        assert_eq!(state["conversations"][0]["unread"], 2, "{state}");

        // Only the sender; not twice; not after the window.
        let (status, body) = node
            .call(
                Some(&bob),
                "POST",
                &format!("/api/conversations/{dm}/messages/3/recall"),
                None,
            )
            .await;
        assert_eq!((status, body["id"].as_str().unwrap()), (403, "not_sender"));
        let (status, _) = node
            .call(
                Some(&ann),
                "POST",
                &format!("/api/conversations/{dm}/messages/1/recall"),
                None,
            )
            .await;
        assert_eq!(status, 409);
        tokio::time::sleep(Duration::from_millis(2_200)).await;
        let (status, body) = node
            .call(
                Some(&ann),
                "POST",
                &format!("/api/conversations/{dm}/messages/3/recall"),
                None,
            )
            .await;
        assert_eq!(
            (status, body["id"].as_str().unwrap()),
            (409, "recall_window_passed")
        );

        // Delete-for-me: hidden for Bob on all his devices, still there for Ann, seq kept.
        let mut b2 = node.device(&bob, "ios").await;
        node.ok(
            &bob,
            "POST",
            &format!("/api/conversations/{dm}/messages/3/hide"),
            None,
        )
        .await;
        let event = b2.event("message_hidden").await;
        assert_eq!(event["payload"], json!({"conversationId": dm, "seq": 3}));
        let bobs = pull_all(&node, &bob, dm).await;
        let third = bobs.iter().find(|m| m["seq"] == 3).unwrap();
        assert_eq!(
            (third["hidden"].clone(), third["content"].clone()),
            (json!(true), json!(""))
        );
        let anns = pull_all(&node, &ann, dm).await;
        assert_eq!(
            anns.iter().find(|m| m["seq"] == 3).unwrap()["content"],
            "keep me"
        );
        node.stop().await;
        deployment.cleanup().await;
    }
);

on_both_backends!(
    recall_and_delete_for_me_take_the_edits_too,
    |backend: Backend| async move {
        let deployment = Deployment::new(backend);
        let node = deployment.start().await;
        let ann = node.register("ann").await;
        let bob = node.register("bob").await;
        node.befriend(&ann, &bob).await;
        let dm = direct(&node, &ann, &bob).await;
        let mut a = node.device(&ann, "web").await;
        a.send_im(dm, "p1", "my password is hunter2").await;
        a.send_im(dm, "p2", "see you at noon").await;
        let edit = |seq: i64, content: &'static str| {
            let (node, ann) = (&node, &ann);
            async move {
                node.ok(
                    ann,
                    "PATCH",
                    &format!("/api/conversations/{dm}/messages/{seq}"),
                    Some(json!({"content": content})),
                )
                .await;
            }
        };
        edit(1, "my password is hunter3").await; // seq 3
        edit(2, "see you at one").await; // seq 4
        node.ok(
            &bob,
            "POST",
            &format!("/api/conversations/{dm}/messages/2/hide"),
            None,
        )
        .await;
        edit(2, "see you at two").await; // seq 5
        edit(2, "see you at two").await; // the same words: no change, no event
        node.ok(
            &ann,
            "POST",
            &format!("/api/conversations/{dm}/messages/1/recall"),
            None,
        )
        .await; // seq 6
        let event = |messages: &[Value], seq: i64| -> Value {
            let m = messages.iter().find(|m| m["seq"] == seq).unwrap();
            serde_json::from_str(m["content"].as_str().unwrap()).unwrap()
        };

        // The recall took the edit's words away for everyone, and from the database.
        let anns = pull_all(&node, &ann, dm).await;
        assert_eq!(anns.len(), 6, "{anns:?}");
        assert_eq!(event(&anns, 3), json!({"event": "edited", "seq": 1}));
        assert_eq!(event(&anns, 6), json!({"event": "recalled", "seq": 1}));
        let stored = deployment
            .count(
                "SELECT COUNT(*) FROM messages WHERE conversation_id = ? \
                 AND content LIKE '%hunter%'",
                dm,
            )
            .await;
        assert_eq!(stored, 0, "the recalled words are still stored");
        // Bob deleted message 2 for himself: its edits, before and after, are withheld from
        // him; Ann still reads them.
        let bobs = pull_all(&node, &bob, dm).await;
        assert_eq!(event(&bobs, 3), json!({"event": "edited", "seq": 1}));
        assert_eq!(event(&bobs, 4), json!({"event": "edited", "seq": 2}));
        assert_eq!(event(&bobs, 5), json!({"event": "edited", "seq": 2}));
        assert_eq!(
            event(&anns, 5),
            json!({"event": "edited", "seq": 2, "content": "see you at two"})
        );
        // Nothing is left for Bob to read: 1 was recalled, 2 he deleted himself.
        let state = node.ok(&bob, "GET", "/api/sync", None).await;
        assert_eq!(state["conversations"][0]["unread"], 0, "{state}");
        node.stop().await;
        deployment.cleanup().await;
    }
);

on_both_backends!(group_membership_and_roles, |backend: Backend| async move {
    let mut deployment = Deployment::new(backend);
    deployment.config.policy.group_member_limit = 5;
    let node = deployment.start().await;
    let owner = node.register("owner").await;
    let admin = node.register("admin").await;
    let member = node.register("member").await;
    let eve = node.register("eve").await;
    let fay = node.register("fay").await;
    node.befriend(&owner, &admin).await;
    node.befriend(&owner, &member).await;
    let g = group(&node, &owner, "team", &[&admin, &member]).await;
    make_admin(&node, &owner, g, &admin).await;
    let mut owner_socket = node.device(&owner, "web").await;

    // Join request approved by the admin; the owner's socket hears of it; system message.
    node.ok(
        &eve,
        "POST",
        &format!("/api/groups/{g}/join-requests"),
        Some(json!({"note": "let me in"})),
    )
    .await;
    let event = owner_socket.event("join_request").await;
    assert_eq!(event["payload"]["note"], "let me in");
    assert_eq!(event["payload"]["user"]["id"], eve.id);
    let requests = node
        .ok(
            &admin,
            "GET",
            &format!("/api/groups/{g}/join-requests"),
            None,
        )
        .await;
    assert_eq!(requests[0]["user"]["id"], eve.id);
    node.ok(
        &admin,
        "POST",
        &format!("/api/groups/{g}/join-requests/{}/approve", eve.id),
        None,
    )
    .await;
    assert!(
        inbox(&node, &eve)
            .await
            .contains(&"join_approved".to_owned())
    );
    // Eve sees messages from her joining on, not before.
    let eve_view = pull_all(&node, &eve, g).await;
    let first = serde_json::from_str::<Value>(eve_view[0]["content"].as_str().unwrap()).unwrap();
    assert_eq!(first["event"], "joined");
    assert_eq!(first["userIds"], json!([eve.id]));

    // Another request rejected by the admin.
    node.ok(
        &fay,
        "POST",
        &format!("/api/groups/{g}/join-requests"),
        Some(json!({})),
    )
    .await;
    node.ok(
        &admin,
        "POST",
        &format!("/api/groups/{g}/join-requests/{}/reject", fay.id),
        None,
    )
    .await;
    assert!(
        inbox(&node, &fay)
            .await
            .contains(&"join_rejected".to_owned())
    );
    let (status, _) = node
        .call(
            Some(&fay),
            "GET",
            &format!("/api/conversations/{g}/messages"),
            None,
        )
        .await;
    assert_eq!(status, 403);

    // A group message is one row, however many members.
    let mut m = node.device(&member, "web").await;
    let ack = m.send_im(g, "g1", "hello team").await;
    let seq = ack["seq"].as_i64().unwrap();
    assert_eq!(
        deployment
            .count(
                "SELECT COUNT(*) FROM messages WHERE conversation_id = ? AND kind = 'text'",
                g
            )
            .await,
        1
    );
    let delivered = owner_socket
        .until_with("message", |m| m["kind"] == "text")
        .await;
    assert_eq!(delivered["seq"], seq);
    assert_eq!(delivered["content"], "hello team");

    // The kicked member can no longer read or post, and is told.
    node.ok(
        &admin,
        "POST",
        &format!("/api/groups/{g}/kick"),
        Some(json!({"userId": member.id})),
    )
    .await;
    let (status, body) = node
        .call(
            Some(&member),
            "GET",
            &format!("/api/conversations/{g}/messages"),
            None,
        )
        .await;
    assert_eq!((status, body["id"].as_str().unwrap()), (403, "not_member"));
    m.send(json!({"type": "send", "payload": {"conversationId": g, "clientMsgId": "g2", "content": "still here?"}})).await;
    let (error, _) = m.until("error").await;
    assert_eq!(error["code"], "not_member");
    assert_eq!(error["clientMsgId"], "g2");
    assert!(
        inbox(&node, &member)
            .await
            .contains(&"group_removed".to_owned())
    );
    let state = node.ok(&member, "GET", "/api/sync", None).await;
    assert!(
        state["conversations"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["id"] != g)
    );

    // Leave, transfer, limits, dissolve.
    let (status, body) = node
        .call(
            Some(&owner),
            "POST",
            &format!("/api/groups/{g}/leave"),
            None,
        )
        .await;
    assert_eq!(
        (status, body["id"].as_str().unwrap()),
        (409, "owner_must_transfer")
    );
    node.ok(
        &owner,
        "POST",
        &format!("/api/groups/{g}/transfer"),
        Some(json!({"userId": admin.id})),
    )
    .await;
    let members = node
        .ok(
            &owner,
            "GET",
            &format!("/api/conversations/{g}/members"),
            None,
        )
        .await;
    let role_of = |id: i64| {
        members
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["user"]["id"] == id)
            .unwrap()["role"]
            .clone()
    };
    assert_eq!(
        (role_of(admin.id), role_of(owner.id)),
        (json!("owner"), json!("admin"))
    );
    node.ok(&eve, "POST", &format!("/api/groups/{g}/leave"), None)
        .await;
    let (status, _) = node
        .call(
            Some(&eve),
            "GET",
            &format!("/api/conversations/{g}/members"),
            None,
        )
        .await;
    assert_eq!(status, 403);
    node.ok(&admin, "POST", &format!("/api/groups/{g}/dissolve"), None)
        .await;
    owner_socket.event("group_dissolved").await;
    let (status, _) = node
        .call(
            Some(&owner),
            "GET",
            &format!("/api/conversations/{g}/messages"),
            None,
        )
        .await;
    assert_eq!(status, 403);

    // The member limit (5 here) holds for invites and approvals.
    let friends: Vec<Account> =
        futures_util::future::join_all((0..5).map(|_| node.register("f"))).await;
    for f in &friends {
        node.befriend(&owner, f).await;
    }
    let small = group(
        &node,
        &owner,
        "small",
        &[&friends[0], &friends[1], &friends[2]],
    )
    .await;
    node.ok(
        &owner,
        "POST",
        &format!("/api/groups/{small}/invite"),
        Some(json!({"userIds": [friends[3].id]})),
    )
    .await;
    let (status, body) = node
        .call(
            Some(&owner),
            "POST",
            &format!("/api/groups/{small}/invite"),
            Some(json!({"userIds": [friends[4].id]})),
        )
        .await;
    assert_eq!(
        (status, body["id"].as_str().unwrap()),
        (409, "member_limit")
    );
    node.stop().await;
    deployment.cleanup().await;
});

/// One forbidden action: who does what, and the status and code they must get.
struct Forbidden {
    what: &'static str,
    status: u16,
    code: &'static str,
}

/// The expectation, who acts (`None`: anonymous), the method, path and body.
type Case<'a> = (
    Forbidden,
    Option<&'a Account>,
    &'static str,
    String,
    Option<Value>,
);

on_both_backends!(
    groups_are_renamed_by_owners_and_admins,
    |backend: Backend| async move {
        let deployment = Deployment::new(backend);
        let node = deployment.start().await;
        let owner = node.register("owner").await;
        let admin = node.register("admin").await;
        let member = node.register("member").await;
        let eve = node.register("eve").await;
        node.befriend(&owner, &admin).await;
        node.befriend(&owner, &member).await;
        let g = group(&node, &owner, "team", &[&admin, &member]).await;
        make_admin(&node, &owner, g, &admin).await;
        let mut member_socket = node.device(&member, "web").await;
        let rename = |who: &Account, name: Value| {
            let path = format!("/api/groups/{g}/name");
            let who = who.clone();
            let node = &node;
            async move {
                node.call(Some(&who), "POST", &path, Some(json!({"name": name})))
                    .await
            }
        };
        let name_in_sync = |who: &Account| {
            let node = &node;
            let who = who.clone();
            async move {
                let state = node.ok(&who, "GET", "/api/sync", None).await;
                let found = state["conversations"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|c| c["id"] == g)
                    .cloned();
                found.map(|c| {
                    (
                        c["name"].as_str().unwrap().to_owned(),
                        c["lastSeq"].as_i64().unwrap(),
                    )
                })
            }
        };

        // Members may not; names are checked as at creation.
        let (status, body) = rename(&member, json!("mine now")).await;
        assert_eq!(
            (status, body["id"].as_str()),
            (403, Some("insufficient_role"))
        );
        let (status, body) = rename(&eve, json!("not even in it")).await;
        assert_eq!(status, 403, "{body}");
        for bad in [
            json!(""),
            json!("  \u{200B} "),
            json!("x".repeat(200)),
            json!("a\u{0007}b"),
            json!(5),
        ] {
            let (status, body) = rename(&owner, bad.clone()).await;
            assert_eq!(status, 400, "{bad}: {body}");
        }
        assert_eq!(name_in_sync(&member).await.unwrap().0, "team");

        // An admin renames: every member is told by a system message and syncs the new name.
        let (status, body) = rename(&admin, json!("新的名字 team")).await;
        assert_eq!(status, 204, "{body}");
        let told = member_socket
            .until_with("message", |m| m["kind"] == "system")
            .await;
        let event: Value = serde_json::from_str(told["content"].as_str().unwrap()).unwrap();
        assert_eq!(
            (
                event["event"].as_str(),
                event["name"].as_str(),
                event["by"].as_i64()
            ),
            (Some("renamed"), Some("新的名字 team"), Some(admin.id))
        );
        let (name, last_seq) = name_in_sync(&owner).await.unwrap();
        assert_eq!(
            (name.as_str(), last_seq),
            ("新的名字 team", told["seq"].as_i64().unwrap())
        );
        // The same name again says nothing.
        let (status, _) = rename(&owner, json!("新的名字 team")).await;
        assert_eq!(status, 204);
        assert_eq!(name_in_sync(&owner).await.unwrap().1, last_seq);

        // Not for direct conversations, nor dissolved groups.
        let dm = direct(&node, &owner, &admin).await;
        let (status, body) = node
            .call(
                Some(&owner),
                "POST",
                &format!("/api/groups/{dm}/name"),
                Some(json!({"name": "us"})),
            )
            .await;
        assert_eq!((status, body["id"].as_str()), (400, Some("not_a_group")));
        node.ok(&owner, "POST", &format!("/api/groups/{g}/dissolve"), None)
            .await;
        let (status, _) = rename(&owner, json!("after the end")).await;
        assert_eq!(status, 403);
        node.stop().await;
        deployment.cleanup().await;
    }
);

on_both_backends!(authorization_table, |backend: Backend| async move {
    let deployment = Deployment::new(backend);
    let node = deployment.start().await;
    let owner = node.register("owner").await;
    let admin = node.register("admin").await;
    let member = node.register("member").await;
    let stranger = node.register("stranger").await;
    let blocker = node.register("blocker").await;
    node.befriend(&owner, &admin).await;
    node.befriend(&owner, &member).await;
    node.befriend(&member, &blocker).await;
    let g = group(&node, &owner, "private", &[&admin, &member]).await;
    make_admin(&node, &owner, g, &admin).await;
    let dm = direct(&node, &owner, &member).await;
    let member_blocker_dm = direct(&node, &member, &blocker).await;
    node.ok(
        &member,
        "POST",
        &format!("/api/conversations/{member_blocker_dm}/messages"),
        Some(json!({"clientMsgId": "mb1", "content": "before the block"})),
    )
    .await;
    node.ok(
        &blocker,
        "POST",
        "/api/blocks",
        Some(json!({"userId": member.id})),
    )
    .await;
    let mut o = node.device(&owner, "web").await;
    let o1 = o.send_im(g, "o1", "owner's words").await["seq"]
        .as_i64()
        .unwrap();
    // Someone joins after o1: editing o1 would show them its new text.
    let late = node.register("late").await;
    node.befriend(&owner, &late).await;
    node.ok(
        &owner,
        "POST",
        &format!("/api/groups/{g}/invite"),
        Some(json!({"userIds": [late.id]})),
    )
    .await;
    node.ok(
        &stranger,
        "POST",
        &format!("/api/groups/{g}/join-requests"),
        Some(json!({})),
    )
    .await;
    let stranger_group = group(&node, &stranger, "mine", &[]).await;

    let send = |id: &str| json!({"clientMsgId": id, "content": "x"});
    let cases: Vec<Case> = vec![
        (
            Forbidden {
                what: "stranger reads a group",
                status: 403,
                code: "not_member",
            },
            Some(&stranger),
            "GET",
            format!("/api/conversations/{g}/messages"),
            None,
        ),
        (
            Forbidden {
                what: "stranger posts into a group",
                status: 403,
                code: "not_member",
            },
            Some(&stranger),
            "POST",
            format!("/api/conversations/{g}/messages"),
            Some(send("s1")),
        ),
        (
            Forbidden {
                what: "stranger lists members",
                status: 403,
                code: "not_member",
            },
            Some(&stranger),
            "GET",
            format!("/api/conversations/{g}/members"),
            None,
        ),
        (
            Forbidden {
                what: "stranger moves a read position",
                status: 403,
                code: "not_member",
            },
            Some(&stranger),
            "POST",
            format!("/api/conversations/{g}/read"),
            Some(json!({"seq": 1})),
        ),
        (
            Forbidden {
                what: "stranger invites into a group",
                status: 403,
                code: "not_member",
            },
            Some(&stranger),
            "POST",
            format!("/api/groups/{g}/invite"),
            Some(json!({"userIds": [stranger.id]})),
        ),
        (
            Forbidden {
                what: "stranger kicks a member",
                status: 403,
                code: "not_member",
            },
            Some(&stranger),
            "POST",
            format!("/api/groups/{g}/kick"),
            Some(json!({"userId": member.id})),
        ),
        (
            Forbidden {
                what: "stranger dissolves a group",
                status: 403,
                code: "not_member",
            },
            Some(&stranger),
            "POST",
            format!("/api/groups/{g}/dissolve"),
            None,
        ),
        (
            Forbidden {
                what: "stranger lists join requests",
                status: 403,
                code: "not_member",
            },
            Some(&stranger),
            "GET",
            format!("/api/groups/{g}/join-requests"),
            None,
        ),
        (
            Forbidden {
                what: "stranger approves their own request",
                status: 403,
                code: "not_member",
            },
            Some(&stranger),
            "POST",
            format!("/api/groups/{g}/join-requests/{}/approve", stranger.id),
            None,
        ),
        (
            Forbidden {
                what: "stranger reads someone's direct chat",
                status: 403,
                code: "not_member",
            },
            Some(&stranger),
            "GET",
            format!("/api/conversations/{dm}/messages"),
            None,
        ),
        (
            Forbidden {
                what: "stranger recalls someone's message",
                status: 403,
                code: "not_member",
            },
            Some(&stranger),
            "POST",
            format!("/api/conversations/{g}/messages/2/recall"),
            None,
        ),
        (
            Forbidden {
                what: "stranger hides in a group",
                status: 403,
                code: "not_member",
            },
            Some(&stranger),
            "POST",
            format!("/api/conversations/{g}/messages/2/hide"),
            None,
        ),
        (
            Forbidden {
                what: "a conversation id that does not exist",
                status: 403,
                code: "not_member",
            },
            Some(&stranger),
            "GET",
            "/api/conversations/999999/messages".into(),
            None,
        ),
        (
            Forbidden {
                what: "member kicks the admin",
                status: 403,
                code: "insufficient_role",
            },
            Some(&member),
            "POST",
            format!("/api/groups/{g}/kick"),
            Some(json!({"userId": admin.id})),
        ),
        (
            Forbidden {
                what: "member approves a join request",
                status: 403,
                code: "insufficient_role",
            },
            Some(&member),
            "POST",
            format!("/api/groups/{g}/join-requests/{}/approve", stranger.id),
            None,
        ),
        (
            Forbidden {
                what: "member lists join requests",
                status: 403,
                code: "insufficient_role",
            },
            Some(&member),
            "GET",
            format!("/api/groups/{g}/join-requests"),
            None,
        ),
        (
            Forbidden {
                what: "admin kicks the owner",
                status: 403,
                code: "insufficient_role",
            },
            Some(&admin),
            "POST",
            format!("/api/groups/{g}/kick"),
            Some(json!({"userId": owner.id})),
        ),
        (
            Forbidden {
                what: "admin dissolves the group",
                status: 403,
                code: "insufficient_role",
            },
            Some(&admin),
            "POST",
            format!("/api/groups/{g}/dissolve"),
            None,
        ),
        (
            Forbidden {
                what: "admin transfers ownership",
                status: 403,
                code: "insufficient_role",
            },
            Some(&admin),
            "POST",
            format!("/api/groups/{g}/transfer"),
            Some(json!({"userId": admin.id})),
        ),
        (
            Forbidden {
                what: "admin changes roles",
                status: 403,
                code: "insufficient_role",
            },
            Some(&admin),
            "POST",
            format!("/api/groups/{g}/role"),
            Some(json!({"userId": member.id, "role": "admin"})),
        ),
        (
            Forbidden {
                what: "member edits the owner's message",
                status: 403,
                code: "not_sender",
            },
            Some(&member),
            "PATCH",
            format!("/api/conversations/{g}/messages/2"),
            Some(json!({"content": "mine now"})),
        ),
        (
            Forbidden {
                what: "member recalls the owner's message",
                status: 403,
                code: "not_sender",
            },
            Some(&member),
            "POST",
            format!("/api/conversations/{g}/messages/2/recall"),
            None,
        ),
        (
            Forbidden {
                what: "direct chat with a non-friend",
                status: 403,
                code: "not_friends",
            },
            Some(&stranger),
            "POST",
            "/api/direct".into(),
            Some(json!({"userId": owner.id})),
        ),
        (
            Forbidden {
                what: "adding a non-friend to a group",
                status: 403,
                code: "not_friends",
            },
            Some(&stranger),
            "POST",
            format!("/api/groups/{stranger_group}/invite"),
            Some(json!({"userIds": [owner.id]})),
        ),
        (
            Forbidden {
                what: "friend request to someone who blocked you",
                status: 403,
                code: "blocked",
            },
            Some(&member),
            "POST",
            "/api/friends/requests".into(),
            Some(json!({"userId": blocker.id})),
        ),
        (
            Forbidden {
                what: "message to someone who blocked you",
                status: 403,
                code: "blocked",
            },
            Some(&member),
            "POST",
            format!("/api/conversations/{member_blocker_dm}/messages"),
            Some(send("b1")),
        ),
        (
            Forbidden {
                what: "presence of someone who blocked you (sharing a direct conversation)",
                status: 403,
                code: "presence_hidden",
            },
            Some(&member),
            "GET",
            format!("/api/presence?ids={}", blocker.id),
            None,
        ),
        (
            Forbidden {
                what: "presence of someone you blocked",
                status: 403,
                code: "presence_hidden",
            },
            Some(&blocker),
            "GET",
            format!("/api/presence?ids={}", member.id),
            None,
        ),
        (
            Forbidden {
                what: "editing a message someone joined after",
                status: 403,
                code: "edit_after_join",
            },
            Some(&owner),
            "PATCH",
            format!("/api/conversations/{g}/messages/{o1}"),
            Some(json!({"content": "owner's new words"})),
        ),
        (
            Forbidden {
                what: "a clientMsgId already used in another conversation",
                status: 409,
                code: "client_msg_id_reused",
            },
            Some(&owner),
            "POST",
            format!("/api/conversations/{dm}/messages"),
            Some(send("o1")),
        ),
        (
            Forbidden {
                what: "presence of a stranger",
                status: 403,
                code: "presence_hidden",
            },
            Some(&stranger),
            "GET",
            format!("/api/presence?ids={}", owner.id),
            None,
        ),
        (
            Forbidden {
                what: "sending a system message",
                status: 400,
                code: "bad_kind",
            },
            Some(&member),
            "POST",
            format!("/api/conversations/{g}/messages"),
            Some(json!({"clientMsgId": "sys", "kind": "system", "content": "{}"})),
        ),
        (
            Forbidden {
                what: "anonymous friend list",
                status: 401,
                code: "UNAUTHORIZED",
            },
            None,
            "GET",
            "/api/friends".into(),
            None,
        ),
        (
            Forbidden {
                what: "anonymous send",
                status: 401,
                code: "UNAUTHORIZED",
            },
            None,
            "POST",
            format!("/api/conversations/{g}/messages"),
            Some(send("anon")),
        ),
    ];
    assert!(cases.len() >= 20);
    for (forbidden, who, method, path, body) in cases {
        let (status, answer) = node.call(who, method, &path, body).await;
        assert_eq!(
            (status, answer["id"].as_str().unwrap_or_default()),
            (forbidden.status, forbidden.code),
            "{}: {answer}",
            forbidden.what
        );
        assert!(
            answer["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{} explains itself",
            forbidden.what
        );
    }
    // Over the socket too: a stranger cannot post, type or read-mark in the group.
    let mut s: Client = node.device(&stranger, "web").await;
    for frame in [
        json!({"type": "send", "payload": {"conversationId": g, "clientMsgId": "w1", "content": "x"}}),
        json!({"type": "typing", "payload": {"conversationId": g}}),
        json!({"type": "read", "payload": {"conversationId": g, "seq": 1}}),
    ] {
        s.send(frame.clone()).await;
        let (error, _) = s.until("error").await;
        assert_eq!(error["code"], "not_member", "{frame}");
    }
    // Across a block: no typing notices, and a read receipt reaches only the reader.
    let mut m = node.device(&member, "web").await;
    let mut blocker_device = node.device(&blocker, "web").await;
    m.send(json!({"type": "typing", "payload": {"conversationId": member_blocker_dm}}))
        .await;
    let (error, _) = m.until("error").await;
    assert_eq!(error["code"], "blocked", "{error}");
    blocker_device
        .send(json!({"type": "read", "payload": {"conversationId": member_blocker_dm, "seq": 1}}))
        .await;
    let (receipt, _) = blocker_device.until("receipt").await;
    assert_eq!(
        receipt["userId"], blocker.id,
        "the reader's own devices are told"
    );
    m.expect_silence(Duration::from_millis(300)).await;
    // And nothing leaked: the stranger's sync lists only their own group; nothing was stored.
    let sync = node.ok(&stranger, "GET", "/api/sync", None).await;
    let ids: Vec<i64> = sync["conversations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, [stranger_group]);
    let texts_in_group = deployment
        .count(
            "SELECT COUNT(*) FROM messages WHERE conversation_id = ? AND kind = 'text'",
            g,
        )
        .await;
    assert_eq!(texts_in_group, 1);
    node.stop().await;
    deployment.cleanup().await;
});

on_both_backends!(
    policy_is_what_this_server_is_configured_with,
    |backend: Backend| async move {
        let mut deployment = Deployment::new(backend);
        deployment.config.limits.max_content_chars = 300;
        deployment.config.policy.recall_window_secs = 45;
        deployment.config.policy.delivery_receipts_max_members = 1;
        deployment.config.policy.group_member_limit = 9;
        let node = deployment.start().await;
        // Public: a client reads it before anyone logs in.
        let (status, policy) = node.call(None, "GET", "/api/policy", None).await;
        assert_eq!(status, 200, "{policy}");
        assert_eq!(
            policy,
            json!({
                "maxContentChars": 300,
                "recallWindowSecs": 45,
                "directMessages": "friends",
                "groupMemberLimit": 9,
                "maxNoteChars": 200,
                "maxGroupNameChars": 100,
                "maxPage": 200,
                // Direct conversations keep delivery receipts whatever the setting.
                "deliveryReceiptsMaxMembers": 2,
            })
        );
        let (status, _) = node.call(None, "POST", "/api/policy", None).await;
        assert_eq!(status, 405);
    }
);

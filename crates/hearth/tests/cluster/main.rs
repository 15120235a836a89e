//! Several `hearth serve` processes over one MariaDB + Redis: fan-out across nodes (Redis
//! pub/sub and NATS), a node killed with SIGKILL mid-stream, Redis and MariaDB restarts,
//! presence across nodes, graceful shutdown, and nginx in front.
//!
//! Needs MariaDB (127.0.0.1:3306), Redis (127.0.0.1:6379), NATS (127.0.0.1:4222) and the
//! `redis-server`, `mariadbd`, `mariadb-install-db` and `nginx` programs; fails when missing.

#[path = "../../../hearth-server/tests/common/mod.rs"]
mod common;
mod harness;
mod ops;

use common::{Account, Client, Node, contents, id_parts, redis_url};
use harness::{Cluster, PrivateMariaDb, PrivateRedis, eventually, free_port};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

fn nats_url() -> String {
    std::env::var("HEARTH_TEST_NATS").unwrap_or_else(|_| "nats://127.0.0.1:4222".into())
}

async fn group(node: &Node, owner: &Account, members: &[&Account]) -> i64 {
    let ids: Vec<i64> = members.iter().map(|m| m.id).collect();
    node.ok(
        owner,
        "POST",
        "/api/groups",
        Some(json!({"name": "everyone", "members": ids})),
    )
    .await["conversationId"]
        .as_i64()
        .unwrap()
}

async fn direct(node: &Node, a: &Account, b: &Account) -> i64 {
    node.ok(a, "POST", "/api/direct", Some(json!({"userId": b.id})))
        .await["conversationId"]
        .as_i64()
        .unwrap()
}

fn send_frame(conversation: i64, id: &str, content: &str) -> Value {
    json!({"type": "send", "payload": {"conversationId": conversation, "clientMsgId": id, "content": content}})
}

/// Everything one socket received, sorted by kind.
#[derive(Default)]
struct Seen {
    room: Vec<Value>,
    /// Per conversation: native messages in arrival order.
    native: BTreeMap<i64, Vec<Value>>,
    acks: Vec<Value>,
}

impl Seen {
    fn texts(&self, conversation: i64) -> usize {
        self.native
            .get(&conversation)
            .map_or(0, |m| m.iter().filter(|m| m["kind"] == "text").count())
    }
}

/// Reads frames until `done` says enough.
async fn collect(client: &mut Client, seen: &mut Seen, done: impl Fn(&Seen) -> bool) {
    while !done(seen) {
        let frame = client.recv().await;
        match frame["type"].as_str().unwrap_or_default() {
            "serverMessages" => seen.room.extend(
                frame["payload"]["messages"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .cloned(),
            ),
            "message" => {
                let conversation = frame["payload"]["conversationId"].as_i64().unwrap();
                seen.native
                    .entry(conversation)
                    .or_default()
                    .push(frame["payload"].clone());
            }
            "ack" => seen.acks.push(frame["payload"].clone()),
            "error" => panic!("unexpected error frame: {frame}"),
            _ => {}
        }
    }
}

/// Everything that arrives until the socket has been quiet for a second.
async fn drain(client: &mut Client) -> Seen {
    use futures_util::StreamExt;
    let mut seen = Seen::default();
    while let Ok(Some(Ok(message))) =
        tokio::time::timeout(Duration::from_secs(1), client.stream.next()).await
    {
        let Ok(text) = message.to_text() else {
            continue;
        };
        let Ok(frame) = serde_json::from_str::<Value>(text) else {
            continue;
        };
        if frame["type"] == "message" {
            let conversation = frame["payload"]["conversationId"].as_i64().unwrap();
            seen.native
                .entry(conversation)
                .or_default()
                .push(frame["payload"].clone());
        }
    }
    seen
}

fn assert_once_each(messages: &[Value], what: &str) {
    let seqs: Vec<i64> = messages
        .iter()
        .map(|m| m["seq"].as_i64().unwrap())
        .collect();
    let unique: HashSet<i64> = seqs.iter().copied().collect();
    assert_eq!(
        unique.len(),
        seqs.len(),
        "{what}: a message arrived twice: {seqs:?}"
    );
}

async fn fan_out_across_three_nodes(bus: Option<String>) {
    let mut cluster = Cluster::new(&redis_url(), bus.as_deref());
    let nodes = [
        cluster.start(0).await,
        cluster.start(1).await,
        cluster.start(2).await,
    ];
    let mut users = Vec::new();
    for i in 0..6 {
        users.push(nodes[i % 3].register(&format!("u{i}")).await);
    }
    for i in 1..6 {
        nodes[i % 3].befriend(&users[0], &users[i]).await;
    }
    nodes[2].befriend(&users[2], &users[3]).await;
    nodes[1].befriend(&users[4], &users[5]).await;
    let everyone: Vec<&Account> = users[1..].iter().collect();
    let g = group(&nodes[0], &users[0], &everyone).await;
    let pairs = [(0, 1), (2, 3), (4, 5)];
    let mut dm_of = HashMap::new();
    for (a, b) in pairs {
        let dm = direct(&nodes[b % 3], &users[a], &users[b]).await;
        dm_of.insert(a, dm);
        dm_of.insert(b, dm);
    }
    // User i is connected to node i % 3.
    let mut sockets = Vec::new();
    for (i, user) in users.iter().enumerate() {
        sockets.push(nodes[i % 3].device(user, "web").await);
    }
    const ROUNDS: usize = 10;
    for round in 0..ROUNDS {
        for (i, socket) in sockets.iter_mut().enumerate() {
            socket
                .post("general", &[&format!("room u{i} r{round}")])
                .await;
            socket
                .send(send_frame(
                    dm_of[&i],
                    &format!("d{i}-{round}"),
                    &format!("dm u{i} r{round}"),
                ))
                .await;
            socket
                .send(send_frame(
                    g,
                    &format!("g{i}-{round}"),
                    &format!("group u{i} r{round}"),
                ))
                .await;
        }
    }
    let mut views = Vec::new();
    for (i, socket) in sockets.iter_mut().enumerate() {
        let mut seen = Seen::default();
        let dm = dm_of[&i];
        collect(socket, &mut seen, |s| {
            s.room.len() >= 6 * ROUNDS
                && s.texts(g) >= 6 * ROUNDS
                && s.texts(dm) >= 2 * ROUNDS
                && s.acks.len() >= 2 * ROUNDS
        })
        .await;
        // Exactly the conversations this user is in, each message once.
        let conversations: HashSet<i64> = seen.native.keys().copied().collect();
        assert_eq!(
            conversations,
            HashSet::from([g, dm]),
            "user {i} got only their own conversations"
        );
        assert_once_each(&seen.native[&g], "group");
        assert_once_each(&seen.native[&dm], "direct");
        assert_eq!(seen.texts(g), 6 * ROUNDS);
        assert_eq!(seen.texts(dm), 2 * ROUNDS);
        // Each sender's group messages keep their send order.
        for (sender, user) in users.iter().enumerate() {
            let order: Vec<String> = seen.native[&g]
                .iter()
                .filter(|m| m["sender"]["id"] == user.id && m["kind"] == "text")
                .map(|m| m["content"].as_str().unwrap().to_owned())
                .collect();
            let expected: Vec<String> = (0..ROUNDS)
                .map(|r| format!("group u{sender} r{r}"))
                .collect();
            let mut by_seq = seen.native[&g].clone();
            by_seq.sort_by_key(|m| m["seq"].as_i64().unwrap());
            let in_seq_order: Vec<String> = by_seq
                .iter()
                .filter(|m| m["sender"]["id"] == user.id && m["kind"] == "text")
                .map(|m| m["content"].as_str().unwrap().to_owned())
                .collect();
            assert_eq!(
                in_seq_order, expected,
                "seq order keeps user {sender}'s send order"
            );
            assert_eq!(order.len(), ROUNDS);
        }
        views.push(seen.room);
    }
    // Rooms: every socket on every node saw the same messages in the same, increasing order.
    for (i, view) in views.iter().enumerate() {
        assert_eq!(
            view.len(),
            6 * ROUNDS,
            "socket {i}: every room message once"
        );
        let ids: Vec<(i64, i64)> = view.iter().map(|m| id_parts(&m["id"])).collect();
        assert!(
            ids.windows(2).all(|w| w[0] < w[1]),
            "socket {i}: ids increase: {ids:?}"
        );
        assert_eq!(
            view, &views[0],
            "socket {i} saw the same room stream as socket 0"
        );
    }
    for socket in sockets.iter_mut() {
        socket.expect_silence(Duration::from_millis(300)).await;
    }
    cluster.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fan_out_across_three_nodes_over_redis() {
    fan_out_across_three_nodes(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fan_out_across_three_nodes_over_nats() {
    fan_out_across_three_nodes(Some(nats_url())).await;
}

/// Every message of a conversation as `account` pulls it.
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
        let Some(last) = messages.last() else {
            return all;
        };
        after = last["seq"].as_i64().unwrap();
        all.extend(messages);
    }
}

/// The `clientMsgId`s of the text messages in `messages`, checking none repeats.
fn client_ids(messages: &[Value]) -> HashSet<String> {
    let ids: Vec<String> = messages
        .iter()
        .filter(|m| m["kind"] == "text")
        .map(|m| m["clientMsgId"].as_str().unwrap().to_owned())
        .collect();
    let set: HashSet<String> = ids.iter().cloned().collect();
    assert_eq!(set.len(), ids.len(), "no message stored twice");
    set
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_killed_mid_stream_loses_no_acknowledged_message() {
    let mut cluster = Cluster::new(&redis_url(), None);
    let nodes = [
        cluster.start(0).await,
        cluster.start(1).await,
        cluster.start(2).await,
    ];
    let sender = nodes[2].register("sender").await;
    let receivers: Vec<Account> = vec![
        nodes[0].register("r0").await,
        nodes[1].register("r1").await,
        nodes[2].register("r2").await,
    ];
    for r in &receivers {
        nodes[0].befriend(&sender, r).await;
    }
    let refs: Vec<&Account> = receivers.iter().collect();
    let g = group(&nodes[0], &sender, &refs).await;
    let dm = direct(&nodes[0], &sender, &receivers[0]).await;
    let mut live: Vec<Client> = Vec::new();
    for (i, r) in receivers.iter().enumerate() {
        live.push(nodes[i].device(r, "web").await);
    }
    // The sender writes through node 2, which dies after 100 acknowledged messages.
    const TOTAL: usize = 300;
    let target = |i: usize| if i.is_multiple_of(3) { dm } else { g };
    let mut acked: HashMap<String, Value> = HashMap::new();
    let mut s = nodes[2].device(&sender, "ios").await;
    let mut next = 0;
    let mut in_flight: Vec<usize> = Vec::new();
    while acked.len() < 100 {
        while in_flight.len() < 20 && next < TOTAL {
            s.send(send_frame(
                target(next),
                &format!("k{next}"),
                &format!("msg {next}"),
            ))
            .await;
            in_flight.push(next);
            next += 1;
        }
        let frame = s.recv().await;
        if frame["type"] == "ack" {
            let id = frame["payload"]["clientMsgId"].as_str().unwrap().to_owned();
            in_flight.retain(|i| format!("k{i}") != id);
            acked.insert(id, frame["payload"].clone());
        }
    }
    // More sends go out, then the node is killed with them in flight.
    while in_flight.len() < 20 && next < TOTAL {
        s.send(send_frame(
            target(next),
            &format!("k{next}"),
            &format!("msg {next}"),
        ))
        .await;
        in_flight.push(next);
        next += 1;
    }
    cluster.kill(2);
    // Whatever the sender heard back before the socket died counts as acknowledged.
    loop {
        match s.next_event().await {
            common::Event::Frame(frame) if frame["type"] == "ack" => {
                let id = frame["payload"]["clientMsgId"].as_str().unwrap().to_owned();
                in_flight.retain(|i| format!("k{i}") != id);
                acked.insert(id, frame["payload"].clone());
            }
            common::Event::Frame(_) => {}
            common::Event::Closed(_) => break,
        }
    }
    let acked_at_kill: HashSet<String> = acked.keys().cloned().collect();
    // The sender reconnects elsewhere and resends what was not acknowledged, same ids.
    let mut s = nodes[0].device(&sender, "ios").await;
    for &i in &in_flight {
        let ack = s
            .send_im(target(i), &format!("k{i}"), &format!("msg {i}"))
            .await;
        acked.insert(format!("k{i}"), ack);
    }
    for i in next..TOTAL {
        let ack = s
            .send_im(target(i), &format!("k{i}"), &format!("msg {i}"))
            .await;
        acked.insert(format!("k{i}"), ack);
    }
    assert_eq!(acked.len(), TOTAL);
    // Receiver 2's node died too: it reconnects to node 1 and syncs.
    drop(live.pop());
    let r2_socket = nodes[1].device(&receivers[2], "web").await;
    drop(r2_socket);
    // Everyone ends with every acknowledged message exactly once.
    let group_ids: HashSet<String> = (0..TOTAL)
        .filter(|i| target(*i) == g)
        .map(|i| format!("k{i}"))
        .collect();
    let dm_ids: HashSet<String> = (0..TOTAL)
        .filter(|i| target(*i) == dm)
        .map(|i| format!("k{i}"))
        .collect();
    for (i, r) in receivers.iter().enumerate() {
        let node = &nodes[i.min(1)];
        assert_eq!(
            client_ids(&pull_all(node, r, g).await),
            group_ids,
            "receiver {i}: the whole group"
        );
        let seqs: Vec<i64> = pull_all(node, r, g)
            .await
            .iter()
            .map(|m| m["seq"].as_i64().unwrap())
            .collect();
        assert_eq!(
            seqs,
            (seqs[0]..seqs[0] + seqs.len() as i64).collect::<Vec<_>>(),
            "no gaps"
        );
    }
    assert_eq!(
        client_ids(&pull_all(&nodes[0], &receivers[0], dm).await),
        dm_ids
    );
    // Acknowledged before the kill means stored with the acknowledged seq.
    let stored: HashMap<String, i64> = pull_all(&nodes[0], &sender, g)
        .await
        .into_iter()
        .chain(pull_all(&nodes[0], &sender, dm).await)
        .filter(|m| m["kind"] == "text")
        .map(|m| {
            (
                m["clientMsgId"].as_str().unwrap().to_owned(),
                m["seq"].as_i64().unwrap(),
            )
        })
        .collect();
    for id in &acked_at_kill {
        assert_eq!(
            stored.get(id),
            acked[id]["seq"].as_i64().as_ref(),
            "{id} kept its acknowledged seq"
        );
    }
    // The receivers that stayed connected got live messages, none of them twice (what a
    // killed node had stored but not yet published, they got by syncing above).
    for (i, socket) in live.iter_mut().enumerate() {
        let seen = drain(socket).await;
        assert_once_each(seen.native.get(&g).map_or(&[][..], |v| v), "live group");
        assert!(seen.texts(g) > 0, "receiver {i} got live messages");
    }
    cluster.cleanup().await;
}

/// Each node remembers the checks of the sends it took; a block or a kick made on another
/// node reaches them over the bus well before the entries expire (30 s).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_checks_are_invalidated_across_nodes() {
    let mut cluster = Cluster::new(&redis_url(), None);
    let nodes = [cluster.start(0).await, cluster.start(1).await];
    let ann = nodes[0].register("ann").await;
    let bob = nodes[1].register("bob").await;
    let cid = nodes[1].register("cid").await;
    nodes[0].befriend(&ann, &bob).await;
    nodes[0].befriend(&ann, &cid).await;
    let dm = direct(&nodes[0], &ann, &bob).await;
    let g = group(&nodes[1], &cid, &[&ann]).await;
    let mut a = nodes[0].device(&ann, "web").await;
    a.send_im(dm, "dm-0", "remembered").await;
    a.send_im(g, "g-0", "remembered").await;

    nodes[1]
        .ok(&bob, "POST", "/api/blocks", Some(json!({"userId": ann.id})))
        .await;
    let mut n = 0;
    assert!(
        eventually(Duration::from_secs(5), async || {
            n += 1;
            a.send_refusal(dm, &format!("dm-{n}")).await.as_deref() == Some("blocked")
        })
        .await,
        "a block on node 1 stops sends on node 0"
    );
    nodes[1]
        .ok(
            &cid,
            "POST",
            &format!("/api/groups/{g}/kick"),
            Some(json!({"userId": ann.id})),
        )
        .await;
    assert!(
        eventually(Duration::from_secs(5), async || {
            n += 1;
            a.send_refusal(g, &format!("g-{n}")).await.as_deref() == Some("not_member")
        })
        .await,
        "a kick on node 1 stops sends on node 0"
    );
    cluster.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presence_spans_nodes_and_dead_nodes_expire() {
    let mut cluster = Cluster::new(&redis_url(), None);
    let nodes = [
        cluster.start(0).await,
        cluster.start(1).await,
        cluster.start(2).await,
    ];
    let ann = nodes[0].register("ann").await;
    let friend = nodes[2].register("friend").await;
    nodes[0].befriend(&ann, &friend).await;
    let mut watcher = nodes[2].device(&friend, "web").await;
    let presence = async |node: &Node| {
        node.ok(
            &friend,
            "GET",
            &format!("/api/presence?ids={}", ann.id),
            None,
        )
        .await[0]
            .clone()
    };
    let on_0 = nodes[0].device(&ann, "desktop").await;
    let online = watcher
        .until_with("presence", |p| p["userId"] == ann.id)
        .await;
    assert_eq!(online["online"], true);
    let _on_1 = nodes[1].device(&ann, "android").await;
    let both = presence(&nodes[2]).await;
    assert_eq!(both["platforms"], json!(["android", "desktop"]));
    // One socket closes: still online, from the other node.
    on_0.close().await;
    assert!(
        eventually(
            Duration::from_secs(5),
            async || presence(&nodes[2]).await["platforms"] == json!(["android"])
        )
        .await
    );
    assert_eq!(presence(&nodes[0]).await["online"], true);
    // Node 1 dies with Ann's last socket: within the node expiry (3 s) she is offline, and
    // her friend is told.
    cluster.kill(1);
    let offline = watcher
        .until_with("presence", |p| p["userId"] == ann.id)
        .await;
    assert_eq!(offline["online"], false);
    assert!(offline["lastSeen"].as_i64().is_some());
    let answer = presence(&nodes[0]).await;
    assert_eq!(
        (answer["online"].clone(), answer["platforms"].clone()),
        (json!(false), json!([]))
    );
    cluster.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_sockets_and_finishes_sends() {
    let mut cluster = Cluster::new(&redis_url(), None);
    let node = cluster.start(0).await;
    let other = cluster.start(1).await;
    let ann = node.register("ann").await;
    let bob = node.register("bob").await;
    node.befriend(&ann, &bob).await;
    let dm = direct(&node, &ann, &bob).await;
    let mut a = node.device(&ann, "web").await;
    for i in 0..50 {
        a.send(send_frame(
            dm,
            &format!("t{i}"),
            &format!("before shutdown {i}"),
        ))
        .await;
    }
    let status = tokio::task::spawn_blocking(move || {
        let status = cluster.terminate(0);
        (cluster, status)
    });
    let mut acked = Vec::new();
    let code = loop {
        match a.next_event().await {
            common::Event::Frame(frame) if frame["type"] == "ack" => {
                acked.push(frame["payload"]["clientMsgId"].clone())
            }
            common::Event::Frame(_) => {}
            common::Event::Closed(code) => break code,
        }
    };
    assert_eq!(code, Some(1012), "told to reconnect elsewhere");
    let (cluster, status) = status.await.unwrap();
    assert!(
        status.is_some_and(|s| s.success()),
        "exits cleanly: {status:?}"
    );
    // Every acknowledged message is there, read through the other node.
    let stored = pull_all(&other, &bob, dm).await;
    let ids: HashSet<Value> = stored.iter().map(|m| m["clientMsgId"].clone()).collect();
    for id in &acked {
        assert!(ids.contains(id), "{id} was acknowledged, so it is stored");
    }
    cluster.cleanup().await;
}

/// Two nodes; Ann on node 0 and Bob on node 1 are friends with a direct chat in which Ann's
/// socket has 20 acknowledged messages.
struct Pair {
    n0: Node,
    n1: Node,
    ann: Account,
    bob: Account,
    dm: i64,
    a: Client,
    acked: HashSet<String>,
}

impl Pair {
    async fn start(cluster: &mut Cluster) -> Pair {
        let n0 = cluster.start(0).await;
        let n1 = cluster.start(1).await;
        let ann = n0.register("ann").await;
        let bob = n1.register("bob").await;
        n0.befriend(&ann, &bob).await;
        let dm = direct(&n0, &ann, &bob).await;
        let mut a = n0.device(&ann, "web").await;
        let mut acked = HashSet::new();
        send_acked(&mut a, dm, "a", 20, &mut acked).await;
        Pair {
            n0,
            n1,
            ann,
            bob,
            dm,
            a,
            acked,
        }
    }
}

/// Sends `count` messages `<prefix><i>`, each waiting for its ack, and records their ids.
async fn send_acked(
    a: &mut Client,
    dm: i64,
    prefix: &str,
    count: usize,
    acked: &mut HashSet<String>,
) {
    for i in 0..count {
        let id = format!("{prefix}{i}");
        a.send_im(dm, &id, "text").await;
        acked.insert(id);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_restart_is_survived() {
    let mut redis = PrivateRedis::start().await;
    let mut cluster = Cluster::new(&redis.url(), None);
    let Pair {
        n0,
        n1,
        ann,
        bob,
        dm,
        mut a,
        mut acked,
    } = Pair::start(&mut cluster).await;
    redis.stop();
    // During the outage: what needs Redis fails fast and says so.
    let started = std::time::Instant::now();
    let (status, body) = n0.call(Some(&ann), "GET", "/api/me", None).await;
    assert_eq!(
        (status, body["id"].as_str().unwrap()),
        (503, "SERVICE_UNAVAILABLE")
    );
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "fails fast: {:?}",
        started.elapsed()
    );
    a.post("general", &["room message during the outage"]).await;
    let (error, _) = a.until("error").await;
    assert_eq!(error["code"], "unavailable");
    // Direct messages need only the database: still stored and acknowledged.
    send_acked(&mut a, dm, "b", 5, &mut acked).await;
    redis.restart().await;
    // Redis came back empty: sessions are gone (run Redis with persistence in production),
    // so clients log in again; the service works again by itself.
    let login = async |node: &Node, who: &Account| {
        let response = node
            .post_json(
                "/api/login",
                json!({"email": who.email, "password": who.password}),
            )
            .await;
        (
            response.status().as_u16(),
            common::session_cookie(&response),
        )
    };
    assert!(
        eventually(Duration::from_secs(15), async || login(&n0, &ann).await.0
            == 204)
        .await,
        "login works again"
    );
    let (_, sid) = login(&n0, &ann).await;
    let ann = Account {
        sid: sid.unwrap(),
        ..ann
    };
    let (_, sid) = login(&n1, &bob).await;
    let bob = Account {
        sid: sid.unwrap(),
        ..bob
    };
    let mut a = n0.device(&ann, "web").await;
    let mut b = n1.device(&bob, "web").await;
    send_acked(&mut a, dm, "c", 20, &mut acked).await;
    // Live delivery across nodes is back.
    let mut seen = Seen::default();
    collect(&mut b, &mut seen, |s| {
        s.native
            .get(&dm)
            .is_some_and(|m| m.iter().any(|m| m["clientMsgId"] == "c19"))
    })
    .await;
    // Every acknowledged message, once.
    assert_eq!(client_ids(&pull_all(&n1, &bob, dm).await), acked);
    a.post("general", &["room is back"]).await;
    let echo = a
        .until_with("serverMessages", |p| p["roomId"] == "general")
        .await;
    assert_eq!(contents(&echo["messages"]), ["room is back"]);
    cluster.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mariadb_restart_is_survived() {
    let mut db = PrivateMariaDb::start().await;
    let mut cluster = Cluster::new(&redis_url(), None).with_database(&db.url("hearth"));
    let Pair {
        n0,
        n1,
        ann,
        bob,
        dm,
        mut a,
        mut acked,
    } = Pair::start(&mut cluster).await;
    db.stop();
    // During the outage: sends fail fast with a clear error and nothing is acknowledged.
    let started = std::time::Instant::now();
    a.send(send_frame(dm, "lost", "during")).await;
    let (error, _) = a.until("error").await;
    assert_eq!(
        (error["code"].as_str(), error["clientMsgId"].as_str()),
        (Some("unavailable"), Some("lost"))
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "fails fast: {:?}",
        started.elapsed()
    );
    let (status, _) = n0.call(Some(&ann), "GET", "/api/friends", None).await;
    assert_eq!(status, 503);
    db.restart().await;
    // The pools reconnect by themselves; the failed send can be retried with its id.
    let retried = eventually(Duration::from_secs(20), async || {
        n0.call(Some(&ann), "GET", "/api/friends", None).await.0 == 200
    })
    .await;
    assert!(retried, "the node recovers on its own");
    a.send_im(dm, "lost", "during").await;
    acked.insert("lost".into());
    send_acked(&mut a, dm, "c", 20, &mut acked).await;
    assert_eq!(client_ids(&pull_all(&n1, &bob, dm).await), acked);
    cluster.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_balances_websockets_over_the_nodes() {
    let mut cluster = Cluster::new(&redis_url(), None);
    let n0 = cluster.start(0).await;
    let n1 = cluster.start(1).await;
    // The documented configuration, with this test's ports.
    let template = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../deploy/nginx.conf"
    ))
    .unwrap();
    let port = free_port();
    let dir = std::env::temp_dir().join(common::unique("hearth_t_nginx"));
    std::fs::create_dir_all(dir.join("logs")).unwrap();
    // nginx's workers run unprivileged; let them write their logs.
    let _ = std::process::Command::new("chmod")
        .args(["-R", "777", &dir.display().to_string()])
        .status();
    let upstreams = format!(
        "server {};\n        server {};",
        &n0.base[7..],
        &n1.base[7..]
    );
    let config = template
        .replace("listen 80;", &format!("listen 127.0.0.1:{port};"))
        .replace("server 127.0.0.1:3001;\n        server 127.0.0.1:3002;\n        server 127.0.0.1:3003;", &upstreams)
        .replace("/var/log/nginx/", &format!("{}/logs/", dir.display()))
        .replace("pid /run/nginx.pid;", &format!("pid {}/nginx.pid;", dir.display()));
    assert!(
        config.contains(&upstreams),
        "the template names the upstreams as documented"
    );
    std::fs::write(dir.join("nginx.conf"), config).unwrap();
    let mut nginx = std::process::Command::new("nginx")
        .args([
            "-p",
            &dir.display().to_string(),
            "-c",
            &dir.join("nginx.conf").display().to_string(),
        ])
        .args(["-g", "daemon off;"])
        .spawn()
        .expect("nginx must be installed (scripts/services.sh installs it)");
    let front = Node::remote(&format!("http://127.0.0.1:{port}"));
    assert!(
        eventually(Duration::from_secs(10), async || front
            .http
            .get(front.url("/"))
            .send()
            .await
            .is_ok())
        .await
    );
    // Through nginx: sign up, open sockets, talk; sockets land on both nodes.
    let mut clients = Vec::new();
    let mut accounts = Vec::new();
    for i in 0..6 {
        let account = front.register(&format!("viaproxy{i}")).await;
        let (client, _) = front.connect(&account).await;
        clients.push(client);
        accounts.push(account);
    }
    clients[0].post("general", &["through the proxy"]).await;
    for client in clients.iter_mut() {
        let payload = client
            .until_with("serverMessages", |p| p["roomId"] == "general")
            .await;
        assert_eq!(contents(&payload["messages"]), ["through the proxy"]);
    }
    // One node dies: new connections through the proxy go to the other.
    cluster.kill(0);
    for account in &accounts {
        let (mut client, _) = front.connect(account).await;
        client.post("random", &["still served"]).await;
        let payload = client
            .until_with("serverMessages", |p| p["roomId"] == "random")
            .await;
        assert_eq!(contents(&payload["messages"]), ["still served"]);
    }
    // SIGTERM lets the master take its workers down with it (SIGKILL would orphan them).
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &nginx.id().to_string()])
        .status();
    let _ = nginx.wait();
    let _ = std::fs::remove_dir_all(&dir);
    cluster.cleanup().await;
}

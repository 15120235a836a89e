//! Full-text search end to end, on both backends: a generated English and Chinese corpus
//! (exact counts and precision for chosen queries, stemming, CJK substrings however jieba
//! cuts them, snippets, paging), who may find what (groups, direct chats, leaving, joining
//! late), edits, recalls, delete-for-me, filters, bounds, user lookup, an index that survives
//! restarts and rebuilds itself, and two cluster nodes answering the same.
//!
//! The index follows the database within about 200 ms (1.2 s under traffic), so tests poll until what they expect
//! shows up, and then check that nothing else did.

mod common;

use common::{
    Account, Backend, Client, Deployment, Node, all_hits, enc, expect_count, search, unique,
};
use serde_json::{Value, json};
use std::collections::HashSet;
use std::time::Duration;

fn content(hit: &Value) -> &str {
    hit["message"]["content"].as_str().unwrap()
}

fn contents(hits: &[Value]) -> Vec<String> {
    let mut all: Vec<String> = hits.iter().map(|h| content(h).to_owned()).collect();
    all.sort();
    all
}

/// The highlighted parts of a hit's snippet (offsets are UTF-16 code units).
fn highlighted(hit: &Value) -> Vec<String> {
    let text: Vec<u16> = hit["snippet"]["text"]
        .as_str()
        .unwrap()
        .encode_utf16()
        .collect();
    hit["snippet"]["highlights"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let (a, b) = (
                r[0].as_u64().unwrap() as usize,
                r[1].as_u64().unwrap() as usize,
            );
            String::from_utf16(&text[a..b]).unwrap()
        })
        .collect()
}

/// A deterministic pseudo-random sequence (64-bit LCG).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, n: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((self.0 >> 33) % n as u64) as usize
    }
}

const MESSAGES: usize = 2_000;

/// English filler: no word stems to a marker's stem (run, databas, backup).
const ENGLISH: &[&str] = &[
    "the", "quick", "brown", "fox", "jumps", "over", "lazy", "dog", "server", "message", "channel",
    "coffee", "morning", "meeting", "project", "release", "ticket", "review", "deploy", "kernel",
    "network", "latency", "window", "garden", "yellow", "purple", "ocean", "mountain", "river",
    "forest", "pizza", "guitar", "piano", "violin", "orange", "silver", "golden", "planet",
    "rocket", "comet",
];

/// Chinese filler: none of these characters occurs in a marker (你好 数据库 北京大学).
const CHINESE: &[&str] = &[
    "今天",
    "天气",
    "非常",
    "晴朗",
    "我们",
    "一起",
    "去",
    "公园",
    "散步",
    "吃饭",
    "喝茶",
    "看书",
    "工作",
    "休息",
    "音乐",
    "电影",
    "朋友",
    "家人",
    "周末",
    "早上",
    "晚上",
    "城市",
    "火车",
    "飞机",
    "咖啡",
    "苹果",
    "西瓜",
    "春天",
    "夏天",
    "秋天",
    "冬天",
    "快乐",
    "开心",
    "安静",
    "会议",
    "项目",
    "发布",
    "测试",
    "代码",
    "服务器",
];

/// Message `i` of the English corpus, with its markers at pseudo-random places.
fn english(i: usize, rng: &mut Lcg) -> String {
    let mut words: Vec<String> = (0..8)
        .map(|_| ENGLISH[rng.next(ENGLISH.len())].to_owned())
        .collect();
    let mut markers = Vec::new();
    if i.is_multiple_of(37) {
        markers.push(["Database", "database", "databases"][i % 3]);
    }
    if i.is_multiple_of(5) {
        markers.push("backup");
    }
    if i % 53 == 5 {
        markers.push(["run", "runs", "running"][i % 3]);
    }
    for marker in markers {
        let at = rng.next(words.len() + 1);
        words.insert(at, marker.to_owned());
    }
    format!("{}.", words.join(" "))
}

/// Message `i` of the Chinese corpus: words run together, as Chinese is written.
fn chinese(i: usize, rng: &mut Lcg) -> String {
    let mut words: Vec<&str> = (0..6).map(|_| CHINESE[rng.next(CHINESE.len())]).collect();
    let mut markers = Vec::new();
    if i.is_multiple_of(41) {
        markers.push("你好");
    }
    if i % 29 == 3 {
        // jieba cuts the second as 大数据 / 库存: found all the same.
        markers.push(if i.is_multiple_of(2) {
            "数据库"
        } else {
            "大数据库存"
        });
    }
    if i % 97 == 10 {
        markers.push("北京大学");
    }
    if i % 61 == 7 {
        markers.push("MySQL");
    }
    for marker in markers {
        let at = rng.next(words.len() + 1);
        words.insert(at, marker);
    }
    format!("{}。", words.concat())
}

fn count(pred: impl Fn(usize) -> bool) -> usize {
    (0..MESSAGES).filter(|&i| pred(i)).count()
}

/// Posts `messages` into a room, 100 per frame (one transaction each), and waits until the
/// socket has seen them all stored.
async fn post_all(client: &mut Client, room: &str, messages: &[String]) {
    for chunk in messages.chunks(100) {
        let refs: Vec<&str> = chunk.iter().map(String::as_str).collect();
        client.post(room, &refs).await;
    }
    let mut stored = 0;
    while stored < messages.len() {
        let batch = client
            .until_with("serverMessages", |p| p["roomId"] == room)
            .await;
        stored += batch["messages"].as_array().unwrap().len();
    }
}

fn assert_all_contain(hits: &[Value], needle: &str) {
    for hit in hits {
        assert!(
            content(hit).to_lowercase().contains(needle),
            "hit without {needle:?}: {}",
            content(hit)
        );
    }
}

on_both_backends!(english_and_chinese_corpora, |backend| async move {
    let deployment = Deployment::new(backend);
    let node = deployment.start().await;
    let ann = node.register("ann").await;
    let (mut socket, _) = node.connect(&ann).await;
    let mut rng = Lcg(7);
    let english_corpus: Vec<String> = (0..MESSAGES).map(|i| english(i, &mut rng)).collect();
    let chinese_corpus: Vec<String> = (0..MESSAGES).map(|i| chinese(i, &mut rng)).collect();
    post_all(&mut socket, "general", &english_corpus).await;
    post_all(&mut socket, "random", &chinese_corpus).await;

    // English: exact counts, every hit has the word, stems match other forms.
    let databases = count(|i| i.is_multiple_of(37));
    let hits = expect_count(&node, &ann, "database", "", databases).await;
    assert_all_contain(&hits, "database");
    assert!(hits.iter().all(|h| h["room"] == "general"));
    for form in ["running", "runs", "RUN"] {
        let hits = expect_count(&node, &ann, form, "", count(|i| i % 53 == 5)).await;
        assert_all_contain(&hits, "run");
    }
    let both = expect_count(
        &node,
        &ann,
        "database backup",
        "",
        count(|i| i.is_multiple_of(37) && i.is_multiple_of(5)),
    )
    .await;
    assert_all_contain(&both, "backup");
    assert_all_contain(&both, "database");
    assert!(all_hits(&node, &ann, "databank", "").await.is_empty());
    let backups = count(|i| i.is_multiple_of(5));
    assert!(backups > 50 * 7, "enough to page through");
    let hits = expect_count(&node, &ann, "backup", "", backups).await;
    assert_all_contain(&hits, "backup");

    // Chinese: substrings of any length, whatever jieba makes of the text around them.
    let cases: &[(&str, usize)] = &[
        ("你好", count(|i| i.is_multiple_of(41))),
        ("数据库", count(|i| i % 29 == 3)),
        ("库", count(|i| i % 29 == 3)),
        ("北京大学", count(|i| i % 97 == 10)),
        ("大学", count(|i| i % 97 == 10)),
        // Straddles jieba's 北京 | 大学.
        ("京大", count(|i| i % 97 == 10)),
        ("MySQL", count(|i| i % 61 == 7)),
        ("数据库 mysql", count(|i| i % 29 == 3 && i % 61 == 7)),
        ("数据仓库", 0),
    ];
    for (q, expected) in cases {
        let hits = expect_count(&node, &ann, q, "", *expected).await;
        for part in q.split(' ') {
            assert_all_contain(&hits, &part.to_lowercase());
        }
    }
    let jieba_splits_it = all_hits(&node, &ann, "数据库", "").await;
    assert!(
        jieba_splits_it
            .iter()
            .any(|h| content(h).contains("大数据库存")),
        "found inside 大数据库存 too"
    );

    // Snippets mark the query, in UTF-16 offsets of the snippet text.
    for hit in &jieba_splits_it {
        assert_eq!(highlighted(hit), ["数据库"], "{hit}");
    }
    let (_, page) = search(&node, &ann, "running", "&limit=5").await;
    for hit in page["hits"].as_array().unwrap() {
        let marked = highlighted(hit);
        assert_eq!(marked.len(), 1, "{hit}");
        assert!(["run", "runs", "running"].contains(&marked[0].as_str()));
    }

    // Paging: pages of any size add up to the same list, best first.
    let whole = all_hits(&node, &ann, "你好", "").await;
    let mut paged = Vec::new();
    for offset in (0..whole.len()).step_by(7) {
        let (_, page) = search(&node, &ann, "你好", &format!("&limit=7&offset={offset}")).await;
        assert_eq!(page["hasMore"], offset + 7 < whole.len());
        paged.extend(page["hits"].as_array().unwrap().iter().cloned());
    }
    let ids = |hits: &[Value]| -> Vec<String> {
        hits.iter()
            .map(|h| h["message"]["id"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(ids(&paged), ids(&whole));

    node.stop().await;
    deployment.cleanup().await;
});

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

/// Sends a text message over HTTP; returns its ack.
async fn send(node: &Node, account: &Account, conversation: i64, content: &str) -> Value {
    node.ok(
        account,
        "POST",
        &format!("/api/conversations/{conversation}/messages"),
        Some(json!({"clientMsgId": unique("c"), "content": content})),
    )
    .await
}

fn conversations(hits: &[Value]) -> Vec<i64> {
    let mut all: Vec<i64> = hits
        .iter()
        .map(|h| h["message"]["conversationId"].as_i64().unwrap())
        .collect();
    all.sort();
    all
}

on_both_backends!(who_finds_what_and_changes, |backend| async move {
    let mut deployment = Deployment::new(backend);
    deployment.config.policy.recall_window_secs = 60;
    let node = deployment.start().await;
    let [ann, bob, cat, dan, eve] = [
        node.register("ann").await,
        node.register("bob").await,
        node.register("cat").await,
        node.register("dan").await,
        node.register("eve").await,
    ];
    for friend in [&bob, &cat, &dan, &eve] {
        node.befriend(&ann, friend).await;
    }
    let g1 = group(&node, &ann, "one", &[&bob, &cat]).await;
    let g2 = group(&node, &ann, "two", &[&dan]).await;
    let dm = node
        .ok(&ann, "POST", "/api/direct", Some(json!({"userId": bob.id})))
        .await["conversationId"]
        .as_i64()
        .unwrap();
    send(&node, &ann, g1, "zebracorn in group one").await;
    send(&node, &bob, g1, "zebracorn from bob").await;
    send(&node, &dan, g2, "zebracorn in group two").await;
    send(&node, &bob, dm, "zebracorn between ann and bob").await;
    let (mut socket, _) = node.connect(&eve).await;
    post_all(&mut socket, "general", &["zebracorn for everyone".into()]).await;

    // Each finds their conversations and the room, nothing else.
    let hits = expect_count(&node, &ann, "zebracorn", "", 5).await;
    let room_id = hits
        .iter()
        .find(|h| h["room"] == "general")
        .expect("a room hit")["message"]["conversationId"]
        .as_i64()
        .unwrap();
    let mut all = vec![g1, g1, g2, dm, room_id];
    all.sort();
    assert_eq!(conversations(&hits), all);
    let mut want = vec![g1, g1, dm, room_id];
    want.sort();
    assert_eq!(
        conversations(&all_hits(&node, &bob, "zebracorn", "").await),
        want
    );
    let mut want = vec![g1, g1, room_id];
    want.sort();
    assert_eq!(
        conversations(&all_hits(&node, &cat, "zebracorn", "").await),
        want
    );
    let mut want = vec![g2, room_id];
    want.sort();
    assert_eq!(
        conversations(&all_hits(&node, &dan, "zebracorn", "").await),
        want
    );
    assert_eq!(
        conversations(&all_hits(&node, &eve, "zebracorn", "").await),
        [room_id]
    );
    // Nobody probes a conversation that is not theirs (nor one that does not exist).
    for target in [g2, dm, 999_999] {
        let (status, body) =
            search(&node, &cat, "zebracorn", &format!("&conversation={target}")).await;
        assert_eq!((status, body["id"].as_str()), (403, Some("not_member")));
    }

    // Filters: conversation, sender, time.
    let hits = all_hits(&node, &ann, "zebracorn", &format!("&conversation={g1}")).await;
    assert_eq!(conversations(&hits), [g1, g1]);
    let hits = all_hits(&node, &ann, "zebracorn", &format!("&sender={}", bob.id)).await;
    assert_eq!(
        contents(&hits),
        ["zebracorn between ann and bob", "zebracorn from bob"]
    );
    tokio::time::sleep(Duration::from_millis(5)).await;
    let before = send(&node, &ann, g1, "okapi early").await;
    tokio::time::sleep(Duration::from_millis(5)).await;
    let after = send(&node, &ann, g1, "okapi late").await;
    expect_count(&node, &ann, "okapi", "", 2).await;
    let (t1, t2) = (
        before["timestamp"].as_i64().unwrap(),
        after["timestamp"].as_i64().unwrap(),
    );
    assert!(t1 < t2);
    let early = all_hits(&node, &ann, "okapi", &format!("&to={t1}")).await;
    assert_eq!(contents(&early), ["okapi early"]);
    let late = all_hits(&node, &ann, "okapi", &format!("&from={t2}")).await;
    assert_eq!(contents(&late), ["okapi late"]);
    let both = all_hits(&node, &ann, "okapi", &format!("&from={t1}&to={t2}")).await;
    assert_eq!(both.len(), 2);

    // Joining late: only what came after joining.
    node.ok(
        &ann,
        "POST",
        &format!("/api/groups/{g1}/invite"),
        Some(json!({"userIds": [eve.id]})),
    )
    .await;
    assert_eq!(
        conversations(&all_hits(&node, &eve, "zebracorn", "").await),
        [room_id]
    );
    send(&node, &bob, g1, "zebracorn after eve joined").await;
    let hits = expect_count(&node, &eve, "zebracorn", "", 2).await;
    assert_eq!(
        contents(&hits),
        ["zebracorn after eve joined", "zebracorn for everyone"]
    );

    // Leaving: nothing from that group any more, at once.
    node.ok(&cat, "POST", &format!("/api/groups/{g1}/leave"), None)
        .await;
    assert_eq!(
        conversations(&all_hits(&node, &cat, "zebracorn", "").await),
        [room_id]
    );

    // Edit: found by the new words, not the old ones.
    let seq = send(&node, &ann, g1, "narwhal before the edit").await["seq"]
        .as_i64()
        .unwrap();
    expect_count(&node, &bob, "narwhal", "", 1).await;
    node.ok(
        &ann,
        "PATCH",
        &format!("/api/conversations/{g1}/messages/{seq}"),
        Some(json!({"content": "axolotl after the edit"})),
    )
    .await;
    expect_count(&node, &bob, "narwhal", "", 0).await;
    let edited = expect_count(&node, &bob, "axolotl", "", 1).await;
    assert_eq!(content(&edited[0]), "axolotl after the edit");
    assert!(edited[0]["message"]["editedAt"].is_i64());

    // Recall: gone for everyone.
    let seq = send(&node, &ann, g1, "quokka to recall").await["seq"]
        .as_i64()
        .unwrap();
    expect_count(&node, &bob, "quokka", "", 1).await;
    node.ok(
        &ann,
        "POST",
        &format!("/api/conversations/{g1}/messages/{seq}/recall"),
        None,
    )
    .await;
    // Hits are checked against the database, so this holds before the index catches up.
    assert!(all_hits(&node, &bob, "quokka", "").await.is_empty());
    assert!(all_hits(&node, &ann, "quokka", "").await.is_empty());

    // Delete-for-me: gone for that user only, and paging still counts right.
    let mut seqs = Vec::new();
    for i in 0..12 {
        let ack = send(&node, &ann, g1, &format!("pangolin number {i}")).await;
        seqs.push(ack["seq"].as_i64().unwrap());
    }
    expect_count(&node, &bob, "pangolin", "", 12).await;
    for seq in &seqs[..5] {
        node.ok(
            &bob,
            "POST",
            &format!("/api/conversations/{g1}/messages/{seq}/hide"),
            None,
        )
        .await;
    }
    let (_, page) = search(&node, &bob, "pangolin", "&limit=4").await;
    assert_eq!(page["hits"].as_array().unwrap().len(), 4);
    assert_eq!(page["hasMore"], true);
    let (_, page) = search(&node, &bob, "pangolin", "&limit=4&offset=4").await;
    assert_eq!(page["hits"].as_array().unwrap().len(), 3);
    assert_eq!(page["hasMore"], false);
    let hits = all_hits(&node, &bob, "pangolin", "").await;
    assert_eq!(hits.len(), 7);
    let hidden: HashSet<i64> = seqs[..5].iter().copied().collect();
    assert!(
        hits.iter()
            .all(|h| !hidden.contains(&h["message"]["seq"].as_i64().unwrap()))
    );
    assert_eq!(all_hits(&node, &ann, "pangolin", "").await.len(), 12);

    node.stop().await;
    deployment.cleanup().await;
});

on_both_backends!(bounds_and_users, |backend| async move {
    let deployment = Deployment::new(backend);
    let node = deployment.start().await;
    let ann = node.register("ann").await;

    // Bad requests are JSON 4xx.
    let long = "a".repeat(201);
    for (q, extra) in [
        ("", ""),
        ("   ", ""),
        (long.as_str(), ""),
        ("?!…", ""),
        ("x", "&limit=0"),
        ("x", "&limit=51"),
        ("x", "&offset=1001"),
        ("x", "&from=10&to=5"),
    ] {
        let (status, body) = search(&node, &ann, q, extra).await;
        assert_eq!(
            (status, body["id"].as_str()),
            (400, Some("bad_query")),
            "{q:?}{extra}"
        );
    }
    let (status, body) = search(&node, &ann, "x", "&limit=abc").await;
    assert_eq!((status, body["id"].as_str()), (400, Some("BAD_REQUEST")));
    let (status, _) = search(&node, &ann, "x", "&colour=red").await;
    assert_eq!(status, 400);
    let (status, body) = node
        .call(None, "GET", "/api/search/messages?q=x", None)
        .await;
    assert_eq!((status, body["id"].as_str()), (401, Some("UNAUTHORIZED")));
    let (status, _) = search(&node, &ann, &"a".repeat(200), "&limit=50&offset=1000").await;
    assert_eq!(status, 200);

    // Users: by username prefix; by email only with the whole local part and an '@'.
    let tag = unique("z");
    let username = format!("Zed{tag}");
    let local = format!("secret.{tag}");
    let email = format!("{local}@mail.example");
    let created = node
        .post_json(
            "/api/create-account",
            json!({"username": username, "email": email, "password": "correct horse battery"}),
        )
        .await;
    assert_eq!(created.status(), 204);
    let users = async |q: &str| -> Value {
        let path = format!("/api/search/users?q={}", enc(q));
        let (status, body) = node.call(Some(&ann), "GET", &path, None).await;
        assert_eq!(status, 200, "{q}: {body}");
        body
    };
    let found = |body: &Value| {
        body.as_array()
            .unwrap()
            .iter()
            .any(|u| u["username"] == username.as_str())
    };
    for q in [
        username.clone(),
        username.to_lowercase(),
        username[..6].to_uppercase(),
        format!("{local}@"),
        format!("{local}@mail"),
        email.clone(),
        email.to_uppercase(),
    ] {
        let body = users(&q).await;
        assert!(found(&body), "{q} finds the user: {body}");
        assert!(
            body.as_array()
                .unwrap()
                .iter()
                .all(|u| u.get("email").is_none()),
            "no emails in results"
        );
    }
    for q in [
        "secret.".to_owned(),
        local.clone(),
        format!("{}@mail.example", &local[..local.len() - 1]),
        "@mail.example".to_owned(),
        "mail.example".to_owned(),
    ] {
        assert!(!found(&users(&q).await), "{q} must not find the user");
    }
    let (status, body) = node
        .call(Some(&ann), "GET", "/api/search/users?q=", None)
        .await;
    assert_eq!((status, body["id"].as_str()), (400, Some("bad_query")));
    let (status, _) = node
        .call(Some(&ann), "GET", "/api/search/users?q=a&limit=51", None)
        .await;
    assert_eq!(status, 400);
    let (status, _) = node.call(None, "GET", "/api/search/users?q=a", None).await;
    assert_eq!(status, 401);

    node.stop().await;
    deployment.cleanup().await;
});

on_both_backends!(index_survives_restarts_and_rebuilds, |backend| async move {
    let mut deployment = Deployment::new(backend);
    let dir = std::env::temp_dir().join(unique("hearth_search_dir"));
    deployment.config.search_dir = Some(dir.clone());
    let node = deployment.start().await;
    let ann = node.register("ann").await;
    let (mut socket, _) = node.connect(&ann).await;
    let words: Vec<String> = (0..50).map(|i| format!("wombat {i} 袋熊")).collect();
    post_all(&mut socket, "general", &words).await;
    expect_count(&node, &ann, "袋熊", "", 50).await;
    socket.close().await;
    node.stop().await;

    // Restarted: the index is there (no waiting), and goes on from where it was.
    let node = deployment.start().await;
    assert_eq!(all_hits(&node, &ann, "wombat", "").await.len(), 50);
    let (mut socket, _) = node.connect(&ann).await;
    post_all(&mut socket, "general", &["wombat later".into()]).await;
    expect_count(&node, &ann, "wombat", "", 51).await;
    socket.close().await;
    node.stop().await;

    // A broken index is rebuilt from the database.
    std::fs::write(dir.join("meta.json"), "not an index").unwrap();
    let node = deployment.start().await;
    expect_count(&node, &ann, "wombat", "", 51).await;
    node.stop().await;

    // And so is a lost one.
    std::fs::remove_dir_all(&dir).unwrap();
    let node = deployment.start().await;
    expect_count(&node, &ann, "袋熊", "", 50).await;
    node.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
    deployment.cleanup().await;
});

on_both_backends!(
    rows_read_again_after_a_restart_are_not_doubled,
    |backend| async move {
        let mut deployment = Deployment::new(backend);
        let dir = std::env::temp_dir().join(unique("hearth_search_replay"));
        deployment.config.search_dir = Some(dir.clone());
        let node = deployment.start().await;
        let ann = node.register("ann").await;
        let (mut socket, _) = node.connect(&ann).await;
        let first: Vec<String> = (0..5).map(|i| format!("quokka {i}")).collect();
        post_all(&mut socket, "general", &first).await;
        expect_count(&node, &ann, "quokka", "", 5).await;
        // A feed row whose message never shows up, as a rolled-back MySQL insert leaves: the
        // tailer waits for it (GRACE), so the index's low-water mark stays below it while the
        // rows after it are applied and committed.
        deployment
            .execute("INSERT INTO message_feed (conversation_id, seq) VALUES (0, 0)")
            .await;
        let later: Vec<String> = (5..10).map(|i| format!("quokka {i}")).collect();
        post_all(&mut socket, "general", &later).await;
        expect_count(&node, &ann, "quokka", "", 10).await;
        socket.close().await;
        node.stop().await;

        // Restarted before the wait ran out: the rows after the hole are read again, and must
        // replace their documents, not add second ones.
        let node = deployment.start().await;
        let (mut socket, _) = node.connect(&ann).await;
        post_all(&mut socket, "general", &["quokka 10".into()]).await;
        // The new message is applied after the re-read rows (feed order), so once it is found the
        // replay is done; `all_hits` fails on a hit found twice.
        expect_count(&node, &ann, "quokka", "", 11).await;
        socket.close().await;
        node.stop().await;
        let _ = std::fs::remove_dir_all(&dir);
        deployment.cleanup().await;
    }
);

/// Two nodes on one MariaDB: whichever stored a message, both find it, in the same order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_nodes_answer_the_same() {
    let deployment = Deployment::new(Backend::Cluster);
    let a = deployment.start().await;
    let b = deployment.start().await;
    let ann = a.register("ann").await;
    let bob = b.register("bob").await;
    a.befriend(&ann, &bob).await;
    let g = group(&a, &ann, "both", &[&bob]).await;
    let mut rng = Lcg(11);
    let corpus: Vec<String> = (0..300usize)
        .map(|i| {
            if i.is_multiple_of(2) {
                chinese(i, &mut rng)
            } else {
                english(i, &mut rng)
            }
        })
        .collect();
    let (mut on_a, _) = a.connect(&ann).await;
    let (mut on_b, _) = b.connect(&bob).await;
    post_all(&mut on_a, "general", &corpus[..150]).await;
    post_all(&mut on_b, "random", &corpus[150..]).await;
    for i in 0..10usize {
        let (node, who) = if i.is_multiple_of(2) {
            (&a, &ann)
        } else {
            (&b, &bob)
        };
        send(node, who, g, &format!("capybara {i} 你好")).await;
    }
    let queries = [
        "你好",
        "数据库",
        "database",
        "running",
        "capybara 你好",
        "backup",
    ];
    for q in queries {
        let expected = corpus
            .iter()
            .filter(|c| {
                let c = c.to_lowercase();
                match q {
                    "running" => c.contains("run"),
                    "capybara 你好" => false,
                    q => c.contains(q),
                }
            })
            .count()
            + if q == "你好" || q == "capybara 你好" {
                10
            } else {
                0
            };
        let on_a = expect_count(&a, &ann, q, "", expected).await;
        let on_b = expect_count(&b, &bob, q, "", expected).await;
        let ids = |hits: &[Value]| -> Vec<String> {
            hits.iter()
                .map(|h| h["message"]["id"].as_str().unwrap().to_owned())
                .collect()
        };
        assert_eq!(ids(&on_a), ids(&on_b), "{q}: same hits, same order");
    }
    a.stop().await;
    b.stop().await;
    deployment.cleanup().await;
}

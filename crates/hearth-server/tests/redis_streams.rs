//! Cluster mode's per-room Redis streams: they mirror the stored messages under the wire ids,
//! serve reads when they provably hold the page, and never make a read wrong when trimmed,
//! emptied or tampered with.

mod common;

use common::{Backend, Deployment, contents, id_parts, redis_url, room};
use serde_json::json;

async fn redis() -> redis::aio::MultiplexedConnection {
    redis::Client::open(redis_url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .expect("Redis must be running for the cluster tests")
}

/// `general` is the first room of a fresh deployment, conversation 1.
fn general_stream(deployment: &Deployment) -> String {
    format!("{}room-messages:1", deployment.redis_prefix)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_mirrors_messages_under_their_wire_ids_and_serves_reads() {
    let deployment = Deployment::new(Backend::Cluster);
    let node = deployment.start().await;
    let user = node.register("streamer").await;
    let (mut client, _) = node.connect(&user).await;
    client.post("general", &["one", "two", "three"]).await;
    let echo = client.expect("serverMessages").await;
    let ids: Vec<String> = echo["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_owned())
        .collect();

    let mut redis = redis().await;
    let key = general_stream(&deployment);
    let entries: Vec<(String, Vec<String>)> = redis::cmd("XRANGE")
        .arg(&key)
        .arg("-")
        .arg("+")
        .query_async(&mut redis)
        .await
        .unwrap();
    let stream_ids: Vec<String> = entries.iter().map(|(id, _)| id.clone()).collect();
    assert_eq!(stream_ids, ids, "stream entry ids are the message ids");
    assert_eq!(
        entries[0].1,
        ["u", &user.id.to_string(), "n", &user.username, "c", "one"]
    );

    // Rewrite the stream with different contents under the same ids: a complete, contiguous
    // stream is what reads are served from, so the rewrite shows.
    let _: i64 = redis::cmd("DEL")
        .arg(&key)
        .query_async(&mut redis)
        .await
        .unwrap();
    for (id, _) in &entries {
        let _: String = redis::cmd("XADD")
            .arg(&key)
            .arg(id)
            .arg("u")
            .arg(user.id)
            .arg("n")
            .arg(&user.username)
            .arg("c")
            .arg(format!("cached {id}"))
            .query_async(&mut redis)
            .await
            .unwrap();
    }
    let (_, hello) = node.connect(&user).await;
    let served = contents(&room(&hello, "general")["messages"]);
    assert!(
        served.iter().all(|c| c.starts_with("cached ")),
        "served from the stream: {served:?}"
    );

    // A stream missing its newest entry (an XADD lost while its DEL failed too) is not
    // trusted for the newest page: messages already broadcast must be in hello.
    let _: i64 = redis::cmd("XDEL")
        .arg(&key)
        .arg(&ids[2])
        .query_async(&mut redis)
        .await
        .unwrap();
    let (_, hello) = node.connect(&user).await;
    assert_eq!(
        contents(&room(&hello, "general")["messages"]),
        ["three", "two", "one"]
    );

    // A stream with a hole is not trusted: the page comes from SQL.
    let _: i64 = redis::cmd("XDEL")
        .arg(&key)
        .arg(&ids[1])
        .query_async(&mut redis)
        .await
        .unwrap();
    let (_, hello) = node.connect(&user).await;
    assert_eq!(
        contents(&room(&hello, "general")["messages"]),
        ["three", "two", "one"]
    );
    node.stop().await;
    deployment.cleanup().await;
}

/// The seqs of every message of `general`, from `hello` back through history.
async fn read_everything(
    node: &common::Node,
    user: &common::Account,
    hello: serde_json::Value,
) -> Vec<i64> {
    let (mut reader, _) = node.connect(user).await;
    let mut all = room(&hello, "general")["messages"]
        .as_array()
        .unwrap()
        .clone();
    let mut more = room(&hello, "general")["hasMoreMessages"]
        .as_bool()
        .unwrap();
    while more {
        let oldest = all.last().unwrap()["id"].clone();
        reader
            .send(json!({"type": "requestRoomHistory", "payload": {"roomId": "general", "firstMessageId": oldest}}))
            .await;
        let page = reader.expect("roomHistory").await;
        all.extend(page["messages"].as_array().unwrap().iter().cloned());
        more = page["hasMoreMessages"].as_bool().unwrap();
    }
    all.iter().map(|m| id_parts(&m["id"]).1).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trimmed_or_lost_streams_fall_back_to_sql() {
    let mut deployment = Deployment::new(Backend::Cluster);
    deployment.stream_max_len = 10;
    let node = deployment.start().await;
    let user = node.register("trimmer").await;
    let (mut client, _) = node.connect(&user).await;
    for chunk in 0..26 {
        let batch: Vec<String> = (0..10).map(|i| format!("m{}", chunk * 10 + i)).collect();
        let refs: Vec<&str> = batch.iter().map(String::as_str).collect();
        client.post("general", &refs).await;
        client.expect("serverMessages").await;
    }
    let mut redis = redis().await;
    let key = general_stream(&deployment);
    let len: i64 = redis::cmd("XLEN")
        .arg(&key)
        .query_async(&mut redis)
        .await
        .unwrap();
    assert!(len < 260, "the stream is trimmed (holds {len})");

    let expected: Vec<i64> = (1..=260).rev().collect();
    let (_, hello) = node.connect(&user).await;
    assert_eq!(
        read_everything(&node, &user, hello).await,
        expected,
        "trimmed stream"
    );

    // Redis lost the stream (a restart without persistence): reads still complete.
    let _: i64 = redis::cmd("DEL")
        .arg(&key)
        .query_async(&mut redis)
        .await
        .unwrap();
    let (_, hello) = node.connect(&user).await;
    assert_eq!(
        read_everything(&node, &user, hello).await,
        expected,
        "lost stream"
    );

    // New messages refill it from where SQL is; reads stay exact.
    client.post("general", &["after the loss"]).await;
    client.expect("serverMessages").await;
    let (_, hello) = node.connect(&user).await;
    assert_eq!(
        room(&hello, "general")["messages"][0]["content"],
        "after the loss"
    );
    let mut expected_after = vec![261];
    expected_after.extend(expected);
    assert_eq!(
        read_everything(&node, &user, hello).await,
        expected_after,
        "refilled stream"
    );
    node.stop().await;
    deployment.cleanup().await;
}

//! Readiness of a real node whose Redis goes away and comes back.

use crate::harness::{Cluster, PrivateRedis, eventually};
use serde_json::Value;
use std::time::Duration;

async fn ready(node: &crate::common::Node) -> (u16, Value) {
    let response = node.get_as("/readyz", None).await;
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_follows_redis() {
    let mut redis = PrivateRedis::start().await;
    let mut cluster = Cluster::new(&redis.url(), None);
    let node = cluster.start(0).await;
    let (status, body) = ready(&node).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["checks"]["bus"], "ok", "{body}");

    redis.stop();
    let down = eventually(Duration::from_secs(15), async || {
        let (status, body) = ready(&node).await;
        status == 503 && body["checks"]["sessions"] != "ok" && body["checks"]["database"] == "ok"
    })
    .await;
    assert!(down, "503 with Redis down: {:?}", ready(&node).await);
    // Alive all the same: a liveness probe must not restart a node for a backend outage.
    assert_eq!(node.get_as("/healthz", None).await.status(), 200);

    redis.restart().await;
    let up = eventually(Duration::from_secs(15), async || {
        ready(&node).await.0 == 200
    })
    .await;
    assert!(
        up,
        "ready again once Redis is back: {:?}",
        ready(&node).await
    );
    cluster.cleanup().await;
}

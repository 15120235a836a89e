//! Test harness: a real Hearth node on a loopback port, on either backend, and real HTTP and
//! WebSocket clients talking to it.
//!
//! The cluster backend needs MariaDB/MySQL and Redis. Their URLs come from
//! `HEARTH_TEST_MYSQL` (default `mysql://root@127.0.0.1:3306`) and `HEARTH_TEST_REDIS` (default
//! `redis://127.0.0.1:6379`); if they are unreachable the test fails — it never skips.
#![allow(dead_code)]

use futures_util::{SinkExt, StreamExt};
use hearth_core::store::Stores;
use hearth_redis::{Redis, RedisBus, RedisPresence};
use hearth_server::{Cluster, FileSettings, Server, ServerConfig};
use hearth_sql::SqlStore;
use serde_json::{Value, json};
use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// Runs an async test body once per backend, as two `#[tokio::test]`s.
#[macro_export]
macro_rules! on_both_backends {
    ($name:ident, $body:expr) => {
        mod $name {
            use super::*;
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                ($body)(common::Backend::Sqlite).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn cluster() {
                ($body)(common::Backend::Cluster).await;
            }
        }
    };
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// SQLite in a fresh directory.
    Sqlite,
    /// A fresh MySQL database plus Redis under a fresh key prefix.
    Cluster,
}

pub const TIMEOUT: Duration = Duration::from_secs(10);

pub fn unique(tag: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!(
        "{tag}_{}_{}_{}",
        std::process::id(),
        nanos % 1_000_000_000,
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

pub fn mysql_base() -> String {
    std::env::var("HEARTH_TEST_MYSQL").unwrap_or_else(|_| "mysql://root@127.0.0.1:3306".into())
}

pub fn redis_url() -> String {
    std::env::var("HEARTH_TEST_REDIS").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// Where a test deployment keeps its data; survives node restarts.
pub struct Deployment {
    pub backend: Backend,
    database_url: String,
    sqlite_dir: Option<PathBuf>,
    /// Uploads: `<files_dir>/blobs` and `<files_dir>/tmp` (local disk on both backends unless
    /// a test swaps `config.files.blobs`).
    pub files_dir: PathBuf,
    pub redis_prefix: String,
    /// Roughly how many messages each room's Redis stream keeps (cluster only).
    pub stream_max_len: usize,
    pub config: ServerConfig,
}

impl Deployment {
    pub fn new(backend: Backend) -> Deployment {
        let name = unique("hearth_t");
        let (database_url, sqlite_dir) = match backend {
            Backend::Sqlite => {
                let dir = std::env::temp_dir().join(&name);
                std::fs::create_dir_all(&dir).unwrap();
                (
                    format!("sqlite://{}?mode=rwc", dir.join("hearth.db").display()),
                    Some(dir),
                )
            }
            Backend::Cluster => (format!("{}/{name}", mysql_base()), None),
        };
        let files_dir = std::env::temp_dir().join(format!("{name}_files"));
        let files = FileSettings {
            limits: hearth_core::files::FileLimits::default(),
            staging: files_dir.join("tmp"),
            blobs: std::sync::Arc::new(
                hearth_blobs::LocalBlobs::open(&files_dir.join("blobs")).unwrap(),
            ),
        };
        Deployment {
            backend,
            database_url,
            sqlite_dir,
            files_dir,
            redis_prefix: format!("{name}:"),
            stream_max_len: 1_000,
            config: ServerConfig {
                limits: hearth_core::Limits::default(),
                session_ttl: Duration::from_secs(3600),
                rooms: vec![
                    ("general".into(), "General".into()),
                    ("random".into(), "Random".into()),
                    ("help".into(), "Help".into()),
                ],
                secure_cookies: false,
                policy: hearth_core::Policy::default(),
                reap_interval: Duration::from_secs(3),
                security: hearth_server::Security::default(),
                // Tests open many sessions from one address; the limits have their own test.
                rate_limits: hearth_server::RateLimits {
                    enabled: false,
                    ..hearth_server::RateLimits::default()
                },
                search_dir: None,
                metrics: hearth_server::MetricsConfig::default(),
                files,
                transcriber: hearth_voice::TranscriberConfig::default(),
            },
        }
    }

    async fn stores(&self) -> (Stores, Cluster) {
        let sql = SqlStore::open(&self.database_url)
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "cannot open {} (is MariaDB running?): {e}",
                    self.database_url
                )
            });
        let durable = sql.stores();
        match self.backend {
            Backend::Sqlite => (durable, Cluster::embedded()),
            Backend::Cluster => {
                let redis = Redis::connect(&redis_url(), &self.redis_prefix)
                    .await
                    .unwrap_or_else(|e| panic!("cannot reach Redis at {}: {e}", redis_url()));
                let presence = RedisPresence::start(redis.clone(), Duration::from_secs(10))
                    .await
                    .unwrap();
                let bus = RedisBus::connect(&redis_url(), &self.redis_prefix)
                    .await
                    .unwrap();
                let login_throttle = hearth_redis::RedisLoginThrottle::new(redis.clone());
                let stores = hearth_redis::cluster_stores(durable, redis, self.stream_max_len);
                let cluster = Cluster {
                    bus: std::sync::Arc::new(bus),
                    presence,
                    login_throttle: Some(std::sync::Arc::new(login_throttle)),
                };
                (stores, cluster)
            }
        }
    }

    /// Starts a node on a free loopback port.
    pub async fn start(&self) -> Node {
        let (stores, cluster) = self.stores().await;
        let server = Server::start(stores, self.config.clone(), cluster)
            .await
            .expect("server starts");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            server
                .serve(listener, async move {
                    let _ = stopped.await;
                })
                .await
                .unwrap();
        });
        Node {
            base: format!("http://{addr}"),
            ws_url: format!("ws://{addr}/api/ws"),
            stop: Some(stop),
            task: Some(task),
            http: reqwest::Client::new(),
        }
    }

    /// The deployment's database URL (SQLite file or MySQL database).
    pub fn database_url(&self) -> &str {
        &self.database_url
    }

    /// Runs a `SELECT COUNT(*) …` with one integer parameter against the deployment's database.
    pub async fn count(&self, sql: &'static str, param: i64) -> i64 {
        let pool = self.pool().await;
        let n: i64 = sqlx::query_scalar(sql)
            .bind(param)
            .fetch_one(&pool)
            .await
            .unwrap();
        pool.close().await;
        n
    }

    /// Runs one statement against the deployment's database, behind the server's back.
    pub async fn execute(&self, sql: &'static str) {
        let pool = self.pool().await;
        sqlx::query(sql).execute(&pool).await.unwrap();
        pool.close().await;
    }

    /// Runs one statement with parameters against the deployment's database, behind the
    /// server's back. Parameters are JSON integers or strings, bound in order.
    pub async fn execute_with(&self, sql: &'static str, params: &[Value]) {
        let pool = self.pool().await;
        let mut query = sqlx::query(sql);
        for param in params {
            query = match param {
                Value::Number(n) => query.bind(n.as_i64().expect("integer parameter")),
                Value::String(s) => query.bind(s.clone()),
                other => panic!("unsupported parameter {other}"),
            };
        }
        query.execute(&pool).await.unwrap();
        pool.close().await;
    }

    /// A connection pool of the deployment's database, for tests that look behind the server.
    async fn pool(&self) -> sqlx::AnyPool {
        sqlx::any::install_default_drivers();
        sqlx::AnyPool::connect(&self.database_url).await.unwrap()
    }

    /// Drops what the deployment created (database, directory, Redis keys).
    pub async fn cleanup(self) {
        if let Some(dir) = &self.sqlite_dir {
            let _ = std::fs::remove_dir_all(dir);
        }
        let _ = std::fs::remove_dir_all(&self.files_dir);
        if self.backend == Backend::Cluster {
            use sqlx::Executor;
            sqlx::any::install_default_drivers();
            if let Ok(pool) = sqlx::AnyPool::connect(&format!("{}/mysql", mysql_base())).await {
                let name = self
                    .database_url
                    .rsplit('/')
                    .next()
                    .unwrap_or_default()
                    .to_owned();
                let _ = pool
                    .execute(sqlx::AssertSqlSafe(format!(
                        "DROP DATABASE IF EXISTS `{name}`"
                    )))
                    .await;
            }
            if let Ok(client) = redis::Client::open(redis_url())
                && let Ok(mut conn) = client.get_multiplexed_async_connection().await
            {
                let keys: Vec<String> = redis::cmd("KEYS")
                    .arg(format!("{}*", self.redis_prefix))
                    .query_async(&mut conn)
                    .await
                    .unwrap_or_default();
                for key in keys {
                    let _: Result<i64, _> = redis::cmd("DEL").arg(key).query_async(&mut conn).await;
                }
            }
        }
    }
}

/// A running node.
pub struct Node {
    pub base: String,
    pub ws_url: String,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
    pub http: reqwest::Client,
}

impl Node {
    /// A node running elsewhere (another process), reached at `base` (`http://host:port`).
    pub fn remote(base: &str) -> Node {
        Node {
            base: base.to_owned(),
            ws_url: format!("{}/api/ws", base.replacen("http", "ws", 1)),
            stop: None,
            task: None,
            http: reqwest::Client::new(),
        }
    }

    /// Graceful stop: sockets get 1012, the server task ends.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            tokio::time::timeout(Duration::from_secs(20), task)
                .await
                .expect("node stops in time")
                .unwrap();
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// GET with a session cookie (or none).
    pub async fn get_as(&self, path: &str, sid: Option<&str>) -> reqwest::Response {
        let mut request = self.http.get(self.url(path));
        if let Some(sid) = sid {
            request = request.header("cookie", format!("sid={sid}"));
        }
        request.send().await.unwrap()
    }

    /// Calls the JSON API as `account` (or anonymously); returns the status and the body
    /// (`null` when empty).
    pub async fn call(
        &self,
        account: Option<&Account>,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut request = self.http.request(method, self.url(path));
        if let Some(account) = account {
            request = request.header("cookie", format!("sid={}", account.sid));
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or_else(|_| panic!("JSON body, got {text:?}"))
        };
        (status, body)
    }

    /// Like [`Node::call`], asserting a 2xx answer.
    pub async fn ok(
        &self,
        account: &Account,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> Value {
        let (status, body) = self.call(Some(account), method, path, body).await;
        assert!(
            (200..300).contains(&status),
            "{method} {path} → {status} {body}"
        );
        body
    }

    /// Makes two accounts friends through the request/accept flow.
    pub async fn befriend(&self, a: &Account, b: &Account) {
        self.ok(
            a,
            "POST",
            "/api/friends/requests",
            Some(json!({"userId": b.id, "note": "hi"})),
        )
        .await;
        self.ok(
            b,
            "POST",
            &format!("/api/friends/requests/{}/accept", a.id),
            None,
        )
        .await;
    }

    /// Opens (or finds) the direct conversation of `a` with `b`; its id.
    pub async fn direct(&self, a: &Account, b: &Account) -> i64 {
        self.ok(a, "POST", "/api/direct", Some(json!({"userId": b.id})))
            .await["conversationId"]
            .as_i64()
            .expect("a conversation id")
    }

    /// Opens a native socket for another device of `account` and reads `hello`.
    pub async fn device(&self, account: &Account, platform: &str) -> Client {
        let mut request = format!("{}?platform={platform}", self.ws_url)
            .into_client_request()
            .unwrap();
        request.headers_mut().insert(
            "cookie",
            HeaderValue::from_str(&format!("sid={}", account.sid)).unwrap(),
        );
        let (stream, _) = tokio::time::timeout(TIMEOUT, tokio_tungstenite::connect_async(request))
            .await
            .expect("connect in time")
            .expect("websocket upgrade");
        let mut client = Client { stream };
        client.expect("hello").await;
        client
    }

    pub async fn post_json(&self, path: &str, body: Value) -> reqwest::Response {
        self.http
            .post(self.url(path))
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    /// Registers a fresh account; returns it logged in.
    pub async fn register(&self, name: &str) -> Account {
        let username = unique(name);
        let email = format!("{username}@example.com");
        let password = "correct horse battery".to_owned();
        let response = self
            .post_json(
                "/api/create-account",
                json!({"username": username, "email": email, "password": password}),
            )
            .await;
        assert_eq!(
            response.status(),
            204,
            "create-account: {:?}",
            response.text().await
        );
        let sid = session_cookie(&response).expect("create-account sets the sid cookie");
        let me: Value = self
            .get_as("/api/me", Some(&sid))
            .await
            .json()
            .await
            .unwrap();
        Account {
            id: me["id"].as_i64().unwrap(),
            username,
            email,
            password,
            sid,
        }
    }

    /// Opens a WebSocket with the account's cookie and reads `hello`.
    pub async fn connect(&self, account: &Account) -> (Client, Value) {
        let mut client = self.connect_with_cookie(Some(&account.sid)).await;
        let hello = client.recv().await;
        assert_eq!(hello["type"], "hello", "first frame must be hello: {hello}");
        (client, hello["payload"].clone())
    }

    pub async fn connect_with_cookie(&self, sid: Option<&str>) -> Client {
        let mut request = self.ws_url.as_str().into_client_request().unwrap();
        if let Some(sid) = sid {
            request.headers_mut().insert(
                "cookie",
                HeaderValue::from_str(&format!("sid={sid}")).unwrap(),
            );
        }
        let (stream, _) = tokio::time::timeout(TIMEOUT, tokio_tungstenite::connect_async(request))
            .await
            .expect("connect in time")
            .expect("websocket upgrade");
        Client { stream }
    }
}

pub fn session_cookie(response: &reqwest::Response) -> Option<String> {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| v.strip_prefix("sid="))
        .map(|v| v.split(';').next().unwrap_or_default().to_owned())
        .filter(|v| !v.is_empty())
}

#[derive(Debug, Clone)]
pub struct Account {
    pub id: i64,
    pub username: String,
    pub email: String,
    pub password: String,
    pub sid: String,
}

/// A WebSocket client speaking JSON frames.
pub struct Client {
    pub stream: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

/// What the socket said next.
#[derive(Debug)]
pub enum Event {
    Frame(Value),
    Closed(Option<u16>),
}

impl Client {
    pub async fn send(&mut self, frame: Value) {
        self.send_text(&frame.to_string()).await;
    }

    pub async fn send_text(&mut self, text: &str) {
        self.stream.send(Message::text(text)).await.unwrap();
    }

    pub async fn send_message(&mut self, message: Message) {
        self.stream.send(message).await.unwrap();
    }

    pub async fn post(&mut self, room: &str, contents: &[&str]) {
        let messages: Vec<Value> = contents.iter().map(|c| json!({"content": c})).collect();
        self.send(
            json!({"type": "clientMessages", "payload": {"roomId": room, "messages": messages}}),
        )
        .await;
    }

    pub async fn next_event(&mut self) -> Event {
        loop {
            let next = tokio::time::timeout(TIMEOUT, self.stream.next())
                .await
                .expect("the server answered in time");
            match next {
                Some(Ok(Message::Text(text))) => {
                    return Event::Frame(
                        serde_json::from_str(text.as_str()).expect("server sends JSON"),
                    );
                }
                Some(Ok(Message::Close(frame))) => {
                    return Event::Closed(frame.map(|f| u16::from(f.code)));
                }
                Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => continue,
                Some(Ok(Message::Binary(_))) => panic!("server sent a binary frame"),
                Some(Err(_)) | None => return Event::Closed(None),
            }
        }
    }

    /// The next frame; panics on close.
    pub async fn recv(&mut self) -> Value {
        match self.next_event().await {
            Event::Frame(frame) => frame,
            Event::Closed(code) => panic!("socket closed ({code:?}) while a frame was expected"),
        }
    }

    /// The next frame of the given type, panicking on anything else.
    pub async fn expect(&mut self, kind: &str) -> Value {
        let frame = self.recv().await;
        assert_eq!(frame["type"], kind, "expected a {kind} frame, got {frame}");
        frame["payload"].clone()
    }

    /// Waits for the close frame and returns its code.
    pub async fn expect_close(&mut self) -> Option<u16> {
        match self.next_event().await {
            Event::Closed(code) => code,
            Event::Frame(frame) => panic!("expected a close, got {frame}"),
        }
    }

    /// Asserts nothing arrives for a short while (used after the last expected frame).
    pub async fn expect_silence(&mut self, wait: Duration) {
        if let Ok(Some(Ok(message))) = tokio::time::timeout(wait, self.stream.next()).await {
            panic!("expected silence, got {message:?}");
        }
    }

    /// The next frame of type `kind`, skipping others (returned too, in order).
    pub async fn until(&mut self, kind: &str) -> (Value, Vec<Value>) {
        let mut skipped = Vec::new();
        loop {
            let frame = self.recv().await;
            if frame["type"] == kind {
                return (frame["payload"].clone(), skipped);
            }
            skipped.push(frame);
        }
    }

    /// The payload of the next frame of type `kind` for which `wanted` holds, skipping others.
    pub async fn until_with(&mut self, kind: &str, wanted: impl Fn(&Value) -> bool) -> Value {
        loop {
            let (payload, _) = self.until(kind).await;
            if wanted(&payload) {
                return payload;
            }
        }
    }

    /// The next inbox event of this kind.
    pub async fn event(&mut self, kind: &str) -> Value {
        self.until_with("event", |e| e["kind"] == kind).await
    }

    /// Sends a native message and waits for its ack (skipping other frames).
    pub async fn send_im(
        &mut self,
        conversation: i64,
        client_msg_id: &str,
        content: &str,
    ) -> Value {
        self.send(json!({"type": "send", "payload": {
            "conversationId": conversation, "clientMsgId": client_msg_id, "content": content}}))
            .await;
        loop {
            let frame = self.recv().await;
            match frame["type"].as_str() {
                Some("ack") if frame["payload"]["clientMsgId"] == client_msg_id => {
                    return frame["payload"].clone();
                }
                Some("error") => panic!("send refused: {frame}"),
                _ => {}
            }
        }
    }

    /// Sends a text message; the code it is refused with, or `None` when it is acknowledged.
    pub async fn send_refusal(&mut self, conversation: i64, client_msg_id: &str) -> Option<String> {
        self.send(json!({"type": "send", "payload": {
            "conversationId": conversation, "clientMsgId": client_msg_id, "content": "hi"}}))
            .await;
        loop {
            let frame = self.recv().await;
            let payload = &frame["payload"];
            match frame["type"].as_str() {
                Some("ack") if payload["clientMsgId"] == client_msg_id => return None,
                Some("error") if payload["clientMsgId"] == client_msg_id => {
                    return payload["code"].as_str().map(str::to_owned);
                }
                _ => {}
            }
        }
    }

    pub async fn close(mut self) {
        let _ = self
            .stream
            .close(Some(tokio_tungstenite::tungstenite::protocol::CloseFrame {
                code: CloseCode::Normal,
                reason: "".into(),
            }))
            .await;
    }
}

/// `(ms, seq)` of a wire message id.
pub fn id_parts(id: &Value) -> (i64, i64) {
    let s = id.as_str().expect("message id is a string");
    let (ms, seq) = s.split_once('-').expect("id is <ms>-<n>");
    (ms.parse().unwrap(), seq.parse().unwrap())
}

/// Contents of a list of wire messages.
pub fn contents(messages: &Value) -> Vec<String> {
    messages
        .as_array()
        .expect("messages is an array")
        .iter()
        .map(|m| m["content"].as_str().unwrap().to_owned())
        .collect()
}

pub fn room<'a>(hello: &'a Value, id: &str) -> &'a Value {
    hello["rooms"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == id)
        .unwrap_or_else(|| panic!("room {id} in hello"))
}

// ---------------------------------------------------------------- search

/// How long the index may take to catch up in a test (generous: debug builds, two cores).
pub const CATCH_UP: Duration = Duration::from_secs(30);

/// Percent-encodes a query-string value.
pub fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// One page of `GET /api/search/messages?q=…&extra`.
pub async fn search(node: &Node, account: &Account, q: &str, extra: &str) -> (u16, Value) {
    let path = format!("/api/search/messages?q={}{extra}", enc(q));
    node.call(Some(account), "GET", &path, None).await
}

/// Every hit for `q`, paging 50 at a time; asserts pages do not repeat hits.
pub async fn all_hits(node: &Node, account: &Account, q: &str, extra: &str) -> Vec<Value> {
    let mut hits: Vec<Value> = Vec::new();
    let mut offset = 0;
    loop {
        let (status, page) = search(
            node,
            account,
            q,
            &format!("{extra}&limit=50&offset={offset}"),
        )
        .await;
        assert_eq!(status, 200, "search {q}: {page}");
        let got = page["hits"].as_array().unwrap();
        hits.extend(got.iter().cloned());
        if page["hasMore"] != true {
            break;
        }
        assert_eq!(got.len(), 50, "a page before the last is full");
        offset += 50;
    }
    let ids: HashSet<&str> = hits
        .iter()
        .map(|h| h["message"]["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), hits.len(), "no hit twice for {q}");
    hits
}

/// Polls until `q` has exactly `count` hits for `account`; returns them.
pub async fn expect_count(
    node: &Node,
    account: &Account,
    q: &str,
    extra: &str,
    count: usize,
) -> Vec<Value> {
    let deadline = Instant::now() + CATCH_UP;
    loop {
        let hits = all_hits(node, account, q, extra).await;
        if hits.len() == count {
            return hits;
        }
        assert!(
            Instant::now() < deadline,
            "{q:?}{extra}: expected {count} hits, still {} after {CATCH_UP:?}",
            hits.len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Makes `account` an admin the way the CLI does: through the store, not the API.
pub async fn make_admin(deployment: &Deployment, account: &Account) {
    let store = hearth_sql::SqlStore::connect(deployment.database_url())
        .await
        .unwrap();
    let stores = store.clone().stores();
    assert!(
        stores
            .admin
            .set_user_role(account.id, hearth_core::admin::UserRole::Admin)
            .await
            .unwrap()
    );
    store.close().await;
}

//! The client side of Hearth's protocol that the scenarios share: accounts over HTTP, sockets
//! (optionally bound to a chosen loopback source address), and a lenient decoder for the
//! server frames the benchmark looks at.
//!
//! Everything that comes from the network is checked and turned into an error, never unwrapped:
//! a misbehaving server must show up in the report, not as a panic in a load generator task.

use anyhow::{Context, Result, anyhow, bail};
use futures_util::StreamExt;
use serde::Deserialize;
use serde_json::Value;
use std::borrow::Cow;
use std::net::{IpAddr, SocketAddr};
use std::sync::OnceLock;
use std::time::{Duration, Instant};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{WebSocketStream, client_async_with_config};

pub type Ws = WebSocketStream<TcpStream>;

/// Every password the benchmark uses; passwords need 10..=100 bytes.
const PASSWORD: &str = "bench-password-0123";

/// How long a single HTTP request or WebSocket handshake may take before the run fails.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// Nanoseconds since the first call in this process: the shared clock of every timestamp the
/// benchmark writes into a message and compares on receipt (all clients live in this process).
pub fn now_ns() -> u64 {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    EPOCH.get_or_init(Instant::now).elapsed().as_nanos() as u64
}

/// A random tag for this run, put into user names and message contents so that a run ignores
/// leftovers of earlier runs against the same server.
pub fn run_tag() -> String {
    format!("{:08x}", fastrand::u32(..))
}

/// A logged-in benchmark user.
#[derive(Clone, Debug)]
pub struct Account {
    pub token: String,
}

/// HTTP access to one node.
#[derive(Clone)]
pub struct Http {
    client: reqwest::Client,
    base: String,
}

impl Http {
    pub fn new(base: &str) -> Result<Self> {
        let client = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .build()
            .context("building the HTTP client")?;
        Ok(Http {
            client,
            base: base.trim_end_matches('/').to_owned(),
        })
    }

    /// `POST /api/create-account`; the session comes back as the `sid` cookie.
    pub async fn create_account(&self, username: &str, email: &str) -> Result<Account> {
        let body = serde_json::json!({"username": username, "email": email, "password": PASSWORD});
        let response = self
            .client
            .post(format!("{}/api/create-account", self.base))
            .json(&body)
            .send()
            .await
            .context("POST /api/create-account")?;
        let token = session_from(response)
            .await
            .context("creating an account")?;
        Ok(Account { token })
    }

    /// `POST /api/login` with the password every benchmark account has.
    pub async fn login(&self, email: &str) -> Result<String> {
        let body = serde_json::json!({"email": email, "password": PASSWORD});
        let response = self
            .client
            .post(format!("{}/api/login", self.base))
            .json(&body)
            .send()
            .await
            .context("POST /api/login")?;
        session_from(response).await.context("logging in")
    }

    /// The id of the token's user (`GET /api/me`).
    pub async fn my_id(&self, token: &str) -> Result<i64> {
        let me = self
            .request(reqwest::Method::GET, token, "/api/me", None)
            .await?;
        me.get("id")
            .and_then(Value::as_i64)
            .ok_or_else(|| anyhow!("/api/me answered without an integer id: {me}"))
    }

    /// The sum of a metric's samples on `GET /metrics` (every label set), or an error when the
    /// node does not serve them (metrics off, or behind a token).
    pub async fn metric_sum(&self, name: &str) -> Result<f64> {
        let text = self
            .client
            .get(format!("{}/metrics", self.base))
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .context("GET /metrics")?
            .text()
            .await
            .context("GET /metrics")?;
        Ok(metric_sum_in(&text, name))
    }

    /// An authenticated JSON request; a non-2xx answer is an error carrying the body.
    /// `204 No Content` becomes `Value::Null`.
    pub async fn request(
        &self,
        method: reqwest::Method,
        token: &str,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value> {
        let mut request = self
            .client
            .request(method.clone(), format!("{}{path}", self.base))
            .bearer_auth(token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request
            .send()
            .await
            .with_context(|| format!("{method} {path}"))?;
        let status = response.status();
        let text = response
            .text()
            .await
            .with_context(|| format!("{method} {path}"))?;
        if !status.is_success() {
            bail!("{method} {path}: {status} {text}");
        }
        if text.is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_str(&text).with_context(|| format!("{method} {path}: body is not JSON"))
    }
}

/// The sum of the samples of metric `name` in Prometheus text (`name{labels} value` lines).
fn metric_sum_in(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|line| line.split(['{', ' ']).next() == Some(name))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

async fn session_from(response: reqwest::Response) -> Result<String> {
    let status = response.status();
    let token = sid_cookie(
        response
            .headers()
            .get_all(reqwest::header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok()),
    );
    if !status.is_success() {
        let text = response.text().await.unwrap_or_default();
        bail!("{status} {text}");
    }
    token.ok_or_else(|| anyhow!("{status} without a sid cookie"))
}

/// The value of the `sid` cookie among `Set-Cookie` header values, if one sets it non-empty.
pub fn sid_cookie<'a>(set_cookies: impl IntoIterator<Item = &'a str>) -> Option<String> {
    set_cookies.into_iter().find_map(|header| {
        let pair = header.split(';').next()?.trim();
        let value = pair.strip_prefix("sid=")?;
        (!value.is_empty()).then(|| value.to_owned())
    })
}

/// Creates `count` accounts named `hb<tag>-<prefix><i>`, `concurrency` sign-ups at a time
/// (each costs the server one argon2id hash), spread over `urls`.
pub async fn create_accounts(
    urls: &[String],
    tag: &str,
    prefix: &str,
    count: usize,
    concurrency: usize,
) -> Result<Vec<Account>> {
    let clients: Vec<Http> = urls.iter().map(|u| Http::new(u)).collect::<Result<_>>()?;
    let names: Vec<(usize, Http)> = (0..count)
        .map(|i| (i, clients[i % clients.len()].clone()))
        .collect();
    let mut accounts: Vec<(usize, Account)> = futures_util::stream::iter(names)
        .map(|(i, http)| async move {
            let username = format!("hb{tag}-{prefix}{i}");
            let email = format!("hb{tag}-{prefix}{i}@bench.test");
            http.create_account(&username, &email)
                .await
                .map(|account| (i, account))
        })
        .buffer_unordered(concurrency.max(1))
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<_>>()?;
    accounts.sort_by_key(|(i, _)| *i);
    Ok(accounts.into_iter().map(|(_, a)| a).collect())
}

/// Bytes a socket asks the kernel for per read. tungstenite zero-fills its read buffer up to
/// this size before every read: at its default of 128 KiB that memset was 36 % of the load
/// generator's CPU in a 50 msgs/s fan-out (13.4 µs of client CPU per delivery, twice the
/// server's), and the client's lateness showed up as the server's latency. A burst frame
/// larger than this still arrives whole, over several reads.
pub const READ_BUFFER: usize = 8 * 1024;

/// Socket options for one connection.
#[derive(Clone, Copy, Default)]
pub struct ConnectOptions {
    /// Local address to bind before connecting (a 127.0.0.x other than 127.0.0.1 gives another
    /// 28 000 ephemeral ports).
    pub bind: Option<IpAddr>,
    /// The client read buffer, [`READ_BUFFER`] unless set (idle-connection runs shrink it).
    pub read_buffer: Option<usize>,
    /// Native client query (`?platform=desktop`).
    pub platform: Option<&'static str>,
}

/// Opens `/api/ws` on the node at `base` (`http://host:port`) with `token` as a bearer.
pub async fn connect(base: &str, token: &str, options: ConnectOptions) -> Result<Ws> {
    let url = reqwest::Url::parse(base).with_context(|| format!("bad --url {base}"))?;
    let host = url.host_str().context("--url has no host")?;
    let port = url.port_or_known_default().context("--url has no port")?;
    let address: SocketAddr = tokio::net::lookup_host((host, port))
        .await
        .with_context(|| format!("resolving {host}"))?
        .find(SocketAddr::is_ipv4)
        .with_context(|| format!("{host} has no IPv4 address"))?;
    let socket = TcpSocket::new_v4().context("creating a socket")?;
    if let Some(ip) = options.bind {
        socket
            .bind(SocketAddr::new(ip, 0))
            .with_context(|| format!("binding to {ip}"))?;
    }
    let stream = tokio::time::timeout(REQUEST_TIMEOUT, socket.connect(address))
        .await
        .context("TCP connect timed out")?
        .with_context(|| format!("connecting to {address}"))?;
    stream.set_nodelay(true).context("TCP_NODELAY")?;

    let query = options
        .platform
        .map(|p| format!("?platform={p}"))
        .unwrap_or_default();
    let mut request = format!("ws://{host}:{port}/api/ws{query}")
        .into_client_request()
        .context("building the upgrade request")?;
    request.headers_mut().insert(
        "authorization",
        HeaderValue::from_str(&format!("Bearer {token}")).context("token is not a header")?,
    );
    // Every send is flushed at once (`SinkExt::send`), so no write buffer is kept either.
    let config = WebSocketConfig::default()
        .read_buffer_size(options.read_buffer.unwrap_or(READ_BUFFER))
        .write_buffer_size(0);
    let (ws, _) = tokio::time::timeout(
        REQUEST_TIMEOUT,
        client_async_with_config(request, stream, Some(config)),
    )
    .await
    .context("WebSocket handshake timed out")?
    .context("WebSocket handshake")?;
    Ok(ws)
}

/// Reads frames until the `hello` (always the first) and returns its rooms.
pub async fn read_hello(ws: &mut Ws) -> Result<Vec<HelloRoom>> {
    let frame = tokio::time::timeout(REQUEST_TIMEOUT, next_text(ws))
        .await
        .context("no hello within the timeout")??;
    let hello: Frame<'_, HelloPayload> =
        serde_json::from_str(&frame).context("the first frame is not a hello")?;
    if hello.kind != "hello" {
        bail!("expected hello first, got {}", hello.kind);
    }
    Ok(hello
        .payload
        .rooms
        .into_iter()
        .map(|r| HelloRoom {
            id: r.id.into_owned(),
            newest: r.messages.first().map(|m| m.id.clone().into_owned()),
        })
        .collect())
}

/// The server ended the socket with a close frame (found in an error chain by downcasting).
#[derive(Debug)]
pub struct ServerClosed(pub Option<tungstenite::protocol::CloseFrame>);

impl ServerClosed {
    /// Closed with 1013 ("try again later"): the server was overloaded, a client retries.
    pub fn is_try_later(&self) -> bool {
        self.0
            .as_ref()
            .is_some_and(|f| f.code == tungstenite::protocol::frame::coding::CloseCode::Again)
    }
}

impl std::fmt::Display for ServerClosed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "server closed the socket: {:?}", self.0)
    }
}

impl std::error::Error for ServerClosed {}

/// The next text frame; pings are answered by tungstenite on the next read, others skipped.
pub async fn next_text(ws: &mut Ws) -> Result<tungstenite::Utf8Bytes> {
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(text))) => return Ok(text),
            Some(Ok(Message::Close(frame))) => return Err(ServerClosed(frame).into()),
            Some(Ok(_)) => {}
            Some(Err(error)) => return Err(error).context("reading from the socket"),
            None => bail!("socket ended"),
        }
    }
}

/// A room as `hello` describes it: its id and the id of its newest message, if any.
pub struct HelloRoom {
    pub id: String,
    pub newest: Option<String>,
}

/// `{"type", "payload"}`, decoded lazily: the payload type picks the fields it needs and
/// ignores the rest, so one frame type serves every server frame the benchmark reads.
#[derive(Deserialize)]
pub struct Frame<'a, P> {
    #[serde(rename = "type", borrow)]
    pub kind: Cow<'a, str>,
    pub payload: P,
}

/// Peeks at a frame's type only (the payload is skipped, not decoded).
pub fn frame_type(text: &str) -> Result<String> {
    #[derive(Deserialize)]
    struct TypeOnly<'a> {
        #[serde(rename = "type", borrow)]
        kind: Cow<'a, str>,
    }
    let frame: TypeOnly<'_> = serde_json::from_str(text).context("frame is not JSON")?;
    Ok(frame.kind.into_owned())
}

#[derive(Deserialize)]
struct HelloPayload<'a> {
    #[serde(borrow)]
    rooms: Vec<HelloRoomWire<'a>>,
}

#[derive(Deserialize)]
struct HelloRoomWire<'a> {
    #[serde(borrow)]
    id: Cow<'a, str>,
    #[serde(borrow)]
    messages: Vec<RoomMessage<'a>>,
}

/// A room message (`serverMessages`, `roomHistory`); the user and timestamp are not needed.
#[derive(Deserialize)]
pub struct RoomMessage<'a> {
    #[serde(borrow)]
    pub id: Cow<'a, str>,
    #[serde(borrow)]
    pub content: Cow<'a, str>,
}

/// The payload of `serverMessages` and `roomHistory`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RoomMessages<'a> {
    #[serde(borrow)]
    pub room_id: Cow<'a, str>,
    #[serde(borrow)]
    pub messages: Vec<RoomMessage<'a>>,
}

/// The payload of an `error` frame.
#[derive(Deserialize, Debug)]
#[serde(rename_all = "camelCase")]
pub struct ErrorPayload {
    pub code: String,
    #[serde(default)]
    pub message: String,
}

/// The parts of an `ack` payload the benchmark uses.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AckPayload<'a> {
    #[serde(borrow)]
    pub client_msg_id: Cow<'a, str>,
}

/// Splits a message id `"<ms>-<seq>"` into its parts.
pub fn parse_message_id(id: &str) -> Result<(i64, i64)> {
    let (ms, seq) = id
        .split_once('-')
        .with_context(|| format!("message id {id:?} is not <ms>-<seq>"))?;
    Ok((
        ms.parse().with_context(|| format!("bad ms in {id:?}"))?,
        seq.parse().with_context(|| format!("bad seq in {id:?}"))?,
    ))
}

/// Pads `prefix` with `x` to `len` bytes (or leaves it longer), so messages have a fixed size.
pub fn padded(mut prefix: String, len: usize) -> String {
    while prefix.len() < len {
        prefix.push('x');
    }
    prefix
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_metric_sums_over_its_label_sets_and_nothing_else() {
        let text = "# TYPE hearth_connections_open gauge\n\
            hearth_connections_open{platform=\"web\"} 3\n\
            hearth_connections_open{platform=\"android\"} 4\n\
            hearth_connections_opened_total 99\n\
            other 5\n";
        assert_eq!(metric_sum_in(text, "hearth_connections_open"), 7.0);
        assert_eq!(metric_sum_in(text, "missing"), 0.0);
    }

    #[test]
    fn sid_cookie_is_found_among_set_cookie_headers() {
        let headers = [
            "other=1; Path=/",
            "sid=abcDEF_-123; HttpOnly; SameSite=Strict; Path=/; Max-Age=86400",
        ];
        assert_eq!(sid_cookie(headers), Some("abcDEF_-123".to_owned()));
        assert_eq!(sid_cookie(["sid=; Max-Age=0"]), None);
        assert_eq!(sid_cookie(["sidx=1"]), None);
    }

    #[test]
    fn message_ids_split_into_ms_and_seq() {
        assert_eq!(
            parse_message_id("1726840364728-42").unwrap(),
            (1726840364728, 42)
        );
        assert!(parse_message_id("42").is_err());
        assert!(parse_message_id("a-b").is_err());
    }

    #[test]
    fn server_messages_decode_without_copying_fields_we_skip() {
        let text = r#"{"type":"serverMessages","payload":{"roomId":"general","messages":[
            {"id":"1-1","content":"hb x","user":{"id":5,"username":"ann"},"timestamp":1}]}}"#;
        let frame: Frame<'_, RoomMessages<'_>> = serde_json::from_str(text).unwrap();
        assert_eq!(frame.kind, "serverMessages");
        assert_eq!(frame.payload.room_id, "general");
        assert_eq!(frame.payload.messages[0].content, "hb x");
        assert_eq!(frame_type(text).unwrap(), "serverMessages");
    }

    #[test]
    fn padding_reaches_the_requested_length() {
        assert_eq!(padded("ab".into(), 5), "abxxx");
        assert_eq!(padded("abcdef".into(), 3), "abcdef");
    }
}

//! Hearth's gateway: the HTTP JSON API, the WebSocket endpoint and the embedded web client.
//!
//! Handlers are thin: they decode, call a core service, encode. State is explicit in [`App`].
//!
//! * [`api`] — account endpoints, error bodies, the JSON/path/query extractors;
//! * [`im_api`] — friends, groups, conversations, messages, presence over HTTP;
//! * [`search_api`] — message and user search (the index is `hearth-search`);
//! * [`files_api`] — streamed uploads, downloads with ranges and caching;
//! * [`ws`] — one task per WebSocket: `hello`, client frames, live deliveries;
//! * [`fanout`] — encodes each stored batch once and broadcasts the shared bytes;
//! * [`registry`] — each user's sockets on this node;
//! * [`outlet`] — a socket's write side: anyone writes pre-framed bytes to it without a task switch;
//! * [`handshake`] — the WebSocket upgrade, keeping the raw TCP stream;
//! * [`web`] — the built web client, embedded in the binary;
//! * [`ops`] — `/healthz`, `/readyz`, `/metrics` and the request log; [`telemetry`] — the
//!   metrics themselves; [`timed`] — store timings; [`admin_api`] — `/api/admin/...`.

mod admin_api;
mod api;
mod auth;
mod avatars;
mod fanout;
mod files_api;
mod handshake;
mod http;
mod im_api;
mod ops;
mod outlet;
mod rate;
mod registry;
mod search_api;
mod security;
pub mod telemetry;
mod timed;
mod voice;
mod web;
mod ws;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{any, get, post};
use fanout::{Fanout, Gateway, RoomSequencer};
use hearth_core::accounts::Accounts;
use hearth_core::bus::{Bus, BusHandler, PresenceStore, room_topic};
use hearth_core::files::{BlobStore, FileLimits, Files};
use hearth_core::groups::Groups;
use hearth_core::local::{LocalBus, LocalPresence};
use hearth_core::login_throttle::LoginThrottle;
use hearth_core::messaging::{MemberCache, Messaging, Router as MessageRouter};
use hearth_core::model::{ChatMessage, ConversationRef};
use hearth_core::presence::Presence;
use hearth_core::rooms::RoomHub;
use hearth_core::social::Social;
use hearth_core::store::Stores;
use hearth_core::writer::{Committed, Writers};
use hearth_core::{Limits, Policy, StoreError};
use hearth_search::Search;
pub use ops::MetricsConfig;
use rate::RateGate;
pub use rate::{Rate, RateLimits};
use registry::Registry;
pub use security::Security;
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// What the gateway needs to know beyond its stores.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub limits: Limits,
    pub session_ttl: Duration,
    /// Rooms that must exist: `(id, name)`.
    pub rooms: Vec<(String, String)>,
    /// Mark the session cookie `Secure` (served over TLS, directly or behind a proxy).
    pub secure_cookies: bool,
    pub policy: Policy,
    /// How often this node looks for dead nodes whose users must be announced offline.
    pub reap_interval: Duration,
    pub security: Security,
    pub rate_limits: RateLimits,
    /// This node's search index directory (each node needs its own); `None` keeps the index
    /// in memory, rebuilt from the database at every start.
    pub search_dir: Option<PathBuf>,
    /// `GET /metrics`: served or not, and the bearer token it wants.
    pub metrics: MetricsConfig,
    pub files: FileSettings,
    /// Offline transcription of voice messages (off unless configured).
    pub transcriber: hearth_voice::TranscriberConfig,
}

/// Where uploads go and how large they may be.
#[derive(Clone)]
pub struct FileSettings {
    pub limits: FileLimits,
    /// Local directory for uploads in progress.
    pub staging: PathBuf,
    /// Where finished files are kept (local disk or S3).
    pub blobs: Arc<dyn BlobStore>,
}

impl std::fmt::Debug for FileSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileSettings")
            .field("limits", &self.limits)
            .field("staging", &self.staging)
            .finish_non_exhaustive()
    }
}

/// How this node reaches the others: the bus its deliveries travel and where presence lives.
#[derive(Clone)]
pub struct Cluster {
    pub bus: Arc<dyn Bus>,
    pub presence: Arc<dyn PresenceStore>,
    /// The per-account login limits every node sees (none for one node alone).
    pub login_throttle: Option<Arc<dyn LoginThrottle>>,
}

impl Cluster {
    /// One node alone: an in-process bus and presence.
    pub fn embedded() -> Cluster {
        Cluster {
            bus: Arc::new(LocalBus::default()),
            presence: Arc::new(LocalPresence::default()),
            login_throttle: None,
        }
    }
}

/// Everything a handler can reach.
pub struct App {
    accounts: Accounts,
    rooms: RoomHub,
    messaging: Arc<Messaging>,
    social: Social,
    groups: Groups,
    presence: Presence,
    files: Files,
    gateway: Arc<Gateway>,
    search: Arc<Search>,
    limits: Limits,
    secure_cookies: bool,
    security: Security,
    rate: Arc<RateGate>,
    /// Flips to `true` when the node starts shutting down; sockets then close with 1012.
    shutdown: watch::Receiver<bool>,
    /// Probes, metrics, admin tools.
    ops: ops::Ops,
}

/// Announces the users of dead nodes as offline, for as long as the node lives.
async fn reap_dead_nodes(app: std::sync::Weak<App>, every: Duration) {
    loop {
        tokio::time::sleep(every).await;
        let Some(app) = app.upgrade() else { return };
        if *app.shutdown.borrow() {
            return;
        }
        app.presence.reap().await;
    }
}

/// Forgets idle rate-limit keys every minute, for as long as the node lives.
async fn purge_rate_limits(rate: std::sync::Weak<RateGate>) {
    loop {
        tokio::time::sleep(Duration::from_secs(60)).await;
        let Some(rate) = rate.upgrade() else { return };
        rate.purge();
    }
}

/// After each commit: route the messages, then have search read the feed at once instead of
/// at its next poll (other nodes' commits are found by polling).
struct IndexAfterCommit {
    router: Arc<MessageRouter>,
    search: Arc<Search>,
}

#[async_trait::async_trait]
impl Committed for IndexAfterCommit {
    async fn committed(&self, conversation: &ConversationRef, messages: &[ChatMessage]) {
        self.router.committed(conversation, messages).await;
        self.search.changed();
    }
}

/// A ready-to-serve node.
pub struct Server {
    app: Arc<App>,
    shutdown: watch::Sender<bool>,
    transcription: Option<Arc<hearth_core::transcription::TranscriptionQueue>>,
}

impl Server {
    pub async fn start(
        stores: Stores,
        config: ServerConfig,
        cluster: Cluster,
    ) -> Result<Server, StoreError> {
        let stores = timed::timed(stores);
        let fanout = Fanout::new();
        let members = Arc::new(MemberCache::default());
        let gateway = Gateway::new(
            fanout.clone(),
            Arc::new(Registry::default()),
            cluster.bus.clone(),
            members.clone(),
        );
        let handler: Arc<dyn BusHandler> = gateway.clone();
        cluster.bus.attach(Arc::downgrade(&handler));
        let router = Arc::new(MessageRouter::new(
            stores.conversations.clone(),
            gateway.clone(),
            members.clone(),
        ));
        let search = Arc::new(
            Search::start(stores.feed.clone(), config.search_dir.clone())
                .await
                .map_err(|e| StoreError::Backend(e.to_string()))?,
        );
        let committed = Arc::new(IndexAfterCommit {
            router: router.clone(),
            search: search.clone(),
        });
        let writers = Arc::new(Writers::new(stores.messages.clone(), committed));
        let ops = ops::Ops::new(
            &stores,
            cluster.bus.clone(),
            writers.clone(),
            config.rooms.iter().map(|(slug, _)| slug.clone()).collect(),
            config.metrics.clone(),
        );
        let rooms = RoomHub::start(
            stores.messages.clone(),
            writers.clone(),
            &config.rooms,
            config.limits.clone(),
        )
        .await?;
        router.add_rooms(rooms.rooms());
        // Subscribe before reading where each room stands, so nothing falls in between.
        cluster
            .bus
            .subscribe(hearth_core::bus::CONTROL_TOPIC)
            .await?;
        for room in rooms.rooms() {
            cluster
                .bus
                .subscribe(&room_topic(room.conversation_id))
                .await?;
        }
        gateway.set_sequencer(Arc::new(
            RoomSequencer::new(stores.messages.clone(), rooms.rooms(), fanout).await?,
        ));
        let messaging = Arc::new(Messaging::new(
            stores.messages.clone(),
            stores.conversations.clone(),
            stores.social.clone(),
            stores.inbox.clone(),
            stores.files.clone(),
            gateway.clone(),
            writers,
            members,
            config.limits.clone(),
            config.policy.clone(),
        ));
        let files = Files::new(
            stores.files.clone(),
            config.files.blobs.clone(),
            config.files.staging.clone(),
            config.files.limits.clone(),
        )
        .map_err(|e| {
            StoreError::Backend(format!(
                "upload staging directory {}: {e}",
                config.files.staging.display()
            ))
        })?;
        let (shutdown, shutdown_rx) = watch::channel(false);
        let app = App {
            accounts: Accounts::new(stores.users.clone(), stores.sessions, config.session_ttl),
            rooms,
            social: Social::new(
                stores.social.clone(),
                stores.users.clone(),
                gateway.clone(),
                config.policy.clone(),
            ),
            groups: Groups::new(
                stores.conversations.clone(),
                stores.social.clone(),
                gateway.clone(),
                messaging.clone(),
            ),
            presence: Presence::new(
                cluster.presence,
                stores.users,
                stores.social,
                stores.conversations,
                gateway.clone(),
            ),
            messaging,
            files,
            gateway,
            search,
            limits: config.limits,
            secure_cookies: config.secure_cookies,
            security: config.security,
            rate: Arc::new(RateGate::new(
                config.rate_limits,
                cluster.login_throttle.clone(),
            )),
            shutdown: shutdown_rx,
            ops,
        };
        let app = Arc::new(app);
        let transcription = hearth_voice::start(
            &config.transcriber,
            stores.transcriptions.clone(),
            Arc::new(voice::BlobAudio {
                files: stores.files.clone(),
                blobs: config.files.blobs.clone(),
                staging: config.files.staging.clone(),
            }),
            Arc::new(voice::PostTranscript {
                store: stores.transcriptions.clone(),
                messaging: app.messaging.clone(),
            }),
        )
        .map_err(|e| StoreError::Backend(format!("voice transcription: {e}")))?
        .map(Arc::new);
        if let Some(queue) = &transcription {
            app.messaging.set_transcription(queue.clone());
        }
        tokio::spawn(reap_dead_nodes(Arc::downgrade(&app), config.reap_interval));
        tokio::spawn(purge_rate_limits(Arc::downgrade(&app.rate)));
        Ok(Server {
            app,
            shutdown,
            transcription,
        })
    }

    pub fn router(&self) -> Router {
        let router = Router::new()
            .route("/api/create-account", post(api::create_account))
            .route("/api/login", post(api::login))
            .route("/api/logout", post(api::logout))
            .route("/api/me", get(api::me).patch(api::update_profile))
            .route("/api/me/password", post(api::change_password))
            .route("/api/policy", get(api::policy))
            .route("/api/sessions", post(api::create_token_session))
            .route("/api/ws", get(ws::upgrade))
            .merge(im_api::routes())
            .merge(search_api::routes())
            .merge(admin_api::routes())
            .merge(ops::routes())
            .merge(files_api::routes())
            .merge(avatars::routes())
            .route("/api", any(api::not_found))
            .route("/api/", any(api::not_found))
            .route("/api/{*rest}", any(api::not_found))
            .fallback(web::serve)
            .method_not_allowed_fallback(api::method_not_allowed)
            .layer(axum::middleware::from_fn_with_state(
                self.app.clone(),
                security::check_origin,
            ))
            .layer(DefaultBodyLimit::max(self.app.limits.max_http_body_bytes))
            .layer(axum::middleware::from_fn(security::check_head))
            .with_state(self.app.clone());
        ops::with_request_log(router)
    }

    /// Serves until `signal` resolves, then closes every socket with 1012 ("service restart":
    /// reconnect, possibly to another node) and waits for in-flight work to finish.
    pub async fn serve(
        self,
        listener: TcpListener,
        signal: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let router = self.router();
        let shutdown = self.shutdown.clone();
        let drained = async move {
            signal.await;
            tracing::info!("shutting down: closing sockets");
            let _ = shutdown.send(true);
        };
        let header_read_timeout = Duration::from_secs(self.app.limits.header_read_timeout_secs);
        http::serve(listener, router, header_read_timeout, drained).await;
        // Sockets are upgraded connections that axum no longer tracks: wait for their tasks
        // (each holds a clone of the App) to send their close frames and finish any post.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while Arc::strong_count(&self.app) > 1 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // Running transcriptions go back to the queue for the next start (their processes are
        // killed).
        if let Some(queue) = &self.transcription {
            queue.shutdown().await;
        }
        // Let go of the index directory, so a node started next in this process can open it.
        self.app.search.stop().await;
        Ok(())
    }
}

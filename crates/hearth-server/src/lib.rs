//! Hearth's gateway: the HTTP JSON API, the WebSocket endpoint and the embedded web client.
//!
//! Handlers are thin: they decode, call a core service, encode. State is explicit in [`App`].
//!
//! * [`api`] — account endpoints, error bodies, the JSON/path/query extractors;
//! * [`im_api`] — friends, groups, conversations, messages, presence over HTTP;
//! * [`ws`] — one task per WebSocket: `hello`, client frames, live deliveries;
//! * [`fanout`] — encodes each stored batch once and broadcasts the shared bytes;
//! * [`registry`] — each user's sockets on this node and their bounded mailboxes;
//! * [`web`] — the built web client, embedded in the binary.

mod api;
mod auth;
mod fanout;
mod im_api;
mod registry;
mod web;
mod ws;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{any, get, post};
use fanout::{Fanout, Gateway, RoomSequencer};
use hearth_core::accounts::Accounts;
use hearth_core::bus::{Bus, BusHandler, PresenceStore, room_topic};
use hearth_core::groups::Groups;
use hearth_core::local::{LocalBus, LocalPresence};
use hearth_core::messaging::{MemberCache, Messaging, Router as MessageRouter};
use hearth_core::presence::Presence;
use hearth_core::rooms::RoomHub;
use hearth_core::social::Social;
use hearth_core::store::Stores;
use hearth_core::writer::Writers;
use hearth_core::{Limits, Policy, StoreError};
use registry::Registry;
use std::future::Future;
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
}

/// How this node reaches the others: the bus its deliveries travel and where presence lives.
#[derive(Clone)]
pub struct Cluster {
    pub bus: Arc<dyn Bus>,
    pub presence: Arc<dyn PresenceStore>,
}

impl Cluster {
    /// One node alone: an in-process bus and presence.
    pub fn embedded() -> Cluster {
        Cluster {
            bus: Arc::new(LocalBus::default()),
            presence: Arc::new(LocalPresence::default()),
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
    gateway: Arc<Gateway>,
    limits: Limits,
    secure_cookies: bool,
    /// Flips to `true` when the node starts shutting down; sockets then close with 1012.
    shutdown: watch::Receiver<bool>,
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

/// A ready-to-serve node.
pub struct Server {
    app: Arc<App>,
    shutdown: watch::Sender<bool>,
}

impl Server {
    pub async fn start(
        stores: Stores,
        config: ServerConfig,
        cluster: Cluster,
    ) -> Result<Server, StoreError> {
        let fanout = Arc::new(Fanout::new(config.limits.socket_backlog));
        let members = Arc::new(MemberCache::default());
        let gateway = Gateway::new(
            fanout.clone(),
            Arc::new(Registry::new(config.limits.socket_backlog)),
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
        let writers = Arc::new(Writers::new(stores.messages.clone(), router.clone()));
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
            gateway.clone(),
            writers,
            members,
            config.limits.clone(),
            config.policy.clone(),
        ));
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
            gateway,
            limits: config.limits,
            secure_cookies: config.secure_cookies,
            shutdown: shutdown_rx,
        };
        let app = Arc::new(app);
        tokio::spawn(reap_dead_nodes(Arc::downgrade(&app), config.reap_interval));
        Ok(Server { app, shutdown })
    }

    pub fn router(&self) -> Router {
        Router::new()
            .route("/api/create-account", post(api::create_account))
            .route("/api/login", post(api::login))
            .route("/api/logout", post(api::logout))
            .route("/api/me", get(api::me))
            .route("/api/sessions", post(api::create_token_session))
            .route("/api/ws", get(ws::upgrade))
            .merge(im_api::routes())
            .route("/api", any(api::not_found))
            .route("/api/", any(api::not_found))
            .route("/api/{*rest}", any(api::not_found))
            .fallback(web::serve)
            .method_not_allowed_fallback(api::method_not_allowed)
            .layer(DefaultBodyLimit::max(self.app.limits.max_http_body_bytes))
            .with_state(self.app.clone())
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
        axum::serve(
            listener,
            router.into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .with_graceful_shutdown(drained)
        .await?;
        // Sockets are upgraded connections that axum no longer tracks: wait for their tasks
        // (each holds a clone of the App) to send their close frames and finish any post.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while Arc::strong_count(&self.app) > 1 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(())
    }
}

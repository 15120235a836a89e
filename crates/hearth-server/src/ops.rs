//! Probes and metrics: `GET /healthz`, `GET /readyz`, `GET /metrics`; and the request log.
//!
//! * `/healthz` answers while the process serves HTTP at all (liveness: restart it if not).
//! * `/readyz` checks each backend with a trivial round trip, concurrently, each bounded by
//!   [`PROBE_TIMEOUT`]: 200 when all answer, else 503 (readiness: route no traffic here).
//!   Error details go to the log, not to the (unauthenticated) response.
//! * `/metrics` renders the Prometheus recorder ([`crate::telemetry`]) after sampling the
//!   queue depths. Served when `metrics.enabled` (the default); with `metrics.token` set it
//!   wants `Authorization: Bearer <token>`.

use crate::App;
use crate::telemetry::{self, Depths};
use axum::Json;
use axum::body::Body;
use axum::extract::{MatchedPath, State};
use axum::http::{HeaderMap, HeaderValue, Request, Response, StatusCode, header};
use axum::response::IntoResponse;
use hearth_core::StoreError;
use hearth_core::admin::Admin;
use hearth_core::bus::Bus;
use hearth_core::store::{SessionStore, Stores, UserStore};
use hearth_core::writer::Writers;
use metrics_exporter_prometheus::PrometheusHandle;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tower_http::trace::TraceLayer;
use tracing::Span;

/// How long one readiness check may take before it counts as failed.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// `[metrics]` in the configuration.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsConfig {
    /// Serve `GET /metrics`.
    pub enabled: bool,
    /// If set, `/metrics` wants `Authorization: Bearer <token>`.
    pub token: Option<String>,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig {
            enabled: true,
            token: None,
        }
    }
}

/// What the probes, `/metrics` and the admin API need.
pub struct Ops {
    pub admin: Admin,
    writers: Arc<Writers>,
    users: Arc<dyn UserStore>,
    sessions: Arc<dyn SessionStore>,
    bus: Arc<dyn Bus>,
    metrics: MetricsConfig,
    prometheus: Option<&'static PrometheusHandle>,
}

impl Ops {
    pub fn new(
        stores: &Stores,
        bus: Arc<dyn Bus>,
        writers: Arc<Writers>,
        configured_rooms: Vec<String>,
        metrics: MetricsConfig,
    ) -> Ops {
        Ops {
            admin: Admin::new(stores, Some(bus.clone()), configured_rooms),
            writers,
            users: stores.users.clone(),
            sessions: stores.sessions.clone(),
            bus,
            // Disabled: no recorder, so recording anything is a no-op.
            prometheus: metrics.enabled.then(telemetry::install).flatten(),
            metrics,
        }
    }
}

pub fn routes() -> axum::Router<Arc<App>> {
    use axum::routing::get;
    axum::Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
}

async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

async fn probe(
    name: &'static str,
    check: impl Future<Output = Result<(), StoreError>>,
) -> (&'static str, &'static str) {
    match tokio::time::timeout(PROBE_TIMEOUT, check).await {
        Ok(Ok(())) => (name, "ok"),
        Ok(Err(error)) => {
            tracing::warn!(component = name, %error, "readiness check failed");
            (name, "unavailable")
        }
        Err(_) => {
            tracing::warn!(component = name, "readiness check timed out");
            (name, "timeout")
        }
    }
}

async fn readyz(State(app): State<Arc<App>>) -> impl IntoResponse {
    let ops = &app.ops;
    let (database, sessions) = tokio::join!(
        probe("database", ops.users.ping()),
        probe("sessions", ops.sessions.ping()),
    );
    let mut checks = vec![database, sessions];
    // The embedded bus is a function call: nothing to check.
    if !ops.bus.is_local() {
        checks.push(probe("bus", ops.bus.ping()).await);
    }
    let mut all_ok = checks.iter().all(|(_, status)| *status == "ok");
    let mut body = Map::new();
    if *app.shutdown.borrow() {
        // Draining: take this node out of rotation while its sockets close.
        all_ok = false;
        body.insert("draining".into(), Value::Bool(true));
    }
    body.insert(
        "status".into(),
        Value::from(if all_ok { "ok" } else { "unavailable" }),
    );
    body.insert(
        "checks".into(),
        Value::Object(
            checks
                .into_iter()
                .map(|(name, status)| (name.to_owned(), Value::from(status)))
                .collect(),
        ),
    );
    let status = if all_ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(Value::Object(body)))
}

async fn metrics(State(app): State<Arc<App>>, headers: HeaderMap) -> axum::response::Response {
    let ops = &app.ops;
    if !ops.metrics.enabled {
        return (StatusCode::NOT_FOUND, "metrics are disabled\n").into_response();
    }
    if let Some(token) = &ops.metrics.token {
        let presented = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or_default();
        if !constant_time_eq(presented.trim().as_bytes(), token.as_bytes()) {
            let mut response =
                (StatusCode::UNAUTHORIZED, "bearer token required\n").into_response();
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"metrics\""),
            );
            return response;
        }
    }
    let Some(prometheus) = ops.prometheus else {
        return (StatusCode::SERVICE_UNAVAILABLE, "no metrics recorder\n").into_response();
    };
    let (fanout_batches, backlog_total, backlog_max) = app.gateway.rooms.depths();
    let (writer_total, writer_max) = ops.writers.queued();
    telemetry::set_depths(&Depths {
        fanout_batches,
        backlog_total,
        backlog_max,
        writer_total,
        writer_max,
    });
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        prometheus.render(),
    )
        .into_response()
}

/// Compares without stopping at the first difference, so timing tells nothing about the token.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Adds the request log: one `info` line per request, after the response, with the method,
/// the route template (never the raw path: ids stay out of the log), status and latency.
pub fn with_request_log(router: axum::Router) -> axum::Router {
    router.layer(
        TraceLayer::new_for_http()
            .make_span_with(|request: &Request<Body>| {
                let route = request
                    .extensions()
                    .get::<MatchedPath>()
                    .map_or("(static)", |path| path.as_str());
                tracing::info_span!("http", method = %request.method(), route = %route)
            })
            .on_request(())
            .on_response(
                |response: &Response<Body>, latency: Duration, _span: &Span| {
                    tracing::info!(
                        status = response.status().as_u16(),
                        latency_ms = latency.as_secs_f64() * 1000.0,
                        "request"
                    );
                },
            )
            .on_body_chunk(())
            .on_eos(())
            .on_failure(()),
    )
}

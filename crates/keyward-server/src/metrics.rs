//! Metrics in Prometheus' text format at `/v1/sys/metrics?format=prometheus` (Vault's path; JSON
//! without the parameter), needing `read` on `sys/metrics`. Labels are operation names from the
//! table and status classes — never a path, accessor, address or anything a mount holds — so
//! the exposition's size does not grow with the data.
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::audit::AuditState;
use crate::error::ApiResult;
use crate::pipeline::Ctx;
use crate::vault::VaultReq;

/// The operation a response answered (its row of the table), for the request metrics.
#[derive(Debug, Clone, Copy)]
pub(crate) struct OperationId(pub &'static str);

/// The process's recorder: installed once, shared by every server in the process.
fn handle() -> Option<&'static PrometheusHandle> {
    static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let buckets = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0];
            let sizes = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0];
            let builder = PrometheusBuilder::new()
                .set_buckets(&buckets)
                .and_then(|b| b.set_buckets_for_metric(Matcher::Full("keyward_writer_batch_size".into()), &sizes))
                .and_then(|b| b.set_buckets_for_metric(Matcher::Full("keyward_audit_batch_size".into()), &sizes))
                .ok()?;
            match builder.install_recorder() {
                Ok(h) => Some(h),
                Err(e) => {
                    tracing::warn!(error = %e, "metrics are off: a recorder was already installed");
                    None
                }
            }
        })
        .as_ref()
}

/// Installs the recorder (at start, so the first scrape already has the first requests).
pub(crate) fn install() {
    handle();
}

/// Folds the samples recorded since the last call into the histograms. The recorder keeps
/// every sample until then, so without this a server nobody scrapes grows by every request's
/// samples (found by the soak: ~30 bytes a request); the background loop calls it every few
/// seconds.
pub(crate) fn upkeep() {
    if let Some(h) = handle() {
        h.run_upkeep();
    }
}

/// A status's class, the only form a status takes in a label.
fn class(status: u16) -> &'static str {
    match status {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    }
}

/// Counts a credential-proxy call by route (a name an administrator chose) and the upstream's
/// status class.
pub(crate) fn record_proxy_call(route: &str, upstream_status: u16) {
    metrics::counter!("keyward_proxy_calls_total", "route" => route.to_owned(), "upstream_status" => class(upstream_status))
        .increment(1);
}

/// Counts a request by operation and status class, and its latency by operation group.
pub(crate) fn record_request(operation: &'static str, status: u16, elapsed: Duration) {
    let class = class(status);
    metrics::counter!("keyward_requests_total", "operation" => operation, "status" => class).increment(1);
    // Latency by operation group (`secrets`, `tokens`, `transit` …): a histogram is 15 series, and
    // one per operation would put the exposition past 100 KiB.
    let group = operation.split('.').next().unwrap_or(operation);
    metrics::histogram!("keyward_request_duration_seconds", "group" => group).record(elapsed.as_secs_f64());
}

/// The counters kept for health, the database pool, the process's size and open files, as of now.
fn refresh(audit: &AuditState, store: &dyn keyward_core::Store) {
    use std::sync::atomic::Ordering::Relaxed;
    let c = &audit.counters;
    for (name, value) in [
        ("keyward_auth_failures_total", c.auth_failures.load(Relaxed)),
        ("keyward_denials_total", c.denials.load(Relaxed)),
        ("keyward_lockouts_total", c.lockouts.load(Relaxed)),
        ("keyward_rate_limited_total", c.rate_limited.load(Relaxed)),
        ("keyward_reveals_total", c.reveals.load(Relaxed)),
        ("keyward_audit_primary_failures_total", c.audit_primary_failures.load(Relaxed)),
        ("keyward_audit_sink_failures_total", c.audit_sink_failures.load(Relaxed)),
    ] {
        metrics::counter!(name).absolute(value);
    }
    metrics::gauge!("keyward_stale_fields").set(c.stale_fields.load(Relaxed) as f64);
    let pool = store.pool_use();
    metrics::gauge!("keyward_db_connections", "state" => "in_use").set(f64::from(pool.open.saturating_sub(pool.idle)));
    metrics::gauge!("keyward_db_connections", "state" => "idle").set(f64::from(pool.idle));
    metrics::gauge!("keyward_db_connections_max").set(f64::from(pool.max));
    // Linux: resident pages from /proc/self/statm, open descriptors from /proc/self/fd.
    if let Some(pages) = std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1).and_then(|p| p.parse::<f64>().ok()))
    {
        metrics::gauge!("keyward_process_resident_memory_bytes").set(pages * 4096.0);
    }
    if let Ok(fds) = std::fs::read_dir("/proc/self/fd") {
        metrics::gauge!("keyward_process_open_fds").set(fds.count() as f64);
    }
}

/// The exposition, as of now.
fn render(audit: &AuditState, store: &dyn keyward_core::Store) -> String {
    refresh(audit, store);
    handle().map(PrometheusHandle::render).unwrap_or_default()
}

/// Serves `GET /metrics` on `--metrics-listen`: no token and no audit entry — for a listener
/// only the monitoring network reaches.
pub(crate) async fn serve_unauthenticated(
    listener: tokio::net::TcpListener,
    audit: Arc<AuditState>,
    store: Arc<dyn keyward_core::Store>,
) {
    let app = axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let (audit, store) = (audit.clone(), store.clone());
            async move {
                ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], render(&audit, store.as_ref()))
            }
        }),
    );
    if let Err(e) = axum::serve(listener, app).await {
        tracing::error!(error = %e, "the metrics listener stopped");
    }
}

/// `GET /v1/sys/metrics`: Prometheus text with `format=prometheus`, else JSON samples.
pub(crate) async fn serve(ctx: Ctx, req: VaultReq) -> ApiResult<Response> {
    let text = render(&ctx.st.audit, ctx.st.kw.store().as_ref());
    if req.query.get("format").map(String::as_str) == Some("prometheus") {
        return Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], text).into_response());
    }
    Ok(Json(serde_json::json!({ "samples": samples(&text) })).into_response())
}

/// The exposition's samples as `{name, labels, value}`.
fn samples(text: &str) -> Vec<serde_json::Value> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            let (name, labels) = match series.split_once('{') {
                Some((n, rest)) => (n, rest.trim_end_matches('}')),
                None => (series, ""),
            };
            let labels: serde_json::Map<String, serde_json::Value> = labels
                .split(',')
                .filter_map(|kv| kv.split_once('='))
                .map(|(k, v)| (k.to_owned(), serde_json::Value::String(v.trim_matches('"').to_owned())))
                .collect();
            Some(serde_json::json!({ "name": name, "labels": labels, "value": value.parse::<f64>().ok() }))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Upkeep folds the buffered samples into the histogram: none is lost, and rendering later
    /// still counts them all.
    #[test]
    fn upkeep_keeps_every_sample() {
        install();
        for _ in 0..1_000 {
            metrics::histogram!("keyward_test_upkeep_seconds").record(0.001);
        }
        upkeep();
        metrics::histogram!("keyward_test_upkeep_seconds").record(0.001);
        let text = handle().map(PrometheusHandle::render).unwrap_or_default();
        assert!(text.contains("keyward_test_upkeep_seconds_count 1001"), "{text}");
    }

    #[test]
    fn samples_are_read_from_the_exposition() {
        let text = "# TYPE x counter\nkeyward_requests_total{operation=\"secrets.read\",status=\"2xx\"} 3\nup 1\n";
        let s = samples(text);
        assert_eq!(s.len(), 2);
        assert_eq!(s[0]["labels"]["operation"], "secrets.read");
        assert_eq!(s[1]["value"], 1.0);
    }
}

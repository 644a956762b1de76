//! Metrics: Prometheus text for a token with `read` on `sys/metrics` (or the Bearer header a
//! Prometheus `credentials_file` sends), audited; labels never hold paths or accessors, so the
//! exposition stays small however much data is touched.
use crate::common;

use common::{backends, TestServer, KEY_A};
use reqwest::Method;
use serde_json::json;

#[tokio::test]
async fn metrics_are_labelled_by_operation_only_and_stay_small() {
    let db = backends().await.remove(0);
    let srv = TestServer::start(&db, KEY_A).await;
    srv.set("secret", "known", json!({"K": "v"})).await;
    // 10,000 distinct secret paths read (each answered 404): none may become a label.
    let paths: Vec<String> = (0..10_000).map(|i| format!("tenant-{i}/app")).collect();
    let mut tasks = tokio::task::JoinSet::new();
    for chunk in paths.chunks(1250) {
        let (http, base, token, chunk) = (srv.http.clone(), srv.base.clone(), srv.token.clone(), chunk.to_vec());
        tasks.spawn(async move {
            for p in chunk {
                let r = http.get(format!("{base}/v1/secret/data/{p}")).header("x-vault-token", &token).send().await;
                assert_eq!(r.unwrap().status(), 404);
            }
        });
    }
    while let Some(r) = tasks.join_next().await {
        r.unwrap();
    }
    // Prometheus' way: a Bearer token and the format parameter.
    let resp = srv
        .http
        .get(format!("{}/v1/sys/metrics?format=prometheus", srv.base))
        .bearer_auth(&srv.token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.headers()["content-type"].to_str().unwrap().starts_with("text/plain"));
    let text = resp.text().await.unwrap();
    assert!(text.len() < 64 * 1024, "the exposition is {} bytes", text.len());
    assert!(text.contains(r#"keyward_requests_total{operation="secrets.reveal",status="4xx"}"#), "{text}");
    assert!(text.contains("keyward_request_duration_seconds_bucket"));
    assert!(text.contains("keyward_writer_batch_size_bucket") && text.contains("keyward_writer_commit_seconds_bucket"));
    assert!(text.contains("keyward_process_resident_memory_bytes") && text.contains("keyward_process_open_fds"));
    // Audit commits (with their fsync) as their own series, the database pool, and which server
    // runs the background work.
    assert!(text.contains("keyward_audit_commit_seconds_bucket") && text.contains("keyward_audit_batch_size_bucket"));
    assert!(text.contains(r#"keyward_db_connections{state="in_use"}"#) && text.contains("keyward_db_connections_max"));
    // (A gauge of the process: the other servers of this test binary share it.)
    assert!(text.contains("keyward_background_leader "), "{text}");
    assert!(!text.contains("tenant-") && !text.contains("known") && !text.contains("acc_"), "no path or accessor");
    // JSON without the parameter; a token without read on sys/metrics is refused; scrapes are audited.
    let (s, body) = srv.json(Method::GET, "/v1/sys/metrics", None).await;
    assert_eq!(s, 200);
    assert!(body["samples"].as_array().unwrap().iter().any(|x| x["name"] == "keyward_requests_total"));
    let plain = srv.token_with(&[]).await;
    let (s, _) = srv.vault(&plain, "GET", "sys/metrics", None).await;
    assert_eq!(s, 403);
    let (_, audit) = srv.json(Method::GET, "/api/v1/audit?operation=sys.metrics", None).await;
    assert!(audit["entries"].as_array().unwrap().len() >= 2, "{audit}");
    srv.stop().await;
}

#[tokio::test]
async fn a_metrics_listener_serves_without_a_token_and_unaudited() {
    let db = backends().await.remove(0);
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let at: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let srv = TestServer::start_with(&db, KEY_A, |o| o.metrics_listen = Some(at)).await;
    let (_, before) = srv.json(Method::GET, "/api/v1/audit?last=1000", None).await;
    let text = reqwest::get(format!("http://{at}/metrics")).await.unwrap().text().await.unwrap();
    assert!(text.contains("keyward_requests_total"), "{text}");
    let (_, after) = srv.json(Method::GET, "/api/v1/audit?last=1000", None).await;
    let count = |v: &serde_json::Value| v["entries"].as_array().unwrap().len();
    // The second search is the only entry added (the first one's entry), none for the scrape.
    assert_eq!(count(&after), count(&before) + 1, "a scrape of the metrics listener is not audited");
    srv.stop().await;
}

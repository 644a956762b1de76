//! The in-memory read path (SQLite) must answer exactly as the database would: every change is
//! visible to the next request, even while other requests keep loading the same records.
use crate::common;

use std::sync::Arc;

use common::{backends, TestServer, KEY_A};
use reqwest::Method;
use serde_json::json;

const READER: &str = "[[rules]]\npath = \"secret/*\"\ncapabilities = [\"read\"]\n";
const ELSEWHERE: &str = "[[rules]]\npath = \"secret/other/*\"\ncapabilities = [\"read\"]\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_change_is_seen_by_the_next_read_while_others_keep_reading() {
    for db in backends().await {
        let srv = Arc::new(TestServer::start(&db, KEY_A).await);
        srv.set("secret", "hot", json!({"K": "v0"})).await;
        // Readers keep loading the same secret (and the same token) while it changes.
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let mut readers = Vec::new();
        for _ in 0..4 {
            let (srv, stop) = (srv.clone(), stop.clone());
            readers.push(tokio::spawn(async move {
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    assert_eq!(srv.reveal("secret", "hot").await.0, 200);
                }
            }));
        }
        for i in 1..=40 {
            let value = format!("v{i}");
            srv.set("secret", "hot", json!({"K": value})).await;
            assert_eq!(srv.reveal_map("secret", "hot").await["K"], value.as_str(), "{}: write {i} not seen", db.label);
            let (s, b) = srv.vault(&srv.token, "GET", "secret/data/hot", None).await;
            assert_eq!((s, b["data"]["data"]["K"].as_str()), (200, Some(value.as_str())), "{}", db.label);
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        for r in readers {
            r.await.unwrap();
        }

        // A soft delete, an undelete and a whole-secret delete are seen at once.
        let (s, _) = srv.vault(&srv.token, "DELETE", "secret/data/hot", None).await;
        assert_eq!(s, 204);
        assert_eq!(srv.vault(&srv.token, "GET", "secret/data/hot", None).await.0, 404, "{}", db.label);
        assert_eq!(srv.reveal("secret", "hot").await.0, 404, "{}", db.label);
        let (s, _) = srv.vault(&srv.token, "POST", "secret/undelete/hot", Some(json!({"versions": [41]}))).await;
        assert_eq!(s, 204);
        assert_eq!(srv.reveal_map("secret", "hot").await["K"], "v40");
        let (s, _) = srv.vault(&srv.token, "DELETE", "secret/metadata/hot", None).await;
        assert_eq!(s, 204);
        assert_eq!(srv.reveal("secret", "hot").await.0, 404, "{}", db.label);

        // Policy changes and revocation hold for the very next request of a token already in use.
        srv.set("secret", "app", json!({"K": "app-value"})).await;
        srv.policy("reader", READER).await;
        let token = srv.token_with(&["reader"]).await;
        let read = |t: String| {
            let srv = srv.clone();
            async move { srv.json_as(&t, Method::GET, "/api/v1/mounts/secret/secrets/app", None).await.0 }
        };
        assert_eq!(read(token.clone()).await, 200);
        srv.policy("reader", ELSEWHERE).await;
        assert_eq!(read(token.clone()).await, 403, "{}: a narrowed policy still granted access", db.label);
        srv.policy("reader", READER).await;
        assert_eq!(read(token.clone()).await, 200);
        let (s, b) = srv.json(Method::POST, "/api/v1/tokens/revoke", Some(json!({"token": token}))).await;
        assert_eq!(s, 200, "{b}");
        assert_eq!(read(token).await, 401, "{}: a revoked token still worked", db.label);
        match Arc::try_unwrap(srv) {
            Ok(srv) => srv.stop().await,
            Err(_) => panic!("server still shared"),
        }
    }
}

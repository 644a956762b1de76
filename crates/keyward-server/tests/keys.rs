//! Key lifecycle over HTTP on SQLite and PostgreSQL: data-key rotation and pruning, master-key
//! rotation with rewrap and retirement of the old tag.
#![allow(clippy::unwrap_used)] // test helpers panic on purpose
mod common;

use common::{backends, try_start, TestServer, KEY_A};
use reqwest::Method;
use serde_json::{json, Value};
use sqlx::Row;

const OLD_KEY: &str = "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=";
const NEW_KEY: &str = "AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgI=";

async fn status(srv: &TestServer) -> Value {
    let (s, b) = srv.json(Method::GET, "/api/v1/keys", None).await;
    assert_eq!(s, 200, "{b}");
    b
}

fn dek_blobs(status: &Value, mount: &str) -> Vec<(u64, u64)> {
    status["deks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["mount"] == mount)
        .map(|d| (d["version"].as_u64().unwrap(), d["blobs"].as_u64().unwrap()))
        .collect()
}

#[tokio::test]
async fn data_keys_rotate_and_unused_versions_are_pruned() {
    for db in backends().await {
        let srv = TestServer::start(&db, KEY_A).await;
        srv.set("secret", "a", json!({"K": "sealed-under-v1"})).await;
        for want in [2, 3] {
            let (s, r) = srv.json(Method::POST, "/api/v1/mounts/secret/keys/rotate", None).await;
            assert_eq!((s, r["version"].as_u64()), (200, Some(want)), "{}", db.label);
        }
        srv.set("secret", "b", json!({"K": "sealed-under-v3"})).await;
        let pool = db.pool().await;
        let used: Vec<i64> = sqlx::query(
            "SELECT v.dek_version FROM secret_versions v JOIN secrets s ON s.id = v.secret_id ORDER BY s.path",
        )
        .fetch_all(&pool)
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
        assert_eq!(used, vec![1, 3], "new writes use the newest data key at once");
        assert_eq!(dek_blobs(&status(&srv).await, "secret"), vec![(1, 1), (2, 0), (3, 1)]);

        let (s, p) = srv.json(Method::POST, "/api/v1/mounts/secret/keys/prune", None).await;
        assert_eq!(s, 200);
        assert_eq!((p["deleted"].clone(), p["kept"].clone()), (json!([2]), json!([1])));
        assert_eq!(dek_blobs(&status(&srv).await, "secret"), vec![(1, 1), (3, 1)]);
        assert_eq!(srv.reveal_map("secret", "a").await["K"], "sealed-under-v1");
        assert_eq!(srv.reveal_map("secret", "b").await["K"], "sealed-under-v3");
        let (s, _) = srv.json(Method::POST, "/api/v1/mounts/nope/keys/rotate", None).await;
        assert_eq!(s, 404);
        pool.close().await;
        srv.stop().await;
    }
}

#[tokio::test]
async fn master_key_rotation_rewraps_and_retires_the_old_tag() {
    for db in backends().await {
        let srv = TestServer::start(&db, &format!("v1:{OLD_KEY}")).await;
        let root = srv.token.clone();
        srv.set("secret", "prod", json!({"K": "survives-kek-rotation"})).await;
        srv.stop().await;

        // The new key becomes active; the old one still decrypts.
        let both = format!("v2:{NEW_KEY},v1:{OLD_KEY}");
        let srv = TestServer::wrap(try_start(&db, &both, false).await.unwrap(), root.clone());
        let st = status(&srv).await;
        let kek =
            |st: &Value, tag: &str| st["keks"].as_array().unwrap().iter().find(|k| k["tag"] == tag).unwrap().clone();
        let wrapped_by_v1 = kek(&st, "v1")["wrapped_keys"].as_u64().unwrap();
        assert!(wrapped_by_v1 >= 3, "data key, token key and audit key: {st}");
        assert_eq!(
            (kek(&st, "v2")["active"].as_bool(), kek(&st, "v1")["retirable"].as_bool()),
            (Some(true), Some(false))
        );
        // New keys are wrapped under v2 at once.
        srv.json(Method::POST, "/api/v1/mounts", Some(json!({"path": "fresh"}))).await;
        assert_eq!(kek(&status(&srv).await, "v2")["wrapped_keys"], 1);

        let (s, r) = srv.json(Method::POST, "/api/v1/keys/rewrap", None).await;
        assert_eq!((s, r["rewrapped"].as_u64()), (200, Some(wrapped_by_v1)), "{}", db.label);
        let st = status(&srv).await;
        assert_eq!(
            (kek(&st, "v1")["wrapped_keys"].as_u64(), kek(&st, "v1")["retirable"].as_bool()),
            (Some(0), Some(true))
        );
        srv.stop().await;

        // The old tag retired: everything still opens, tokens still work, the audit chain verifies.
        let srv = TestServer::wrap(try_start(&db, &format!("v2:{NEW_KEY}"), false).await.unwrap(), root.clone());
        assert_eq!(srv.reveal_map("secret", "prod").await["K"], "survives-kek-rotation");
        let (s, v) = srv.json(Method::GET, "/api/v1/audit/verify", None).await;
        assert_eq!((s, v["ok"].as_bool()), (200, Some(true)), "{v}");
        srv.stop().await;

        // Going back to only the old key is refused, naming the tag still in use.
        let err = try_start(&db, &format!("v1:{OLD_KEY}"), false).await.expect_err("v2 still wraps keys");
        assert!(err.to_string().contains("\"v2\" still wraps"), "{err}");
    }
}

//! Audit retention: entries archived into segments, deleted only then, and the whole — archives
//! and database — verified end to end; each way of losing or changing an archive is detected,
//! on SQLite and PostgreSQL.
use crate::common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{backends, TestServer, KEY_A};
use reqwest::Method;
use serde_json::{json, Value};

async fn archive(srv: &TestServer, body: Value) -> (u16, Value) {
    srv.json(Method::POST, "/api/v1/audit/archive", Some(body)).await
}

async fn verify(srv: &TestServer, query: &str) -> Value {
    let (s, b) = srv.json(Method::GET, &format!("/api/v1/audit/verify{query}"), None).await;
    assert_eq!(s, 200, "{b}");
    b
}

fn segments(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "jsonl"))
        .collect();
    files.sort();
    files
}

/// Archives everything written so far (entries older than now).
async fn archive_all(srv: &TestServer) -> Value {
    tokio::time::sleep(Duration::from_millis(20)).await;
    let (s, r) = archive(srv, json!({"before": "0s"})).await;
    assert_eq!(s, 200, "{r}");
    r
}

#[tokio::test]
async fn archived_segments_verify_end_to_end_and_every_loss_is_detected() {
    for db in backends().await {
        let label = db.label;
        let dir = tempfile::tempdir().unwrap();
        let archive_dir = dir.path().join("archive");
        let ad = archive_dir.clone();
        let srv = TestServer::start_with(&db, KEY_A, move |o| o.audit.archive_dir = Some(ad)).await;
        assert!(archive_dir.is_dir(), "{label}: the archive directory is made at start");

        // Three archive runs, each after a few writes: three segments.
        let mut heads = Vec::new();
        for round in 0..3 {
            for i in 0..4 {
                srv.set("secret", &format!("r{round}/k{i}"), json!({"K": format!("v{i}")})).await;
            }
            let r = archive_all(&srv).await;
            assert_eq!(r["segments"].as_array().unwrap().len(), 1, "{label}: {r}");
            assert!(r["entries"].as_u64().unwrap() >= 4, "{label}: {r}");
            heads.push(r["archived_seq"].as_u64().unwrap());
        }
        assert!(heads.windows(2).all(|w| w[0] < w[1]), "{label}: {heads:?}");
        let archived = *heads.last().unwrap();
        let files = segments(&archive_dir);
        assert_eq!(files.len(), 3, "{label}: {files:?}");

        // The rows went, and only those: the database's log begins after the archived head.
        let pool = db.pool().await;
        let (left, first): (i64, Option<i64>) =
            sqlx::query_as("SELECT COUNT(*), MIN(seq) FROM audit_log").fetch_one(&pool).await.unwrap();
        assert!(left >= 1, "{label}: the archive request's own entry stays");
        assert_eq!(first, Some(archived as i64 + 1), "{label}");

        // Verified end to end; the database alone from the archived head; doctor agrees.
        let report = verify(&srv, "?archive=true").await;
        assert_eq!(report["ok"], true, "{label}: {report}");
        assert_eq!(report["archived_seq"], archived, "{label}");
        assert_eq!(report["archive"]["segments"], 3, "{label}");
        assert_eq!(report["archive"]["last_seq"], archived, "{label}");
        let (s, doctor) = srv.json(Method::GET, "/api/v1/doctor", None).await;
        assert_eq!((s, &doctor["audit_ok"]), (200, &json!(true)), "{label}: {doctor}");
        let (s, entries) = srv.json(Method::GET, "/api/v1/audit?limit=5", None).await;
        assert_eq!(s, 200);
        assert_eq!(entries["entries"][0]["seq"], archived + 1, "{label}: search starts past the archive");
        let archive_entries: Vec<&Value> =
            entries["entries"].as_array().unwrap().iter().filter(|e| e["operation"] == "audit.archive").collect();
        assert_eq!(archive_entries[0]["details"]["last_seq"], archived, "{label}: the run is on record");

        // Tampered: one byte of the middle segment.
        let middle = files[1].clone();
        let original = std::fs::read(&middle).unwrap();
        let text = String::from_utf8(original.clone()).unwrap();
        std::fs::write(&middle, text.replacen("\"status\":200", "\"status\":201", 1)).unwrap();
        let report = verify(&srv, "?archive=true").await;
        assert_eq!(report["ok"], false, "{label}");
        let name = middle.file_name().unwrap().to_str().unwrap();
        assert_eq!(report["archive"]["broken_file"], name, "{label}: {report}");
        assert!(report["archive"]["reason"].as_str().unwrap().starts_with("modified"), "{label}: {report}");
        std::fs::write(&middle, &original).unwrap();

        // Dropped: the middle segment gone.
        let aside = dir.path().join("aside.jsonl");
        std::fs::rename(&middle, &aside).unwrap();
        let report = verify(&srv, "?archive=true").await;
        assert_eq!(report["ok"], false, "{label}");
        assert!(report["archive"]["reason"].as_str().unwrap().starts_with("dropped"), "{label}: {report}");
        std::fs::rename(&aside, &middle).unwrap();

        // The newest segment gone: the archives stop short of the database's archived head.
        let last = files[2].clone();
        std::fs::rename(&last, &aside).unwrap();
        let report = verify(&srv, "?archive=true").await;
        assert!(report["archive"]["reason"].as_str().unwrap().contains("in no archive"), "{label}: {report}");
        std::fs::rename(&aside, &last).unwrap();
        assert_eq!(verify(&srv, "?archive=true").await["ok"], true, "{label}: intact again");

        // Rows past the archived head deleted from the database.
        sqlx::query("DELETE FROM audit_log WHERE seq = $1").bind(archived as i64 + 1).execute(&pool).await.unwrap();
        let report = verify(&srv, "").await;
        assert_eq!(report["ok"], false, "{label}");
        assert_eq!(report["broken_seq"], archived + 1, "{label}: {report}");
        assert!(report["reason"].as_str().unwrap().starts_with("deleted"), "{label}: {report}");
        let (_, doctor) = srv.json(Method::GET, "/api/v1/doctor", None).await;
        assert_eq!(doctor["audit_ok"], false, "{label}");
        // A broken chain is never archived (it would launder the break into a MAC'd segment).
        let (s, r) = archive(&srv, json!({"before": "0s"})).await;
        assert_eq!(s, 500, "{label}: {r}");
        assert_eq!(r["error"]["code"], "integrity_error", "{label}: {r}");
        assert_eq!(segments(&archive_dir).len(), 3, "{label}: nothing written");

        // The archived head cannot be moved behind the server's back: its row is MAC'd.
        let value: String = sqlx::query_scalar("SELECT value FROM system WHERE key = 'audit/archived_head'")
            .fetch_one(&pool)
            .await
            .unwrap();
        let rewound = format!("{}:{}", heads[0], value.split_once(':').unwrap().1);
        sqlx::query("UPDATE system SET value = $1 WHERE key = 'audit/archived_head'")
            .bind(rewound)
            .execute(&pool)
            .await
            .unwrap();
        let (s, r) = srv.json(Method::GET, "/api/v1/audit/verify", None).await;
        assert_eq!((s, &r["error"]["code"]), (500, &json!("tampered_row")), "{label}: {r}");
        assert!(r["error"]["message"].as_str().unwrap().contains("audit/archived_head"), "{label}: {r}");
        pool.close().await;
        srv.stop().await;
    }
}

#[tokio::test]
async fn archiving_is_refused_without_a_directory_and_asked_for_clearly() {
    for db in backends().await {
        let label = db.label;
        let srv = TestServer::start(&db, KEY_A).await;
        let (s, r) = archive(&srv, json!({"before": "30d"})).await;
        assert_eq!(s, 400, "{label}: {r}");
        assert!(r["error"]["message"].as_str().unwrap().contains("--audit-archive-dir"), "{r}");
        let (s, r) = srv.json(Method::GET, "/api/v1/audit/verify?archive=true", None).await;
        assert_eq!(s, 400, "{label}: {r}");
        for dir in ["relative/dir", "/no/such/keyward/dir"] {
            let (s, r) = srv.json(Method::GET, &format!("/api/v1/audit/verify?archive_dir={dir}"), None).await;
            assert_eq!(s, 400, "{label}: {dir}: {r}");
        }
        for body in [json!({}), json!({"before": "soon"}), json!({"before": "1d", "delete": true})] {
            let (s, r) = archive(&srv, body.clone()).await;
            assert_eq!(s, 400, "{label}: {body} -> {r}");
        }
        srv.policy("auditor", "[[rules]]\npath = \"sys/audit\"\ncapabilities = [\"read\"]\n").await;
        let auditor = srv.token_with(&["auditor"]).await;
        let (s, _) = srv.json_as(&auditor, Method::POST, "/api/v1/audit/archive", Some(json!({"before": "1d"}))).await;
        assert_eq!(s, 403, "{label}: archiving needs sudo on sys/audit");
        srv.stop().await;
    }
}

#[tokio::test]
async fn retention_archives_on_schedule() {
    for db in backends().await {
        let label = db.label;
        let dir = tempfile::tempdir().unwrap();
        let ad = dir.path().to_owned();
        let srv = TestServer::start_with(&db, KEY_A, move |o| {
            o.audit.archive_dir = Some(ad);
            o.audit.retention = Some(Duration::from_secs(1));
        })
        .await;
        for i in 0..3 {
            srv.set("secret", &format!("s{i}"), json!({"K": "v"})).await;
        }
        let mut archived = 0;
        for _ in 0..40 {
            tokio::time::sleep(Duration::from_millis(250)).await;
            archived = verify(&srv, "?archive=true").await["archived_seq"].as_u64().unwrap();
            if archived >= 5 {
                break;
            }
        }
        assert!(archived >= 5, "{label}: the schedule archived nothing past entry {archived}");
        let report = verify(&srv, "?archive=true").await;
        assert_eq!(report["ok"], true, "{label}: {report}");
        srv.stop().await;
    }
}

/// SQLite gives the space back: switched once to incremental vacuum, then each archive frees
/// its pages.
#[tokio::test]
async fn archiving_with_vacuum_shrinks_the_sqlite_file() {
    let db = backends().await.into_iter().next().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ad = dir.path().to_owned();
    let srv = TestServer::start_with(&db, KEY_A, move |o| o.audit.archive_dir = Some(ad)).await;
    for chunk in 0..30 {
        let calls = (0..50).map(|_| srv.json(Method::GET, "/api/v1/mounts", None));
        assert!(futures_util::future::join_all(calls).await.iter().all(|(s, _)| *s == 200), "round {chunk}");
    }
    let (s, r) = archive(&srv, json!({"before": "0s", "vacuum": true})).await;
    assert_eq!(s, 200, "{r}");
    assert!(r["entries"].as_u64().unwrap() >= 1500, "{r}");
    assert!(r["space"]["action"].as_str().unwrap().starts_with("switched"), "{r}");
    let (before, after) = (r["space"]["bytes_before"].as_u64().unwrap(), r["space"]["bytes_after"].as_u64().unwrap());
    assert!(after < before, "the file did not shrink: {before} -> {after}");
    let pool = db.pool().await;
    let mode: i64 = sqlx::query_scalar("PRAGMA auto_vacuum").fetch_one(&pool).await.unwrap();
    assert_eq!(mode, 2, "incremental");
    // From now on every archive gives its pages back without a full VACUUM.
    for _ in 0..30 {
        let calls = (0..50).map(|_| srv.json(Method::GET, "/api/v1/mounts", None));
        futures_util::future::join_all(calls).await;
    }
    let r = archive_all(&srv).await;
    assert!(r["space"]["action"].as_str().unwrap().starts_with("incremental"), "{r}");
    let (before, after) = (r["space"]["bytes_before"].as_u64().unwrap(), r["space"]["bytes_after"].as_u64().unwrap());
    assert!(after + 200 * 1024 < before, "the incremental vacuum gave back too little: {before} -> {after}");
    pool.close().await;
    srv.stop().await;
}

//! Key lifecycle over HTTP on SQLite and PostgreSQL: data-key rotation and pruning, master-key
//! rotation with rewrap and retirement of the old tag.
use crate::common;

use std::sync::Arc;

use common::{backends, test_entry, try_start, TestServer, KEY_A};
use keyward_core::{now_nanos, KeyJob, Keyward, KeywardConfig};
use keyward_crypto::MasterKeyring;
use reqwest::Method;
use serde_json::{json, Value};
use sqlx::Row;
use uuid::Uuid;

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

async fn wait_job(srv: &TestServer, id: &str) -> Value {
    for _ in 0..600 {
        let (s, job) = srv.json(Method::GET, &format!("/api/v1/keys/jobs/{id}"), None).await;
        assert_eq!(s, 200, "{job}");
        if job["status"] != "running" {
            return job;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("job {id} did not finish");
}

#[tokio::test]
async fn migration_runs_online_is_exclusive_and_leaves_every_value_intact() {
    for db in backends().await {
        let srv = std::sync::Arc::new(TestServer::start_with(&db, KEY_A, |o| o.config.migrate_batch = 7).await);
        // 40 paths x 5 versions = 200 versions under data key v1 (max_versions keeps 10).
        let mut tasks = Vec::new();
        for p in 0..40 {
            let srv = srv.clone();
            tasks.push(tokio::spawn(async move {
                for v in 0..5 {
                    srv.set("secret", &format!("p{p}"), json!({"K": format!("value-{p}-{v}")})).await;
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        srv.json(Method::POST, "/api/v1/mounts/secret/keys/rotate", None).await;
        let (s, job) = srv.json(Method::POST, "/api/v1/keys/migrate", Some(json!({"mount": "secret"}))).await;
        assert_eq!(s, 202, "{job}");
        assert_eq!(job["total"], 200, "{}", db.label);
        let id = job["id"].as_str().unwrap().to_owned();
        // Only one job at a time; the refusal says who holds it.
        let (s, e) = srv.json(Method::POST, "/api/v1/keys/migrate", Some(json!({}))).await;
        if s != 202 {
            assert_eq!(s, 409, "{e}");
            assert!(e["error"]["message"].as_str().unwrap().contains(&id), "{e}");
        }

        // Readers and writers keep working, with correct values, while the job runs.
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let mut workers = Vec::new();
        for w in 0..4 {
            let (srv, stop) = (srv.clone(), stop.clone());
            workers.push(tokio::spawn(async move {
                let mut n = 0u32;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) && n < 400 {
                    let p = (n as usize * 7 + w) % 40;
                    if w == 0 {
                        srv.set("secret", &format!("w{n}"), json!({"K": format!("during-{n}")})).await;
                        assert_eq!(srv.reveal_map("secret", &format!("w{n}")).await["K"], format!("during-{n}"));
                    } else {
                        let m = srv.reveal_map("secret", &format!("p{p}")).await;
                        assert_eq!(m["K"], format!("value-{p}-4"));
                    }
                    n += 1;
                }
            }));
        }
        let job = wait_job(&srv, &id).await;
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        for w in workers {
            w.await.unwrap();
        }
        assert_eq!((job["status"].as_str(), job["done"].as_u64()), (Some("done"), Some(200)), "{job}");

        // Every old version now opens under v2, v1 seals nothing and can be pruned.
        for p in 0..40 {
            for v in 1..=5u64 {
                let (s, b) = srv
                    .json(Method::GET, &format!("/api/v1/mounts/secret/secrets/p{p}?version={v}&reveal=true"), None)
                    .await;
                assert_eq!((s, b["fields"][0]["value"].as_str()), (200, Some(format!("value-{p}-{}", v - 1).as_str())));
            }
        }
        assert_eq!(dek_blobs(&status(&srv).await, "secret")[0], (1, 0));
        let (_, p) = srv.json(Method::POST, "/api/v1/mounts/secret/keys/prune", None).await;
        assert_eq!(p["deleted"], json!([1]));
        let (_, jobs) = srv.json(Method::GET, "/api/v1/keys/jobs", None).await;
        assert!(jobs.as_array().unwrap().iter().any(|j| j["id"] == id.as_str()));
        std::sync::Arc::try_unwrap(srv).ok().expect("sole owner").stop().await;
    }
}

/// A server stopped in a process gives back the background lock: one started again on the same
/// database (or, with PostgreSQL, a second one already running) takes it and runs key jobs.
#[tokio::test]
async fn a_stopped_server_hands_background_work_on() {
    for db in backends().await {
        let first = TestServer::start(&db, KEY_A).await;
        let token = first.token.clone();
        let other = match db.label {
            "postgres" => Some(TestServer::wrap(try_start(&db, KEY_A, false).await.unwrap(), token.clone())),
            _ => None,
        };
        first.stop().await;
        let srv = match other {
            Some(o) => o,
            None => TestServer::wrap(try_start(&db, KEY_A, false).await.unwrap(), token),
        };
        for p in 0..5 {
            srv.set("secret", &format!("h{p}"), json!({"K": "v"})).await;
        }
        srv.json(Method::POST, "/api/v1/mounts/secret/keys/rotate", None).await;
        let (s, job) = srv.json(Method::POST, "/api/v1/keys/migrate", Some(json!({"mount": "secret"}))).await;
        assert_eq!(s, 202, "{job}");
        let done = wait_job(&srv, job["id"].as_str().unwrap()).await;
        assert_eq!(done["status"], "done", "{}: {done}", db.label);
        srv.stop().await;
    }
}

#[tokio::test]
async fn doctor_decrypts_everything_and_names_what_fails() {
    for db in backends().await {
        let srv = TestServer::start(&db, KEY_A).await;
        for p in 0..5 {
            srv.set("secret", &format!("d{p}"), json!({"K": format!("doctor-{p}")})).await;
        }
        let (s, r) = srv.json(Method::GET, "/api/v1/doctor?verify_all=true", None).await;
        assert_eq!(s, 200, "{r}");
        assert_eq!(
            (r["ok"].as_bool(), r["checked"].as_u64(), r["mounts"]["secret"].as_u64()),
            (Some(true), Some(5), Some(5)),
            "{r}"
        );
        assert_eq!(
            (r["master_keys_ok"].as_bool(), r["self_test_ok"].as_bool(), r["audit_ok"].as_bool()),
            (Some(true), Some(true), Some(true))
        );

        let pool = db.pool().await;
        let row = sqlx::query("SELECT v.secret_id, v.blob FROM secret_versions v JOIN secrets s ON s.id = v.secret_id WHERE s.path = 'd3'")
            .fetch_one(&pool)
            .await
            .unwrap();
        let (sid, mut blob): (String, Vec<u8>) = (row.get(0), row.get(1));
        let original = blob.clone();
        let last = blob.len() - 1;
        blob[last] ^= 1;
        sqlx::query("UPDATE secret_versions SET blob = $1 WHERE secret_id = $2")
            .bind(blob)
            .bind(sid.clone())
            .execute(&pool)
            .await
            .unwrap();
        let (_, r) = srv.json(Method::GET, "/api/v1/doctor?verify_all=true", None).await;
        assert_eq!(r["ok"], false);
        assert_eq!(r["failures"], json!(["secret/d3 version 1"]), "{}: {r}", db.label);
        assert!(!r.to_string().contains("doctor-"), "no value in the report");
        sqlx::query("UPDATE secret_versions SET blob = $1 WHERE secret_id = $2")
            .bind(original)
            .bind(sid)
            .execute(&pool)
            .await
            .unwrap();
        let (_, r) = srv.json(Method::GET, "/api/v1/doctor?verify_all=true", None).await;
        assert_eq!(r["ok"], true);
        // A stored key that no longer opens is named even when no blob uses it (a data-key
        // version added by a rotation, before any write).
        srv.json(Method::POST, "/api/v1/mounts/secret/keys/rotate", None).await;
        let wrapped: Vec<u8> =
            sqlx::query("SELECT wrapped FROM wrapped_keys WHERE domain = 'keyward/dek' AND version = 2")
                .fetch_one(&pool)
                .await
                .unwrap()
                .get(0);
        let mut bad = wrapped.clone();
        bad[5] ^= 1;
        let set = "UPDATE wrapped_keys SET wrapped = $1 WHERE domain = 'keyward/dek' AND version = 2";
        sqlx::query(set).bind(bad).execute(&pool).await.unwrap();
        let (_, r) = srv.json(Method::GET, "/api/v1/doctor", None).await;
        assert_eq!(r["ok"], false, "{}: {r}", db.label);
        assert!(r["problems"].to_string().contains("keyward/dek key of"), "{r}");
        sqlx::query(set).bind(wrapped).execute(&pool).await.unwrap();
        pool.close().await;
        srv.stop().await;
    }
}

#[tokio::test]
async fn stale_fields_are_reported_without_decrypting() {
    for db in backends().await {
        let srv =
            TestServer::start_with(&db, KEY_A, |o| o.stale_scan_interval = std::time::Duration::from_millis(200)).await;
        let (s, b) = srv
            .json(
                Method::PATCH,
                "/api/v1/mounts/secret/secrets/old",
                Some(json!({"set": {"API_KEY": "a", "OTHER": "b"}, "rotate_after": "1s"})),
            )
            .await;
        assert_eq!(s, 200, "{b}");
        srv.set("secret", "fresh", json!({"K": "v"})).await;
        let (s, _) =
            srv.json(Method::POST, "/api/v1/mounts", Some(json!({"path": "short", "rotate_after": "1s"}))).await;
        assert_eq!(s, 201);
        srv.set("short", "prod", json!({"DB": "x"})).await;
        // A version whose deletion is only scheduled (delete_version_after) is still live, so still checked.
        let (s, _) =
            srv.vault(&srv.token, "POST", "secret/metadata/sched", Some(json!({"delete_version_after": "1h"}))).await;
        assert_eq!(s, 204);
        srv.set("secret", "sched", json!({"S": "v"})).await;
        tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
        srv.set("secret", "old", json!({"OTHER": "rotated"})).await;

        let (s, stale) = srv.json(Method::GET, "/api/v1/stale", None).await;
        assert_eq!(s, 200, "{stale}");
        let names: Vec<String> = stale
            .as_array()
            .unwrap()
            .iter()
            .map(|f| {
                format!(
                    "{}/{}/{}",
                    f["mount"].as_str().unwrap(),
                    f["path"].as_str().unwrap(),
                    f["field"].as_str().unwrap()
                )
            })
            .collect();
        assert_eq!(names, vec!["secret/old/API_KEY", "short/prod/DB"], "{}: {stale}", db.label);
        assert_eq!(stale[0]["limit"], "1s");
        assert_eq!(stale[0]["version"], 1, "age is per field: API_KEY last changed in version 1");
        let (_, only) = srv.json(Method::GET, "/api/v1/stale?mount=short", None).await;
        assert_eq!(only.as_array().unwrap().len(), 1);
        let (_, all) = srv.json(Method::GET, "/api/v1/stale?older_than=1s", None).await;
        assert_eq!(all.as_array().unwrap().len(), 4, "fresh/K, old/API_KEY, sched/S and short/prod/DB: {all}");
        let (s, _) = srv.json(Method::GET, "/api/v1/stale?older_than=soon", None).await;
        assert_eq!(s, 400);
        // Only what a token may list, and only with `list` on `sys/stale`.
        srv.policy("short-only", "[[rules]]\npath = \"short/*\"\ncapabilities = [\"list\"]\n").await;
        let t = srv.token_with(&["short-only"]).await;
        let (s, _) = srv.json_as(&t, Method::GET, "/api/v1/stale", None).await;
        assert_eq!(s, 403);
        srv.policy("stale-report", "[[rules]]\npath = \"sys/stale\"\ncapabilities = [\"list\"]\n").await;
        let t = srv.token_with(&["short-only", "stale-report"]).await;
        let (_, mine) = srv.json_as(&t, Method::GET, "/api/v1/stale", None).await;
        assert_eq!(mine.as_array().unwrap().len(), 1);
        // Health counts them.
        let mut count = 0;
        for _ in 0..30 {
            let h: Value = reqwest::get(format!("{}/v1/sys/health", srv.base)).await.unwrap().json().await.unwrap();
            count = h["audit"]["counters"]["stale_fields"].as_u64().unwrap();
            if count == 2 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        assert_eq!(count, 2);
        srv.stop().await;
    }
}

#[tokio::test]
async fn only_one_migration_runs_across_servers() {
    for db in backends().await {
        let a = TestServer::start_with(&db, KEY_A, |o| o.config.migrate_batch = 1).await;
        if common::second_server_refused_on_sqlite(&db).await {
            a.stop().await;
            continue;
        }
        let b = TestServer::wrap(
            common::try_start_with(&db, KEY_A, false, |o| o.config.migrate_batch = 1).await.unwrap(),
            a.token.clone(),
        );
        let a = std::sync::Arc::new(a);
        let mut seeders = Vec::new();
        for w in 0..8 {
            let a = a.clone();
            seeders.push(tokio::spawn(async move {
                for p in (w..400).step_by(8) {
                    a.set("secret", &format!("x{p}"), json!({"K": format!("{p}")})).await;
                }
            }));
        }
        for t in seeders {
            t.await.unwrap();
        }
        let a = std::sync::Arc::try_unwrap(a).ok().expect("sole owner");
        a.json(Method::POST, "/api/v1/mounts/secret/keys/rotate", None).await;
        let (ra, rb) = tokio::join!(
            a.json(Method::POST, "/api/v1/keys/migrate", Some(json!({"mount": "secret"}))),
            b.json(Method::POST, "/api/v1/keys/migrate", Some(json!({"mount": "secret"}))),
        );
        // Never two running jobs; a refused start names the job that holds the lock.
        let running = [&ra, &rb].iter().filter(|r| r.0 == 202 && r.1["status"] == "running").count();
        assert_eq!(running, 1, "{}: {ra:?} {rb:?}", db.label);
        for r in [&ra, &rb] {
            assert!(r.0 == 202 || r.0 == 409, "{r:?}");
            if r.0 == 409 {
                assert!(r.1["error"]["message"].as_str().unwrap().contains("held by server kw-"), "{r:?}");
            }
        }
        let (s, again) = b.json(Method::POST, "/api/v1/keys/migrate", Some(json!({"mount": "secret"}))).await;
        assert!(s == 409 || again["total"] == 0, "{s} {again}");
        let job = if ra.0 == 202 && ra.1["status"] == "running" { &ra.1 } else { &rb.1 };
        assert_eq!(wait_job(&a, job["id"].as_str().unwrap()).await["status"], "done");
        a.stop().await;
        b.stop().await;
    }
}

/// A batch is re-sealed outside the write lock. If its mount's newest key moved on before it is
/// stored (a rotation, then a prune of the key it was sealed under), storing it changes nothing
/// and the job redoes it; a batch offered twice is stored once. No blob ends up under a deleted
/// key.
#[tokio::test]
async fn a_batch_resealed_under_a_key_pruned_since_is_not_stored() {
    for db in backends().await {
        let srv = TestServer::start(&db, KEY_A).await;
        for p in 0..5 {
            srv.set("secret", &format!("p{p}"), json!({"K": format!("value-{p}")})).await;
        }
        let (s, r) = srv.json(Method::POST, "/api/v1/mounts/secret/keys/rotate", None).await;
        assert_eq!((s, r["version"].as_u64()), (200, Some(2)));
        srv.stop().await;

        let store = keyward_store::connect(&db.url, 4).await.unwrap();
        let keyring = MasterKeyring::parse(KEY_A).unwrap();
        let kw = Keyward::open(Arc::new(store), keyring, KeywardConfig::default(), None).await.unwrap();
        let mount = kw.find_mount("secret").await.unwrap().unwrap().id;
        let job = running_job(&kw, Some((mount, "secret")), 5).await;

        let stale = kw.reseal_batch(&job).await.unwrap();
        assert_eq!((stale.rows.len(), stale.sealed_under.clone()), (5, vec![(mount, 2)]));
        assert_eq!(kw.rotate_dek("secret", test_entry()).await.unwrap(), 3);
        assert_eq!(kw.prune_deks("secret", test_entry()).await.unwrap().0, vec![2], "{}", db.label);
        let after = kw.store_batch(stale).await.unwrap();
        assert_eq!((after.done, &after.cursor, after.status.as_str()), (0, &job.cursor, "running"), "{}", db.label);

        let batch = kw.reseal_batch(&after).await.unwrap();
        assert_eq!(batch.sealed_under, vec![(mount, 3)]);
        let mut job = kw.store_batch(batch.clone()).await.unwrap();
        assert_eq!(job.done, 5);
        assert_eq!(kw.store_batch(batch).await.unwrap().done, 5, "a batch was stored twice");
        while job.status == "running" {
            let batch = kw.reseal_batch(&job).await.unwrap();
            job = kw.store_batch(batch).await.unwrap();
        }
        assert_eq!((job.status.as_str(), job.done), ("done", 5));
        for p in 0..5 {
            let read = kw.read_secret("secret", &format!("p{p}"), None).await.unwrap();
            assert_eq!(read.data.fields()["K"], format!("value-{p}"));
            assert_eq!(read.version.dek_version, Some(3));
        }
        assert_eq!(kw.prune_deks("secret", test_entry()).await.unwrap().0, vec![1]);
    }
}

/// Inserts a running re-encryption job (of one mount, or of every mount) as `keys migrate` would,
/// without starting its background task, so a test drives its batches itself.
async fn running_job(kw: &Keyward, mount: Option<(Uuid, &str)>, total: u64) -> KeyJob {
    let now = now_nanos();
    let job = KeyJob {
        id: Uuid::new_v4(),
        kind: "migrate".into(),
        mount_id: mount.map(|m| m.0),
        mount: mount.map(|m| m.1.to_owned()),
        status: "running".into(),
        total,
        done: 0,
        cursor: (String::new(), 0),
        owner: "test".into(),
        started_at: now,
        updated_at: now,
        error: String::new(),
    };
    let mut tx = kw.store().begin_write(false).await.unwrap();
    tx.insert_key_job(&job).await.unwrap();
    tx.commit().await.unwrap();
    job
}

/// A migration of every mount meets a mount deletion between reading a batch and storing it:
/// the batch stores nothing (that mount has no newest key any more), is redone without the
/// deleted mount's rows, and the job ends done, the other mount's values intact.
#[tokio::test]
async fn a_mount_deleted_while_its_batch_was_resealed_is_skipped() {
    for db in backends().await {
        let srv = TestServer::start(&db, KEY_A).await;
        let (s, b) = srv.json(Method::POST, "/api/v1/mounts", Some(json!({"path": "other"}))).await;
        assert!(s < 300, "{b}");
        for (mount, p) in [("secret", 0), ("other", 0), ("secret", 1), ("other", 1)] {
            srv.set(mount, &format!("p{p}"), json!({"K": format!("{mount}-{p}")})).await;
        }
        for mount in ["secret", "other"] {
            let (s, r) = srv.json(Method::POST, &format!("/api/v1/mounts/{mount}/keys/rotate"), None).await;
            assert_eq!(s, 200, "{r}");
        }
        srv.stop().await;

        let store = keyward_store::connect(&db.url, 4).await.unwrap();
        let keyring = MasterKeyring::parse(KEY_A).unwrap();
        let kw = Keyward::open(Arc::new(store), keyring, KeywardConfig::default(), None).await.unwrap();
        let job = running_job(&kw, None, 4).await;
        let stale = kw.reseal_batch(&job).await.unwrap();
        assert_eq!(stale.rows.len(), 4, "{}", db.label);
        kw.delete_mount("other", test_entry()).await.unwrap();
        let after = kw.store_batch(stale).await.unwrap();
        assert_eq!((after.done, after.status.as_str()), (0, "running"), "{}", db.label);

        let mut job = after;
        while job.status == "running" {
            let batch = kw.reseal_batch(&job).await.unwrap();
            job = kw.store_batch(batch).await.unwrap();
        }
        assert_eq!((job.status.as_str(), job.done), ("done", 2), "{}: {}", db.label, job.error);
        for p in 0..2 {
            let read = kw.read_secret("secret", &format!("p{p}"), None).await.unwrap();
            assert_eq!(read.data.fields()["K"], format!("secret-{p}"));
            assert_eq!(read.version.dek_version, Some(2));
        }
    }
}

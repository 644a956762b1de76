//! `populate DB COUNT`: initialises a fresh keyward database (master key from KEYWARD_MASTER_KEY)
//! and writes COUNT secrets of two fields each to mount `secret` at `bench/<n>`, through the
//! real writer (encrypted, audited, group-committed). Prints the root token on stdout. For the
//! scale benchmarks (`bench/run.sh`).
use std::sync::Arc;

use futures_util::StreamExt;
use keyward_core::{AuditEntry, Keyward, KeywardConfig, MountKind, SecretData, SecretPatch};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (Some(db), Some(count)) = (args.next(), args.next()) else {
        return Err("usage: populate DB COUNT".into());
    };
    let count: u64 = count.parse()?;
    let keyring = keyward_crypto::MasterKeyring::parse_single(&std::env::var("KEYWARD_MASTER_KEY")?)?;
    let store = keyward_store::connect(&keyward_store::DatabaseUrl::parse(&db), 8).await?;
    let store: Arc<dyn keyward_core::Store> = Arc::new(store);
    let kw = Keyward::open(store.clone(), keyring, KeywardConfig::default(), None).await?;
    let entry = |operation: &str| AuditEntry { operation: operation.into(), status: 200, ..Default::default() };
    let root = kw.initialize(entry("sys.init")).await?;
    kw.create_mount("secret", MountKind::Kv, None, entry("mounts.create")).await?;
    let started = std::time::Instant::now();
    let results = futures_util::stream::iter(0..count)
        .map(|i| {
            let kw = kw.clone();
            async move {
                let mut map = serde_json::Map::new();
                map.insert("API_KEY".into(), format!("sk_test_{i:024}").into());
                map.insert("DATABASE_URL".into(), format!("postgres://app:pw{i}@db/app").into());
                let patch = SecretPatch {
                    set: SecretData::new(map),
                    may_create: true,
                    may_change: true,
                    may_read: true,
                    ..Default::default()
                };
                let entry = AuditEntry { operation: "bench.populate".into(), ..Default::default() };
                kw.patch_secret("secret", &format!("bench/{i:08}"), patch, "populate", entry).await
            }
        })
        .buffer_unordered(1024)
        .filter(|r| std::future::ready(r.is_err()))
        .count()
        .await;
    if results > 0 {
        return Err(format!("{results} writes failed").into());
    }
    eprintln!("populated {count} secrets in {:.1}s", started.elapsed().as_secs_f64());
    println!("{}", root.expose());
    store.close().await;
    Ok(())
}

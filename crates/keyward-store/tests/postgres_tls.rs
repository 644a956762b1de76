//! PostgreSQL over TLS against a real server: a throwaway cluster (`pg_createcluster … kwtls
//! --port 5439`) that only accepts TLS, with a certificate for `localhost`/127.0.0.1 issued by a
//! CA this test makes. The right CA connects (and the session is encrypted), a wrong CA is refused,
//! `sslmode=require` connects without verifying. The policy for hosts that are not local (nothing
//! below `verify-full` unless `--database-insecure`) is a unit test of URL parsing in
//! `connect.rs`. Needs root and Debian's PostgreSQL cluster tools: skipped with a message
//! without them, except under `CI=true`, where that is a failure.
#![allow(clippy::unwrap_used)] // test helpers panic on purpose

use std::path::{Path, PathBuf};
use std::process::Command;

use keyward_core::Store;
use keyward_store::{connect, DatabaseUrl};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose};

const CLUSTER: &str = "kwtls";
const PORT: u16 = 5439;

fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(out.status.success(), "{cmd:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// A CA certificate (PEM) and its key.
fn ca(name: &str) -> (rcgen::Certificate, KeyPair) {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name.push(DnType::CommonName, name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    (params.self_signed(&key).unwrap(), key)
}

/// A throwaway cluster, dropped with the test.
struct TlsCluster {
    version: String,
    dir: tempfile::TempDir,
}

impl TlsCluster {
    /// Creates and starts the cluster with a server certificate issued by `ca`; `None` (the test
    /// skipped) where the cluster tools or root are missing, unless `CI=true`.
    fn start(ca: &(rcgen::Certificate, KeyPair)) -> Option<Self> {
        let ci = std::env::var("CI").as_deref() == Ok("true");
        let tools = Path::new("/usr/bin/pg_createcluster").exists();
        let root = rustix::process::geteuid().is_root();
        if !(tools && root) {
            assert!(!ci, "CI=true but the PostgreSQL TLS test cannot run (pg_createcluster: {tools}, root: {root})");
            eprintln!("PostgreSQL TLS test skipped: it needs root and Debian's pg_createcluster");
            return None;
        }
        let mut versions: Vec<String> = std::fs::read_dir("/etc/postgresql")
            .unwrap()
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .collect();
        versions.sort_by_key(|v| v.parse::<u32>().unwrap_or(0));
        let version = versions.pop().expect("a PostgreSQL version under /etc/postgresql");
        // A cluster left by an interrupted run goes first.
        let _ = Command::new("pg_dropcluster").args(["--stop", &version, CLUSTER]).output();
        run(Command::new("pg_createcluster").args([&version, CLUSTER, "--port", &PORT.to_string()]));
        let cluster = Self { version, dir: tempfile::tempdir().unwrap() };

        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).unwrap();
        params.distinguished_name.push(DnType::CommonName, "localhost");
        let cert = params.signed_by(&key, &ca.0, &ca.1).unwrap();
        let data = PathBuf::from(format!("/var/lib/postgresql/{}/{CLUSTER}", cluster.version));
        let (crt, pem_key) = (data.join("kw-server.crt"), data.join("kw-server.key"));
        std::fs::write(&crt, cert.pem()).unwrap();
        std::fs::write(&pem_key, key.serialize_pem()).unwrap();
        run(Command::new("chmod").args(["600"]).arg(&pem_key));
        run(Command::new("chown").args(["postgres:postgres"]).arg(&crt).arg(&pem_key));
        let conf = PathBuf::from(format!("/etc/postgresql/{}/{CLUSTER}", cluster.version));
        let mut settings = std::fs::read_to_string(conf.join("postgresql.conf")).unwrap();
        settings.push_str(&format!(
            "\nssl = on\nssl_cert_file = '{}'\nssl_key_file = '{}'\nlisten_addresses = 'localhost'\n",
            crt.display(),
            pem_key.display()
        ));
        std::fs::write(conf.join("postgresql.conf"), settings).unwrap();
        // TLS or nothing over the network.
        let hba = "local all all peer\nhostssl all all 127.0.0.1/32 trust\nhostssl all all ::1/128 trust\n\
                   hostnossl all all all reject\n";
        std::fs::write(conf.join("pg_hba.conf"), hba).unwrap();
        run(Command::new("pg_ctlcluster").args([&cluster.version, CLUSTER, "start"]));
        Some(cluster)
    }

    fn url(&self, query: &str) -> DatabaseUrl {
        DatabaseUrl::Postgres(format!("postgres://postgres@localhost:{PORT}/postgres?{query}"))
    }

    fn pem(&self, name: &str, cert: &rcgen::Certificate) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, cert.pem()).unwrap();
        path
    }
}

impl Drop for TlsCluster {
    fn drop(&mut self) {
        let _ = Command::new("pg_dropcluster").args(["--stop", &self.version, CLUSTER]).output();
    }
}

/// Whether the store's session runs over TLS, as the server sees it.
async fn encrypted(store: &keyward_store::SqlStore) -> bool {
    sqlx::query_scalar::<_, bool>("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
        .fetch_one(store.pool())
        .await
        .unwrap()
}

#[tokio::test]
async fn postgres_over_tls_trusts_only_the_configured_ca() {
    sqlx::any::install_default_drivers();
    let right = ca("keyward test CA");
    let wrong = ca("some other CA");
    let Some(cluster) = TlsCluster::start(&right) else { return };
    let right_pem = cluster.pem("ca.pem", &right.0);
    let wrong_pem = cluster.pem("wrong-ca.pem", &wrong.0);

    // The right CA: connected, migrated, encrypted.
    let url = cluster.url(&format!("sslmode=verify-full&sslrootcert={}", right_pem.display()));
    let store = connect(&url, 2).await.expect("verify-full with the cluster's CA connects");
    assert!(encrypted(&store).await);
    assert!(store.system_value("initialized").await.unwrap().is_none(), "the migrations ran over TLS");
    store.close().await;

    // A certificate from another CA is refused, at verify-full and verify-ca alike.
    for mode in ["verify-full", "verify-ca"] {
        let url = cluster.url(&format!("sslmode={mode}&sslrootcert={}", wrong_pem.display()));
        let Err(err) = connect(&url, 2).await else {
            panic!("{mode}: a server certificate from another CA was accepted")
        };
        let err = err.to_string();
        assert!(err.to_lowercase().contains("certificate"), "{mode}: {err}");
    }

    // `require`: encrypted without verifying (allowed here: the host is local).
    let store = connect(&cluster.url("sslmode=require"), 2).await.expect("sslmode=require connects");
    assert!(encrypted(&store).await);
    store.close().await;

    // The cluster takes nothing else, so the sessions above were TLS by necessity.
    assert!(connect(&cluster.url("sslmode=disable"), 2).await.is_err());
}

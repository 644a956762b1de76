//! `crash KEYWARD_BIN [--cycles N] [--database URL] [--seed S] [--outage STOP_CMD START_CMD]`:
//! the crash-durability harness.
//! Each cycle starts the real server (SQLite in a temporary directory, or the given — empty —
//! PostgreSQL database), runs a write load from several concurrent clients while a data-key
//! rotation with its re-encryption job, a master-key rewrap and an online backup are in flight,
//! and kills the server with SIGKILL at a random moment. After each restart every acknowledged
//! write must read back exactly, `audit verify` and `doctor --verify-all` must pass, and the
//! key jobs must resume and finish. Prints cycles, acknowledged writes and losses; exits non-zero
//! on any loss or failed check.
//!
//! With `--outage`, each cycle stops the database instead (`STOP_CMD`, a shell command, e.g.
//! `pg_ctlcluster 15 main stop -m fast`) for three seconds under the same load, then starts it
//! (`START_CMD`): every request must be answered within the server's request timeout (5 s here) —
//! 503 while the database is away, never a hang — and the server must serve again once it is
//! back, without a restart, with nothing acknowledged lost. Prints what the requests got.
//!
//! SIGKILL proves durability across a process crash (what was acknowledged was committed), not
//! across a power loss (what was committed reached the disk): that needs a fault-injecting file
//! system such as LazyFS, which is not installable here — power loss is untested.
use std::collections::BTreeMap;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use keyward_testkit::ServerProcess;
use serde_json::{json, Value};

/// Concurrent writers during each cycle.
const WRITERS: usize = 8;

type Fail = Box<dyn std::error::Error>;

/// A small deterministic generator (the seed is printed, so a failing run can be replayed).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        self.0 >> 33
    }
}

struct Harness {
    bin: String,
    args: Vec<String>,
    key: String,
    dir: tempfile::TempDir,
    token: Option<String>,
}

impl Harness {
    fn start(&self) -> Result<ServerProcess, Fail> {
        let args: Vec<&str> = self.args.iter().map(String::as_str).collect();
        ServerProcess::start(&self.bin, &args, &[("KEYWARD_MASTER_KEYS", &self.key)])
            .map_err(|e| format!("the server did not start ({}): {}", e.code, e.stderr).into())
    }

    /// Runs a CLI command against the server; its stdout, or why it failed.
    fn cli(&self, addr: &str, args: &[&str]) -> Result<String, String> {
        let mut cmd = Command::new(&self.bin);
        cmd.args(args).env("KEYWARD_ADDR", addr).env_remove("KEYWARD_CACERT");
        match &self.token {
            Some(t) => cmd.env("KEYWARD_TOKEN", t),
            None => cmd.env_remove("KEYWARD_TOKEN"),
        };
        let out = cmd.output().map_err(|e| e.to_string())?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(format!("keyward {args:?}: {}", String::from_utf8_lossy(&out.stderr).trim()))
        }
    }

    /// Starts a CLI command without waiting for it (it dies with the server, or finishes).
    fn cli_in_flight(&self, addr: &str, args: &[&str]) -> Result<std::process::Child, Fail> {
        let mut cmd = Command::new(&self.bin);
        cmd.args(args).env("KEYWARD_ADDR", addr).env("KEYWARD_TOKEN", self.token.as_deref().unwrap_or_default());
        Ok(cmd.stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null()).spawn()?)
    }
}

/// What the load's requests got.
#[derive(Debug, Default, Clone)]
struct Outcomes {
    ok: u64,
    unavailable: u64,
    /// Other statuses, by code.
    other: BTreeMap<u16, u64>,
    /// Requests that got no answer (connection refused, client timeout).
    unanswered: u64,
    slowest: Duration,
}

/// Writes new secrets until `stop`; records those the server acknowledged, and what each got.
#[allow(clippy::too_many_arguments)]
async fn write_load(
    http: reqwest::Client,
    addr: String,
    token: String,
    writer: usize,
    cycle: u64,
    acked: Arc<Mutex<BTreeMap<String, String>>>,
    stop: Arc<std::sync::atomic::AtomicBool>,
    outcomes: Arc<Mutex<Outcomes>>,
) {
    let mut n = 0u64;
    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
        let asked = Instant::now();
        let path = format!("c{cycle}/w{writer}/k{n}");
        let value = format!("sk_test_{cycle}_{writer}_{n}_{:016x}", Lcg(cycle * 1_000_003 + n).next());
        let sent = http
            .post(format!("{addr}/v1/secret/data/{path}"))
            .header("X-Vault-Token", &token)
            .json(&json!({ "data": { "value": value } }))
            .send()
            .await;
        let took = asked.elapsed();
        if let Ok(mut o) = outcomes.lock() {
            o.slowest = o.slowest.max(took);
            match &sent {
                Ok(r) if r.status().is_success() => o.ok += 1,
                Ok(r) if r.status() == reqwest::StatusCode::SERVICE_UNAVAILABLE => o.unavailable += 1,
                Ok(r) => *o.other.entry(r.status().as_u16()).or_default() += 1,
                Err(_) => o.unanswered += 1,
            }
        }
        if let Ok(r) = sent {
            if r.status().is_success() {
                acked.lock().map(|mut a| a.insert(path, value)).ok();
            } else {
                // Not hammering a server that says it cannot serve.
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        n += 1;
    }
}

/// Every acknowledged write, read back; the paths that are missing or different.
async fn losses(http: &reqwest::Client, addr: &str, token: &str, acked: &BTreeMap<String, String>) -> Vec<String> {
    futures_util::stream::iter(acked.iter())
        .map(|(path, value)| async move {
            let r = http.get(format!("{addr}/v1/secret/data/{path}")).header("X-Vault-Token", token).send().await;
            let body: Option<Value> = match r {
                Ok(r) if r.status().is_success() => r.json().await.ok(),
                _ => None,
            };
            let got = body.as_ref().and_then(|b| b["data"]["data"]["value"].as_str());
            (got != Some(value.as_str())).then(|| path.clone())
        })
        .buffer_unordered(32)
        .filter_map(|lost| async move { lost })
        .collect()
        .await
}

#[tokio::main]
async fn main() -> Result<(), Fail> {
    let mut args = std::env::args().skip(1);
    let bin = args.next().ok_or("usage: crash KEYWARD_BIN [--cycles N] [--database URL] [--seed S]")?;
    let (mut cycles, mut database, mut seed, mut outage) = (100u64, None, None, None);
    while let Some(flag) = args.next() {
        let value = args.next().ok_or(format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--outage" => outage = Some((value, args.next().ok_or("--outage needs STOP_CMD and START_CMD")?)),
            "--cycles" => cycles = value.parse()?,
            "--database" => database = Some(value),
            "--seed" => seed = Some(value.parse()?),
            other => return Err(format!("unknown flag {other}").into()),
        }
    }
    let seed = seed.unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(1, |d| d.as_nanos() as u64)
    });
    let mut rng = Lcg(seed);
    let dir = tempfile::tempdir()?;
    let database = database.unwrap_or_else(|| dir.path().join("keyward.db").display().to_string());
    let engine = if database.starts_with("postgres") { "PostgreSQL" } else { "SQLite" };
    let key_bytes: Vec<u8> = (0..32).map(|_| (rng.next() & 0xff) as u8).collect();
    let key = format!("v1:{}", base64_encode(&key_bytes));
    let mut server_args = vec!["--database".to_owned(), database];
    // An outage must answer within a short timeout; a crash run's checks walk the whole database
    // (`audit verify`, `doctor --verify-all`), which outgrows the default 30 s as the cycles add up.
    let timeout = if outage.is_some() { "5s" } else { "10m" };
    server_args.extend(["--request-timeout".to_owned(), timeout.to_owned()]);
    let mut h = Harness { bin, args: server_args, key, dir, token: None };
    let http = reqwest::Client::builder().timeout(Duration::from_secs(10)).build()?;

    let server = h.start()?;
    let init: Value = serde_json::from_str(&h.cli(&server.addr, &["operator", "init", "--format", "json"])?)?;
    h.token = Some(init["root_token"].as_str().ok_or("init printed no root token")?.to_owned());
    h.cli(&server.addr, &["mounts", "create", "secret"])?;
    let mut server = server;
    let acked = Arc::new(Mutex::new(BTreeMap::new()));
    let started = Instant::now();
    let what = if outage.is_some() { "database outage" } else { "crash" };
    println!("{what} harness: {engine}, {cycles} cycles, seed {seed}");
    let outcomes = Arc::new(Mutex::new(Outcomes::default()));
    for cycle in 0..cycles {
        let token = h.token.clone().unwrap_or_default();
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let load: Vec<_> = (0..WRITERS)
            .map(|w| {
                let task = write_load(
                    http.clone(),
                    server.addr.clone(),
                    token.clone(),
                    w,
                    cycle,
                    acked.clone(),
                    stop.clone(),
                    outcomes.clone(),
                );
                tokio::spawn(task)
            })
            .collect();
        if let Some((stop_cmd, start_cmd)) = &outage {
            let recovered = outage_cycle(&http, &server.addr, &token, stop_cmd, start_cmd).await?;
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
            for task in load {
                task.await?;
            }
            println!("cycle {}: served again {:.1} s after the database returned", cycle + 1, recovered.as_secs_f64());
        } else {
            // The background work in flight when the kill comes: a new data key and the job that
            // re-encrypts under it, a rewrap under the master key, an online backup.
            tokio::time::sleep(Duration::from_millis(20 + rng.next() % 80)).await;
            let backup = h.dir.path().join(format!("backup-{cycle}.kwb"));
            let in_flight = [
                h.cli_in_flight(&server.addr, &["keys", "rotate", "-p", "secret"])?,
                h.cli_in_flight(&server.addr, &["keys", "migrate", "-p", "secret", "--no-wait"])?,
                h.cli_in_flight(&server.addr, &["keys", "rewrap"])?,
                h.cli_in_flight(&server.addr, &["operator", "backup", &backup.display().to_string()])?,
            ];
            tokio::time::sleep(Duration::from_millis(50 + rng.next() % 450)).await;
            server.kill(); // SIGKILL: no shutdown, no flush
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
            for task in load {
                task.await?;
            }
            for mut child in in_flight {
                child.wait()?;
            }
            server = h.start()?;
        }
        let snapshot = acked.lock().map_err(|_| "poisoned")?.clone();
        let lost = losses(&http, &server.addr, &token, &snapshot).await;
        if !lost.is_empty() {
            return Err(format!(
                "cycle {cycle}: {} acknowledged write(s) lost, e.g. {:?}",
                lost.len(),
                &lost[..lost.len().min(5)]
            )
            .into());
        }
        h.cli(&server.addr, &["audit", "verify"]).map_err(|e| format!("cycle {cycle}: {e}"))?;
        // The jobs the kill interrupted resume and finish.
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let jobs: Value = serde_json::from_str(&h.cli(&server.addr, &["keys", "jobs", "--format", "json"])?)?;
            let jobs = jobs.as_array().cloned().unwrap_or_default();
            if jobs.iter().all(|j| j["status"] != "running") {
                if let Some(j) = jobs.iter().find(|j| j["status"] != "done") {
                    return Err(format!("cycle {cycle}: a key job ended {}", j["status"]).into());
                }
                break;
            }
            if Instant::now() > deadline {
                return Err(format!("cycle {cycle}: key jobs still running after 120 s").into());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        h.cli(&server.addr, &["doctor", "--verify-all"]).map_err(|e| format!("cycle {cycle}: {e}"))?;
        println!(
            "cycle {}: {} acknowledged writes so far, all read back; audit and doctor pass",
            cycle + 1,
            snapshot.len()
        );
    }
    let total = acked.lock().map_err(|_| "poisoned")?.len();
    let o = outcomes.lock().map_err(|_| "poisoned")?.clone();
    println!(
        "{what} harness: {engine}: {cycles} cycles, {total} acknowledged writes, 0 lost, in {:.0} s; requests: {} ok, \
         {} 503, other {:?}, {} unanswered, slowest {:.2} s",
        started.elapsed().as_secs_f64(),
        o.ok,
        o.unavailable,
        o.other,
        o.unanswered,
        o.slowest.as_secs_f64()
    );
    if outage.is_some() && (o.unanswered > 0 || o.other.keys().any(|c| *c >= 500) || o.slowest > Duration::from_secs(7))
    {
        return Err("during the outage some requests hung, went unanswered or failed with another 5xx".into());
    }
    server.stop();
    Ok(())
}

/// Stops the database under load for three seconds, starts it again, and returns how long after
/// its return the server served a read again.
async fn outage_cycle(
    http: &reqwest::Client,
    addr: &str,
    token: &str,
    stop_cmd: &str,
    start_cmd: &str,
) -> Result<Duration, Fail> {
    let sh = |cmd: &str| Command::new("sh").args(["-c", cmd]).status();
    tokio::time::sleep(Duration::from_millis(300)).await;
    if !sh(stop_cmd)?.success() {
        return Err(format!("{stop_cmd} failed").into());
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    if !sh(start_cmd)?.success() {
        return Err(format!("{start_cmd} failed").into());
    }
    let back = Instant::now();
    while back.elapsed() < Duration::from_secs(60) {
        // An audited write: the database and the audit log both work again.
        let r = http
            .post(format!("{addr}/v1/secret/data/probe"))
            .header("X-Vault-Token", token)
            .json(&json!({ "data": { "value": "probe" } }))
            .send()
            .await;
        if r.is_ok_and(|r| r.status().is_success()) {
            return Ok(back.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err("the server did not serve again within 60 s of the database's return".into())
}

fn base64_encode(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

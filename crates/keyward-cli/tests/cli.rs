//! The `keyward` binary as a user runs it: a real server process and CLI commands against it.
#![allow(clippy::unwrap_used)] // test helpers panic on purpose
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use keyward_testkit::ServerProcess;
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_keyward");

/// The server process harness is the shared one (keyward-testkit).
type ServerProc = ServerProcess;

/// Starts `keyward server ARGS` (on a free loopback port) and waits until it is ready.
fn spawn_server(args: &[&str], envs: &[(&str, &str)]) -> Result<ServerProc, (i32, String)> {
    ServerProcess::start(BIN, args, envs).map_err(|e| (e.code, e.stderr))
}

/// The CLI, run against a server.
trait Cli {
    fn kw(&self, args: &[&str]) -> Output;
    fn kw_stdin(&self, args: &[&str], stdin: Option<&str>) -> Output;
    fn kw_env(&self, args: &[&str], envs: &[(&str, Option<&str>)], stdin: Option<&str>) -> Output;
    fn ok(&self, args: &[&str]) -> String;
    fn fails(&self, args: &[&str]) -> String;
}

impl Cli for ServerProc {
    fn kw(&self, args: &[&str]) -> Output {
        self.kw_stdin(args, None)
    }

    fn kw_stdin(&self, args: &[&str], stdin: Option<&str>) -> Output {
        self.kw_env(args, &[], stdin)
    }

    /// Runs with environment overrides (`None` removes a variable).
    fn kw_env(&self, args: &[&str], envs: &[(&str, Option<&str>)], stdin: Option<&str>) -> Output {
        let mut cmd = Command::new(BIN);
        cmd.args(args).env("KEYWARD_ADDR", &self.addr).env_remove("KEYWARD_TOKEN");
        if let Some(t) = &self.token {
            cmd.env("KEYWARD_TOKEN", t);
        }
        match &self.cacert {
            Some(c) => cmd.env("KEYWARD_CACERT", c),
            None => cmd.env_remove("KEYWARD_CACERT"),
        };
        for (k, v) in envs {
            match v {
                Some(v) => cmd.env(k, v),
                None => cmd.env_remove(k),
            };
        }
        cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        let mut pipe = child.stdin.take().unwrap();
        if let Some(s) = stdin {
            pipe.write_all(s.as_bytes()).unwrap();
        }
        drop(pipe);
        child.wait_with_output().unwrap()
    }

    /// Runs a command that must succeed; returns its stdout.
    fn ok(&self, args: &[&str]) -> String {
        let out = self.kw(args);
        assert!(out.status.success(), "keyward {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    }

    /// Runs a command that must fail with one readable line on stderr; returns that line.
    fn fails(&self, args: &[&str]) -> String {
        let out = self.kw(args);
        assert!(!out.status.success(), "keyward {args:?} should have failed");
        let err = String::from_utf8(out.stderr).unwrap();
        assert_eq!(err.trim_end().lines().count(), 1, "one line expected: {err}");
        assert!(err.starts_with("error: "), "{err}");
        err
    }
}

fn reveal_json(s: &ServerProc, project: &str, env: &str) -> Value {
    serde_json::from_str(&s.ok(&["secrets", "export", "-p", project, "-e", env, "--format", "json"])).unwrap()
}

#[test]
fn dev_server_banner_and_cli_tour() {
    let s = spawn_server(&["--dev"], &[]).expect("dev server starts");
    assert!(s.addr.starts_with("http://127.0.0.1:"));
    let banner = s.stdout.join("\n");
    assert!(banner.contains("Root token: kw_"), "{banner}");
    assert!(banner.contains(&format!("export KEYWARD_ADDR='{}'", s.addr)), "{banner}");
    assert_eq!(s.token.as_ref().unwrap().len(), 46);

    let out = s.ok(&[
        "secrets",
        "set",
        "-p",
        "secret",
        "-e",
        "production",
        "STRIPE_KEY=sk_test_51H8abcdEFGH1234",
        "DATABASE_URL=postgres://u:p@h/db",
    ]);
    assert!(out.contains("version 1"), "{out}");
    let out = s.kw_stdin(
        &["secrets", "set", "-p", "secret", "-e", "production", "MULTI=-"],
        Some("line one\nkey=value  spaced «ü»\n"),
    );
    assert!(out.status.success());
    let dir = tempfile::tempdir().unwrap();
    let pem = dir.path().join("key.pem");
    std::fs::write(&pem, "-----BEGIN KEY-----\nabc\n-----END KEY-----\n").unwrap();
    s.ok(&["secrets", "set", "-p", "secret", "-e", "production", &format!("PEM=@{}", pem.display())]);

    let list = s.ok(&["secrets", "list", "-p", "secret", "-e", "production"]);
    for want in ["NAME", "VALUE", "UPDATED", "VERSION", "STRIPE_KEY", "sk_test_....1234", "DATABASE_URL"] {
        assert!(list.contains(want), "{want} missing from:\n{list}");
    }
    assert!(!list.contains("51H8abcd") && !list.contains("u:p@h"));
    let json: Value =
        serde_json::from_str(&s.ok(&["secrets", "list", "-p", "secret", "-e", "production", "--format", "json"]))
            .unwrap();
    assert_eq!(json["fields"].as_array().unwrap().len(), 4);

    assert_eq!(s.ok(&["secrets", "get", "-p", "secret", "-e", "production", "STRIPE_KEY"]), "sk_test_....1234\n");
    assert_eq!(
        s.ok(&["secrets", "get", "-p", "secret", "-e", "production", "STRIPE_KEY", "--reveal"]),
        "sk_test_51H8abcdEFGH1234\n"
    );
    assert_eq!(
        s.ok(&["secrets", "get", "-p", "secret", "-e", "production", "MULTI", "--reveal"]),
        "line one\nkey=value  spaced «ü»\n"
    );
    assert_eq!(
        s.ok(&["secrets", "get", "-p", "secret", "-e", "production", "PEM", "--reveal"]),
        "-----BEGIN KEY-----\nabc\n-----END KEY-----\n\n"
    );

    s.ok(&["secrets", "unset", "-p", "secret", "-e", "production", "MULTI"]);
    let err = s.fails(&["secrets", "get", "-p", "secret", "-e", "production", "MULTI"]);
    assert!(err.contains("MULTI"), "{err}");
    let history: Value =
        serde_json::from_str(&s.ok(&["secrets", "history", "-p", "secret", "-e", "production", "--format", "json"]))
            .unwrap();
    assert_eq!(history["versions"].as_array().unwrap().len(), 4);
    let table = s.ok(&["secrets", "history", "-p", "secret", "-e", "production"]);
    assert!(table.contains("AUTHOR") && table.contains("acc_"), "{table}");
    s.ok(&["secrets", "rollback", "-p", "secret", "-e", "production", "--version", "3"]);
    assert_eq!(
        s.ok(&["secrets", "get", "-p", "secret", "-e", "production", "MULTI", "--reveal"]),
        "line one\nkey=value  spaced «ü»\n"
    );

    // Import: .env syntax, then the same file again changes nothing.
    let env_file = dir.path().join(".env.staging");
    std::fs::write(&env_file, "# staging\n\nexport API_URL=https://api.example.com\nSECRET_KEY_BASE='lit $x \\n'\nGREETING=\"hello\\nworld \\\"q\\\"\"\n").unwrap();
    let out = s.ok(&["secrets", "import", "-p", "secret", "-e", "staging", env_file.to_str().unwrap()]);
    assert!(out.contains("3 added, 0 changed, 0 unchanged"), "{out}");
    let out = s.ok(&["secrets", "import", "-p", "secret", "-e", "staging", env_file.to_str().unwrap()]);
    assert!(out.contains("0 added, 0 changed, 3 unchanged"), "{out}");
    assert_eq!(
        s.ok(&["secrets", "get", "-p", "secret", "-e", "staging", "GREETING", "--reveal"]),
        "hello\nworld \"q\"\n"
    );

    // A syntax error names the line and imports nothing.
    let bad = dir.path().join("bad.env");
    std::fs::write(&bad, "GOOD=1\n# ok\nBROKEN LINE\n").unwrap();
    let err = s.fails(&["secrets", "import", "-p", "secret", "-e", "fresh", bad.to_str().unwrap()]);
    assert!(err.contains("line 3") && err.contains("nothing was imported"), "{err}");
    s.fails(&["secrets", "list", "-p", "secret", "-e", "fresh"]);

    // Every export format re-imports to the identical map, and shell reads the shell format.
    let original = reveal_json(&s, "secret", "production");
    for (i, format) in ["dotenv", "json", "shell"].iter().enumerate() {
        let text = s.ok(&["secrets", "export", "-p", "secret", "-e", "production", "--format", format]);
        let target = format!("copy{i}");
        let out = s.kw_stdin(&["secrets", "import", "-p", "secret", "-e", &target, "-"], Some(&text));
        assert!(out.status.success(), "{format}: {}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(reveal_json(&s, "secret", &target), original, "{format} round trip");
    }
    let shell_file = dir.path().join("env.sh");
    s.ok(&[
        "secrets",
        "export",
        "-p",
        "secret",
        "-e",
        "production",
        "--format",
        "shell",
        "-o",
        shell_file.to_str().unwrap(),
    ]);
    assert_eq!(std::fs::metadata(&shell_file).unwrap().permissions().mode() & 0o777, 0o600);
    let sh = Command::new("sh")
        .arg("-c")
        .arg(format!(". '{}'; printf %s \"$MULTI\"", shell_file.display()))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8(sh.stdout).unwrap(), "line one\nkey=value  spaced «ü»");

    // Environments and mounts.
    let envs = s.ok(&["envs", "list", "-p", "secret"]);
    for e in ["production", "staging", "copy0"] {
        assert!(envs.contains(e), "{envs}");
    }
    let err = s.fails(&["envs", "delete", "-p", "secret", "-e", "copy0"]);
    assert!(err.contains("--yes"), "{err}");
    s.ok(&["envs", "delete", "-p", "secret", "-e", "copy0", "--yes"]);
    assert!(!s.ok(&["envs", "list", "-p", "secret"]).contains("copy0"));
    s.ok(&["mounts", "create", "careflex"]);
    s.ok(&["secrets", "set", "-p", "careflex", "-e", "production", "K=v"]);
    assert!(s.ok(&["mounts", "list"]).contains("careflex"));
    let out = s.ok(&["mounts", "delete", "careflex", "--yes"]);
    assert!(out.contains("1 data key(s) destroyed"), "{out}");
    s.fails(&["secrets", "list", "-p", "careflex", "-e", "production"]);
    s.fails(&["secrets", "set", "-p", "secret", "-e", "a/../b", "K=v"]);
    s.fails(&["secrets", "set", "-p", "nope", "-e", "x", "K=v"]);

    // Key lifecycle from the CLI.
    assert!(s.ok(&["keys", "rotate", "-p", "secret"]).contains("data key v2"));
    let status = s.ok(&["keys", "status"]);
    assert!(status.contains("MASTER KEY") && status.contains("v2"), "{status}");
    assert!(s.ok(&["keys", "prune", "-p", "secret"]).contains("kept (still sealing secrets) [v1]"));
    assert!(s.ok(&["keys", "rewrap"]).contains("Rewrapped 0 key(s)"));

    // The audit trail of all that.
    let tail = s.ok(&["audit", "tail", "-n", "5"]);
    assert!(tail.contains("SEQ") && tail.contains("OPERATION"), "{tail}");
    let reveals = s.ok(&["audit", "search", "--operation", "secrets.reveal", "--format", "json"]);
    let reveals: Vec<Value> = reveals.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert!(reveals.len() >= 3, "{reveals:?}");
    assert!(reveals.iter().all(|e| e["operation"] == "secrets.reveal"));
    let exports = s.ok(&["audit", "search", "--operation", "secrets.export", "--format", "json"]);
    assert!(exports.lines().count() >= 4, "each export is recorded as one: {exports}");
    assert!(s.ok(&["audit", "verify"]).contains("Audit log intact"));
    let anchor = dir.path().join("anchor.jsonl");
    std::fs::write(&anchor, "{\"seq\":999999,\"hash\":\"00\"}\n").unwrap();
    let err = s.fails(&["audit", "verify", "--anchor-file", anchor.to_str().unwrap()]);
    assert!(err.contains("truncated"), "{err}");
    s.stop();
}

#[test]
fn gen_needs_no_server() {
    use base64::Engine;
    let run = |what: &str| {
        let out = Command::new(BIN).args(["gen", what]).env("KEYWARD_ADDR", "http://127.0.0.1:1").output().unwrap();
        assert!(out.status.success());
        base64::engine::general_purpose::STANDARD.decode(String::from_utf8(out.stdout).unwrap().trim()).unwrap()
    };
    assert_eq!(run("secret").len(), 64);
    assert_eq!(run("key").len(), 32);
    assert_ne!(run("key"), run("key"));
}

fn write_key_file(dir: &Path, name: &str, contents: &str, mode: u32) -> String {
    let p = dir.join(name);
    std::fs::write(&p, contents).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
    p.display().to_string()
}

fn refused(args: &[&str], envs: &[(&str, &str)]) -> String {
    match spawn_server(args, envs) {
        Ok(_) => panic!("server should have refused to start: {args:?}"),
        Err((code, err)) => {
            assert_ne!(code, 0);
            let last = err.trim_end().lines().last().unwrap_or_default().to_owned();
            assert!(last.starts_with("error: "), "{err}");
            last
        }
    }
}

#[test]
fn keyed_server_needs_its_key_and_initialises_once() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("data/keyward.db");
    let db = db.to_str().unwrap();
    let key = "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=";
    let other = "AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgI=";

    let e = refused(&["--database", db], &[]);
    assert!(e.contains("no master key"), "{e}");
    let Err((code, e)) = spawn_server(&["--database", db, "--migrate-nice-ratio", "101"], &[]) else {
        panic!("a rest ratio over 100 was accepted");
    };
    assert!(code != 0 && e.contains("'--migrate-nice-ratio <RATIO>': 101 is not in 0..=100"), "{e}");
    let e = refused(&["--database", db], &[("KEYWARD_MASTER_KEY", "c2hvcnQ=")]);
    assert!(e.contains("32 bytes") && !e.contains("c2hvcnQ="), "{e}");
    let e = refused(&["--database", db], &[("KEYWARD_MASTER_KEYS", "v1:!!!")]);
    assert!(e.contains("not valid base64"), "{e}");
    let loose = write_key_file(dir.path(), "loose.key", &format!("v1:{key}\n"), 0o644);
    let e = refused(&["--database", db, "--master-key-file", &loose], &[]);
    assert!(e.contains("chmod 600"), "{e}");

    let keyfile = write_key_file(dir.path(), "master.key", &format!("v1:{key}\n"), 0o600);
    let mut s = spawn_server(&["--database", db, "--master-key-file", &keyfile], &[]).expect("keyed server starts");
    let health: Value = reqwest_free_get(&s.addr, "/v1/sys/health");
    assert_eq!(health["initialized"], false);
    let out = s.ok(&["operator", "init", "--format", "json"]);
    let root: Value = serde_json::from_str(&out).unwrap();
    let token = root["root_token"].as_str().unwrap().to_owned();
    assert!(token.starts_with("kw_"));
    let err = s.fails(&["operator", "init"]);
    assert!(err.contains("already initialized"), "{err}");
    s.token = Some(token.clone());
    s.ok(&["mounts", "create", "app"]);
    assert!(s.ok(&["secrets", "set", "-p", "app", "-e", "prod", "K=v"]).contains("version 1"));
    let (_, logs) = s.stop();
    assert!(!logs.contains(&token), "the root token reached the logs");

    let e = refused(&["--database", db], &[("KEYWARD_MASTER_KEY", other)]);
    assert!(e.contains("does not match") && !e.contains(other), "{e}");

    let mut s = spawn_server(&["--database", db], &[("KEYWARD_MASTER_KEYS", &format!("v1:{key}"))])
        .expect("restarts with the right key");
    s.token = Some(token);
    assert_eq!(s.ok(&["secrets", "get", "-p", "app", "-e", "prod", "K", "--reveal"]), "v\n");
    s.stop();
}

/// A GET over a raw socket (the tests need no HTTP client of their own): the whole answer as
/// text, as far as it came (an answer may break off).
fn raw_get(addr: &str, path: &str, token: Option<&str>) -> String {
    use std::io::Read;
    let hostport = addr.trim_start_matches("http://");
    let mut tcp = std::net::TcpStream::connect(hostport).unwrap();
    let auth = token.map(|t| format!("Authorization: Bearer {t}\r\n")).unwrap_or_default();
    write!(tcp, "GET {path} HTTP/1.1\r\nHost: {hostport}\r\n{auth}Connection: close\r\n\r\n").unwrap();
    let mut resp = Vec::new();
    let _ = tcp.read_to_end(&mut resp);
    String::from_utf8_lossy(&resp).into_owned()
}

/// The JSON body of an unauthenticated GET.
fn reqwest_free_get(addr: &str, path: &str) -> Value {
    let resp = raw_get(addr, path, None);
    let body = resp.split("\r\n\r\n").nth(1).unwrap_or_default();
    serde_json::from_str(body).unwrap_or(Value::Null)
}

#[test]
fn secret_values_never_reach_logs() {
    use base64::Engine;
    let s = spawn_server(&["--dev", "--log-format", "json"], &[("RUST_LOG", "trace")]).expect("dev server");
    let token = s.token.clone().unwrap();
    let canaries: Vec<String> = (0..4).map(|i| format!("CANARY{i}x{}", std::process::id())).collect();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("v");
    std::fs::write(&file, &canaries[2]).unwrap();
    s.ok(&["secrets", "set", "-p", "secret", "-e", "prod", &format!("A={}", canaries[0])]);
    assert!(s.kw_stdin(&["secrets", "set", "-p", "secret", "-e", "prod", "B=-"], Some(&canaries[1])).status.success());
    s.ok(&["secrets", "set", "-p", "secret", "-e", "prod", &format!("C=@{}", file.display())]);
    let env = dir.path().join("import.env");
    std::fs::write(&env, format!("D=\"{}\"\n", canaries[3])).unwrap();
    s.ok(&["secrets", "import", "-p", "secret", "-e", "prod", env.to_str().unwrap()]);
    for name in ["A", "B", "C", "D"] {
        s.ok(&["secrets", "get", "-p", "secret", "-e", "prod", name, "--reveal"]);
    }
    s.ok(&["secrets", "list", "-p", "secret", "-e", "prod"]);
    let exported = s.ok(&["secrets", "export", "-p", "secret", "-e", "prod"]);
    assert!(canaries.iter().all(|c| exported.contains(c)), "export works");
    s.ok(&["secrets", "history", "-p", "secret", "-e", "prod"]);
    s.ok(&["secrets", "rollback", "-p", "secret", "-e", "prod", "--version", "1"]);
    // Errors that involve values: a bad JSON body quoting a value, and an unknown field.
    s.fails(&["secrets", "get", "-p", "secret", "-e", "prod", "NOPE"]);
    let (stdout, logs) = s.stop();
    assert!(logs.contains("secret written") && logs.contains("secret revealed"), "logging is on");
    assert!(logs.lines().count() > 50, "trace logging produced output");
    // A line logged while serving a request carries the request's span: its id, method and path.
    let revealed = logs.lines().find(|l| l.contains("secret revealed")).unwrap();
    let span = &serde_json::from_str::<Value>(revealed).unwrap()["span"];
    assert_eq!((span["name"].as_str(), span["method"].as_str()), (Some("request"), Some("GET")), "{revealed}");
    assert!(span["path"].as_str().unwrap().starts_with("/api/v1/mounts/secret/secrets/"), "{revealed}");
    assert_eq!(span["request_id"].as_str().unwrap().len(), 36, "{revealed}");
    for c in &canaries {
        for form in [c.clone(), base64::engine::general_purpose::STANDARD.encode(c), hex_of(c)] {
            assert!(!logs.contains(&form), "{form} found in logs");
            assert!(!stdout.contains(&form), "{form} found in server stdout");
        }
    }
    assert!(!logs.contains(&token[3..]), "the root token reached the logs");
}

fn hex_of(s: &str) -> String {
    s.bytes().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn tls_dev_server_is_trusted_only_with_its_ca() {
    let mut s = spawn_server(&["--dev", "--tls"], &[]).expect("TLS dev server");
    assert!(s.addr.starts_with("https://127.0.0.1:"), "{}", s.addr);
    let banner = s.stdout.join("\n");
    let fp = banner.split("SHA-256 fingerprint: ").nth(1).unwrap().lines().next().unwrap();
    assert_eq!(fp.split(':').count(), 32, "{fp}");
    assert!(s.ok(&["mounts", "list"]).contains("secret"));
    s.ok(&["secrets", "set", "-p", "secret", "-e", "tls", "K=over-tls"]);
    assert_eq!(s.ok(&["secrets", "get", "-p", "secret", "-e", "tls", "K", "--reveal"]), "over-tls\n");
    s.cacert = None;
    let err = s.fails(&["mounts", "list"]);
    assert!(err.contains("certificate"), "{err}");
    s.stop();
}

#[test]
fn plain_http_on_a_public_address_needs_insecure_http() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("k.db");
    let key = ("KEYWARD_MASTER_KEY", "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=");
    let out = Command::new(BIN)
        .args(["server", "--listen", "0.0.0.0:0", "--database", db.to_str().unwrap()])
        .env(key.0, key.1)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("refusing to serve plain HTTP") && err.contains("--insecure-http"), "{err}");

    let mut child = Command::new(BIN)
        .args(["server", "--listen", "0.0.0.0:0", "--insecure-http", "--database", db.to_str().unwrap()])
        .env(key.0, key.1)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    assert!(line.contains("listening on http://0.0.0.0:"), "{line}");
    child.kill().unwrap();
    let out = child.wait_with_output().unwrap();
    let logs = String::from_utf8_lossy(&out.stderr);
    assert!(logs.contains("plain HTTP on a non-loopback address"), "{logs}");
}

#[test]
fn tokens_and_policies_from_the_cli() {
    let s = spawn_server(&["--dev"], &[]).expect("dev server");
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("reader.toml");
    std::fs::write(&policy, "[[rules]]\npath = \"secret/production\"\ncapabilities = [\"list\", \"read\"]\n").unwrap();
    assert!(s.ok(&["policy", "write", "reader", policy.to_str().unwrap()]).contains("1 rule"));
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "[[rules]]\npath = \"secret/*/x\"\ncapabilities = [\"read\"]\n").unwrap();
    let err = s.fails(&["policy", "write", "bad", bad.to_str().unwrap()]);
    assert!(err.contains("'*' may only end the path"), "{err}");
    assert!(s.ok(&["policy", "read", "reader"]).contains("secret/production"));
    let list = s.ok(&["policy", "list"]);
    assert!(list.contains("reader") && list.contains("root") && list.contains("default"), "{list}");
    s.ok(&["secrets", "set", "-p", "secret", "-e", "production", "K=prod-value"]);
    s.ok(&["secrets", "set", "-p", "secret", "-e", "staging", "K=staging-value"]);

    let created: Value = serde_json::from_str(&s.ok(&[
        "token",
        "create",
        "--policy",
        "reader",
        "--ttl",
        "1h",
        "--display-name",
        "app",
        "--format",
        "json",
    ]))
    .unwrap();
    let token = created["token"].as_str().unwrap().to_owned();
    let accessor = created["info"]["accessor"].as_str().unwrap().to_owned();
    let text = s.ok(&["token", "create", "--policy", "reader"]);
    assert!(text.contains("Token:    kw_") && text.contains("Accessor: acc_"), "{text}");
    // A token's terms go through and `token lookup` shows them.
    let limited: Value = serde_json::from_str(&s.ok(&[
        "token",
        "create",
        "--policy",
        "reader",
        "--num-uses",
        "3",
        "--period",
        "1h",
        "--no-renew",
        "--meta",
        "team=payments",
        "--format",
        "json",
    ]))
    .unwrap();
    let shown = s.ok(&["token", "lookup", "--accessor", limited["info"]["accessor"].as_str().unwrap()]);
    assert!(
        shown.contains("periodic (1h0m0s)")
            && shown.contains("3 uses left")
            && shown.contains("not renewable")
            && shown.contains("team=payments"),
        "{shown}"
    );
    let out = s.kw(&["token", "create", "--policy", "reader", "--meta", "novalue"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.starts_with("error: ") && err.contains("expected KEY=VALUE"), "{err}");

    let as_app = |args: &[&str]| {
        Command::new(BIN).args(args).env("KEYWARD_ADDR", &s.addr).env("KEYWARD_TOKEN", &token).output().unwrap()
    };
    let out = as_app(&["secrets", "get", "-p", "secret", "-e", "production", "K", "--reveal"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "prod-value\n");
    let out = as_app(&["secrets", "get", "-p", "secret", "-e", "staging", "K", "--reveal"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("permission denied") && err.contains("secret/staging") && !err.contains("staging-value"),
        "{err}"
    );
    let out = as_app(&["token", "lookup"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains(&accessor));

    let looked = s.kw_stdin(&["token", "lookup", "-", "--format", "json"], Some(&token));
    let looked: Value = serde_json::from_slice(&looked.stdout).unwrap();
    assert_eq!(looked["accessor"], accessor.as_str());
    let err = s.fails(&["token", "lookup", &token]);
    assert!(err.contains("not accepted as arguments") && !err.contains(&token[3..]), "{err}");
    let list = s.ok(&["token", "list"]);
    assert!(list.contains(&accessor) && !list.contains(&token[3..]), "{list}");

    assert!(s.ok(&["token", "revoke", "--accessor", &accessor]).contains("Revoked 1 token"));
    let out = as_app(&["secrets", "get", "-p", "secret", "-e", "production", "K"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("KEYWARD_TOKEN"));
    s.ok(&["policy", "delete", "reader", "--yes"]);
    s.fails(&["policy", "read", "reader"]);
    s.stop();
}

/// Several servers share PostgreSQL (revocation across them is tested in the server suite); a
/// SQLite database belongs to one server process, and a second is refused in one clear line.
#[test]
fn a_second_server_on_one_sqlite_database_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("shared.db");
    let db = db.to_str().unwrap();
    let key = ("KEYWARD_MASTER_KEY", "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=");
    let a = spawn_server(&["--database", db], &[key]).expect("server A");
    let Err((code, stderr)) = spawn_server(&["--database", db], &[key]) else {
        panic!("a second server on the same SQLite database started")
    };
    assert_ne!(code, 0);
    assert!(stderr.contains("in use by another keyward server"), "{stderr}");
    assert!(stderr.contains("PostgreSQL"), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "one readable line: {stderr}");
    a.stop();
    spawn_server(&["--database", db], &[key]).expect("free again once A has stopped").stop();
}

/// A tiny seeded generator (the points where the server is killed must be reproducible).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }
}

#[test]
fn migration_survives_kill_9_at_seeded_points() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("kill.db");
    let db = db.to_str().unwrap().to_owned();
    let key = ("KEYWARD_MASTER_KEY", "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=");
    let args = ["--database", db.as_str(), "--migrate-batch", "3", "--rate-limit", "off", "--ip-rate-limit", "off"];
    let mut s = spawn_server(&args, &[key]).expect("server");
    let root: Value = serde_json::from_str(&s.ok(&["operator", "init", "--format", "json"])).unwrap();
    let token = root["root_token"].as_str().unwrap().to_owned();
    s.token = Some(token.clone());
    s.ok(&["mounts", "create", "app"]);
    for p in 0..40 {
        for v in 0..3 {
            s.ok(&["secrets", "set", "-p", "app", "-e", &format!("p{p}"), &format!("K=value-{p}-{v}")]);
        }
    }
    let mut rng = Lcg(20261123);
    let mut kills = 0;
    for _ in 0..6 {
        s.ok(&["keys", "rotate", "-p", "app"]);
        let started = s.kw(&["keys", "migrate", "-p", "app", "--no-wait", "--format", "json"]);
        let err = String::from_utf8_lossy(&started.stderr);
        assert!(started.status.success() || err.contains("already running"), "{err}");
        std::thread::sleep(Duration::from_millis(rng.next() % 150));
        s.kill(); // SIGKILL: no shutdown, no flush
        kills += 1;
        s = spawn_server(&args, &[key]).expect("restart after kill -9");
        s.token = Some(token.clone());
    }
    assert!(kills >= 5);
    // The resumed job(s) finish; then nothing is sealed under an old data key.
    let mut done = false;
    for _ in 0..200 {
        let jobs: Value = serde_json::from_str(&s.ok(&["keys", "jobs", "--format", "json"])).unwrap();
        if jobs.as_array().unwrap().iter().all(|j| j["status"] != "running") {
            done = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(done, "jobs still running");
    let jobs: Value = serde_json::from_str(&s.ok(&["keys", "jobs", "--format", "json"])).unwrap();
    assert!(jobs.as_array().unwrap().iter().all(|j| j["status"] == "done"), "{jobs}");
    let out = s.kw(&["keys", "migrate", "-p", "app", "--format", "json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let status: Value = serde_json::from_str(&s.ok(&["keys", "status", "--format", "json"])).unwrap();
    let deks = status["deks"].as_array().unwrap();
    let newest = deks.iter().map(|d| d["version"].as_u64().unwrap()).max().unwrap();
    assert_eq!(newest, 7);
    for d in deks {
        if d["version"].as_u64() != Some(newest) {
            assert_eq!(d["blobs"], 0, "{status}");
        }
    }
    // `doctor --verify-all` agrees, and exits 0.
    let doctor = s.ok(&["doctor", "--verify-all"]);
    assert!(doctor.contains("120 checked, 0 failed"), "{doctor}");
    // Every version of every secret decrypts to what was written.
    for p in 0..40 {
        for v in 0..3 {
            let got = s.ok(&[
                "secrets",
                "get",
                "-p",
                "app",
                "-e",
                &format!("p{p}"),
                "K",
                "--reveal",
                "--version",
                &(v + 1).to_string(),
            ]);
            assert_eq!(got, format!("value-{p}-{v}\n"));
        }
    }
    s.stop();
}

/// The three scenarios of docs/incident-response.md, with the commands it gives.
#[test]
fn incident_response_scenarios() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("prod.db");
    let db = db.to_str().unwrap().to_owned();
    let old = "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=";
    let new = "AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgI=";
    let keys_old = format!("v1:{old}");
    let mut s = spawn_server(&["--database", &db], &[("KEYWARD_MASTER_KEYS", &keys_old)]).expect("server");
    let root: Value = serde_json::from_str(&s.ok(&["operator", "init", "--format", "json"])).unwrap();
    let root = root["root_token"].as_str().unwrap().to_owned();
    s.token = Some(root.clone());
    s.ok(&["mounts", "create", "app"]);
    s.ok(&["secrets", "set", "-p", "app", "-e", "prod", "STRIPE_KEY=sk_live_leakedleakedleaked0001", "OTHER=keep-me"]);
    let policy = dir.path().join("p.toml");
    std::fs::write(&policy, "[[rules]]\npath = \"app/prod\"\ncapabilities = [\"read\"]\n").unwrap();
    s.ok(&["policy", "write", "app-reader", policy.to_str().unwrap()]);
    let app: Value =
        serde_json::from_str(&s.ok(&["token", "create", "--policy", "app-reader", "--format", "json"])).unwrap();
    let app_token = app["token"].as_str().unwrap().to_owned();
    let as_app = |addr: &str, args: &[&str]| {
        Command::new(BIN).args(args).env("KEYWARD_ADDR", addr).env("KEYWARD_TOKEN", &app_token).output().unwrap()
    };
    assert!(as_app(&s.addr, &["secrets", "get", "-p", "app", "-e", "prod", "STRIPE_KEY", "--reveal"]).status.success());
    let backup = dir.path().join("backup-before-rotation.db");
    s.stop();
    // A file-level backup: the database with its WAL, as a snapshot tool would take it.
    for suffix in ["", "-wal", "-shm"] {
        let from = format!("{db}{suffix}");
        if std::path::Path::new(&from).exists() {
            std::fs::copy(&from, format!("{}{suffix}", backup.display())).unwrap();
        }
    }
    let mut s = spawn_server(&["--database", &db], &[("KEYWARD_MASTER_KEYS", &keys_old)]).expect("server");
    s.token = Some(root.clone());

    // 1. A leaked API key: who read it, rotate it, revoke those tokens.
    let readers: Vec<Value> = s
        .ok(&["audit", "search", "--operation", "secrets.reveal", "--path", "app/prod", "--format", "json"])
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let mut accessors: Vec<String> = readers.iter().map(|e| e["accessor"].as_str().unwrap().to_owned()).collect();
    accessors.sort();
    accessors.dedup();
    assert_eq!(accessors, vec![app["info"]["accessor"].as_str().unwrap().to_owned()]);
    s.ok(&["secrets", "set", "-p", "app", "-e", "prod", "STRIPE_KEY=sk_live_rotatedrotated000002"]);
    for a in &accessors {
        s.ok(&["token", "revoke", "--accessor", a]);
    }
    assert!(!as_app(&s.addr, &["secrets", "get", "-p", "app", "-e", "prod", "STRIPE_KEY", "--reveal"])
        .status
        .success());
    assert_eq!(
        s.ok(&["secrets", "get", "-p", "app", "-e", "prod", "STRIPE_KEY", "--reveal"]),
        "sk_live_rotatedrotated000002\n"
    );

    // 2. A leaked data key: rotate, migrate, prune — nothing stays sealed under it.
    s.ok(&["keys", "rotate", "-p", "app"]);
    s.ok(&["keys", "migrate", "-p", "app"]);
    assert!(s.ok(&["keys", "prune", "-p", "app"]).contains("deleted [v1]"));
    let status: Value = serde_json::from_str(&s.ok(&["keys", "status", "--format", "json"])).unwrap();
    assert!(status["deks"].as_array().unwrap().iter().all(|d| d["version"] == 2), "{status}");
    s.ok(&["doctor", "--verify-all"]);

    // 3. A leaked master key: new active key, rewrap, retire the old tag.
    s.stop();
    let both = format!("v2:{new},v1:{old}");
    let mut s = spawn_server(&["--database", &db], &[("KEYWARD_MASTER_KEYS", &both)]).expect("server with both keys");
    s.token = Some(root.clone());
    s.ok(&["keys", "rewrap"]);
    let status: Value = serde_json::from_str(&s.ok(&["keys", "status", "--format", "json"])).unwrap();
    let v1 = status["keks"].as_array().unwrap().iter().find(|k| k["tag"] == "v1").unwrap().clone();
    assert_eq!((v1["wrapped_keys"].as_u64(), v1["retirable"].as_bool()), (Some(0), Some(true)), "{status}");
    s.stop();
    let only_new = format!("v2:{new}");
    let mut s = spawn_server(&["--database", &db], &[("KEYWARD_MASTER_KEYS", &only_new)]).expect("old tag retired");
    s.token = Some(root.clone());
    assert_eq!(s.ok(&["secrets", "get", "-p", "app", "-e", "prod", "OTHER", "--reveal"]), "keep-me\n");
    s.ok(&["audit", "verify"]);
    s.stop();

    // Erasure: the backup taken before the rotation cannot be opened with the keys that remain.
    match spawn_server(&["--database", backup.to_str().unwrap()], &[("KEYWARD_MASTER_KEYS", &only_new)]) {
        Ok(_) => panic!("an old backup opened without the retired master key"),
        Err((code, err)) => {
            assert_ne!(code, 0);
            assert!(err.contains("\"v1\" still wraps"), "{err}");
        }
    }
}

/// A one-request-at-a-time HTTP upstream that answers 200 and reports each request line.
fn tiny_upstream() -> (u16, mpsc::Receiver<String>) {
    use std::io::Read;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut c) = conn else { break };
            let mut buf = [0u8; 8192];
            let n = c.read(&mut buf).unwrap_or(0);
            let text = String::from_utf8_lossy(&buf[..n]).to_string();
            let line = text.lines().next().unwrap_or_default().to_owned();
            // `/broken` promises 100 bytes and sends 2: the answer breaks off mid-stream.
            let length = if line.contains("/broken") { 100 } else { 2 };
            let _ = tx.send(line);
            let _ = write!(c, "HTTP/1.1 200 OK\r\nContent-Length: {length}\r\nConnection: close\r\n\r\nok");
        }
    });
    (port, rx)
}

#[test]
fn proxy_routes_from_the_cli_and_nothing_secret_in_logs() {
    let (port, requests) = tiny_upstream();
    let s = spawn_server(&["--dev", "--log-format", "json", "--proxy-allow-insecure"], &[("RUST_LOG", "trace")])
        .expect("dev server");
    let key = format!("PROXYKEY{}", std::process::id());
    let secret = format!("PROXYSECRET{}", std::process::id());
    s.ok(&["secrets", "set", "-p", "secret", "-e", "exchange", &format!("key={key}"), &format!("sec={secret}")]);
    let upstream = format!("http://127.0.0.1:{port}");
    let out = s.ok(&[
        "proxy",
        "create",
        "ex",
        "--upstream",
        &upstream,
        "--secret",
        "secret/exchange",
        "--inject",
        "query:apiKey=key",
        "--inject",
        "hmac-sha256-query:sec",
        "--rate-limit",
        "20/s",
        "--timeout",
        "5s",
        "--allow-insecure",
    ]);
    assert!(out.contains("/api/v1/proxy/ex/"), "{out}");
    let listed = s.ok(&["proxy", "list"]);
    assert!(listed.contains("hmac-sha256-query:sec") && listed.contains("20/s") && !listed.contains(&key), "{listed}");
    let shown: Value = serde_json::from_str(&s.ok(&["proxy", "show", "ex", "--format", "json"])).unwrap();
    assert_eq!(shown["secret"], "secret/exchange");
    let err = s.fails(&[
        "proxy",
        "create",
        "bad",
        "--upstream",
        &upstream,
        "--secret",
        "secret/exchange",
        "--inject",
        "oauth:x",
        "--allow-insecure",
    ]);
    assert!(err.contains("injection recipe") && err.lines().count() == 1, "{err}");

    let token = s.token.clone().unwrap();
    let resp = raw_get(&s.addr, "/api/v1/proxy/ex/api/v3/order?symbol=QUERYCANARY", Some(&token));
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    let line = requests.recv_timeout(Duration::from_secs(5)).unwrap();
    assert!(line.contains(&format!("apiKey={key}")) && line.contains("&signature="), "{line}");
    let signature = line.split("signature=").nth(1).unwrap().split(' ').next().unwrap().to_owned();
    let cut = raw_get(&s.addr, "/api/v1/proxy/ex/broken", Some(&token));
    assert!(cut.starts_with("HTTP/1.1 200"), "the head was sent before the break: {cut}");
    s.ok(&["proxy", "delete", "ex", "--yes"]);
    assert!(s.fails(&["proxy", "show", "ex"]).contains("not found"));
    let (stdout, logs) = s.stop();
    assert!(logs.contains("proxied call"), "the call was logged");
    let broke = logs.lines().find(|l| l.contains("broke off mid-stream")).expect("the break was logged");
    let span = &serde_json::from_str::<Value>(broke).unwrap()["span"];
    assert_eq!(span["path"], "/api/v1/proxy/ex/broken", "in the request's span: {broke}");
    for needle in [&key, &secret, &signature, &"QUERYCANARY".to_owned()] {
        assert!(!logs.contains(needle.as_str()), "{needle} found in logs");
        assert!(!stdout.contains(needle.as_str()), "{needle} found in stdout");
    }
}

#[test]
fn run_execs_with_the_environments_secrets() {
    use std::os::unix::process::ExitStatusExt;
    let s = spawn_server(&["--dev"], &[]).expect("dev server");
    s.ok(&[
        "secrets",
        "set",
        "-p",
        "secret",
        "-e",
        "app",
        "DB_URL=postgres://run-canary",
        "HOME=/from-keyward",
        "PORT=5432",
    ]);
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("ran");
    let m = marker.to_str().unwrap();
    // Secrets arrive; an existing variable wins unless --override; exit status is the command's.
    let out = s.kw_env(
        &["run", "-p", "secret", "-e", "app", "--", "sh", "-c", "echo \"$DB_URL $HOME\"; exit 7"],
        &[("HOME", Some("/home/me"))],
        None,
    );
    assert_eq!(out.status.code(), Some(7));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "postgres://run-canary /home/me");
    let out = s.kw_env(
        &["run", "-p", "secret", "-e", "app", "--override", "--", "sh", "-c", "echo $HOME"],
        &[("HOME", Some("/home/me"))],
        None,
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "/from-keyward");
    // keyward's own token (and where a stored one lives) never reach the program.
    let out = s.kw_env(
        &[
            "run",
            "-p",
            "secret",
            "-e",
            "app",
            "--",
            "sh",
            "-c",
            "echo \"${KEYWARD_TOKEN:-none} ${KEYWARD_CONFIG_DIR:-none} $KEYWARD_ADDR\"",
        ],
        &[("KEYWARD_CONFIG_DIR", Some("/tmp/kw-config"))],
        None,
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), format!("none none {}", s.addr), "{out:?}");
    let out = s.kw(&[
        "run",
        "-p",
        "secret",
        "-e",
        "app",
        "--only",
        "PORT",
        "--prefix",
        "APP_",
        "--",
        "sh",
        "-c",
        "echo ${APP_PORT}-${DB_URL:-unset}",
    ]);
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "5432-unset");
    // Signals are the command's own (keyward execs it).
    let out = s.kw(&["run", "-p", "secret", "-e", "app", "--", "sh", "-c", "kill -TERM $$"]);
    assert_eq!(out.status.signal(), Some(15));
    // Failures happen before the command starts, in one line.
    for (args, want) in [
        (vec!["run", "-p", "secret", "-e", "missing", "--", "touch", m], "not found"),
        (vec!["run", "-p", "nomount", "-e", "app", "--", "touch", m], "not found"),
    ] {
        let err = s.fails(&args);
        assert!(err.contains(want), "{err}");
    }
    s.ok(&["secrets", "set", "-p", "secret", "-e", "odd", "bad-name=v", "GOOD=ok"]);
    let err = s.fails(&["run", "-p", "secret", "-e", "odd", "--", "touch", m]);
    assert!(err.contains("bad-name (not a valid variable name)") && err.contains("--skip-invalid"), "{err}");
    assert!(!marker.exists(), "the command must not start");
    let out = s.kw(&["run", "-p", "secret", "-e", "odd", "--skip-invalid", "--", "sh", "-c", "echo $GOOD"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "ok");
    assert!(String::from_utf8_lossy(&out.stderr).contains("skipped bad-name"));
    let doc = "[[rules]]\npath = \"secret/*\"\ncapabilities = [\"list\"]\n";
    assert!(s.kw_stdin(&["policy", "write", "lister", "-"], Some(doc)).status.success());
    let lister = s.ok(&["token", "create", "--policy", "lister", "--format", "json"]);
    let lister: Value = serde_json::from_str(&lister).unwrap();
    let lister = lister["token"].as_str().unwrap().to_owned();
    let out =
        s.kw_env(&["run", "-p", "secret", "-e", "app", "--", "touch", m], &[("KEYWARD_TOKEN", Some(&lister))], None);
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("permission denied"));
    assert!(!marker.exists(), "a denied read stops before the command");
    s.stop();
}

#[test]
fn login_status_logout_and_the_token_file() {
    use std::os::unix::fs::PermissionsExt;
    let s = spawn_server(&["--dev"], &[]).expect("dev server");
    let token = s.token.clone().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("cfg");
    let c = cfg.to_str().unwrap();
    let no_env = [("KEYWARD_TOKEN", None), ("KEYWARD_CONFIG_DIR", Some(c))];
    let out = s.kw_env(&["login", "--token-stdin"], &no_env, Some(&format!("{token}\n")));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let file = cfg.join("token");
    assert_eq!(std::fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o600);
    let out = s.kw_env(&["status", "--format", "json"], &no_env, None);
    let st: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(st["token"]["policies"], serde_json::json!(["root"]));
    assert!(st["token_source"].as_str().unwrap().ends_with("token"));
    assert!(!String::from_utf8_lossy(&out.stdout).contains(&token[3..]), "status never prints the token");
    // KEYWARD_TOKEN always wins.
    let out = s.kw_env(
        &["status"],
        &[("KEYWARD_TOKEN", Some("kw_0000000000000000000000000000000000000000000")), ("KEYWARD_CONFIG_DIR", Some(c))],
        None,
    );
    assert!(!out.status.success());
    // A token file others can read is refused.
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = s.kw_env(&["envs", "list", "-p", "secret"], &no_env, None);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("readable by other users"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A bad token is not stored.
    let out = s.kw_env(&["login", "--token-stdin"], &no_env, Some("kw_0000000000000000000000000000000000000000000"));
    assert!(!out.status.success());
    let out = s.kw_env(&["logout"], &no_env, None);
    assert!(out.status.success() && !file.exists());
    s.stop();
}

#[test]
fn diff_exports_completions_and_man_pages() {
    let s = spawn_server(&["--dev"], &[]).expect("dev server");
    s.ok(&["secrets", "set", "-p", "secret", "-e", "staging", "A=same", "B=stage-canary", "ONLY_STAGING=x"]);
    s.ok(&[
        "secrets",
        "set",
        "-p",
        "secret",
        "-e",
        "production",
        "A=same",
        "B=prod-canary",
        "ONLY_PROD=y",
        "MULTI=line1\nline2",
    ]);
    let d: Value = serde_json::from_str(&s.ok(&[
        "secrets",
        "diff",
        "-p",
        "secret",
        "-e",
        "staging",
        "-e",
        "production",
        "--format",
        "json",
    ]))
    .unwrap();
    assert_eq!(
        (d["only_in_a"].clone(), d["only_in_b"].clone()),
        (serde_json::json!(["ONLY_STAGING"]), serde_json::json!(["MULTI", "ONLY_PROD"]))
    );
    assert_eq!((d["different"].clone(), d["same"].clone()), (serde_json::json!(["B"]), serde_json::json!(["A"])));
    assert!(!d.to_string().contains("canary"));
    let doc = "[[rules]]\npath = \"secret/*\"\ncapabilities = [\"list\"]\n";
    assert!(s.kw_stdin(&["policy", "write", "lister", "-"], Some(doc)).status.success());
    let lister = s.ok(&["token", "create", "--policy", "lister", "--format", "json"]);
    let lister: Value = serde_json::from_str(&lister).unwrap();
    let lister = lister["token"].as_str().unwrap().to_owned();
    let out = s.kw_env(
        &["secrets", "diff", "-p", "secret", "-e", "staging", "-e", "production"],
        &[("KEYWARD_TOKEN", Some(&lister))],
        None,
    );
    assert!(
        !out.status.success() && String::from_utf8_lossy(&out.stderr).contains("permission denied"),
        "diff needs read on both"
    );
    // Kubernetes, GitHub and docker formats.
    let k8s = s.ok(&[
        "secrets",
        "export",
        "-p",
        "secret",
        "-e",
        "production",
        "--format",
        "k8s-secret",
        "--namespace",
        "web",
    ]);
    assert!(
        k8s.starts_with("apiVersion: v1\nkind: Secret\n")
            && k8s.contains("  name: \"production\"\n  namespace: \"web\""),
        "{k8s}"
    );
    assert!(k8s.contains("  \"MULTI\": \"line1\\nline2\""), "{k8s}");
    let gh = s.ok(&["secrets", "export", "-p", "secret", "-e", "production", "--format", "github-env"]);
    let delim = gh.lines().find_map(|l| l.strip_prefix("MULTI<<")).unwrap().to_owned();
    assert!(gh.contains(&format!("MULTI<<{delim}\nline1\nline2\n{delim}\n")) && gh.contains("B=prod-canary\n"), "{gh}");
    let err = s.fails(&["secrets", "export", "-p", "secret", "-e", "production", "--format", "docker-env"]);
    assert!(err.contains("MULTI"), "{err}");
    let docker = s.ok(&["secrets", "export", "-p", "secret", "-e", "staging", "--format", "docker-env"]);
    assert_eq!(docker, "A=same\nB=stage-canary\nONLY_STAGING=x\n");
    for shell in ["bash", "zsh", "fish", "powershell"] {
        let script = s.ok(&["completions", shell]);
        assert!(script.contains("keyward") && script.len() > 1000, "{shell}");
    }
    let dir = tempfile::tempdir().unwrap();
    s.ok(&["man", "--dir", dir.path().to_str().unwrap()]);
    for page in ["keyward.1", "keyward-secrets-diff.1", "keyward-import-cloak.1", "keyward-run.1"] {
        let text = std::fs::read_to_string(dir.path().join(page)).unwrap_or_else(|_| panic!("{page}"));
        assert!(text.contains(".TH"), "{page}");
    }
    s.stop();
}

fn node_fixtures() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../compat/fixtures/make_import_fixtures.js");
    let st = Command::new("node")
        .arg(&script)
        .arg(dir.path())
        .status()
        .expect("node (the fixtures come from Node's crypto)");
    assert!(st.success());
    dir
}

#[test]
fn importers_take_cloak_and_node_ciphertexts() {
    let fx = node_fixtures();
    let f = |n: &str| fx.path().join(n).to_str().unwrap().to_owned();
    let keys: Value =
        serde_json::from_str(&std::fs::read_to_string(fx.path().join("cloak-keys.json")).unwrap()).unwrap();
    let (k1, k2) = (keys["V1"].as_str().unwrap().to_owned(), keys["V2"].as_str().unwrap().to_owned());
    let s = spawn_server(&["--dev"], &[]).expect("dev server");
    let cloak = |extra: &[&str], envs: &[(&str, Option<&str>)]| {
        let input = f("cloak.jsonl");
        let mut args = vec![
            "import",
            "cloak",
            "--input",
            &input,
            "--columns",
            "api_key,api_secret",
            "--mount",
            "secret",
            "--path-template",
            "accounts/{id}/credentials",
        ];
        args.extend_from_slice(extra);
        s.kw_env(&args, envs, None)
    };
    // Dry run: everything decrypted and checked, nothing written.
    let v2 = format!("V2={k2}:iv=12");
    let key1 = format!("V1=@{}", f("v1.key"));
    let out = cloak(&["--key", &key1, "--key", &v2, "--dry-run"], &[]);
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(text.starts_with("read 8, would import 3, skipped 1 (nothing to import), failed 4"), "{text}");
    assert!(
        s.kw(&["secrets", "get", "-p", "secret", "-e", "accounts/1/credentials", "api_key"]).status.code() != Some(0)
    );
    // For real, with the keys from KEYWARD_IMPORT_KEYS (not in the command line).
    let env_keys = format!("V1={k1},V2={k2}:iv=12");
    let out = cloak(&[], &[("KEYWARD_IMPORT_KEYS", Some(&env_keys))]);
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(!out.status.success(), "failed rows make the exit status non-zero");
    assert!(text.starts_with("read 8, imported 3, skipped 1 (nothing to import), failed 4"), "{text}");
    for (id, why) in [
        ("3", "no key was given for key tag \"V9\""),
        ("4", "malformed"),
        ("5", "does not decrypt"),
        ("6", "does not decrypt"),
    ] {
        assert!(text.lines().any(|l| l.contains(&format!("row {id}:")) && l.contains(why)), "row {id}: {text}");
    }
    let get = |env: &str, name: &str| {
        s.ok(&["secrets", "get", "-p", "secret", "-e", env, name, "--reveal"]).trim().to_owned()
    };
    assert_eq!(get("accounts/1/credentials", "api_key"), "sk_live_cloak_one_1111");
    assert_eq!(get("accounts/1/credentials", "api_secret"), "secret-one");
    assert_eq!(get("accounts/2/credentials", "api_key"), "sk_live_cloak_two_2222");
    assert_eq!(get("accounts/7/credentials", "api_key"), "sk_live_only_key_7777");
    for failed in ["3", "4", "5", "6", "8"] {
        let out = s.kw(&["secrets", "list", "-p", "secret", "-e", &format!("accounts/{failed}/credentials")]);
        assert!(!out.status.success(), "row {failed} was (half-)imported");
    }
    assert!(
        !text.contains("sk_live") && !String::from_utf8_lossy(&out.stderr).contains("sk_live"),
        "no value in the report"
    );
    // Node-style strings from JSON lines and from CSV with renamed columns.
    let gkey = format!("@{}", f("gcm.key"));
    for (input, extra) in
        [(f("gcm.jsonl"), vec![]), (f("gcm.csv"), vec!["--id-column", "user_id", "--ciphertext-column", "enc"])]
    {
        let mut args = vec![
            "import",
            "gcm-hex",
            "--key",
            &gkey,
            "--input",
            &input,
            "--mount",
            "secret",
            "--path-template",
            "users/{id}",
            "--field",
            "token",
        ];
        args.extend(extra);
        let out = s.kw(&args);
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(text.starts_with("read 6, imported 2, skipped 1 (nothing to import), failed 3"), "{text}");
    }
    assert_eq!(get("users/u1", "token"), "tok_abc_12");
    assert_eq!(get("users/u2", "token"), "tok_def_16");
    let err = s.fails(&[
        "import",
        "gcm-hex",
        "--key",
        "c2hvcnQ=",
        "--input",
        &f("gcm.jsonl"),
        "--mount",
        "secret",
        "--path-template",
        "u/{id}",
    ]);
    assert!(err.contains("32 bytes"), "{err}");

    // A real PostgreSQL table, read with --database-url (from the environment).
    if let Some(pg) = keyward_testkit::TestPostgres::create_blocking("kw_import") {
        let psql = |u: &str, sql: &str| {
            let st = Command::new("psql").args(["-q", "-v", "ON_ERROR_STOP=1", u, "-c", sql]).status().expect("psql");
            assert!(st.success(), "{sql}");
        };
        let db_url = pg.url().to_owned();
        psql(&db_url, "CREATE TABLE api_credentials (id serial PRIMARY KEY, api_key bytea, api_secret bytea)");
        for line in std::fs::read_to_string(fx.path().join("cloak.jsonl")).unwrap().lines().take(2) {
            let r: Value = serde_json::from_str(line).unwrap();
            psql(&db_url, &format!(
                "INSERT INTO api_credentials (id, api_key, api_secret) VALUES ({}, decode('{}', 'base64'), decode('{}', 'base64'))",
                r["id"], r["api_key"].as_str().unwrap(), r["api_secret"].as_str().unwrap()
            ));
        }
        let args = [
            "import",
            "cloak",
            "--table",
            "api_credentials",
            "--columns",
            "api_key,api_secret",
            "--key",
            &key1,
            "--key",
            &v2,
            "--mount",
            "secret",
            "--path-template",
            "pg/{id}",
        ];
        let out = s.kw_env(&args, &[("KEYWARD_IMPORT_DATABASE_URL", Some(&db_url))], None);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        assert!(String::from_utf8_lossy(&out.stdout).starts_with("read 2, imported 2, skipped 0"));
        assert_eq!(get("pg/2", "api_secret"), "secret-two");
    } else {
        assert_ne!(std::env::var("CI").as_deref(), Ok("true"), "CI must run the PostgreSQL import");
    }
    s.stop();
}

#[test]
fn a_config_file_configures_the_server_and_no_audit_needs_dev() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("k.db");
    let conf = dir.path().join("keyward.toml");
    std::fs::write(&conf, format!("database = {:?}\nlisten = \"0.0.0.0:0\"\n", db.display().to_string())).unwrap();
    let key = ("KEYWARD_MASTER_KEY", "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=");
    // The file's listen address is refused as plain HTTP on a public address: the file was read.
    let out =
        Command::new(BIN).args(["server", "--config", conf.to_str().unwrap()]).env(key.0, key.1).output().unwrap();
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(!out.status.success() && err.contains("refusing to serve plain HTTP on 0.0.0.0"), "{err}");
    // A flag overrides the file.
    let out = Command::new(BIN)
        .args(["server", "--config", conf.to_str().unwrap(), "--listen", "127.0.0.1:0", "--print-config"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let printed = String::from_utf8(out.stdout).unwrap();
    assert!(printed.contains("listen = \"127.0.0.1:0\"  # flag"), "{printed}");
    assert!(printed.contains(&format!("database = {:?}  # file", db.display().to_string())), "{printed}");
    // An unknown key is one line naming the nearest valid one; exit status 2.
    std::fs::write(&conf, "databse = \"x\"\n").unwrap();
    let out = Command::new(BIN).args(["server", "--config", conf.to_str().unwrap()]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(err.contains("unknown key `databse`; did you mean `database`?"), "{err}");
    // --no-audit only with --dev.
    let err = refused(&["--no-audit", "--database", db.to_str().unwrap()], &[key]);
    assert!(err.contains("--no-audit") && err.contains("--dev"), "{err}");
}

/// `keyward operator restore FILE --database DB` with `key`: `Ok(stdout)` or `Err(the one line)`.
fn restore(file: &Path, db: &str, key: &str) -> Result<String, String> {
    let out = Command::new(BIN)
        .args(["operator", "restore", file.to_str().unwrap(), "--database", db])
        .env_remove("KEYWARD_MASTER_KEYS")
        .env("KEYWARD_MASTER_KEY", key)
        .output()
        .unwrap();
    let err = String::from_utf8(out.stderr).unwrap();
    if out.status.success() {
        return Ok(String::from_utf8(out.stdout).unwrap());
    }
    assert_eq!(err.trim_end().lines().count(), 1, "one line expected: {err}");
    assert!(err.starts_with("error: "), "{err}");
    Err(err)
}

/// Backs up a running server into `file` (0600).
fn take_backup(s: &ServerProc, file: &Path) {
    s.ok(&["operator", "backup", file.to_str().unwrap()]);
    assert_eq!(std::fs::metadata(file).unwrap().permissions().mode() & 0o777, 0o600);
}

#[test]
fn archived_audit_survives_backup_and_restore_and_the_cli_reports_breaks() {
    let dir = tempfile::tempdir().unwrap();
    let key = "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=";
    let env = [("KEYWARD_MASTER_KEY", key)];
    let archive = dir.path().join("archive");
    let a_db = dir.path().join("a.db");
    let args = ["--database", a_db.to_str().unwrap(), "--audit-archive-dir", archive.to_str().unwrap()];
    let mut a = spawn_server(&args, &env).expect("server");
    let root: Value = serde_json::from_str(&a.ok(&["operator", "init", "--format", "json"])).unwrap();
    a.token = Some(root["root_token"].as_str().unwrap().to_owned());
    a.ok(&["mounts", "create", "app"]);
    a.ok(&["secrets", "set", "-p", "app", "-e", "prod", "K=v1"]);
    std::thread::sleep(Duration::from_millis(20));
    let out = a.ok(&["audit", "archive", "--before", "0s"]);
    assert!(out.starts_with("Archived ") && out.contains("1 segments"), "{out}");
    a.ok(&["secrets", "set", "-p", "app", "-e", "prod", "K=v2"]);
    let out = a.ok(&["audit", "verify", "--archive"]);
    assert!(out.contains("Audit archive intact: 1 segments") && out.contains("after archived entry"), "{out}");

    // A backup carries the archived head; the restored database verifies from it, and with the
    // archive beside it, end to end.
    let file = dir.path().join("a.kwb");
    take_backup(&a, &file);
    a.stop();
    let b_db = dir.path().join("b.db");
    let out = restore(&file, b_db.to_str().unwrap(), key).unwrap();
    assert!(out.contains("verified"), "{out}");
    let b_args = ["--database", b_db.to_str().unwrap(), "--audit-archive-dir", archive.to_str().unwrap()];
    let mut b = spawn_server(&b_args, &env).expect("restored server");
    b.token = Some(root["root_token"].as_str().unwrap().to_owned());
    assert_eq!(b.ok(&["secrets", "get", "-p", "app", "-e", "prod", "K", "--reveal"]), "v2\n");
    assert!(b.ok(&["audit", "verify", "--archive"]).contains("Audit archive intact"));

    // An archive with a changed byte: one line naming the file, exit non-zero.
    let segment = std::fs::read_dir(&archive).unwrap().map(|e| e.unwrap().path()).next().unwrap();
    let text = std::fs::read_to_string(&segment).unwrap();
    std::fs::write(&segment, text.replacen("mounts.create", "mounts.delete", 1)).unwrap();
    let err = b.fails(&["audit", "verify", "--archive"]);
    let name = segment.file_name().unwrap().to_str().unwrap();
    assert!(err.contains("audit archive broken in") && err.contains(name) && err.contains("modified"), "{err}");
    // Archiving needs a time or --vacuum; a bad age is one readable line.
    assert!(b.fails(&["audit", "archive"]).contains("--before"));
    assert!(b.fails(&["audit", "archive", "--before", "soon"]).contains("soon"));
    b.stop();
}

#[test]
fn backup_under_load_and_restore_across_engines() {
    use base64::Engine;
    let dir = tempfile::tempdir().unwrap();
    let key = "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=";
    let other = "AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgI=";
    let env = [("KEYWARD_MASTER_KEY", key)];
    let a_db = dir.path().join("a.db");
    let mut a = spawn_server(&["--database", a_db.to_str().unwrap()], &env).expect("server A");
    let root: Value = serde_json::from_str(&a.ok(&["operator", "init", "--format", "json"])).unwrap();
    let root_token = root["root_token"].as_str().unwrap().to_owned();
    a.token = Some(root_token.clone());
    a.ok(&["mounts", "create", "billing"]);
    let canary = "sk_live_CANARYxq7Z9pL2mN4bV6cX8";
    a.ok(&["secrets", "set", "-p", "billing", "-e", "customers/acme-prod", &format!("STRIPE_KEY={canary}")]);
    let app: Value =
        serde_json::from_str(&a.ok(&["token", "create", "--policy", "default", "--format", "json"])).unwrap();
    let (app_token, accessor) =
        (app["token"].as_str().unwrap().to_owned(), app["info"]["accessor"].as_str().unwrap().to_owned());

    // A writer keeps writing while the backup is taken: what it had acknowledged before the
    // backup began must be in it, and what is in it must be whole (every version up to the last).
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let acked = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let writer = {
        let (addr, token, stop, acked) = (a.addr.clone(), a.token.clone().unwrap(), stop.clone(), acked.clone());
        std::thread::spawn(move || {
            let mut i = 0u64;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                i += 1;
                let out = Command::new(BIN)
                    .args(["secrets", "set", "-p", "billing", "-e", "counter", &format!("N={i}")])
                    .env("KEYWARD_ADDR", &addr)
                    .env("KEYWARD_TOKEN", &token)
                    .output()
                    .unwrap();
                assert!(out.status.success());
                acked.store(i, std::sync::atomic::Ordering::SeqCst);
            }
        })
    };
    while acked.load(std::sync::atomic::Ordering::SeqCst) < 3 {
        std::thread::sleep(Duration::from_millis(20));
    }
    let before = acked.load(std::sync::atomic::Ordering::SeqCst);
    let file = dir.path().join("a.kwb");
    take_backup(&a, &file);
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    writer.join().unwrap();

    // Nothing readable in the file: the value in any form, its path, the accessor.
    let bytes = std::fs::read(&file).unwrap();
    let b64 = base64::engine::general_purpose::STANDARD;
    let hex_canary = canary.bytes().map(|b| format!("{b:02x}")).collect::<String>();
    for needle in [canary, &b64.encode(canary), &hex_canary, &canary[canary.len() - 12..], "acme-prod", &accessor] {
        assert!(!bytes.windows(needle.len()).any(|w| w == needle.as_bytes()), "{needle:?} is readable in the backup");
    }

    // Restored into the other engine (PostgreSQL when there is one), it serves what was written.
    let pg = keyward_testkit::TestPostgres::create_blocking("kw_restore");
    let b_db = pg.as_ref().map_or_else(|| dir.path().join("b.db").display().to_string(), |p| p.url().to_owned());
    let out = restore(&file, &b_db, key).unwrap();
    assert!(out.contains("verified") && out.contains("live token"), "{out}");
    let mut b = spawn_server(&["--database", &b_db], &env).expect("server B on the restored database");
    b.token = a.token.clone();
    assert_eq!(
        b.ok(&["secrets", "get", "-p", "billing", "-e", "customers/acme-prod", "STRIPE_KEY", "--reveal"]),
        format!("{canary}\n")
    );
    let n: u64 = b.ok(&["secrets", "get", "-p", "billing", "-e", "counter", "N", "--reveal"]).trim().parse().unwrap();
    assert!(n >= before, "a write acknowledged before the backup ({before}) is missing ({n})");
    let history = b.ok(&["secrets", "history", "-p", "billing", "-e", "counter", "--format", "json"]);
    let versions: Value = serde_json::from_str(&history).unwrap();
    assert_eq!(versions["versions"].as_array().unwrap().last().unwrap()["version"].as_u64(), Some(n));
    b.ok(&["doctor", "--verify-all"]);
    assert!(b.ok(&["audit", "verify"]).contains("intact"));
    let status =
        Command::new(BIN).arg("status").env("KEYWARD_ADDR", &b.addr).env("KEYWARD_TOKEN", &app_token).output().unwrap();
    let status = String::from_utf8(status.stdout).unwrap();
    assert!(status.contains(&accessor), "a token from before the backup works after the restore: {status}");

    // And back: from B (PostgreSQL) into SQLite.
    let file_b = dir.path().join("b.kwb");
    take_backup(&b, &file_b);
    let c_db = dir.path().join("c.db");
    restore(&file_b, c_db.to_str().unwrap(), key).unwrap();
    b.stop();
    let mut c = spawn_server(&["--database", c_db.to_str().unwrap()], &env).expect("server C");
    c.token = a.token.clone();
    assert_eq!(
        c.ok(&["secrets", "get", "-p", "billing", "-e", "customers/acme-prod", "STRIPE_KEY", "--reveal"]),
        format!("{canary}\n")
    );
    c.stop();

    // Refusals, each one line, with nothing written: the target stays empty and a good file
    // restores into it afterwards.
    let target = dir.path().join("t.db");
    let t = target.to_str().unwrap();
    let e = restore(&file, t, other).unwrap_err();
    assert!(e.contains("does not open this backup's key"), "{e}");
    assert!(!e.contains(other), "{e}");
    let header_len = u32::from_be_bytes(bytes[8..12].try_into().unwrap()) as usize;
    for (what, at) in [("header", 40), ("first chunk", 12 + header_len + 20), ("last byte", bytes.len() - 1)] {
        let mut bad = bytes.clone();
        bad[at] ^= 0x40;
        let f = dir.path().join("bad.kwb");
        std::fs::write(&f, &bad).unwrap();
        let e = restore(&f, t, key).unwrap_err();
        assert!(e.contains("backup"), "{what}: {e}");
    }
    let f = dir.path().join("cut.kwb");
    std::fs::write(&f, &bytes[..bytes.len() - 100]).unwrap();
    assert!(restore(&f, t, key).unwrap_err().contains("truncated"));
    let other_backup = std::fs::read(&file_b).unwrap();
    let hb = u32::from_be_bytes(other_backup[8..12].try_into().unwrap()) as usize;
    let mut spliced = bytes[..12 + header_len].to_vec();
    spliced.extend_from_slice(&other_backup[12 + hb..]);
    std::fs::write(&f, &spliced).unwrap();
    assert!(restore(&f, t, key).unwrap_err().contains("does not verify"));
    let mut renamed = String::from_utf8(bytes[12..12 + header_len].to_vec()).unwrap();
    let cluster = serde_json::from_str::<Value>(&renamed).unwrap()["cluster_id"].as_str().unwrap().to_owned();
    renamed = renamed.replace(&cluster, "00000000-0000-4000-8000-000000000000");
    let mut relabelled = bytes[..12].to_vec();
    relabelled.extend_from_slice(renamed.as_bytes());
    relabelled.extend_from_slice(&bytes[12 + header_len..]);
    std::fs::write(&f, &relabelled).unwrap();
    assert!(restore(&f, t, key).unwrap_err().contains("does not verify"));
    // A non-empty database is refused and left as it was.
    a.stop();
    let e = restore(&file, a_db.to_str().unwrap(), key).unwrap_err();
    assert!(e.contains("is not empty"), "{e}");
    let mut a = spawn_server(&["--database", a_db.to_str().unwrap()], &env).expect("A again");
    a.token = Some(root_token.clone());
    assert_eq!(
        a.ok(&["secrets", "get", "-p", "billing", "-e", "customers/acme-prod", "STRIPE_KEY", "--reveal"]),
        format!("{canary}\n")
    );
    a.stop();
    // The refused attempts wrote nothing: the good file restores into the same target.
    restore(&file, t, key).unwrap();
    // A keyring without the tag the backup needs is named in the refusal.
    let out = Command::new(BIN)
        .args(["operator", "restore", file.to_str().unwrap(), "--database", dir.path().join("x.db").to_str().unwrap()])
        .env("KEYWARD_MASTER_KEYS", format!("v2:{other}"))
        .output()
        .unwrap();
    let e = String::from_utf8(out.stderr).unwrap();
    assert!(!out.status.success() && e.contains("needs master key(s) [\"v1\"]"), "{e}");

    // After a compromise: every token revoked, a new root token printed once.
    let r_db = dir.path().join("r.db");
    let out = Command::new(BIN)
        .args(["operator", "restore", file.to_str().unwrap(), "--database", r_db.to_str().unwrap(), "--revoke-tokens"])
        .args(["--format", "json"])
        .env("KEYWARD_MASTER_KEY", key)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let done: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(done["revoked_tokens"].as_u64().unwrap() >= 2, "{done}");
    let new_root = done["root_token"].as_str().unwrap().to_owned();
    let mut r = spawn_server(&["--database", r_db.to_str().unwrap()], &env).expect("server R");
    r.token = Some(root_token.clone());
    assert!(r.fails(&["mounts", "list"]).contains("token"));
    r.token = Some(new_root);
    assert!(r.ok(&["mounts", "list"]).contains("billing"));
    let (_, logs) = r.stop();
    assert!(!logs.contains(done["root_token"].as_str().unwrap()));
}

/// A request held open mid-body: headers and the first half of a `secrets set` sent, the rest
/// to follow with [`finish`].
fn stalled_write(s: &ServerProc, env: &str) -> (std::net::TcpStream, String) {
    let body = format!(r#"{{"set":{{"K":"in flight"}},"unset":[],"x":"{}"}}"#, "y".repeat(64));
    let host = s.addr.trim_start_matches("http://");
    let mut tcp = std::net::TcpStream::connect(host).unwrap();
    let head = format!(
        "PATCH /api/v1/mounts/app/secrets/{env} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        s.token.as_deref().unwrap(),
        body.len()
    );
    tcp.write_all(head.as_bytes()).unwrap();
    tcp.write_all(&body.as_bytes()[..20]).unwrap();
    (tcp, body[20..].to_owned())
}

/// Sends the rest of a stalled request's body and returns the response's status line.
fn finish(mut tcp: std::net::TcpStream, rest: &str) -> String {
    use std::io::Read;
    tcp.write_all(rest.as_bytes()).unwrap();
    let mut out = String::new();
    let _ = tcp.read_to_string(&mut out);
    out.lines().next().unwrap_or_default().to_owned()
}

#[test]
fn sigterm_drains_requests_in_flight_and_a_second_one_exits_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("k.db");
    let db = db.to_str().unwrap();
    let env = [("KEYWARD_MASTER_KEY", "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=")];
    let mut s = spawn_server(&["--database", db], &env).expect("server");
    let root: Value = serde_json::from_str(&s.ok(&["operator", "init", "--format", "json"])).unwrap();
    let token = root["root_token"].as_str().unwrap().to_owned();
    s.token = Some(token.clone());
    s.ok(&["mounts", "create", "app"]);

    // A request in flight when SIGTERM comes is still answered, with its audit entry, and the
    // server then exits 0.
    let (tcp, rest) = stalled_write(&s, "drained");
    std::thread::sleep(Duration::from_millis(200));
    s.terminate();
    assert_eq!(s.exit_code(Duration::from_millis(500)), None, "it waits for the request in flight");
    assert!(finish(tcp, &rest).contains(" 200 "), "the request in flight is answered");
    assert_eq!(s.exit_code(Duration::from_secs(10)), Some(0), "{}", s.stderr());
    let mut s = spawn_server(&["--database", db], &env).expect("restart");
    s.token = Some(token.clone());
    assert_eq!(s.ok(&["secrets", "get", "-p", "app", "-e", "drained", "K", "--reveal"]), "in flight\n");
    let found = s.ok(&["audit", "search", "--path", "app/drained", "--format", "json"]);
    assert!(found.contains("secrets.set"), "the answered write has its audit entry: {found}");

    // A second signal exits at once, leaving a stalled request unanswered.
    let (tcp, rest) = stalled_write(&s, "abandoned");
    std::thread::sleep(Duration::from_millis(200));
    s.terminate();
    std::thread::sleep(Duration::from_millis(200));
    s.terminate();
    assert_eq!(s.exit_code(Duration::from_secs(5)), Some(1));
    assert!(!finish(tcp, &rest).contains(" 200 "));

    // Requests that outlast --shutdown-timeout are given up, and the exit says so.
    let mut s = spawn_server(&["--database", db, "--shutdown-timeout", "1s"], &env).expect("restart");
    s.token = Some(token);
    assert!(s.ok(&["envs", "list", "-p", "app"]).contains("drained"));
    let (_tcp, _rest) = stalled_write(&s, "too-slow");
    std::thread::sleep(Duration::from_millis(200));
    s.terminate();
    assert_eq!(s.exit_code(Duration::from_secs(10)), Some(1));
    assert!(s.stderr().contains("still in flight after --shutdown-timeout 1s"), "{}", s.stderr());
}

/// Runs `keyward ARGS` against `addr` with `token`: its stdout, or `None` when it failed.
fn kw_at(addr: &str, token: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(BIN).args(args).env("KEYWARD_ADDR", addr).env("KEYWARD_TOKEN", token).output().unwrap();
    out.status.success().then(|| String::from_utf8(out.stdout).unwrap())
}

/// The key jobs of `srv`, as JSON.
fn key_jobs(srv: &ServerProc) -> Vec<Value> {
    serde_json::from_str::<Value>(&srv.ok(&["keys", "jobs", "--format", "json"])).unwrap().as_array().unwrap().clone()
}

#[test]
fn a_machine_logs_in_with_approle_through_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("a.db");
    let env = [("KEYWARD_MASTER_KEY", "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=")];
    let mut s = spawn_server(&["--database", db.to_str().unwrap()], &env).expect("server");
    let root: Value = serde_json::from_str(&s.ok(&["operator", "init", "--format", "json"])).unwrap();
    s.token = Some(root["root_token"].as_str().unwrap().to_owned());
    s.ok(&["mounts", "create", "app"]);
    s.ok(&["secrets", "set", "-p", "app", "-e", "prod", "DATABASE_URL=postgres://db/app"]);
    let policy = dir.path().join("deploy.toml");
    std::fs::write(&policy, "[[rules]]\npath = \"app/prod\"\ncapabilities = [\"read\"]\n").unwrap();
    s.ok(&["policy", "write", "deploy", policy.to_str().unwrap()]);

    assert!(s.ok(&["auth", "enable", "approle"]).contains("auth/approle/"));
    assert!(s.ok(&["auth", "list"]).contains("approle"));
    s.ok(&["approle", "role", "write", "ci", "--policy", "deploy", "--token-ttl", "15m", "--secret-id-num-uses", "1"]);
    assert_eq!(s.ok(&["approle", "role", "list"]), "ci\n");
    let role_id = s.ok(&["approle", "role", "role-id", "ci"]).trim().to_owned();
    let out = s.kw(&["approle", "secret-id", "create", "ci", "--metadata", "pipeline=deploy"]);
    assert!(out.status.success());
    let secret_id = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    assert!(String::from_utf8_lossy(&out.stderr).contains("shown once"));
    let sid_file = dir.path().join("secret-id");
    std::fs::write(&sid_file, format!("{secret_id}\n")).unwrap();

    // The machine: no token of its own, only its role ID and secret ID.
    let login = |extra: &[&str]| {
        let mut args =
            vec!["login", "--method", "approle", "--role-id", &role_id, "--secret-id-file", sid_file.to_str().unwrap()];
        args.extend_from_slice(extra);
        Command::new(BIN).args(&args).env("KEYWARD_ADDR", &s.addr).env_remove("KEYWARD_TOKEN").output().unwrap()
    };
    let out = login(&["--print-token"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let token = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    assert_eq!(
        kw_at(&s.addr, &token, &["secrets", "get", "-p", "app", "-e", "prod", "DATABASE_URL", "--reveal"]).unwrap(),
        "postgres://db/app\n"
    );
    let me = kw_at(&s.addr, &token, &["token", "lookup"]).unwrap();
    assert!(me.contains("role ci") && me.contains("pipeline=deploy") && me.contains("role_name=ci"), "{me}");
    // One use: the second login is refused, in one line that names neither part.
    let out = login(&["--print-token"]);
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        !out.status.success() && err.trim().lines().count() == 1 && err.contains("invalid role or secret ID"),
        "{err}"
    );
    assert!(!err.contains(&secret_id[6..]));
    // Secret IDs are never arguments.
    let out = Command::new(BIN)
        .args(["login", "--method", "approle", "--role-id", &role_id])
        .env("KEYWARD_ADDR", &s.addr)
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("--secret-id-file"));

    s.ok(&["auth", "disable", "approle"]);
    assert!(
        kw_at(&s.addr, &token, &["secrets", "get", "-p", "app", "-e", "prod", "DATABASE_URL", "--reveal"]).is_none(),
        "the login token outlived its auth method"
    );
    s.stop();
}

#[test]
fn a_person_logs_in_with_a_password_through_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("a.db");
    let env = [("KEYWARD_MASTER_KEY", "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=")];
    let mut s = spawn_server(&["--database", db.to_str().unwrap()], &env).expect("server");
    let root: Value = serde_json::from_str(&s.ok(&["operator", "init", "--format", "json"])).unwrap();
    s.token = Some(root["root_token"].as_str().unwrap().to_owned());
    s.ok(&["auth", "enable", "userpass"]);
    let out = s.kw_stdin(&["user", "write", "svc", "--policy", "default", "--no-totp"], Some("service password 1\n"));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(s.ok(&["user", "list"]), "svc\n");
    let login = |stdin: &str| {
        let mut child = Command::new(BIN)
            .args(["login", "--method", "userpass", "--username", "svc", "--print-token"])
            .env("KEYWARD_ADDR", &s.addr)
            .env_remove("KEYWARD_TOKEN")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
        child.wait_with_output().unwrap()
    };
    let out = login("service password 1\n\n");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let token = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    assert!(kw_at(&s.addr, &token, &["token", "lookup"]).unwrap().contains("username=svc"));
    let out = login("wrong password\n\n");
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        !out.status.success()
            && err.trim().lines().count() == 1
            && err.contains("invalid username, password or TOTP code"),
        "{err}"
    );
    // A new password revokes the user's tokens.
    let out = s.kw_stdin(&["user", "passwd", "svc"], Some("service password 2\n"));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(kw_at(&s.addr, &token, &["token", "lookup"]).is_none());
    assert!(login("service password 2\n\n").status.success());
    s.ok(&["user", "delete", "svc"]);
    assert!(!login("service password 2\n\n").status.success());

    // A person with TOTP: enrolled through the CLI, then password and code.
    let out = s.kw_stdin(&["user", "create", "alice", "--policy", "default"], Some("alice password 1\n"));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let mut enrol = Command::new(BIN)
        .args(["user", "totp", "enroll", "alice"])
        .env("KEYWARD_ADDR", &s.addr)
        .env("KEYWARD_TOKEN", s.token.as_deref().unwrap())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = enrol.stdin.take().unwrap();
    stdin.write_all(b"\n").unwrap(); // not enrolled yet: no current code
    let mut url = String::new();
    BufReader::new(enrol.stdout.take().unwrap()).read_line(&mut url).unwrap();
    assert!(url.starts_with("otpauth://totp/"), "{url}");
    let secret = url.split("secret=").nth(1).unwrap().split('&').next().unwrap();
    let seed = data_encoding::BASE32_NOPAD.decode(secret.as_bytes()).unwrap();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    writeln!(stdin, "{}", keyward_crypto::totp_now(&seed, now)).unwrap();
    drop(stdin);
    let out = enrol.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let next = keyward_crypto::totp_now(&seed, now + 30);
    let mut child = Command::new(BIN)
        .args(["login", "--method", "userpass", "--username", "alice", "--print-token"])
        .env("KEYWARD_ADDR", &s.addr)
        .env_remove("KEYWARD_TOKEN")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(format!("alice password 1\n{next}\n").as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let token = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    assert!(kw_at(&s.addr, &token, &["token", "lookup"]).unwrap().contains("username=alice"));
    s.ok(&["user", "totp", "reset", "alice"]);
    assert!(kw_at(&s.addr, &token, &["token", "lookup"]).is_none(), "a reset revokes the user's tokens");
    s.stop();
}

#[test]
fn background_work_runs_on_one_replica_and_moves_on_when_it_dies() {
    let Some(pg) = keyward_testkit::TestPostgres::create_blocking("kw_leader") else { return };
    let env = [("KEYWARD_MASTER_KEY", "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=")];
    let args = ["--database", pg.url(), "--migrate-batch", "2", "--migrate-nice-ratio", "20", "--rate-limit", "off"];
    let mut a = spawn_server(&args, &env).expect("replica A");
    let root: Value = serde_json::from_str(&a.ok(&["operator", "init", "--format", "json"])).unwrap();
    let root = root["root_token"].as_str().unwrap().to_owned();
    a.token = Some(root.clone());
    let mut b = spawn_server(&args, &env).expect("replica B");
    b.token = Some(root.clone());
    const LEADS: &str = "this server runs the background work";
    assert!(a.stderr().contains(LEADS), "the first server takes the background lock");
    assert!(!b.stderr().contains(LEADS), "a second server must not run background work too");

    a.ok(&["mounts", "create", "app"]);
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let (addr, root) = (if w % 2 == 0 { a.addr.clone() } else { b.addr.clone() }, root.clone());
            std::thread::spawn(move || {
                for i in 0..15 {
                    let set = ["secrets", "set", "-p", "app", "-e", &format!("w{w}"), &format!("K{i}=v{i}")];
                    assert!(kw_at(&addr, &root, &set).is_some());
                }
            })
        })
        .collect();
    writers.into_iter().for_each(|w| w.join().unwrap());
    b.ok(&["keys", "rotate", "-p", "app"]);
    // Started on B, run by A (the leader), never by both.
    let started: Value =
        serde_json::from_str(&b.ok(&["keys", "migrate", "-p", "app", "--no-wait", "--format", "json"])).unwrap();
    let id = started["id"].as_str().unwrap().to_owned();
    let job = |srv: &ServerProc| key_jobs(srv).into_iter().find(|j| j["id"] == id.as_str()).unwrap();
    let mut seen = job(&b);
    for _ in 0..100 {
        if seen["done"].as_u64().unwrap() >= 4 || seen["status"] != "running" {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
        seen = job(&b);
    }
    assert_eq!(seen["status"], "running", "the job ended before the leader could be killed: {seen}");
    assert!(a.stderr().contains("resuming key job"), "the leader runs the job started on the other replica");
    assert!(!b.stderr().contains("resuming key job"), "the job ran on two replicas");
    let owner_a = seen["owner"].as_str().unwrap().to_owned();

    // The leader dies mid-job: B takes the lock and the job, from its last committed batch.
    a.kill();
    let mut finished = job(&b);
    for _ in 0..300 {
        if finished["status"] != "running" {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
        finished = job(&b);
    }
    assert_eq!(finished["status"], "done", "{finished}");
    assert_eq!(finished["done"], finished["total"], "{finished}");
    assert_ne!(finished["owner"], owner_a.as_str(), "the job's last batches ran on the surviving replica");
    assert!(b.stderr().contains(LEADS) && b.stderr().contains("resuming key job"));
    let status: Value = serde_json::from_str(&b.ok(&["keys", "status", "--format", "json"])).unwrap();
    for d in status["deks"].as_array().unwrap() {
        if d["version"] == 1 {
            assert_eq!(d["blobs"], 0, "{status}");
        }
    }
    let doctor = b.ok(&["doctor", "--verify-all"]);
    // Every version kept (ten per secret) re-sealed, and each decrypts.
    assert!(doctor.contains(&format!("{} checked, 0 failed", finished["total"])), "{doctor}");
    b.stop();
}

#[test]
fn two_replicas_on_one_postgresql_agree_at_once_and_survive_a_kill() {
    let Some(pg) = keyward_testkit::TestPostgres::create_blocking("kw_replicas") else { return };
    let env = [("KEYWARD_MASTER_KEY", "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=")];
    let mut a = spawn_server(&["--database", pg.url()], &env).expect("replica A");
    let root: Value = serde_json::from_str(&a.ok(&["operator", "init", "--format", "json"])).unwrap();
    let root = root["root_token"].as_str().unwrap().to_owned();
    a.token = Some(root.clone());
    let mut b = spawn_server(&["--database", pg.url()], &env).expect("replica B");
    b.token = Some(root.clone());

    // A write on one reads back on the other.
    a.ok(&["mounts", "create", "app"]);
    a.ok(&["secrets", "set", "-p", "app", "-e", "prod", "K=from-a"]);
    assert_eq!(b.ok(&["secrets", "get", "-p", "app", "-e", "prod", "K", "--reveal"]), "from-a\n");
    // A token revoked on one is refused by the other at once; so is a narrowed policy.
    let policy = "[[rules]]\npath = \"app/*\"\ncapabilities = [\"read\"]\n";
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), policy).unwrap();
    a.ok(&["policy", "write", "reader", file.path().to_str().unwrap()]);
    let t: Value = serde_json::from_str(&a.ok(&["token", "create", "--policy", "reader", "--format", "json"])).unwrap();
    let (token, accessor) = (t["token"].as_str().unwrap(), t["info"]["accessor"].as_str().unwrap());
    assert!(kw_at(&b.addr, token, &["secrets", "get", "-p", "app", "-e", "prod", "K", "--reveal"]).is_some());
    std::fs::write(file.path(), "[[rules]]\npath = \"app/other\"\ncapabilities = [\"read\"]\n").unwrap();
    b.ok(&["policy", "write", "reader", file.path().to_str().unwrap()]);
    assert!(kw_at(&a.addr, token, &["secrets", "get", "-p", "app", "-e", "prod", "K", "--reveal"]).is_none());
    std::fs::write(file.path(), policy).unwrap();
    a.ok(&["policy", "write", "reader", file.path().to_str().unwrap()]);
    assert!(kw_at(&b.addr, token, &["secrets", "get", "-p", "app", "-e", "prod", "K", "--reveal"]).is_some());
    b.ok(&["token", "revoke", "--accessor", accessor]);
    assert!(kw_at(&a.addr, token, &["secrets", "get", "-p", "app", "-e", "prod", "K", "--reveal"]).is_none());

    // A client that retries on the other replica when a connection fails loses nothing when one
    // replica is killed mid-load.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let clients: Vec<_> = (0..2)
        .map(|c| {
            let (addrs, root, stop) = ([a.addr.clone(), b.addr.clone()], root.clone(), stop.clone());
            std::thread::spawn(move || {
                let (mut done, mut i) = (0u32, 0u32);
                while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                    i += 1;
                    let args = ["secrets", "set", "-p", "app", "-e", "load", &format!("C{c}={i}")];
                    // One try per replica: the request fails only if both refuse it.
                    let ok = addrs.iter().any(|addr| kw_at(addr, &root, &args).is_some());
                    assert!(ok, "client {c}: request {i} failed on both replicas");
                    done += 1;
                }
                done
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(800));
    a.kill();
    std::thread::sleep(Duration::from_millis(800));
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let served: u32 = clients.into_iter().map(|c| c.join().unwrap()).sum();
    assert!(served > 10, "{served} requests served");
    assert!(b.ok(&["audit", "verify"]).contains("intact"));
    b.stop();
}

/// A JWT (EdDSA) for `claims`, and the PEM of the key that signed it.
fn signed_jwt(claims: &Value) -> (String, String) {
    use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
    use base64::Engine;
    use ring::signature::{Ed25519KeyPair, KeyPair};
    let pk8 = Ed25519KeyPair::generate_pkcs8(&ring::rand::SystemRandom::new()).unwrap();
    let key = Ed25519KeyPair::from_pkcs8(pk8.as_ref()).unwrap();
    let part = |v: &Value| URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap());
    let input = format!("{}.{}", part(&serde_json::json!({"alg": "EdDSA", "typ": "JWT"})), part(claims));
    let jwt = format!("{input}.{}", URL_SAFE_NO_PAD.encode(key.sign(input.as_bytes()).as_ref()));
    // Ed25519's SubjectPublicKeyInfo is a fixed 12-byte prefix and the key.
    let spki =
        [&[0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00][..], key.public_key().as_ref()]
            .concat();
    (jwt, format!("-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n", STANDARD.encode(spki)))
}

/// GitHub Actions' token service for one request: checks the bearer token and the audience,
/// answers `{"value": jwt}`; returns its URL.
fn fake_actions_token_service(jwt: String) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/token?api-version=2.0", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        let (mut conn, _) = listener.accept().unwrap();
        let mut reader = BufReader::new(conn.try_clone().unwrap());
        let mut head = String::new();
        while reader.read_line(&mut head).unwrap() > 2 && !head.ends_with("\r\n\r\n") {}
        let lower = head.to_ascii_lowercase();
        let ok = lower.contains("authorization: bearer gh-request-token") && head.contains("audience=keyward");
        let body = if ok { serde_json::json!({ "value": jwt }).to_string() } else { "{}".to_owned() };
        let status = if ok { "200 OK" } else { "401 Unauthorized" };
        let answer = format!(
            "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        conn.write_all(answer.as_bytes()).unwrap();
    });
    url
}

#[test]
fn a_ci_job_logs_in_with_its_jwt_through_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("a.db");
    let env = [("KEYWARD_MASTER_KEY", "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=")];
    let mut s = spawn_server(&["--database", db.to_str().unwrap()], &env).expect("server");
    let root: Value = serde_json::from_str(&s.ok(&["operator", "init", "--format", "json"])).unwrap();
    let root = root["root_token"].as_str().unwrap().to_owned();
    s.token = Some(root.clone());
    s.ok(&["mounts", "create", "app"]);
    s.ok(&["secrets", "set", "-p", "app", "-e", "prod", "DATABASE_URL=postgres://db/app"]);
    let policy = dir.path().join("deploy.toml");
    std::fs::write(&policy, "[[rules]]\npath = \"app/prod\"\ncapabilities = [\"read\"]\n").unwrap();
    s.ok(&["policy", "write", "deploy", policy.to_str().unwrap()]);
    assert!(s.ok(&["auth", "enable", "jwt"]).contains("auth/jwt/"));

    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let claims = serde_json::json!({"iss": "https://token.actions.githubusercontent.com", "aud": "keyward",
        "sub": "repo:acme/app:ref:refs/heads/main", "repository": "acme/app", "exp": now + 300, "iat": now});
    let (jwt, pem) = signed_jwt(&claims);
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let vault = |path: &str, body: Value| {
        let url = format!("{}/v1/{path}", s.addr);
        let status = rt.block_on(async {
            reqwest::Client::new().post(url).header("X-Vault-Token", &root).json(&body).send().await.unwrap().status()
        });
        assert!(status.is_success(), "{path}: {status}");
    };
    vault(
        "auth/jwt/config",
        serde_json::json!({"jwt_validation_pubkeys": [pem],
        "bound_issuer": "https://token.actions.githubusercontent.com"}),
    );
    vault(
        "auth/jwt/role/deploy",
        serde_json::json!({"user_claim": "sub", "bound_audiences": ["keyward"],
        "bound_claims": {"repository": "acme/app"}, "token_policies": ["deploy"], "token_ttl": "15m"}),
    );

    let login = |args: &[&str], envs: &[(&str, &str)]| {
        let mut cmd = Command::new(BIN);
        cmd.args(["login", "--method", "jwt", "--role", "deploy", "--print-token"]).args(args);
        cmd.env("KEYWARD_ADDR", &s.addr).env_remove("KEYWARD_TOKEN");
        cmd.env_remove("ACTIONS_ID_TOKEN_REQUEST_URL").env_remove("ACTIONS_ID_TOKEN_REQUEST_TOKEN");
        cmd.envs(envs.iter().copied()).output().unwrap()
    };
    let read =
        |token: &str| kw_at(&s.addr, token, &["secrets", "get", "-p", "app", "-e", "prod", "DATABASE_URL", "--reveal"]);
    // From a file (a Kubernetes service-account token is read the same way).
    let jwt_file = dir.path().join("jwt");
    std::fs::write(&jwt_file, format!("{jwt}\n")).unwrap();
    let out = login(&["--jwt-file", jwt_file.to_str().unwrap()], &[]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let token = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    assert_eq!(read(&token).unwrap(), "postgres://db/app\n");
    // From GitHub Actions' token service, for the audience asked.
    let url = fake_actions_token_service(jwt.clone());
    let envs = [("ACTIONS_ID_TOKEN_REQUEST_URL", url.as_str()), ("ACTIONS_ID_TOKEN_REQUEST_TOKEN", "gh-request-token")];
    let out = login(&["--github-actions", "--audience", "keyward"], &envs);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(read(String::from_utf8(out.stdout).unwrap().trim()).unwrap(), "postgres://db/app\n");
    // Outside a job: one line saying what is missing; a forged token: refused without echoing it.
    let out = login(&["--github-actions"], &[]);
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        !out.status.success() && err.trim().lines().count() == 1 && err.contains("ACTIONS_ID_TOKEN_REQUEST_URL"),
        "{err}"
    );
    let (forged, _) = signed_jwt(&claims);
    std::fs::write(&jwt_file, &forged).unwrap();
    let out = login(&["--jwt-file", jwt_file.to_str().unwrap()], &[]);
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(!out.status.success() && err.contains("signature") && !err.contains(&forged[..20]), "{err}");
    s.stop();
}

#[test]
fn a_value_is_handed_over_wrapped_and_opened_once() {
    let s = spawn_server(&["--dev"], &[]).expect("dev server starts");
    s.ok(&["secrets", "set", "-p", "secret", "-e", "production", "STRIPE_KEY=sk_live_handover_canary"]);
    let out = s.kw(&["secrets", "get", "-p", "secret", "-e", "production", "STRIPE_KEY", "--wrap-ttl", "5m"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let (stdout, stderr) = (String::from_utf8(out.stdout).unwrap(), String::from_utf8(out.stderr).unwrap());
    assert!(!stdout.contains("canary") && !stderr.contains("canary"), "{stdout} {stderr}");
    assert!(stderr.contains("one-time") && stderr.contains("300s"), "{stderr}");
    let token = stdout.trim().to_owned();
    assert!(token.starts_with("kw_"), "{token}");
    // The colleague opens it, once.
    let opened = s.kw_stdin(&["unwrap"], Some(&token));
    assert_eq!(String::from_utf8_lossy(&opened.stdout), "sk_live_handover_canary\n");
    let again = s.kw_stdin(&["unwrap"], Some(&token));
    let err = String::from_utf8(again.stderr).unwrap();
    assert!(!again.status.success() && err.trim().lines().count() == 1 && err.contains("not valid"), "{err}");
    let out = s.kw(&["secrets", "get", "-p", "secret", "-e", "production", "STRIPE_KEY", "--wrap-ttl", "48h"]);
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(!out.status.success() && err.contains("max-wrap-ttl"), "{err}");
}

/// Every readable region of a process's memory (as root, or as its parent under ptrace rules).
fn process_memory(pid: u32) -> Vec<Vec<u8>> {
    use std::io::{Read, Seek, SeekFrom};
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).unwrap();
    let mut mem = std::fs::File::open(format!("/proc/{pid}/mem")).unwrap();
    let mut regions = Vec::new();
    for line in maps.lines() {
        let mut parts = line.split_whitespace();
        let (Some(range), Some(perms)) = (parts.next(), parts.next()) else { continue };
        let name = parts.nth(3).unwrap_or_default();
        if !perms.starts_with('r') || name == "[vvar]" || name == "[vsyscall]" {
            continue;
        }
        let (start, end) = range.split_once('-').unwrap();
        let (start, end) = (u64::from_str_radix(start, 16).unwrap(), u64::from_str_radix(end, 16).unwrap());
        let mut buf = vec![0u8; usize::try_from(end - start).unwrap()];
        if mem.seek(SeekFrom::Start(start)).is_ok() && mem.read_exact(&mut buf).is_ok() {
            regions.push(buf);
        }
    }
    regions
}

fn holds(regions: &[Vec<u8>], needle: &[u8]) -> bool {
    regions.iter().any(|r| r.windows(needle.len()).any(|w| w == needle))
}

/// After a data-key rotation, a re-encryption and a prune, no byte sequence of the pruned data
/// key is left in the server's memory (its cached copy, the unwrapping buffers and ring's AES
/// schedule are all wiped) — read through /proc/<pid>/mem. Core dumps are off in the server.
#[test]
fn a_pruned_data_key_leaves_the_servers_memory() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("keyward.db");
    let db = db.to_str().unwrap();
    let key = "AwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwM=";
    let mut s = spawn_server(&["--database", db], &[("KEYWARD_MASTER_KEYS", &format!("v1:{key}"))]).unwrap();
    let root: Value = serde_json::from_str(&s.ok(&["operator", "init", "--format", "json"])).unwrap();
    s.token = Some(root["root_token"].as_str().unwrap().to_owned());
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", s.pid())).unwrap();
    let core = limits.lines().find(|l| l.starts_with("Max core file size")).unwrap();
    assert!(core.split_whitespace().nth(4) == Some("0"), "core dumps are on: {core}");

    s.ok(&["mounts", "create", "app"]);
    for i in 0..20 {
        s.ok(&["secrets", "set", "-p", "app", "-e", "prod", &format!("KEY_{i}=sk_live_value_number_{i}")]);
    }
    assert!(s.ok(&["secrets", "get", "-p", "app", "-e", "prod", "KEY_3", "--reveal"]).contains("number_3"));
    // The data key of version 1, unwrapped here from its row with the master key.
    let conn = rusqlite::Connection::open(db).unwrap();
    let (owner, tag, wrapped): (String, String, Vec<u8>) = conn
        .query_row(
            "SELECT w.owner, w.kek_tag, w.wrapped FROM wrapped_keys w JOIN mounts m ON m.id = w.owner \
             WHERE w.domain = 'keyward/dek' AND w.version = 1 AND m.path = 'app'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    let ring = keyward_crypto::MasterKeyring::parse(&format!("v1:{key}")).unwrap();
    let owner = uuid::Uuid::parse_str(&owner).unwrap();
    let dek = ring
        .unwrap(
            keyward_crypto::WrappedKeyDomain::Dek,
            owner.as_bytes(),
            1,
            &keyward_crypto::WrappedKey { kek_tag: tag, bytes: wrapped },
        )
        .unwrap();
    let dek_bytes = dek.expose().to_vec();
    drop(dek);
    assert!(holds(&process_memory(s.pid()), &dek_bytes[..16]), "the test finds the data key while it is in use");

    // A token used once and revoked, for the report below.
    let created: Value =
        serde_json::from_str(&s.ok(&["token", "create", "--policy", "default", "--format", "json"])).unwrap();
    let revoked = created["token"].as_str().unwrap().to_owned();
    s.ok(&["token", "revoke", "--accessor", created["info"]["accessor"].as_str().unwrap()]);

    assert!(s.ok(&["keys", "rotate", "-p", "app"]).contains("data key v2"));
    s.ok(&["keys", "migrate", "-p", "app"]);
    let pruned = s.ok(&["keys", "prune", "-p", "app"]);
    assert!(pruned.contains("v1"), "{pruned}");
    let regions = process_memory(s.pid());
    // Where any 16-byte window of the key is found: (region index, region length, offset).
    let found: Vec<(usize, usize, usize)> = regions
        .iter()
        .enumerate()
        .flat_map(|(i, r)| {
            let windows: Vec<&[u8]> = dek_bytes.windows(16).step_by(8).collect();
            r.windows(16).enumerate().filter(move |(_, w)| windows.contains(w)).map(move |(o, _)| (i, r.len(), o))
        })
        .collect();
    assert!(found.is_empty(), "bytes of the pruned data key are still in the server's memory at {found:?}");
    // Reported, not asserted: copies of a revoked token and of plaintexts that passed through
    // HTTP and JSON buffers (freed memory the allocator has not reused yet).
    let count =
        |needle: &[u8]| regions.iter().map(|r| r.windows(needle.len()).filter(|w| *w == needle).count()).sum::<usize>();
    eprintln!(
        "memory report: revoked token {} cop(ies); plaintext \"sk_live_value_number_3\" {} cop(ies); all 20 plaintexts {} cop(ies)",
        count(revoked.as_bytes()),
        count(b"sk_live_value_number_3"),
        (0..20).map(|i| count(format!("sk_live_value_number_{i}").as_bytes())).sum::<usize>()
    );
    s.stop();
}

/// A tmpfs of `size` mounted for a test (in a temporary directory kept alive with it),
/// unmounted when dropped; `None` where mounting is not permitted (not root, no CAP_SYS_ADMIN).
struct SmallDisk {
    at: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl SmallDisk {
    fn mount(size: &str) -> Option<Self> {
        let dir = tempfile::tempdir().unwrap();
        let at = dir.path().join("disk");
        std::fs::create_dir(&at).unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&at)
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        ok.then_some(Self { at, _dir: dir })
    }

    /// Writes a file until the disk is full; returns it.
    fn fill(&self) -> std::path::PathBuf {
        let filler = self.at.join("filler");
        let mut f = std::fs::File::create(&filler).unwrap();
        let chunk = vec![0u8; 64 * 1024];
        while f.write_all(&chunk).is_ok() {}
        filler
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.at).status();
    }
}

/// The status line and JSON body of a GET with a token.
fn get_as(addr: &str, path: &str, token: &str) -> (u16, Value) {
    let resp = raw_get(addr, path, Some(token));
    let status = resp.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = resp.split("\r\n\r\n").nth(1).unwrap_or_default();
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

/// A full disk (SQLite on a small tmpfs): every audited request fails closed with 503
/// `audit_unavailable`, health names the cause, nothing acknowledged is lost, and once space is
/// freed the server serves again without a restart (the failure came before any fsync).
#[test]
fn a_full_disk_fails_closed_and_recovers_when_space_returns() {
    let Some(disk) = SmallDisk::mount("16m") else {
        eprintln!("skipped: a tmpfs cannot be mounted here (needs root); the disk-full test did not run");
        return;
    };
    let db = disk.at.join("keyward.db");
    let key = "BAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQ=";
    let env = [("KEYWARD_MASTER_KEYS", format!("v1:{key}"))];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let args = ["--database", db.to_str().unwrap()];
    let mut s = spawn_server(&args, &env).unwrap();
    let root: Value = serde_json::from_str(&s.ok(&["operator", "init", "--format", "json"])).unwrap();
    let token = root["root_token"].as_str().unwrap().to_owned();
    s.token = Some(token.clone());
    s.ok(&["mounts", "create", "app"]);
    let mut acked = Vec::new();
    for i in 0..30 {
        s.ok(&["secrets", "set", "-p", "app", "-e", "prod", &format!("K{i}=value-{i}")]);
        acked.push(i);
    }
    let filler = disk.fill();
    // The write-ahead log first reuses the space a finished checkpoint freed, so audited requests
    // may still fit for a while; once it must grow, they cannot.
    let mut fitted = 0;
    while get_as(&s.addr, "/v1/app/data/prod", &token).0 == 200 {
        fitted += 1;
        assert!(fitted < 5_000, "audited reads kept succeeding on a full disk");
    }
    // Reads and writes are refused: the audit log cannot take their entries.
    let mut refused = 0;
    for i in 0..20 {
        let (status, body) = get_as(&s.addr, "/v1/app/data/prod", &token);
        if status == 503 {
            assert!(body.to_string().contains("audit"), "{body}");
            refused += 1;
        } else {
            assert_eq!(status, 200, "{body}");
        }
        let out = s.kw(&["secrets", "set", "-p", "app", "-e", "prod", &format!("LATE{i}=x")]);
        if out.status.success() {
            acked.push(100 + i); // it fit after all: it must survive like the rest
        }
    }
    assert!(refused > 0, "no audited read was refused on a full disk");
    eprintln!(
        "disk full: {fitted} audited reads fitted in the log's reused space, then {refused} of 20 refused with 503; \
         {} late write(s) still fit",
        acked.len() - 30
    );
    let health = reqwest_free_get(&s.addr, "/v1/sys/health");
    assert_eq!(health["audit"]["primary"], "failing", "{health}");
    let cause = health["audit"]["primary_error"].as_str().unwrap_or_default().to_lowercase();
    assert!(cause.contains("full") || cause.contains("space"), "health does not name the cause: {health}");
    // Space returns: served again without a restart.
    std::fs::remove_file(filler).unwrap();
    let mut served = false;
    for _ in 0..50 {
        if get_as(&s.addr, "/v1/app/data/prod", &token).0 == 200 {
            served = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(served, "the server did not recover once space was freed");
    assert!(s.ok(&["secrets", "set", "-p", "app", "-e", "prod", "AFTER=ok"]).contains("version"));
    let health = reqwest_free_get(&s.addr, "/v1/sys/health");
    assert!(health["audit"]["primary"] == "ok" && health["audit"]["primary_error"].is_null(), "{health}");
    // Nothing acknowledged was lost, and the chain is whole — also after a restart.
    s.stop();
    let mut s = spawn_server(&args, &env).unwrap();
    s.token = Some(token);
    let all = reveal_json(&s, "app", "prod");
    for i in acked {
        let (name, value) =
            if i < 100 { (format!("K{i}"), format!("value-{i}")) } else { (format!("LATE{}", i - 100), "x".into()) };
        assert_eq!(all[&name], value.as_str(), "acknowledged {name} lost");
    }
    assert!(s.ok(&["audit", "verify"]).contains("Audit log intact"));
    s.stop();
}

/// Debian's libfaketime, preloaded to move a process's wall clock (`None` when not installed).
fn libfaketime() -> Option<String> {
    ["/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1", "/usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .map(str::to_owned)
}

/// libfaketime, or `None` once it has said the test is skipped (its absence fails under CI).
fn faketime_or_skip() -> Option<String> {
    let lib = libfaketime();
    if lib.is_none() {
        assert!(std::env::var_os("CI").is_none(), "libfaketime is missing under CI (apt-get install faketime)");
        eprintln!("skipped: libfaketime is not installed (apt-get install faketime)");
    }
    lib
}

/// The environment of a server with the master keys `master` whose wall clock is `offset` from
/// the real one (`-1h`, `+10m`), its monotonic clock left alone.
fn faked<'a>(lib: &'a str, master: &'a str, offset: &'a str) -> [(&'a str, &'a str); 5] {
    [
        ("KEYWARD_MASTER_KEYS", master),
        ("LD_PRELOAD", lib),
        ("FAKETIME", offset),
        ("FAKETIME_DONT_FAKE_MONOTONIC", "1"),
        ("FAKETIME_NO_CACHE", "1"),
    ]
}

/// A raw HTTP/1.1 request (status line, headers and body as text): what a browser sends, cookie
/// and form included, without a client library that would follow redirects or keep cookies.
fn raw_request(addr: &str, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> String {
    use std::io::Read;
    let hostport = addr.trim_start_matches("http://");
    let mut tcp = std::net::TcpStream::connect(hostport).unwrap();
    let extra: String = headers.iter().map(|(k, v)| format!("{k}: {v}\r\n")).collect();
    write!(
        tcp,
        "{method} {path} HTTP/1.1\r\nHost: {hostport}\r\n{extra}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut resp = Vec::new();
    let _ = tcp.read_to_end(&mut resp);
    String::from_utf8_lossy(&resp).into_owned()
}

/// A web UI session unused for 15 minutes is over — revoked by the request that finds it idle,
/// with its own audit entry — while one used within the limit lives on (each use restarts the
/// wait). The server restarts under `faketime` 10, 20, then 36 minutes ahead.
#[test]
fn a_ui_session_idle_for_fifteen_minutes_is_revoked() {
    let Some(lib) = faketime_or_skip() else { return };
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("keyward.db");
    let master = "v1:BgYGBgYGBgYGBgYGBgYGBgYGBgYGBgYGBgYGBgYGBgY=";
    let args = ["--database", db.to_str().unwrap()];
    let mut s = spawn_server(&args, &[("KEYWARD_MASTER_KEYS", master)]).unwrap();
    let root: Value = serde_json::from_str(&s.ok(&["operator", "init", "--format", "json"])).unwrap();
    let root_token = root["root_token"].as_str().unwrap().to_owned();
    s.token = Some(root_token.clone());
    let form = format!("token={root_token}");
    let login = raw_request(
        &s.addr,
        "POST",
        "/ui/session/token",
        &[("Content-Type", "application/x-www-form-urlencoded")],
        &form,
    );
    assert!(login.starts_with("HTTP/1.1 303"), "{login}");
    let cookie = login.lines().find_map(|l| l.strip_prefix("set-cookie: ")).unwrap().split(';').next().unwrap();
    let cookie = cookie.to_owned();
    let page = |s: &ServerProc| raw_request(&s.addr, "GET", "/ui", &[("Cookie", &cookie)], "");
    assert!(page(&s).starts_with("HTTP/1.1 200"), "a fresh session");
    s.stop();

    let ahead = |offset: &'static str| {
        let mut s = spawn_server(&args, &faked(&lib, master, offset)).unwrap();
        s.token = Some(root_token.clone());
        s
    };
    for offset in ["+10m", "+20m"] {
        // 10 minutes after the last use each time (20 after the login: a use restarts the wait).
        let s = ahead(offset);
        assert!(page(&s).starts_with("HTTP/1.1 200"), "{offset}: 10 minutes unused is within the limit");
        std::thread::sleep(Duration::from_millis(300)); // the use is recorded off the request's path
        s.stop();
    }
    // 16 minutes after the last use: idle.
    let s = ahead("+36m");
    let idle = page(&s);
    assert!(idle.starts_with("HTTP/1.1 303") && idle.contains("/ui/login?expired=1"), "{idle}");
    let entries = s.ok(&["audit", "search", "--operation", "ui.session.idle-expired", "--format", "json"]);
    let entries: Vec<Value> = entries.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert_eq!(entries[0]["details"]["revoked"], 1, "{entries:?}");
    // Revoked, not merely refused: the session's token is gone for every later request too.
    let (status, looked) = get_as(&s.addr, "/api/v1/tokens", &root_token);
    assert_eq!(status, 200, "{looked}");
    let sessions: Vec<&Value> =
        looked["tokens"].as_array().unwrap().iter().filter(|t| t["type"] == "ui-session").collect();
    assert!(!sessions.is_empty() && sessions.iter().all(|t| t["revoked"] == true), "{looked}");
    s.stop();
}

/// A wall clock set back an hour while keyward was down (the server restarted under
/// `faketime`) revives no expired token: the stored, MAC'd high-water mark holds the trusted
/// clock; health reports the drift; tokens made meanwhile expire by the trusted clock too.
#[test]
fn a_clock_set_back_revives_no_expired_token() {
    let Some(lib) = faketime_or_skip() else { return };
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("keyward.db");
    let key = "BQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQU=";
    let master = format!("v1:{key}");
    let args = ["--database", db.to_str().unwrap()];
    let mut s = spawn_server(&args, &[("KEYWARD_MASTER_KEYS", &master)]).unwrap();
    let root: Value = serde_json::from_str(&s.ok(&["operator", "init", "--format", "json"])).unwrap();
    let root_token = root["root_token"].as_str().unwrap().to_owned();
    s.token = Some(root_token.clone());
    let short: Value =
        serde_json::from_str(&s.ok(&["token", "create", "--policy", "default", "--ttl", "2s", "--format", "json"]))
            .unwrap();
    let short = short["token"].as_str().unwrap().to_owned();
    assert_eq!(get_as(&s.addr, "/v1/auth/token/lookup-self", &short).0, 200);
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(get_as(&s.addr, "/v1/auth/token/lookup-self", &short).0, 403, "the token did not expire");
    s.stop();

    // The wall clock is an hour behind now: without the mark the token would live again.
    let mut s = spawn_server(&args, &faked(&lib, &master, "-1h")).unwrap();
    s.token = Some(root_token);
    let health = reqwest_free_get(&s.addr, "/v1/sys/health");
    let wall = health["server_time_utc"].as_i64().unwrap();
    let real = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    assert!((real - 3600 - wall).abs() < 60, "the server's wall clock is not an hour behind: {health}");
    let drift = health["clock"]["drift_seconds"].as_i64().unwrap();
    assert!((-3700..-3500).contains(&drift), "health does not report the drift: {health}");
    assert!(health["clock"]["warning"].as_str().unwrap().contains("behind"), "{health}");
    assert_eq!(get_as(&s.addr, "/v1/auth/token/lookup-self", &short).0, 403, "a clock set back revived a token");
    // A token made now expires by the trusted clock, not the hour-old wall clock.
    let fresh: Value =
        serde_json::from_str(&s.ok(&["token", "create", "--policy", "default", "--ttl", "1h", "--format", "json"]))
            .unwrap();
    let fresh = fresh["token"].as_str().unwrap().to_owned();
    let (status, looked) = get_as(&s.addr, "/v1/auth/token/lookup-self", &fresh);
    assert_eq!(status, 200, "{looked}");
    let expire = looked["data"]["expire_time"].as_str().unwrap();
    let expire = time::OffsetDateTime::parse(expire, &time::format_description::well_known::Rfc3339).unwrap();
    let ahead = expire.unix_timestamp() - real;
    assert!((3500..=3700).contains(&ahead), "expiry is not an hour from the trusted time: {ahead}s");
    s.stop();
}

//! The `keyward server` binary as a child process.
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// A running `keyward server`, killed (and waited for) when dropped.
#[derive(Debug)]
pub struct ServerProcess {
    child: Child,
    /// Its base URL (`http://127.0.0.1:PORT`), from its listening line.
    pub addr: String,
    /// The root token a `--dev` server printed.
    pub token: Option<String>,
    /// The CA file a `--dev --tls` server wrote.
    pub cacert: Option<String>,
    /// What it printed on stdout until it was ready.
    pub stdout: Vec<String>,
    stderr_file: PathBuf,
    _dir: tempfile::TempDir,
}

/// Why a server process did not start: its exit code and everything it wrote on stderr.
#[derive(Debug)]
pub struct StartFailed {
    /// The exit code (-1 when killed by a signal).
    pub code: i32,
    /// Its stderr.
    pub stderr: String,
}

impl ServerProcess {
    /// Starts `BIN server ARGS --listen 127.0.0.1:0` with the master keys and token variables
    /// removed and `envs` set, and waits (up to 30 s) for its listening line — and for a `--dev`
    /// server its root token, for `--tls` its CA file.
    pub fn start(bin: &str, args: &[&str], envs: &[(&str, &str)]) -> Result<Self, StartFailed> {
        let dir = tempfile::tempdir().expect("tempdir");
        let stderr_file = dir.path().join("server.stderr");
        let mut cmd = Command::new(bin);
        cmd.arg("server").args(args).args(["--listen", "127.0.0.1:0"]);
        cmd.env_remove("KEYWARD_MASTER_KEYS").env_remove("KEYWARD_MASTER_KEY").env_remove("KEYWARD_TOKEN");
        for (k, v) in envs {
            cmd.env(k, v);
        }
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&stderr_file).expect("stderr file"))
            .spawn()
            .expect("spawn keyward server");
        let out = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let (dev, tls) = (args.contains(&"--dev"), args.contains(&"--tls"));
        let mut stdout = Vec::new();
        let (mut addr, mut token, mut cacert) = (None, None, None);
        loop {
            match rx.recv_timeout(Duration::from_secs(30)) {
                Ok(line) => {
                    if let Some(rest) = line.split("listening on ").nth(1) {
                        addr = Some(rest.trim().to_owned());
                    }
                    if let Some(t) = line.strip_prefix("    export KEYWARD_TOKEN='") {
                        token = Some(t.trim_end_matches('\'').to_owned());
                    }
                    if let Some(t) = line.strip_prefix("    export KEYWARD_CACERT='") {
                        cacert = Some(t.trim_end_matches('\'').to_owned());
                    }
                    stdout.push(line);
                    if let Some(addr) =
                        addr.as_ref().filter(|_| (!dev || token.is_some()) && (!tls || cacert.is_some()))
                    {
                        let addr = addr.clone();
                        return Ok(Self { child, addr, token, cacert, stdout, stderr_file, _dir: dir });
                    }
                }
                Err(_) => {
                    let status = child.wait().expect("server exited");
                    let stderr = std::fs::read_to_string(&stderr_file).unwrap_or_default();
                    return Err(StartFailed { code: status.code().unwrap_or(-1), stderr });
                }
            }
        }
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends it SIGTERM (a graceful stop) without waiting.
    pub fn terminate(&self) {
        if let Some(pid) = rustix::process::Pid::from_raw(self.child.id() as i32) {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
        }
    }

    /// Waits up to `within` for it to exit: its exit code (-1 when killed by a signal), or
    /// `None` while it still runs.
    pub fn exit_code(&mut self, within: Duration) -> Option<i32> {
        let deadline = std::time::Instant::now() + within;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status.code().unwrap_or(-1));
            }
            if std::time::Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Everything it wrote on stderr so far.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_file).unwrap_or_default()
    }

    /// Kills it with SIGKILL (no shutdown, no flush) and waits for it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Stops it with SIGTERM (gracefully) and returns everything it wrote: stdout, stderr.
    pub fn stop(mut self) -> (String, String) {
        if let Some(pid) = rustix::process::Pid::from_raw(self.child.id() as i32) {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
        }
        let _ = self.child.wait();
        (self.stdout.join("\n"), std::fs::read_to_string(&self.stderr_file).unwrap_or_default())
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

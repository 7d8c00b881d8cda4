//! Real `nodal` processes for end-to-end and fault tests: the binary built
//! once per test process, children whose output goes to log files, killed on
//! drop, and signals (SIGTERM, SIGKILL) on demand.

use anyhow::{Context, bail};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The release `nodal` binary, built (or found up to date) once per test process.
///
/// It is built as `scripts/demo.sh` builds it (`-p nodal --bin nodal`); the
/// workspace pins dependency features (`workspace-hack`) so that this and
/// the test command's build of every target share every compiled crate.
pub fn nodal_binary() -> anyhow::Result<PathBuf> {
    static BUILT: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let root = crate::repo_root();
            let mut cargo = Command::new(env!("CARGO"));
            // The variables cargo sets for this test process are not the
            // outer build's: left in, build scripts that watch them (ring's
            // watches CARGO_MANIFEST_DIR) would rebuild half the tree.
            for (name, _) in std::env::vars_os() {
                let name = name.to_string_lossy();
                if is_cargo_test_variable(&name) {
                    cargo.env_remove(name.as_ref());
                }
            }
            let status = cargo
                .args([
                    "build",
                    "--release",
                    "--quiet",
                    "-p",
                    "nodal",
                    "--bin",
                    "nodal",
                ])
                .current_dir(&root)
                .status()
                .map_err(|e| format!("running cargo build: {e}"))?;
            if !status.success() {
                return Err(format!("cargo build of the nodal binary failed: {status}"));
            }
            Ok(root.join("target/release/nodal"))
        })
        .clone()
        .map_err(anyhow::Error::msg)
}

/// Whether cargo sets `name` for the crate or test being run (as opposed to
/// settings such as `CARGO_HOME` or `CARGO_TARGET_DIR` that a build needs).
fn is_cargo_test_variable(name: &str) -> bool {
    [
        "CARGO_MANIFEST_",
        "CARGO_PKG_",
        "CARGO_CRATE_NAME",
        "CARGO_BIN_",
        "CARGO_PRIMARY_PACKAGE",
        "CARGO_TARGET_TMPDIR",
        "CARGO_RUSTC_CURRENT_DIR",
    ]
    .iter()
    .any(|prefix| name.starts_with(prefix))
}

/// A running `nodal` child process. Its stdout and stderr go to
/// `<dir>/<name>.log`; it is killed (SIGKILL) when dropped.
#[derive(Debug)]
pub struct NodalProcess {
    /// A name for messages (e.g. `worker-1`).
    pub name: String,
    child: Child,
    log: PathBuf,
}

impl NodalProcess {
    /// Start `nodal args…` with `env` added, logging into `dir`.
    pub fn spawn(
        name: &str,
        dir: &Path,
        args: &[String],
        env: &[(String, String)],
    ) -> anyhow::Result<Self> {
        let log = dir.join(format!("{name}.log"));
        let out =
            std::fs::File::create(&log).with_context(|| format!("creating {}", log.display()))?;
        let err = out.try_clone()?;
        let child = Command::new(nodal_binary()?)
            .args(args)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .env(
                "RUST_LOG",
                std::env::var("NODAL_TEST_LOG").unwrap_or_else(|_| "info".into()),
            )
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .with_context(|| format!("starting {name}"))?;
        Ok(Self {
            name: name.to_string(),
            child,
            log,
        })
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// What the process printed so far.
    pub fn output(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// How many lines of the output so far contain `needle`.
    pub fn count_lines(&self, needle: &str) -> usize {
        self.output().lines().filter(|l| l.contains(needle)).count()
    }

    /// Wait until at least `n` lines of the output contain `needle`; returns
    /// how many do. Fails when the process exits first or `timeout` passes.
    pub fn wait_for_lines(
        &mut self,
        needle: &str,
        n: usize,
        timeout: Duration,
    ) -> anyhow::Result<usize> {
        let deadline = Instant::now() + timeout;
        loop {
            let found = self.count_lines(needle);
            if found >= n {
                return Ok(found);
            }
            if let Some(status) = self.child.try_wait()? {
                bail!(
                    "{} exited ({status}) after printing {needle:?} {found} of {n} times:\n{}",
                    self.name,
                    self.output()
                );
            }
            if Instant::now() > deadline {
                bail!(
                    "{} printed {needle:?} {found} of {n} times within {timeout:?}:\n{}",
                    self.name,
                    self.output()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Wait until the output contains `needle`; returns the line holding it.
    pub fn wait_for_line(&mut self, needle: &str, timeout: Duration) -> anyhow::Result<String> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(line) = self.output().lines().find(|l| l.contains(needle)) {
                return Ok(line.to_string());
            }
            if let Some(status) = self.child.try_wait()? {
                bail!(
                    "{} exited ({status}) before printing {needle:?}:\n{}",
                    self.name,
                    self.output()
                );
            }
            if Instant::now() > deadline {
                bail!(
                    "{} did not print {needle:?} within {timeout:?}:\n{}",
                    self.name,
                    self.output()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Send a signal.
    pub fn signal(&self, signal: Signal) -> anyhow::Result<()> {
        let pid = i32::try_from(self.child.id()).context("pid out of range")?;
        kill(Pid::from_raw(pid), signal)
            .with_context(|| format!("sending {signal} to {}", self.name))
    }

    /// SIGKILL the process and reap it.
    pub fn kill(&mut self) -> anyhow::Result<ExitStatus> {
        self.signal(Signal::SIGKILL)?;
        Ok(self.child.wait()?)
    }

    /// Wait for the process to exit, at most `timeout`.
    pub fn wait_exit(&mut self, timeout: Duration) -> anyhow::Result<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Ok(status);
            }
            if Instant::now() > deadline {
                bail!(
                    "{} still running after {timeout:?}:\n{}",
                    self.name,
                    self.output()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// True while the process runs.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for NodalProcess {
    fn drop(&mut self) {
        if self.is_running() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Peak resident set size of a process, from /proc (bytes).
pub fn peak_rss_bytes(pid: u32) -> Option<u64> {
    status_bytes(pid, "VmHWM:")
}

/// Current resident set size of a process, from /proc (bytes).
pub fn rss_bytes(pid: u32) -> Option<u64> {
    status_bytes(pid, "VmRSS:")
}

/// A `kB` field of `/proc/<pid>/status`, in bytes.
fn status_bytes(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

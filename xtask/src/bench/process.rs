//! Child processes under a time budget: each one killed and reaped when dropped, stopped with
//! SIGINT when asked, started with the open-files limit raised; and what a measurement reads of
//! them (resident memory) and leaves behind (logs, a temporary folder).

use std::env;
use std::fs::{self, File};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{self, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::thread;
use std::time::{Duration, Instant};

use crate::step::{Failure, Result};

/// How long a stopping process may take after SIGINT before it is killed.
const STOP_WITHIN: Duration = Duration::from_secs(20);

/// A child process that is killed and reaped when dropped, so that no exit path leaves one behind.
pub struct Child {
    inner: process::Child,
    what: String,
}

impl Child {
    pub fn spawn(command: &mut Command, what: String) -> Result<Child> {
        let inner = command
            .stdin(Stdio::null())
            .spawn()
            .map_err(|e| Failure::new(format!("could not start {what}: {e}")))?;
        Ok(Child { inner, what })
    }

    pub fn id(&self) -> u32 {
        self.inner.id()
    }

    pub fn take_stdout(&mut self) -> Result<process::ChildStdout> {
        self.inner
            .stdout
            .take()
            .ok_or_else(|| Failure::new(format!("{}: no standard output to read", self.what)))
    }

    /// Its standard output, line by line, read by a thread of its own.
    pub fn lines(&mut self) -> Result<Receiver<String>> {
        let stdout = self.take_stdout()?;
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Ok(rx)
    }

    pub fn try_wait(&mut self) -> Result<Option<ExitStatus>> {
        self.inner
            .try_wait()
            .map_err(|e| Failure::new(format!("waiting for {}: {e}", self.what)))
    }

    /// Waits for it to exit until `deadline`; `None` if it is still running then.
    pub fn wait_until(&mut self, deadline: Instant) -> Result<Option<ExitStatus>> {
        loop {
            if let Some(status) = self.try_wait()? {
                return Ok(Some(status));
            }
            if Instant::now() >= deadline {
                return Ok(None);
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops it as Ctrl-C would (SIGINT), so that it can leave cleanly; kills it if it has not
    /// exited within [`STOP_WITHIN`].
    pub fn stop(mut self) -> Result {
        if self.try_wait()?.is_some() {
            return Ok(());
        }
        // std cannot send a signal and this crate has no libc (nor unsafe): the shell's `kill` can.
        let _ = Command::new("sh")
            .args(["-c", "kill -s INT \"$1\"", "sh"])
            .arg(self.id().to_string())
            .status();
        if self.wait_until(Instant::now() + STOP_WITHIN)?.is_none() {
            println!(
                "    {} did not stop within {STOP_WITHIN:?} of SIGINT: killed",
                self.what
            );
        }
        Ok(())
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        if let Ok(None) = self.inner.try_wait() {
            let _ = self.inner.kill();
        }
        let _ = self.inner.wait();
    }
}

/// A measurement's hard time limit: every wait ends by it. Stopping what was started may take up
/// to [`STOP_WITHIN`] more, so that nothing is left running.
pub struct Budget {
    limit: Duration,
    until: Instant,
}

impl Budget {
    pub fn new(limit: Duration) -> Budget {
        Budget {
            limit,
            until: Instant::now() + limit,
        }
    }

    /// `within` from now, or the end of the budget if that comes first.
    pub fn deadline(&self, within: Duration) -> Instant {
        (Instant::now() + within).min(self.until)
    }

    /// Sleeps for `pause`, failing if that would overrun the budget.
    pub fn sleep(&self, pause: Duration) -> Result {
        if Instant::now() + pause > self.until {
            return Err(Failure::new(format!(
                "over the measurement's limit of {:?}",
                self.limit
            )));
        }
        thread::sleep(pause);
        Ok(())
    }
}

/// A folder under the system's temporary folder, removed when dropped.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(name: &str) -> Result<TempDir> {
        let path = env::temp_dir().join(format!("xtask-bench-{}-{name}", process::id()));
        fs::create_dir_all(&path)
            .map_err(|e| Failure::new(format!("cannot create {}: {e}", path.display())))?;
        Ok(TempDir(path))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// `program` started through `sh` after the soft open-files limit is raised to the hard one: a
/// fleet holds a socket per device (two with the embedded broker), far above the usual soft 1,024.
/// `exec` keeps the process id, so the memory read and the SIGINT reach the program itself.
pub fn raised_fd_limit(program: &Path) -> Command {
    let mut command = Command::new("sh");
    command
        .args([
            "-c",
            "ulimit -S -n \"$(ulimit -H -n)\" 2>/dev/null; exec \"$0\" \"$@\"",
        ])
        .arg(program);
    command
}

/// The hard open-files limit, from `/proc/self/limits`.
pub fn fd_hard_limit() -> Result<u64> {
    let limits = fs::read_to_string("/proc/self/limits")
        .map_err(|e| Failure::new(format!("cannot read /proc/self/limits (Linux only): {e}")))?;
    let hard = limits
        .lines()
        .find_map(|line| line.strip_prefix("Max open files"))
        .and_then(|rest| rest.split_whitespace().nth(1))
        .ok_or_else(|| Failure::new("no `Max open files` line in /proc/self/limits"))?;
    Ok(if hard == "unlimited" {
        u64::MAX
    } else {
        hard.parse()
            .map_err(|e| Failure::new(format!("open-files limit {hard:?}: {e}")))?
    })
}

/// VmRSS of a process, in KB.
pub fn rss_kb(pid: u32) -> Result<u64> {
    let path = format!("/proc/{pid}/status");
    let status =
        fs::read_to_string(&path).map_err(|e| Failure::new(format!("cannot read {path}: {e}")))?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|kb| kb.parse().ok())
        .ok_or_else(|| Failure::new(format!("no VmRSS in {path}")))
}

pub fn log_file(path: &Path) -> Result<File> {
    File::options()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| Failure::new(format!("cannot open {}: {e}", path.display())))
}

//! Running the outside programs a task is made of. Each step is announced as `==> title` and timed;
//! each command is echoed before it runs; a failure names the command that failed, so a CI log reads
//! top to bottom without guessing.

use std::fmt;
use std::process::{Command, Stdio};
use std::time::Instant;

/// Why a task stopped, worded for the person reading the terminal or the CI log.
#[derive(Debug)]
pub struct Failure(String);

impl Failure {
    pub fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

pub type Result<T = ()> = std::result::Result<T, Failure>;

/// Announces a step, runs it, and reports whether it passed and how long it took.
pub fn step(title: &str, body: impl FnOnce() -> Result) -> Result {
    println!("==> {title}");
    let started = Instant::now();
    let result = body();
    let seconds = started.elapsed().as_secs_f64();
    match &result {
        Ok(()) => println!("    ok: {title} ({seconds:.1} s)"),
        Err(_) => println!("    FAILED: {title} ({seconds:.1} s)"),
    }
    result
}

/// Runs a command with the terminal as its input and output; fails if it cannot start or exits
/// with anything but success.
pub fn execute(command: &mut Command) -> Result {
    let shown = show(command);
    println!("    $ {shown}");
    let status = command
        .status()
        .map_err(|error| Failure::new(format!("could not start `{shown}`: {error}")))?;
    if status.success() {
        Ok(())
    } else {
        Err(Failure::new(format!("`{shown}` failed ({status})")))
    }
}

/// Runs a command silently and returns what it printed, or `None` when it is missing or fails.
/// Meant for questions such as `tool --version`.
pub fn probe(command: &mut Command) -> Option<String> {
    let output = command
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    output
        .status
        .success()
        .then(|| String::from_utf8_lossy(&output.stdout).into_owned())
}

/// The command as a shell line: the variables it removes and sets, the program, the arguments.
fn show(command: &Command) -> String {
    let mut removed = Vec::new();
    let mut set = Vec::new();
    for (name, value) in command.get_envs() {
        let name = name.to_string_lossy();
        match value {
            Some(value) => set.push(format!("{name}={}", value.to_string_lossy())),
            None => removed.push(format!("-u {name}")),
        }
    }
    let mut parts = Vec::new();
    if !removed.is_empty() {
        parts.push(String::from("env"));
        parts.append(&mut removed);
    }
    parts.append(&mut set);
    parts.push(command.get_program().to_string_lossy().into_owned());
    parts.extend(
        command
            .get_args()
            .map(|arg| arg.to_string_lossy().into_owned()),
    );
    parts.join(" ")
}

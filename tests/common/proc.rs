//! Processes a test starts: spawned with their output collected in the background (or held
//! unread, to play a console nobody reads), stopped as an operator would, waited for with a
//! deadline.

use std::io::Read;
use std::process::{Child, ChildStderr, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::{python_server_script, server_bin, wait_ports};

/// What becomes of a process's stdout or stderr.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pipe {
    /// Read as it arrives (see [`Proc::stdout_so_far`], [`Proc::stop`]).
    Read,
    /// A pipe nobody reads until [`Proc::read_stdout`]: a stalled console.
    Unread,
    /// `/dev/null`.
    Null,
}

/// A spawned process whose stdout and stderr are collected in the background.
pub struct Proc {
    child: Child,
    out: Option<JoinHandle<String>>,
    err: Option<JoinHandle<String>>,
    out_so_far: Shared,
    err_so_far: Shared,
    unread_out: Option<ChildStdout>,
    // Held open (never read) so that the process's writes fill the pipe.
    _unread_err: Option<ChildStderr>,
}

type Shared = Arc<Mutex<Vec<u8>>>;

/// Copy `r` into `seen` as it arrives; the thread's result is everything, once `r` closes.
fn drain(mut r: impl Read + Send + 'static, seen: Shared) -> JoinHandle<String> {
    std::thread::spawn(move || {
        let mut chunk = [0u8; 65536];
        loop {
            match r.read(&mut chunk) {
                Ok(0) | Err(_) => break,
                Ok(n) => seen.lock().unwrap().extend_from_slice(&chunk[..n]),
            }
        }
        String::from_utf8_lossy(&seen.lock().unwrap()).into_owned()
    })
}

fn stdio(pipe: Pipe) -> Stdio {
    match pipe {
        Pipe::Null => Stdio::null(),
        Pipe::Read | Pipe::Unread => Stdio::piped(),
    }
}

impl Proc {
    /// Spawn `cmd` with both outputs read in the background.
    pub fn spawn(cmd: Command) -> Proc {
        Proc::spawn_with(cmd, Pipe::Read, Pipe::Read)
    }

    /// Spawn `cmd` with its stdout and stderr as given (stdin is always `/dev/null`).
    pub fn spawn_with(mut cmd: Command, stdout: Pipe, stderr: Pipe) -> Proc {
        cmd.stdin(Stdio::null())
            .stdout(stdio(stdout))
            .stderr(stdio(stderr));
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("spawning {cmd:?}: {e}"));
        let (out_so_far, err_so_far) = (Shared::default(), Shared::default());
        let (mut out, mut unread_out) = (None, None);
        match stdout {
            Pipe::Read => out = Some(drain(child.stdout.take().unwrap(), out_so_far.clone())),
            Pipe::Unread => unread_out = child.stdout.take(),
            Pipe::Null => {}
        }
        let (mut err, mut unread_err) = (None, None);
        match stderr {
            Pipe::Read => err = Some(drain(child.stderr.take().unwrap(), err_so_far.clone())),
            Pipe::Unread => unread_err = child.stderr.take(),
            Pipe::Null => {}
        }
        Proc {
            child,
            out,
            err,
            out_so_far,
            err_so_far,
            unread_out,
            _unread_err: unread_err,
        }
    }

    /// A Rust `server` with these arguments, ready when every port in `ports` accepts.
    pub fn rust_server(args: &[&str], ports: &[u16]) -> Proc {
        Proc::server(super::Side::Rust, args, ports, Pipe::Read, Pipe::Read)
    }

    /// The Python stand-in server with these arguments, ready when `ports` accept.
    pub fn python_server(args: &[&str], ports: &[u16]) -> Proc {
        Proc::server(super::Side::Python, args, ports, Pipe::Read, Pipe::Read)
    }

    /// A server of `side` with these arguments and outputs, ready when `ports` accept.
    pub fn server(
        side: super::Side,
        args: &[&str],
        ports: &[u16],
        stdout: Pipe,
        stderr: Pipe,
    ) -> Proc {
        let mut cmd = match side {
            super::Side::Rust => Command::new(server_bin()),
            super::Side::Python => {
                let mut cmd = Command::new("python3");
                cmd.arg(python_server_script());
                cmd
            }
        };
        cmd.args(args);
        let p = Proc::spawn_with(cmd, stdout, stderr);
        wait_ports(ports);
        p
    }

    /// What the process has printed on stdout so far.
    pub fn stdout_so_far(&self) -> String {
        String::from_utf8_lossy(&self.out_so_far.lock().unwrap()).into_owned()
    }

    /// What the process has printed on stderr so far.
    pub fn stderr_so_far(&self) -> String {
        String::from_utf8_lossy(&self.err_so_far.lock().unwrap()).into_owned()
    }

    /// Start reading a stdout spawned [`Pipe::Unread`]; from now on it shows in
    /// [`Proc::stdout_so_far`].
    pub fn read_stdout(&mut self) {
        let from = self.unread_out.take().expect("stdout was spawned unread");
        self.out = Some(drain(from, self.out_so_far.clone()));
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Send SIGTERM (asserting that `kill` succeeded); see [`Proc::wait`] for the exit.
    pub fn sigterm(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success(), "kill -TERM {}", self.child.id());
    }

    /// Wait for the process to exit by itself (with a deadline), returning its status and output.
    pub fn wait(mut self, limit: Duration) -> (ExitStatus, String, String) {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                let (out, err) = self.collect();
                return (status, out, err);
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let (out, err) = self.collect();
                panic!("process did not exit within {limit:?}\nstdout:\n{out}\nstderr:\n{err}");
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Stop the process as an operator would (SIGTERM; SIGKILL if it is still running 10 s
    /// later) and return what it printed. A server writes its stdout lines from a queue of
    /// their own, and at a SIGTERM it writes what is queued before it exits.
    pub fn stop(mut self) -> (String, String) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while matches!(self.child.try_wait(), Ok(None)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.collect()
    }

    fn collect(&mut self) -> (String, String) {
        let out = self
            .out
            .take()
            .map(|h| h.join().unwrap())
            .unwrap_or_default();
        let err = self
            .err
            .take()
            .map(|h| h.join().unwrap())
            .unwrap_or_default();
        (out, err)
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Run a command to completion with a deadline: (exit code, stdout, stderr).
pub fn run(cmd: Command, limit: Duration) -> (i32, String, String) {
    let (status, out, err) = Proc::spawn(cmd).wait(limit);
    (status.code().unwrap_or(-1), out, err)
}

//! The original's stdout lines (`Q received decision 'attack' from P`, ...), written by one
//! thread of their own through a bounded queue, so that a stdout nobody reads cannot block a
//! node.
//!
//! Why: a write to stdout blocks while its pipe is full or its terminal is stopped (Ctrl-S).
//! Written on the task that answers a call, one such write held a runtime thread, then the
//! next call's, until every node of the process was frozen and SIGTERM went unanswered. Here
//! a call only puts its line in the queue ([`print_line`]): when the queue is full, the line is
//! counted and dropped, never waited for. The writer thread alone may block; once stdout takes
//! lines again it writes what is queued and one note with the number of lines dropped.
//!
//! The note goes to stderr: stdout carries only the original's lines, which tools and tests
//! compare byte for byte with Python's, and a note there would be a line the original never
//! prints; stderr is where diagnostics go, and it still reaches the operator when stdout
//! itself is what is broken. Lines keep their order (one queue, one writer). On a terminal the
//! writer writes each time the queue is empty, so a person sees every line at once. Into a
//! file or a pipe it gathers lines and writes them at most every [`FLUSH_INTERVAL`] (a line
//! after a quiet spell is written at once): under load, a write system call per line and a
//! wake-up of this thread per line were a third of the server's time (BENCHMARKS.md, "Close
//! to the limit"), and Python's own `print` is block-buffered there too. No line waits longer
//! than the interval, and none is lost: at exit, [`flush`] has the writer write what it holds
//! and gives pending lines a bounded time ([`SHUTDOWN_WAIT`]), never forever.

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// Lines the queue holds before new ones are dropped: with values cut to 200 bytes
/// ([`crate::protocol::printed`]) a line is under 1 KB, so the queue stays under 4 MB.
pub const QUEUE_LINES: usize = 4096;

/// How long the process waits at exit for stdout to take the lines still queued.
pub const SHUTDOWN_WAIT: Duration = Duration::from_secs(1);

/// Longest a line waits in the writer before it is written, when the output is not a
/// terminal.
pub const FLUSH_INTERVAL: Duration = Duration::from_millis(100);

/// While it gathers lines, the writer takes them from the queue this often (a sleep, not a
/// wait on the queue, so that queueing a line wakes nobody): with [`QUEUE_LINES`] places, the
/// queue holds 400,000 lines a second.
const GATHER_TICK: Duration = Duration::from_millis(10);

/// A queue of lines and the thread that writes them (the process has one, behind
/// [`print_line`]; tests make their own over any writer).
#[derive(Debug)]
pub struct Console {
    tx: SyncSender<String>,
    shared: Arc<Shared>,
}

#[derive(Debug, Default)]
struct Shared {
    /// Lines accepted into the queue.
    queued: AtomicU64,
    /// Lines dropped since the last note.
    dropped: AtomicU64,
    /// Lines the writer has handled (written, or failed to write).
    done: Mutex<u64>,
    progress: Condvar,
    /// Someone waits in [`Console::flush`]: write what is gathered now.
    urgent: AtomicBool,
}

impl Console {
    /// A console whose thread writes lines to `out` and notes to `notes`; at most `capacity`
    /// lines wait. The writer writes what it has gathered at most every `interval` (zero: each
    /// time the queue is empty, as for a terminal). `None` when the thread cannot be started.
    pub fn new(
        out: impl Write + Send + 'static,
        notes: impl Write + Send + 'static,
        capacity: usize,
        interval: Duration,
    ) -> Option<Console> {
        let (tx, rx) = std::sync::mpsc::sync_channel(capacity);
        let shared = Arc::new(Shared::default());
        let writer = shared.clone();
        std::thread::Builder::new()
            .name("stdout".into())
            .spawn(move || write_lines(rx, out, notes, &writer, capacity.max(1), interval))
            .ok()?;
        Some(Console { tx, shared })
    }

    /// Queue `line` (a newline is added) without ever waiting: when the queue is full, the line
    /// is counted and dropped.
    pub fn print(&self, line: impl Into<String>) {
        match self.tx.try_send(line.into()) {
            Ok(()) => {
                self.shared.queued.fetch_add(1, Ordering::SeqCst);
            }
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                self.shared.dropped.fetch_add(1, Ordering::SeqCst);
            }
        }
    }

    /// Wait until every line queued so far is written, for at most `within`; whether they all
    /// were.
    pub fn flush(&self, within: Duration) -> bool {
        let target = self.shared.queued.load(Ordering::SeqCst);
        let deadline = Instant::now() + within;
        let mut done = self.shared.done.lock().unwrap_or_else(|e| e.into_inner());
        while *done < target {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            self.shared.urgent.store(true, Ordering::SeqCst);
            done = match self.shared.progress.wait_timeout(done, left) {
                Ok((d, _)) => d,
                Err(e) => e.into_inner().0,
            };
        }
        true
    }
}

/// The note written (to the notes writer) once output drains after `n` lines were dropped.
pub fn dropped_note(n: u64) -> String {
    let s = if n == 1 { "" } else { "s" };
    format!("console: {n} line{s} of stdout dropped: stdout was not being read")
}

/// The writer thread. It waits on the queue only when it holds nothing; then it takes lines
/// (at most `batch` between two writes) and writes them once `interval` has passed since its
/// last write, or at once when someone waits in [`Console::flush`]; then the note, if lines
/// were dropped meanwhile.
fn write_lines(
    rx: Receiver<String>,
    out: impl Write,
    mut notes: impl Write,
    shared: &Shared,
    batch: usize,
    interval: Duration,
) {
    let mut out = std::io::BufWriter::with_capacity(64 * 1024, out);
    let mut last_write: Option<Instant> = None;
    while let Ok(first) = rx.recv() {
        let mut handled = 1u64;
        let _ = writeln!(out, "{first}");
        loop {
            while handled < batch as u64 {
                let Ok(line) = rx.try_recv() else { break };
                let _ = writeln!(out, "{line}");
                handled += 1;
            }
            let since = last_write.map_or(interval, |t| t.elapsed());
            if handled >= batch as u64
                || since >= interval
                || shared.urgent.swap(false, Ordering::SeqCst)
            {
                break;
            }
            std::thread::sleep(GATHER_TICK.min(interval - since));
        }
        let _ = out.flush();
        last_write = Some(Instant::now());
        let dropped = shared.dropped.swap(0, Ordering::SeqCst);
        if dropped > 0 {
            let _ = writeln!(notes, "{}", dropped_note(dropped));
            let _ = notes.flush();
        }
        *shared.done.lock().unwrap_or_else(|e| e.into_inner()) += handled;
        shared.progress.notify_all();
    }
}

/// How often a console writing to `out` writes: each line at once on a terminal, else at most
/// every [`FLUSH_INTERVAL`].
fn interval_for(terminal: bool) -> Duration {
    match terminal {
        true => Duration::ZERO,
        false => FLUSH_INTERVAL,
    }
}

/// The process's console, started on first use.
static STDOUT: OnceLock<Option<Console>> = OnceLock::new();

/// Print one of the original's stdout lines (through the queue; never waits). If the writer
/// thread could not be started, lines are dropped.
pub fn print_line(line: impl Into<String>) {
    if let Some(console) = STDOUT.get_or_init(|| {
        let interval = interval_for(std::io::stdout().is_terminal());
        Console::new(stdout(), std::io::stderr(), QUEUE_LINES, interval)
    }) {
        console.print(line);
    }
}

/// The process's access log (stderr), through a queue of its own for the same reason: a
/// stderr nobody reads (a full pipe, a terminal stopped with Ctrl-S, which stops both
/// streams) must not block a node either. Its notes of dropped lines go to stderr too.
static STDERR: OnceLock<Option<Console>> = OnceLock::new();

/// Write one access-log line to stderr (through its queue; never waits).
pub fn log_line(line: impl Into<String>) {
    if let Some(console) = STDERR.get_or_init(|| {
        let interval = interval_for(std::io::stderr().is_terminal());
        Console::new(stderr(), stderr(), QUEUE_LINES, interval)
    }) {
        console.print(line);
    }
}

/// At exit: wait for the queued lines (stdout's, then the access log's) to be written, for at
/// most `within` in all; whether they all were (true when nothing was ever printed).
pub fn flush(within: Duration) -> bool {
    let deadline = Instant::now() + within;
    [&STDOUT, &STDERR].iter().all(|queue| match queue.get() {
        Some(Some(console)) => console.flush(deadline.saturating_duration_since(Instant::now())),
        _ => true,
    })
}

/// A duplicate of the stderr descriptor on Unix (see [`stdout`]), else std's `Stderr`.
fn stderr() -> Box<dyn Write + Send> {
    #[cfg(unix)]
    {
        use std::os::fd::AsFd;
        if let Ok(fd) = std::io::stderr().as_fd().try_clone_to_owned() {
            return Box::new(std::fs::File::from(fd));
        }
    }
    Box::new(std::io::stderr())
}

/// Where the writer writes: on Unix a duplicate of the stdout descriptor, so that its writes
/// never take the lock of std's `Stdout` nor leave bytes in its buffer, which Rust flushes at
/// exit (a stalled pipe would then hold the exit); elsewhere std's `Stdout`.
fn stdout() -> Box<dyn Write + Send> {
    #[cfg(unix)]
    {
        use std::os::fd::AsFd;
        if let Ok(fd) = std::io::stdout().as_fd().try_clone_to_owned() {
            return Box::new(std::fs::File::from(fd));
        }
    }
    Box::new(std::io::stdout())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    /// A writer that blocks until the test lets it go, then records what it writes.
    struct Gate {
        open: mpsc::Receiver<()>,
        opened: bool,
        seen: Arc<Mutex<Vec<u8>>>,
    }

    impl Write for Gate {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            if !self.opened {
                let _ = self.open.recv();
                self.opened = true;
            }
            self.seen.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[derive(Clone, Default)]
    struct Sink(Arc<Mutex<Vec<u8>>>);

    impl Write for Sink {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_stalled_writer_drops_lines_without_waiting_then_notes_them() {
        let (open, gate) = mpsc::channel();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let notes = Sink::default();
        let out = Gate {
            open: gate,
            opened: false,
            seen: seen.clone(),
        };
        let console = Console::new(out, notes.clone(), 4, FLUSH_INTERVAL).unwrap();
        let started = Instant::now();
        for i in 0..100 {
            console.print(format!("line {i}"));
        }
        // 100 lines against a writer that takes none: no wait.
        assert!(started.elapsed() < Duration::from_millis(500));
        assert!(
            !console.flush(Duration::from_millis(50)),
            "nothing can be written yet"
        );
        open.send(()).unwrap();
        assert!(console.flush(Duration::from_secs(10)));
        let written = String::from_utf8(seen.lock().unwrap().clone()).unwrap();
        let lines: Vec<&str> = written.lines().collect();
        // What the writer took before it blocked (a batch of at most 4), then at most 4
        // queued, in order.
        assert!((1..=8).contains(&lines.len()), "{lines:?}");
        assert_eq!(lines[0], "line 0");
        let numbers: Vec<usize> = lines
            .iter()
            .map(|l| l.trim_start_matches("line ").parse().unwrap())
            .collect();
        assert!(numbers.windows(2).all(|w| w[0] < w[1]), "{numbers:?}");
        let note = String::from_utf8(notes.0.lock().unwrap().clone()).unwrap();
        assert_eq!(
            note,
            format!("{}\n", dropped_note(100 - lines.len() as u64))
        );
        // Output flows again: a new line is written, and no second note.
        console.print("after");
        assert!(console.flush(Duration::from_secs(10)));
        assert!(String::from_utf8_lossy(&seen.lock().unwrap()).ends_with("after\n"));
        assert_eq!(notes.0.lock().unwrap().len(), note.len());
    }
}

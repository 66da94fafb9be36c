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
//! writer writes the lines it finds as soon as it finds them, so a person sees every line at
//! once. Into a
//! file or a pipe it gathers lines and writes them at most every [`FLUSH_INTERVAL`] (a line
//! after a quiet spell is written at once): under load, a write system call per line and a
//! wake-up of this thread per line were a large part of the server's time (BENCHMARKS.md,
//! "Close to the limit"), and Python's own `print` is block-buffered there too. No line waits
//! longer than the interval, and none is lost: at exit, [`flush`] has the writer write what it
//! holds and gives pending lines a bounded time ([`SHUTDOWN_WAIT`]), never forever.

use std::io::{IsTerminal, Write};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

/// Lines the queue holds before new ones are dropped: with values cut to 200 bytes
/// ([`crate::protocol::printed`]) a line is under 1 KB, so the queue stays under 4 MB.
pub(crate) const QUEUE_LINES: usize = 4096;

/// How long the process waits at exit for stdout to take the lines still queued.
pub const SHUTDOWN_WAIT: Duration = Duration::from_secs(1);

/// Longest a line waits in the writer before it is written, when the output is not a
/// terminal.
pub(crate) const FLUSH_INTERVAL: Duration = Duration::from_millis(100);

/// While it gathers lines, the writer looks at the queue this often (a sleep, not a wait on
/// the queue, so that queueing a line wakes nobody): with [`QUEUE_LINES`] places, the queue
/// holds 400,000 lines a second.
const GATHER_TICK: Duration = Duration::from_millis(10);

/// Once the waiting lines hold this many bytes the writer writes them without waiting for
/// [`FLUSH_INTERVAL`]: under load that is a write every few milliseconds instead of every
/// 100, which costs nothing measurable and keeps the queue's memory small (the server's peak
/// RSS is a target, BENCHMARKS.md).
const WRITE_AT: usize = 64 * 1024;

/// A queue of lines and the thread that writes them (the process has one, behind
/// [`print_line`]; tests make their own over any writer).
///
/// The queue is the bytes of the waiting lines, end to end, behind a mutex: queueing a line
/// copies it in and frees nothing on another thread, and the writer takes all of them at once
/// with one swap. (A channel of `String`s cost a send, and a free on the writer's thread, per
/// line: a measurable share of a `receive_message` call, BENCHMARKS.md, "Close to the
/// limit".)
#[derive(Debug)]
pub(crate) struct Console {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    queue: Mutex<Queue>,
    /// The writer waits here when the queue is empty.
    wake: Condvar,
    /// Lines the writer has handled (written, or failed to write).
    done: Mutex<u64>,
    progress: Condvar,
    /// Most lines waiting at once.
    capacity: u64,
}

#[derive(Debug, Default)]
struct Queue {
    /// The waiting lines, each with its newline.
    bytes: Vec<u8>,
    /// How many lines `bytes` holds.
    lines: u64,
    /// Lines accepted since the start.
    queued: u64,
    /// Lines dropped since the last note.
    dropped: u64,
    /// The writer waits on [`Shared::wake`]: the next line must wake it.
    idle: bool,
    /// Someone waits in [`Console::flush`]: write what is gathered now.
    urgent: bool,
    /// The console is gone: the writer writes what is left and ends.
    closed: bool,
}

impl Shared {
    fn queue(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Console {
    /// A console whose thread writes lines to `out` and notes to `notes`; at most `capacity`
    /// lines wait. The writer writes what it has gathered at most every `interval` (zero: each
    /// time it finds lines, as for a terminal). `None` when the thread cannot be started.
    pub(crate) fn new(
        out: impl Write + Send + 'static,
        notes: impl Write + Send + 'static,
        capacity: usize,
        interval: Duration,
    ) -> Option<Console> {
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue::default()),
            wake: Condvar::new(),
            done: Mutex::new(0),
            progress: Condvar::new(),
            capacity: capacity.max(1) as u64,
        });
        let writer = shared.clone();
        std::thread::Builder::new()
            .name("stdout".into())
            .spawn(move || write_lines(out, notes, &writer, interval))
            .ok()?;
        Some(Console { shared })
    }

    /// Queue `line` (a newline is added) without ever waiting for the writer: when the queue
    /// is full, the line is counted and dropped.
    pub(crate) fn print(&self, line: impl AsRef<str>) {
        let line = line.as_ref().as_bytes();
        let mut q = self.shared.queue();
        if q.lines >= self.shared.capacity {
            q.dropped += 1;
            return;
        }
        q.bytes.reserve(line.len() + 1);
        q.bytes.extend_from_slice(line);
        q.bytes.push(b'\n');
        q.lines += 1;
        q.queued += 1;
        if std::mem::take(&mut q.idle) {
            drop(q);
            self.shared.wake.notify_one();
        }
    }

    /// Wait until every line queued so far is written, for at most `within`; whether they all
    /// were.
    pub(crate) fn flush(&self, within: Duration) -> bool {
        let target = self.shared.queue().queued;
        let deadline = Instant::now() + within;
        let mut done = self.shared.done.lock().unwrap_or_else(|e| e.into_inner());
        while *done < target {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            self.shared.queue().urgent = true;
            done = match self.shared.progress.wait_timeout(done, left) {
                Ok((d, _)) => d,
                Err(e) => e.into_inner().0,
            };
        }
        true
    }
}

impl Drop for Console {
    fn drop(&mut self) {
        self.shared.queue().closed = true;
        self.shared.wake.notify_one();
    }
}

/// The note written (to the notes writer) once output drains after `n` lines were dropped.
pub(crate) fn dropped_note(n: u64) -> String {
    let s = if n == 1 { "" } else { "s" };
    format!("console: {n} line{s} of stdout dropped: stdout was not being read")
}

/// The writer thread. It waits on the queue only when the queue is empty; then it takes every
/// waiting line at once, once `interval` has passed since its last write (or at once when
/// the queue is full, holds [`WRITE_AT`] bytes, or someone waits in [`Console::flush`]), and
/// writes them; then the note,
/// if lines were dropped meanwhile.
fn write_lines(mut out: impl Write, mut notes: impl Write, shared: &Shared, interval: Duration) {
    let mut taken = Vec::new();
    let mut last_write: Option<Instant> = None;
    loop {
        let mut q = shared.queue();
        while q.lines == 0 && q.dropped == 0 {
            if q.closed {
                return;
            }
            q.idle = true;
            q = shared.wake.wait(q).unwrap_or_else(|e| e.into_inner());
        }
        let since = last_write.map_or(interval, |t| t.elapsed());
        if since < interval
            && !q.urgent
            && !q.closed
            && q.lines < shared.capacity
            && q.bytes.len() < WRITE_AT
        {
            drop(q);
            std::thread::sleep(GATHER_TICK.min(interval - since));
            continue;
        }
        q.urgent = false;
        std::mem::swap(&mut q.bytes, &mut taken);
        let handled = std::mem::take(&mut q.lines);
        drop(q);
        let _ = out.write_all(&taken);
        let _ = out.flush();
        // Lines dropped until output drained, this write included: one note for them all.
        let dropped = std::mem::take(&mut shared.queue().dropped);
        last_write = Some(Instant::now());
        taken.clear();
        // A burst's buffer is not kept for ever.
        if taken.capacity() > 4 * WRITE_AT {
            taken = Vec::new();
        }
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
pub(crate) fn print_line(line: impl AsRef<str>) {
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
pub(crate) fn log_line(line: impl AsRef<str>) {
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

/// A writer that escapes, in whatever passes through it, the characters a console does not
/// show as themselves ([`printed::is_control`](crate::protocol::printed::is_control): controls
/// but line feed and tab, bidi controls, invisible characters), each as `\uXXXX` (a
/// character past U+FFFF as its two UTF-16 halves), the form JSON writes: the client's output
/// goes through one, so that nothing a hostile node answers (a decision, a fault string, a
/// name) can reorder a line, hide in one or drive the terminal, and `--json` output stays
/// JSON with the same values. Lines built with [`printed`](crate::protocol::printed) are
/// already escaped and pass unchanged.
#[derive(Debug)]
pub struct Escaping<W> {
    inner: W,
    /// The start of a character cut between two writes.
    partial: Vec<u8>,
}

impl<W: Write> Escaping<W> {
    /// Escape what is written to `inner`.
    pub fn new(inner: W) -> Self {
        Escaping {
            inner,
            partial: Vec::new(),
        }
    }
}

/// Whether the stream escaper leaves `c` as it is.
fn shown(c: char) -> bool {
    matches!(c, '\n' | '\t') || !crate::protocol::printed::is_control(c)
}

impl<W: Write> Write for Escaping<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        // Nearly everything is printable ASCII: written as it is.
        if self.partial.is_empty() && buf.iter().all(|&b| (0x20..0x7f).contains(&b) || b == b'\n') {
            self.inner.write_all(buf)?;
            return Ok(buf.len());
        }
        let mut bytes = std::mem::take(&mut self.partial);
        bytes.extend_from_slice(buf);
        let mut out = String::with_capacity(bytes.len() + 16);
        let mut rest = &bytes[..];
        loop {
            match std::str::from_utf8(rest) {
                Ok(text) => {
                    escape_into(&mut out, text);
                    break;
                }
                Err(e) => {
                    let (good, after) = rest.split_at(e.valid_up_to());
                    escape_into(&mut out, std::str::from_utf8(good).unwrap_or_default());
                    match e.error_len() {
                        // A character cut by the end of this write: kept for the next one.
                        None => {
                            self.partial = after.to_vec();
                            break;
                        }
                        // Not UTF-8: each such byte as U+FFFD would show it.
                        Some(n) => {
                            out.push(char::REPLACEMENT_CHARACTER);
                            rest = &after[n..];
                        }
                    }
                }
            }
        }
        self.inner.write_all(out.as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

fn escape_into(out: &mut String, text: &str) {
    use std::fmt::Write as _;
    for c in text.chars() {
        if shown(c) {
            out.push(c);
            continue;
        }
        let mut units = [0u16; 2];
        for unit in c.encode_utf16(&mut units) {
            let _ = write!(out, "\\u{unit:04x}");
        }
    }
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

    #[test]
    fn lines_from_many_threads_all_arrive_each_threads_in_order() {
        for interval in [Duration::ZERO, FLUSH_INTERVAL] {
            let out = Sink::default();
            let console =
                Arc::new(Console::new(out.clone(), Sink::default(), 100_000, interval).unwrap());
            let threads: Vec<_> = (0..4)
                .map(|t| {
                    let console = console.clone();
                    std::thread::spawn(move || {
                        for i in 0..2_000 {
                            console.print(format!("{t} {i}"));
                        }
                    })
                })
                .collect();
            for t in threads {
                t.join().unwrap();
            }
            assert!(console.flush(Duration::from_secs(10)), "{interval:?}");
            let written = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
            let mut next = [0usize; 4];
            for line in written.lines() {
                let (t, i) = line.split_once(' ').unwrap();
                let t: usize = t.parse().unwrap();
                assert_eq!(i.parse::<usize>().unwrap(), next[t], "{interval:?}");
                next[t] += 1;
            }
            assert_eq!(next, [2_000; 4], "{interval:?}");
        }
    }

    #[test]
    fn the_escaping_writer_escapes_what_a_console_would_not_show() {
        let mut w = Escaping::new(Vec::new());
        w.write_all("ok \u{e9}\u{1f642}\tline\n".as_bytes())
            .unwrap();
        w.write_all("a\u{202e}b\u{200b}\u{1b}[2J\u{85}\r\u{e0041}".as_bytes())
            .unwrap();
        // A character cut between two writes is escaped whole.
        let zwsp = "\u{200b}".as_bytes();
        w.write_all(&zwsp[..1]).unwrap();
        w.write_all(&zwsp[1..]).unwrap();
        let out = String::from_utf8(w.inner).unwrap();
        assert_eq!(
            out,
            "ok \u{e9}\u{1f642}\tline\na\\u202eb\\u200b\\u001b[2J\\u0085\\u000d\\udb40\\udc41\\u200b"
        );
        // JSON with such values stays JSON, with the same values.
        let value = "\u{202e}x\u{85}\u{e0041}";
        let mut w = Escaping::new(Vec::new());
        write!(w, "{}", serde_json::json!({ "v": value })).unwrap();
        let back: serde_json::Value = serde_json::from_slice(&w.inner).unwrap();
        assert_eq!(back["v"], value);
    }
}

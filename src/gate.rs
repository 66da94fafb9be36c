//! What a server process lets its callers hold, counted in connections and bytes rather than
//! in calls: the connection gate (overall and per client address), byte budgets for request
//! bodies being received and for answers not yet read, and a write timeout for callers that
//! stop reading.
//!
//! Why: every other limit counts items (senders, events, runs), and items can be large. An
//! adversarial pass drove a node to an out-of-memory abort by asking for big answers it never
//! read, holding half-sent bodies, and opening connections until the process had no file
//! descriptor left for its own outgoing calls. With these, what the process holds for its
//! callers is bounded by its flags (RELIABILITY.md gives the formula).

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Connections a process serves at once by default (`server --max-connections`); lowered to
/// half the open-file limit when that is smaller, so outgoing calls always find a descriptor.
pub(crate) const DEFAULT_MAX_CONNECTIONS: usize = 2048;
/// Connections one client address may hold by default (`server --max-connections-per-client`).
pub(crate) const DEFAULT_MAX_PER_CLIENT: usize = 1024;
/// Bytes of request bodies being received or handled at once, by default
/// (`server --max-buffered-bytes`): past it, further bodies wait (within the request timeout).
pub(crate) const DEFAULT_BUFFERED_BYTES: usize = 64 * 1024 * 1024;
/// Bytes of answers written but not yet read by their callers, by default
/// (`server --max-answer-bytes`): past it, a large answer is replaced by a short fault.
pub(crate) const DEFAULT_ANSWER_BYTES: usize = 256 * 1024 * 1024;
/// Request bodies up to this size (plain, not gzip) are not counted against the buffered
/// bytes: the connection cap bounds them, and they never wait behind large ones.
pub(crate) const SMALL_BODY: usize = 64 * 1024;
/// Answers up to this size are not counted: the connection cap bounds them.
pub(crate) const SMALL_ANSWER: usize = 16 * 1024;

/// Budgets are counted in units of this many bytes (semaphore permits are `u32`).
const UNIT: usize = 1024;

/// The half of the process's open-file limit (soft), when Linux says what it is.
pub(crate) fn fd_limit_half() -> Option<usize> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    let soft = line.split_whitespace().nth(3)?.parse::<usize>().ok()?;
    Some(soft / 2)
}

/// Counts the connections of a process, overall and per client address, and knows which are
/// idle: when a cap is reached, the connection idle the longest (of any client for the
/// process's cap, of the same client for a client's cap) is closed to make room, as nginx
/// does, and only when none is idle is the new one refused.
///
/// Why: idle connections opened from three addresses and reopened as they timed out (about
/// 2,400 at once) kept the process at its cap, and 27 of 40 legitimate calls failed. A
/// connection is idle while no request is in it: from the moment a read finds nothing (for a
/// new one, its first read: a request sent with the connection is read before anything can
/// close it) or its last answer has been written, until its next request's first bytes are
/// read; one with a request in hand, a body on its way or an answer being written is never
/// closed to make room.
#[derive(Debug)]
pub(crate) struct ConnGate {
    max: usize,
    per_client: usize,
    open: Mutex<Open>,
    epoch: std::time::Instant,
}

/// The connections counted now.
#[derive(Debug, Default)]
struct Open {
    /// Connections, and of them those being closed to make room.
    total: usize,
    evicting: usize,
    /// The same per client address.
    per: HashMap<IpAddr, (usize, usize)>,
    /// Every connection, by id.
    conns: HashMap<u64, Arc<ConnState>>,
    next_id: u64,
}

/// What the gate knows of one connection.
#[derive(Debug)]
pub(crate) struct ConnState {
    ip: IpAddr,
    /// Its number in the order of accepting (breaks ties of `idle_since`).
    id: u64,
    /// Requests being handled and answers being streamed ([`ConnState::busy`]).
    busy: AtomicUsize,
    /// Bytes of a request have been read and its answer not yet written out (or, for a new
    /// connection, nothing has been tried to read yet).
    owed: AtomicBool,
    /// When it last became idle, in milliseconds since the gate's epoch.
    idle_since: AtomicU64,
    /// Chosen to be closed to make room.
    evicting: AtomicBool,
    evict: tokio::sync::Notify,
    epoch: std::time::Instant,
}

impl ConnState {
    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn is_idle(&self) -> bool {
        self.busy.load(Ordering::SeqCst) == 0 && !self.owed.load(Ordering::SeqCst)
    }

    /// Idle from now (no request in it).
    fn idle_now(&self) {
        if self.owed.swap(false, Ordering::SeqCst) {
            self.idle_since.store(self.now_ms(), Ordering::SeqCst);
        }
    }

    /// The connection is busy (a request being handled, an answer being streamed) while the
    /// guard lives.
    pub(crate) fn busy(self: &Arc<Self>) -> Busy {
        self.owed.store(true, Ordering::SeqCst);
        self.busy.fetch_add(1, Ordering::SeqCst);
        Busy(self.clone())
    }
}

/// See [`ConnState::busy`].
#[derive(Debug)]
pub(crate) struct Busy(Arc<ConnState>);

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.busy.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Why a connection was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Crowded {
    /// The process serves `max` connections already, none of them idle.
    Process(usize),
    /// This client address holds `per_client` already, none of them idle.
    Client(usize),
}

impl Crowded {
    /// The text of the refusal (HTTP 429).
    pub(crate) fn message(&self, ip: IpAddr) -> String {
        match self {
            Crowded::Process(n) => format!(
                "this server holds {n} connections already, none idle (server --max-connections); try again later"
            ),
            Crowded::Client(n) => format!(
                "{ip} holds {n} connections to this server already, none idle (server --max-connections-per-client); close some"
            ),
        }
    }
}

impl ConnGate {
    /// A gate for `max` connections, `per_client` of them from one address.
    pub(crate) fn new(max: usize, per_client: usize) -> Arc<Self> {
        Arc::new(ConnGate {
            max: max.max(1),
            per_client: per_client.max(1),
            open: Mutex::new(Open::default()),
            epoch: std::time::Instant::now(),
        })
    }

    /// Count a new connection from `ip`, or say why it is refused. At a cap, the connection
    /// idle the longest (from `ip` for the per-client cap) is told to close
    /// ([`Entered::evicted`]) and the new one counted in its place. The count lasts as long
    /// as the returned [`Entered`].
    pub(crate) fn enter(self: &Arc<Self>, ip: IpAddr) -> Result<Entered, Crowded> {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let (mine, mine_evicting) = open.per.get(&ip).copied().unwrap_or((0, 0));
        if mine - mine_evicting >= self.per_client && !open.evict_oldest(Some(ip)) {
            return Err(Crowded::Client(self.per_client));
        }
        if open.total - open.evicting >= self.max && !open.evict_oldest(None) {
            return Err(Crowded::Process(self.max));
        }
        let id = open.next_id;
        open.next_id += 1;
        let state = Arc::new(ConnState {
            ip,
            id,
            busy: AtomicUsize::new(0),
            owed: AtomicBool::new(true),
            idle_since: AtomicU64::new(0),
            evicting: AtomicBool::new(false),
            evict: tokio::sync::Notify::new(),
            epoch: self.epoch,
        });
        state.idle_since.store(state.now_ms(), Ordering::SeqCst);
        open.conns.insert(id, state.clone());
        open.per.entry(ip).or_insert((0, 0)).0 += 1;
        open.total += 1;
        Ok(Entered {
            gate: self.clone(),
            id,
            state,
        })
    }

    /// [`ConnGate::enter`], and when it is crowded, once more after letting the process's
    /// other tasks run: connections just accepted count as busy until their first read finds
    /// nothing (so that a request sent with a connection is read before it can be closed to
    /// make room), and a burst of new connections is all such until their tasks run.
    pub(crate) async fn enter_soon(self: &Arc<Self>, ip: IpAddr) -> Result<Entered, Crowded> {
        match self.enter(ip) {
            Ok(entered) => Ok(entered),
            Err(_) => {
                tokio::task::yield_now().await;
                self.enter(ip)
            }
        }
    }

    /// Connections counted now.
    #[cfg(test)]
    pub(crate) fn open(&self) -> usize {
        self.open.lock().unwrap_or_else(|e| e.into_inner()).total
    }
}

impl Open {
    /// Tell the connection idle the longest (of `ip`, if given) to close; false when none is
    /// idle. (A scan of the connections, made only at a cap.)
    fn evict_oldest(&mut self, ip: Option<IpAddr>) -> bool {
        let oldest = (self.conns.values())
            .filter(|c| ip.is_none_or(|ip| c.ip == ip))
            .filter(|c| !c.evicting.load(Ordering::SeqCst) && c.is_idle())
            .min_by_key(|c| (c.idle_since.load(Ordering::SeqCst), c.id))
            .cloned();
        let Some(c) = oldest else {
            return false;
        };
        c.evicting.store(true, Ordering::SeqCst);
        c.evict.notify_one();
        self.evicting += 1;
        if let Some(per) = self.per.get_mut(&c.ip) {
            per.1 += 1;
        }
        true
    }
}

/// One counted connection; dropping it frees its place.
#[derive(Debug)]
pub(crate) struct Entered {
    gate: Arc<ConnGate>,
    id: u64,
    state: Arc<ConnState>,
}

impl Entered {
    /// What the gate knows of this connection: mark it busy ([`ConnState::busy`]).
    pub(crate) fn state(&self) -> Arc<ConnState> {
        self.state.clone()
    }

    /// `io` watched for the gate: the bytes of a request read make the connection busy until
    /// its answer has been written out ([`Watched`]).
    pub(crate) fn watch<T>(&self, io: T) -> Watched<T> {
        Watched {
            inner: io,
            state: self.state.clone(),
        }
    }

    /// Resolves when the gate closes this connection to make room: drop it then.
    pub(crate) fn evicted(&self) -> impl Future<Output = ()> + Send + 'static {
        let state = self.state.clone();
        async move { state.evict.notified().await }
    }
}

impl Drop for Entered {
    fn drop(&mut self) {
        let mut open = self.gate.open.lock().unwrap_or_else(|e| e.into_inner());
        let evicting = self.state.evicting.load(Ordering::SeqCst);
        open.conns.remove(&self.id);
        open.total = open.total.saturating_sub(1);
        if evicting {
            open.evicting = open.evicting.saturating_sub(1);
        }
        let ip = self.state.ip;
        if let Some(n) = open.per.get_mut(&ip) {
            n.0 = n.0.saturating_sub(1);
            if evicting {
                n.1 = n.1.saturating_sub(1);
            }
            if n.0 == 0 {
                open.per.remove(&ip);
            }
        }
    }
}

/// A connection's I/O as the gate sees it: bytes read make it owe an answer; a flush with no
/// request in hand (the answer written out), or a read that finds nothing with none in hand,
/// makes it idle.
#[derive(Debug)]
pub(crate) struct Watched<T> {
    inner: T,
    state: Arc<ConnState>,
}

impl<T: AsyncRead + Unpin> AsyncRead for Watched<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        match polled {
            Poll::Ready(Ok(())) if buf.filled().len() > before => {
                self.state.owed.store(true, Ordering::SeqCst);
            }
            Poll::Pending if self.state.busy.load(Ordering::SeqCst) == 0 => self.state.idle_now(),
            _ => {}
        }
        polled
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Watched<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let polled = Pin::new(&mut self.inner).poll_flush(cx);
        if matches!(polled, Poll::Ready(Ok(()))) && self.state.busy.load(Ordering::SeqCst) == 0 {
            self.state.idle_now();
        }
        polled
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// A process-wide budget of bytes, held by permits that free their bytes when dropped.
#[derive(Debug, Clone)]
pub(crate) struct ByteBudget {
    permits: Arc<Semaphore>,
    bytes: usize,
    /// Requests waiting for room now ([`ByteBudget::hold_pressing`]): while there are any,
    /// connections that read nothing of their answers are closed early ([`WriteTimeout`]).
    pressed: Pressure,
}

/// Whether someone waits for room in a [`ByteBudget`]; see [`WriteTimeout::with_pressure`].
#[derive(Debug, Clone, Default)]
pub(crate) struct Pressure(Arc<AtomicUsize>);

impl Pressure {
    fn is_on(&self) -> bool {
        self.0.load(Ordering::SeqCst) > 0
    }
}

/// A caller that has read nothing of its answer for this long, while others wait for room in
/// the answer budget, is disconnected: its unread answer is counted against it, not against
/// everyone ([`WriteTimeout::with_pressure`]).
pub(crate) const PRESSED_STALL: Duration = Duration::from_secs(2);
/// How often a stalled write looks at the pressure.
const PRESSURE_TICK: Duration = Duration::from_millis(250);

impl ByteBudget {
    /// A budget of `bytes` bytes.
    pub(crate) fn new(bytes: usize) -> Self {
        let units = bytes.div_ceil(UNIT).clamp(1, Semaphore::MAX_PERMITS);
        ByteBudget {
            permits: Arc::new(Semaphore::new(units)),
            bytes,
            pressed: Pressure::default(),
        }
    }

    /// The handle a [`WriteTimeout`] watches.
    pub(crate) fn pressure(&self) -> Pressure {
        self.pressed.clone()
    }

    /// [`ByteBudget::hold`], and while it waits, the budget is under pressure: callers that
    /// read nothing of the answers they hold for [`PRESSED_STALL`] are disconnected, which
    /// frees their bytes.
    pub(crate) async fn hold_pressing(
        &self,
        bytes: usize,
        within: Duration,
    ) -> Option<OwnedSemaphorePermit> {
        if let Some(permit) = self.try_hold(bytes) {
            return Some(permit);
        }
        struct Pressing<'a>(&'a Pressure);
        impl Drop for Pressing<'_> {
            fn drop(&mut self) {
                self.0.0.fetch_sub(1, Ordering::SeqCst);
            }
        }
        self.pressed.0.fetch_add(1, Ordering::SeqCst);
        let _pressing = Pressing(&self.pressed);
        self.hold(bytes, within).await
    }

    /// `permit` (of this budget) made to hold exactly `bytes` (to the unit): the excess given
    /// back, or what is missing taken now; `Err(permit)` when it is missing and not there.
    pub(crate) fn resize(
        &self,
        mut permit: OwnedSemaphorePermit,
        bytes: usize,
    ) -> Result<OwnedSemaphorePermit, OwnedSemaphorePermit> {
        let want = self.units(bytes) as usize;
        let have = permit.num_permits();
        if have >= want {
            drop(permit.split(have - want));
            return Ok(permit);
        }
        let more = u32::try_from(want - have).unwrap_or(u32::MAX);
        match self.permits.clone().try_acquire_many_owned(more) {
            Ok(extra) => {
                permit.merge(extra);
                Ok(permit)
            }
            Err(_) => Err(permit),
        }
    }

    /// The budget, in bytes.
    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }

    /// Bytes not held now (to the unit).
    #[cfg(test)]
    pub(crate) fn available(&self) -> usize {
        self.permits.available_permits() * UNIT
    }

    fn units(&self, bytes: usize) -> u32 {
        u32::try_from(bytes.div_ceil(UNIT).max(1)).unwrap_or(u32::MAX)
    }

    /// Hold `bytes` now, or `None` when the budget has not that much left.
    pub(crate) fn try_hold(&self, bytes: usize) -> Option<OwnedSemaphorePermit> {
        self.permits
            .clone()
            .try_acquire_many_owned(self.units(bytes))
            .ok()
    }

    /// Hold `bytes`, waiting for others to free them for at most `within`; `None` when they
    /// were not freed in time, or when `bytes` exceeds the whole budget.
    pub(crate) async fn hold(
        &self,
        bytes: usize,
        within: Duration,
    ) -> Option<OwnedSemaphorePermit> {
        if bytes > self.bytes {
            return None;
        }
        let wait = self.permits.clone().acquire_many_owned(self.units(bytes));
        tokio::time::timeout(within, wait).await.ok()?.ok()
    }
}

/// `data` as `Bytes` that hold `permit` until the last copy of them is dropped: for an answer,
/// once hyper has written it to the socket, or dropped it with its connection.
pub(crate) fn held_bytes(data: Vec<u8>, permit: OwnedSemaphorePermit) -> Bytes {
    struct Held(Vec<u8>, #[allow(dead_code)] OwnedSemaphorePermit);
    impl AsRef<[u8]> for Held {
        fn as_ref(&self) -> &[u8] {
            &self.0
        }
    }
    Bytes::from_owner(Held(data, permit))
}

/// A connection whose writes fail with `TimedOut` when the peer reads nothing for `timeout`:
/// hyper has a timeout for reading a request's head but none for writing, so a caller that
/// asks and never reads would hold its connection and its answer for ever. Reads are passed
/// through untouched (hyper's header timeout and our body timeout cover them).
#[derive(Debug)]
pub(crate) struct WriteTimeout<T> {
    inner: T,
    timeout: Duration,
    /// Since when writes have made no progress, and the sleep until the next look.
    stalled_since: Option<tokio::time::Instant>,
    stalled: Option<Pin<Box<tokio::time::Sleep>>>,
    pressure: Option<Pressure>,
}

impl<T> WriteTimeout<T> {
    /// Wrap `inner`.
    pub(crate) fn new(inner: T, timeout: Duration) -> Self {
        WriteTimeout {
            inner,
            timeout,
            stalled_since: None,
            stalled: None,
            pressure: None,
        }
    }

    /// The same, and while `pressure` is on (someone waits for room in the answer budget),
    /// a peer that has read nothing for [`PRESSED_STALL`] times out already.
    ///
    /// Why: twenty callers that never read their `get_messages` answers held the whole answer
    /// budget, and every other large answer was a `MemoryError` fault until the request
    /// timeout dropped them (10 s); reopened, they would hold it again. Now an unread answer
    /// is the caller's cost: it loses its connection as soon as the room is needed.
    pub(crate) fn with_pressure(mut self, pressure: Pressure) -> Self {
        self.pressure = Some(pressure);
        self
    }

    fn progressed(&mut self) {
        self.stalled_since = None;
        self.stalled = None;
    }

    /// Called when a write made no progress: `Ready(err)` once the peer has read nothing for
    /// the whole timeout (or for [`PRESSED_STALL`] while the budget is under pressure).
    fn pending(&mut self, cx: &mut Context<'_>) -> Poll<io::Error> {
        let since = *self
            .stalled_since
            .get_or_insert_with(tokio::time::Instant::now);
        loop {
            let stalled = since.elapsed();
            if stalled >= self.timeout {
                return Poll::Ready(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "the caller read nothing of its answer in time",
                ));
            }
            let pressed = self.pressure.as_ref().is_some_and(Pressure::is_on);
            if pressed && stalled >= PRESSED_STALL {
                return Poll::Ready(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "the caller read nothing of its answer while others waited for room",
                ));
            }
            let next = match &self.pressure {
                Some(_) => (self.timeout - stalled).min(PRESSURE_TICK),
                None => self.timeout - stalled,
            };
            let sleep = self
                .stalled
                .get_or_insert_with(|| Box::pin(tokio::time::sleep(next)));
            match sleep.as_mut().poll(cx) {
                Poll::Ready(()) => self.stalled = None,
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for WriteTimeout<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for WriteTimeout<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match Pin::new(&mut self.inner).poll_write(cx, buf) {
            Poll::Pending => self.pending(cx).map(Err),
            ready => {
                self.progressed();
                ready
            }
        }
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match Pin::new(&mut self.inner).poll_write_vectored(cx, bufs) {
            Poll::Pending => self.pending(cx).map(Err),
            ready => {
                self.progressed();
                ready
            }
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match Pin::new(&mut self.inner).poll_flush(cx) {
            Poll::Pending => self.pending(cx).map(Err),
            ready => {
                self.progressed();
                ready
            }
        }
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_gate_counts_per_process_and_per_address() {
        let gate = ConnGate::new(3, 2);
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        // Busy connections (a request in hand) are never closed to make room.
        let a1 = gate.enter(a).unwrap();
        let _a1_busy = a1.state().busy();
        let a2 = gate.enter(a).unwrap();
        let _a2_busy = a2.state().busy();
        assert_eq!(gate.enter(a).unwrap_err(), Crowded::Client(2));
        let b1 = gate.enter(b).unwrap();
        let _b1_busy = b1.state().busy();
        assert_eq!(gate.enter(b).unwrap_err(), Crowded::Process(3));
        drop(a1);
        assert_eq!(gate.open(), 2);
        let _a3 = gate.enter(a).unwrap();
        assert!(Crowded::Client(2).message(a).contains("10.0.0.1 holds 2"));
    }

    #[tokio::test]
    async fn at_a_cap_the_connection_idle_the_longest_makes_room() {
        let gate = ConnGate::new(3, 2);
        let (a, b, c): (IpAddr, IpAddr, IpAddr) = (
            "10.0.0.1".parse().unwrap(),
            "10.0.0.2".parse().unwrap(),
            "10.0.0.3".parse().unwrap(),
        );
        let a1 = gate.enter(a).unwrap();
        a1.state().idle_now();
        std::thread::sleep(Duration::from_millis(5));
        let b1 = gate.enter(b).unwrap();
        let b1_busy = b1.state().busy();
        std::thread::sleep(Duration::from_millis(5));
        let b2 = gate.enter(b).unwrap();
        b2.state().idle_now();
        // The process is full: a1, idle the longest, is told to close; c comes in (new, not
        // read yet: not idle).
        let c1 = gate.enter(c).unwrap();
        tokio::time::timeout(Duration::from_secs(1), a1.evicted())
            .await
            .expect("the oldest idle connection is evicted");
        // Full again: next is b2 (b1 is busy, c1 not read yet).
        let c2 = gate.enter(c).unwrap();
        tokio::time::timeout(Duration::from_secs(1), b2.evicted())
            .await
            .expect("then the next idle one");
        // Every other connection busy: refused.
        let _c1_busy = c1.state().busy();
        let _c2_busy = c2.state().busy();
        drop((a1, b2));
        assert_eq!(gate.enter(a).unwrap_err(), Crowded::Process(3));
        drop(b1_busy);
        // A client's own cap closes that client's connection idle the longest, not another's
        // idle longer.
        let gate = ConnGate::new(10, 2);
        let b1 = gate.enter(b).unwrap();
        b1.state().idle_now();
        std::thread::sleep(Duration::from_millis(5));
        let a1 = gate.enter(a).unwrap();
        a1.state().idle_now();
        std::thread::sleep(Duration::from_millis(5));
        let _a2 = gate.enter(a).unwrap();
        let _a3 = gate.enter(a).unwrap();
        tokio::time::timeout(Duration::from_secs(1), a1.evicted())
            .await
            .expect("a's oldest");
        let b_told = tokio::time::timeout(Duration::from_millis(50), b1.evicted()).await;
        assert!(b_told.is_err(), "b1 was told to close");
    }

    #[tokio::test]
    async fn budgets_hold_until_the_bytes_are_dropped() {
        let budget = ByteBudget::new(64 * 1024);
        let held = held_bytes(vec![7; 40 * 1024], budget.try_hold(40 * 1024).unwrap());
        assert!(budget.try_hold(40 * 1024).is_none(), "only 24 KiB left");
        let copy = held.clone();
        drop(held);
        assert!(
            budget.try_hold(40 * 1024).is_none(),
            "a copy still holds it"
        );
        drop(copy);
        assert!(budget.try_hold(40 * 1024).is_some());
        assert!(budget.hold(65 * 1024, Duration::ZERO).await.is_none());
        let all = budget.hold(64 * 1024, Duration::from_millis(10)).await;
        assert!(all.is_some());
        assert!(
            budget.hold(1, Duration::from_millis(20)).await.is_none(),
            "nothing left, and nothing freed within the wait"
        );
    }

    #[tokio::test]
    async fn a_peer_that_reads_nothing_times_the_write_out() {
        use tokio::io::AsyncWriteExt;
        let (near, _far) = tokio::io::duplex(1024);
        let mut w = WriteTimeout::new(near, Duration::from_millis(50));
        let started = std::time::Instant::now();
        let r = w.write_all(&[0u8; 64 * 1024]).await;
        assert_eq!(r.unwrap_err().kind(), io::ErrorKind::TimedOut);
        assert!(started.elapsed() >= Duration::from_millis(50));
        // A peer that reads keeps the writes going.
        let (near, mut far) = tokio::io::duplex(1024);
        let reader = tokio::spawn(async move {
            let mut sink = Vec::new();
            tokio::io::AsyncReadExt::read_to_end(&mut far, &mut sink)
                .await
                .map(|_| sink.len())
        });
        let mut w = WriteTimeout::new(near, Duration::from_millis(50));
        w.write_all(&[0u8; 64 * 1024]).await.unwrap();
        drop(w);
        assert_eq!(reader.await.unwrap().unwrap(), 64 * 1024);
    }

    #[tokio::test]
    async fn under_pressure_a_peer_that_reads_nothing_is_dropped_early() {
        use tokio::io::AsyncWriteExt;
        let budget = ByteBudget::new(4 * 1024);
        let all = budget.try_hold(4 * 1024).unwrap();
        let (near, _far) = tokio::io::duplex(1024);
        let timeout = PRESSED_STALL * 5;
        let mut w = WriteTimeout::new(near, timeout).with_pressure(budget.pressure());
        // Someone waits for room, longer than the stall allowed.
        let waiting = {
            let budget = budget.clone();
            tokio::spawn(async move { budget.hold_pressing(1024, timeout).await.is_some() })
        };
        let started = std::time::Instant::now();
        let r = w.write_all(&[0u8; 64 * 1024]).await;
        let took = started.elapsed();
        assert_eq!(r.unwrap_err().kind(), io::ErrorKind::TimedOut);
        assert!(took >= PRESSED_STALL && took < timeout, "{took:?}");
        // Its connection gone, what it held is freed and the waiter served.
        drop(all);
        assert!(waiting.await.unwrap());
        assert!(!budget.pressure().is_on());
    }

    #[tokio::test]
    async fn a_permit_is_resized_to_what_an_answer_holds() {
        let budget = ByteBudget::new(64 * 1024);
        let p = budget.try_hold(40 * 1024).unwrap();
        let p = budget.resize(p, 10 * 1024).unwrap();
        assert_eq!(budget.available(), 54 * 1024);
        let p = budget.resize(p, 60 * 1024).unwrap();
        assert_eq!(budget.available(), 4 * 1024);
        let p = budget.resize(p, 70 * 1024).unwrap_err();
        assert_eq!(p.num_permits(), 60, "unchanged when refused");
    }
}

//! Serving a router to the open internet, where anybody may open a socket.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::future::{Future, IntoFuture};
use std::io;
use std::pin::{pin, Pin};
use std::sync::atomic::{AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::extract::Request;
use axum::response::Response;
use axum::Router;
use hyper::body::{Frame, Incoming, SizeHint};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::{watch, Notify};
use tokio::time::Instant;

use crate::budget::Peer;
use tower_service::Service;

/// How long a connection may take to send a request's headers, counted from when it
/// opened or from its previous response: idle keep-alive connections close after it.
pub const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// The most connections served at once by default, whatever the file-descriptor limit.
pub const MAX_CONNECTIONS_CEILING: usize = 65_536;

/// How many connections are served at once by default: three quarters of the process's
/// file-descriptor limit (`ulimit -n`; the rest is left for the application's files
/// and pools), between 64 and [`MAX_CONNECTIONS_CEILING`]; 512 where the limit cannot
/// be read.
pub fn default_max_connections() -> usize {
    #[cfg(unix)]
    let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile)
        .current
        .and_then(|limit| usize::try_from(limit).ok());
    #[cfg(not(unix))]
    let limit = None::<usize>;
    limit.map_or(512, |limit| (limit / 4 * 3).clamp(64, MAX_CONNECTIONS_CEILING))
}

/// A connection is not shed for being idle in its first half second (milliseconds): it
/// has just been taken, perhaps in place of another, and has not had time to send its
/// headers.
const IDLE_GRACE_MS: u64 = 500;

/// A body in progress is not taken for a slow one before this much of it has passed
/// (milliseconds).
const SLOW_BODY_GRACE_MS: u64 = 250;

/// Milliseconds since `epoch`: the clock connections and bodies are timed by
/// (`u64::MAX` stays free to mean "none").
fn millis_since(epoch: Instant) -> u64 {
    u64::try_from(epoch.elapsed().as_millis()).unwrap_or(u64::MAX - 1)
}

/// "Too many open files" in the process (Linux's `EMFILE`) and in the system (`ENFILE`).
const EMFILE: i32 = 24;
const ENFILE: i32 = 23;

/// The most header bytes a request may send by default.
pub const DEFAULT_MAX_HEADER_BYTES: usize = 32 * 1024;

/// Serves `app` on `listener` with the bounds an endpoint open to anybody needs.
///
/// `axum::serve` waits for headers, and keeps idle connections, for ever: a client
/// with no valid signature can hold sockets until the process runs out of file
/// descriptors. This server:
///
/// - closes a connection that has not sent a request's complete headers within the
///   [header timeout](Serve::header_timeout) (10 s) of opening, or of its previous
///   response: slow headers and idle keep-alive connections alike;
/// - serves at most [`max_connections`](Serve::max_connections) at once (three quarters
///   of `ulimit -n`, see [`default_max_connections`]); at the cap, or out of file
///   descriptors, it closes the connection idle the longest (no request in progress) to
///   take the new one, as nginx does; when every one is busy, the oldest whose body
///   arrives slower than the [floor rate](Serve::min_body_rate) (16 KiB/s), and
///   otherwise it waits for one to end;
/// - puts each request's [`ClientAddr`](crate::budget::ClientAddr) in its extensions,
///   so the receiver counts the unverified bytes each client holds;
/// - refuses header sections over 32 KiB ([`max_header_bytes`](Serve::max_header_bytes));
/// - stops gracefully: no new connections, requests in progress finish.
///
/// Bodies are bounded by the route: [`post`](super::post) reads one within the
/// receiver's [body timeout](crate::ReceiverBuilder::body_timeout) and holds at most
/// its [unverified-bytes budget](crate::ReceiverBuilder::unverified_bytes) of bodies
/// not yet verified.
///
/// ```no_run
/// # use hookroute_runtime::{axum_adapter as hookroute_axum, Receiver};
/// # use hookroute_runtime::__private as p;
/// # struct App;
/// # impl p::WebhookHandlers for App {
/// #     type Provider = hookroute_runtime::Groq; type Event = ();
/// #     const EVENT_TYPES: &'static [&'static str] = &[];
/// #     fn parse(_: &p::EventMeta, _: &p::RawValue) -> Result<p::Parsed<()>, p::serde_json::Error> { Ok(p::Parsed::Ignored) }
/// #     fn dispatch<'a>(&'a self, _: (), _: &'a p::EventMeta) -> impl std::future::Future<Output = Result<(), p::HandlerError>> + Send + 'a { async { Ok(()) } }
/// # }
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let receiver = Receiver::new(App)?;
/// let app = axum::Router::new().route("/webhooks/groq", hookroute_axum::post(receiver));
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
/// hookroute_axum::serve(listener, app)
///     .with_graceful_shutdown(async { let _ = tokio::signal::ctrl_c().await; })
///     .await?;
/// # Ok(()) }
/// ```
pub fn serve(listener: TcpListener, app: Router) -> Serve<std::future::Pending<()>> {
    Serve {
        listener,
        app,
        header_timeout: DEFAULT_HEADER_TIMEOUT,
        max_connections: default_max_connections(),
        max_header_bytes: DEFAULT_MAX_HEADER_BYTES,
        min_body_rate: u64::from(crate::DEFAULT_MIN_BODY_RATE),
        max_connections_per_peer: None,
        shutdown: std::future::pending(),
    }
}

/// A server being configured; `.await` it to run. See [`serve`].
#[must_use = "a server does nothing until it is awaited"]
pub struct Serve<F> {
    listener: TcpListener,
    app: Router,
    header_timeout: Duration,
    max_connections: usize,
    max_header_bytes: usize,
    min_body_rate: u64,
    max_connections_per_peer: Option<usize>,
    shutdown: F,
}

impl<F> std::fmt::Debug for Serve<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Serve")
            .field("listener", &self.listener)
            .field("header_timeout", &self.header_timeout)
            .field("max_connections", &self.max_connections)
            .field("max_header_bytes", &self.max_header_bytes)
            .field("min_body_rate", &self.min_body_rate)
            .field("max_connections_per_peer", &self.max_connections_per_peer)
            .finish_non_exhaustive()
    }
}

impl<F: Future<Output = ()> + Send + 'static> Serve<F> {
    /// How long a connection may take to send a request's headers, from when it
    /// opened or from its previous response (default 10 s); it is closed after.
    pub fn header_timeout(mut self, timeout: Duration) -> Self {
        self.header_timeout = timeout;
        self
    }

    /// How many connections are served at once (default [`default_max_connections`];
    /// at least 1). Keep it below the process's file-descriptor limit (`ulimit -n`).
    pub fn max_connections(mut self, connections: usize) -> Self {
        self.max_connections = connections.max(1);
        self
    }

    /// The most bytes a request's header section may take (default 32 KiB; at least
    /// 8 KiB); larger ones are answered 431.
    pub fn max_header_bytes(mut self, bytes: usize) -> Self {
        self.max_header_bytes = bytes.max(8 * 1024);
        self
    }

    /// At the connection cap, a new connection from a client (an address, or an IPv6
    /// /64) that holds this many already is closed at once (default an eighth of
    /// [`max_connections`](Self::max_connections)): one client cannot keep everybody
    /// else waiting in the listen backlog. Behind a proxy every connection comes from
    /// the proxy: raise it to the cap there.
    pub fn max_connections_per_peer(mut self, connections: usize) -> Self {
        self.max_connections_per_peer = Some(connections.max(1));
        self
    }

    /// At the connection cap with every connection busy, one whose request body has
    /// arrived slower than `bytes_per_second` on average (after its first 250 ms) is
    /// closed to take the new connection (default 16 KiB/s, the receiver's
    /// [floor](crate::ReceiverBuilder::min_body_rate); 0: never).
    pub fn min_body_rate(mut self, bytes_per_second: u32) -> Self {
        self.min_body_rate = u64::from(bytes_per_second);
        self
    }

    /// Stops when `signal` completes: no new connections, and the server returns once
    /// the requests in progress have been answered.
    pub fn with_graceful_shutdown<G: Future<Output = ()> + Send + 'static>(self, signal: G) -> Serve<G> {
        Serve {
            listener: self.listener,
            app: self.app,
            header_timeout: self.header_timeout,
            max_connections: self.max_connections,
            max_header_bytes: self.max_header_bytes,
            min_body_rate: self.min_body_rate,
            max_connections_per_peer: self.max_connections_per_peer,
            shutdown: signal,
        }
    }

    /// How many connections one client may hold when the server is at its cap.
    fn per_peer(&self) -> usize {
        self.max_connections_per_peer.unwrap_or((self.max_connections / 8).max(1))
    }

    async fn run(self) -> io::Result<()> {
        let mut http = hyper::server::conn::http1::Builder::new();
        http.timer(TokioTimer::new())
            .header_read_timeout(self.header_timeout)
            .max_buf_size(self.max_header_bytes)
            .max_header_size(self.max_header_bytes);
        let http = Arc::new(http);
        let connections = Arc::new(Connections::new(self.min_body_rate));
        let (stop, stopped) = watch::channel(false);
        let per_peer = self.per_peer();
        let mut shutdown = pin!(self.shutdown);
        let mut next_id = 0_u64;

        loop {
            // Past the cap by a quarter (connections asked to close and not yet gone):
            // wait for one to end.
            let over = self.max_connections / 4 + 1;
            loop {
                let ended = connections.ended.notified();
                if connections.live() < self.max_connections + over {
                    break;
                }
                if !connections.condemn() {
                    tracing::debug!("every connection is busy: waiting for one to end");
                }
                tokio::select! {
                    () = ended => {}
                    () = tokio::time::sleep(Duration::from_millis(100)) => {}
                    () = shutdown.as_mut() => return finish(&stop, &connections).await,
                }
            }
            let stream = tokio::select! {
                accepted = self.listener.accept() => match accepted {
                    Ok(accepted) => accepted,
                    Err(error) => {
                        // Out of file descriptors (the cap is above `ulimit -n`): make
                        // room as at the cap; either way back off a moment, as axum does.
                        let shed = matches!(error.raw_os_error(), Some(EMFILE | ENFILE)) && connections.condemn();
                        tracing::warn!(error = %error, closing_an_idle_connection = shed, "could not accept a connection");
                        tokio::time::sleep(Duration::from_millis(if shed { 5 } else { 50 })).await;
                        continue;
                    }
                },
                () = shutdown.as_mut() => return finish(&stop, &connections).await,
            };
            let (stream, peer) = stream;
            // At the cap: a client that holds its share of the connections already is
            // refused at once (accepting and closing is cheap, and keeps the backlog
            // moving for everybody else); for any other, the connection idle the
            // longest, or one whose body crawls, is asked to close.
            let client = Peer::of(peer.ip());
            let (live, going, of_peer) = connections.counts(client);
            if live >= self.max_connections {
                if of_peer >= per_peer {
                    // It may be replacing a connection it keeps idle.
                    if !connections.condemn_idle_of(client) {
                        tracing::debug!(peer = %peer, "at the connection cap, refusing a client holding its share");
                        drop(stream);
                        continue;
                    }
                } else if live - going >= self.max_connections {
                    connections.condemn();
                }
            }
            let _ = stream.set_nodelay(true);
            next_id += 1;
            let state = connections.open(next_id, client);
            let task = serve_connection(
                Arc::clone(&http),
                (stream, peer),
                self.app.clone(),
                Arc::clone(&state),
                connections.epoch,
                stopped.clone(),
            );
            let connections = Arc::clone(&connections);
            tokio::spawn(async move {
                task.await;
                connections.close(next_id, client);
            });
        }
    }
}

impl<F: Future<Output = ()> + Send + 'static> IntoFuture for Serve<F> {
    type Output = io::Result<()>;
    type IntoFuture = Pin<Box<dyn Future<Output = io::Result<()>> + Send>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(self.run())
    }
}

/// Tells every connection to finish its request and close, and waits for them.
async fn finish(stop: &watch::Sender<bool>, connections: &Connections) -> io::Result<()> {
    let _ = stop.send(true);
    while connections.live() > 0 {
        let ended = connections.ended.notified();
        if connections.live() == 0 {
            break;
        }
        ended.await;
    }
    Ok(())
}

/// The connections being served, oldest first.
struct Connections {
    open: Mutex<Open>,
    /// Notified each time a connection ends.
    ended: Notify,
    /// When the server started: the clock bodies are timed against.
    epoch: Instant,
    /// The floor rate of a body, bytes a second; 0 for none.
    min_body_rate: u64,
}

#[derive(Default)]
struct Open {
    by_age: BTreeMap<u64, Arc<ConnectionState>>,
    /// How many of them were asked to close and have not yet.
    going: usize,
    /// How many each client holds.
    by_peer: std::collections::HashMap<Peer, usize>,
}

impl Open {
    /// Asks `state`'s connection to close, for the reason `why`, counting it as going.
    fn condemn(&mut self, state: &ConnectionState, why: u8) {
        state.condemned.store(why, Ordering::Release);
        self.going += 1;
        state.shed.notify_one();
    }
}

/// Why a connection was asked to close.
const KEPT: u8 = 0;
const IDLE: u8 = 1;
const SLOW: u8 = 2;

struct ConnectionState {
    /// Requests in progress on this connection.
    busy: AtomicUsize,
    /// Notified when the server wants this connection closed.
    shed: Notify,
    /// `KEPT`, or why it is to close: `IDLE` (it closes once its request, if one has
    /// just begun, is answered) or `SLOW` (at once: its body crawls).
    condemned: AtomicU8,
    /// When it opened, milliseconds after the server's epoch.
    opened: u64,
    /// The client.
    peer: Peer,
    /// The request body being read: when it started (milliseconds after the
    /// server's epoch; `u64::MAX` while there is none) and its bytes so far.
    body_started: AtomicU64,
    body_bytes: AtomicU64,
}

impl ConnectionState {
    fn new(opened: u64, peer: Peer) -> Self {
        Self {
            busy: AtomicUsize::new(0),
            shed: Notify::new(),
            condemned: AtomicU8::new(KEPT),
            opened,
            peer,
            body_started: AtomicU64::new(u64::MAX),
            body_bytes: AtomicU64::new(0),
        }
    }
}

impl Connections {
    fn new(min_body_rate: u64) -> Self {
        Self { open: Mutex::default(), ended: Notify::new(), epoch: Instant::now(), min_body_rate }
    }

    /// Milliseconds since the server started.
    fn now(&self) -> u64 {
        millis_since(self.epoch)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Open> {
        self.open.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn live(&self) -> usize {
        self.lock().by_age.len()
    }

    /// The connections open, how many of them are on their way out, and how many
    /// `peer` holds.
    fn counts(&self, peer: Peer) -> (usize, usize, usize) {
        let open = self.lock();
        (open.by_age.len(), open.going, open.by_peer.get(&peer).copied().unwrap_or(0))
    }

    fn open(&self, id: u64, peer: Peer) -> Arc<ConnectionState> {
        let state = Arc::new(ConnectionState::new(self.now(), peer));
        let mut open = self.lock();
        open.by_age.insert(id, Arc::clone(&state));
        *open.by_peer.entry(peer).or_insert(0) += 1;
        state
    }

    fn close(&self, id: u64, peer: Peer) {
        let mut open = self.lock();
        if let std::collections::hash_map::Entry::Occupied(mut held) = open.by_peer.entry(peer) {
            *held.get_mut() -= 1;
            if *held.get() == 0 {
                held.remove();
            }
        }
        if let Some(state) = open.by_age.remove(&id) {
            if state.condemned.load(Ordering::Acquire) != KEPT {
                open.going -= 1;
            }
        }
        drop(open);
        self.ended.notify_waiters();
    }

    /// Asks the oldest connection of `peer` with no request in progress to close. False
    /// when it has none.
    fn condemn_idle_of(&self, peer: Peer) -> bool {
        let mut open = self.lock();
        let idle = open.by_age.values().find(|state| {
            state.peer == peer
                && state.condemned.load(Ordering::Acquire) == KEPT
                && state.busy.load(Ordering::Acquire) == 0
        });
        let Some(idle) = idle.map(Arc::clone) else { return false };
        open.condemn(&idle, IDLE);
        true
    }

    /// Asks a connection to close to make room: the oldest with no request in
    /// progress (past its first half second), else the oldest whose request body
    /// arrives slower than the floor rate (past its first 250 ms). False when there is
    /// none.
    fn condemn(&self) -> bool {
        let now = self.now();
        let mut open = self.lock();
        let kept = || open.by_age.values().filter(|state| state.condemned.load(Ordering::Acquire) == KEPT);
        let idle = kept()
            .find(|state| state.busy.load(Ordering::Acquire) == 0 && now.saturating_sub(state.opened) >= IDLE_GRACE_MS)
            .map(|state| (Arc::clone(state), IDLE));
        let chosen = idle.or_else(|| {
            if self.min_body_rate == 0 {
                return None;
            }
            kept()
                .find(|state| {
                    let started = state.body_started.load(Ordering::Acquire);
                    let elapsed = now.saturating_sub(started);
                    started != u64::MAX
                        && elapsed >= SLOW_BODY_GRACE_MS
                        && state.body_bytes.load(Ordering::Acquire).saturating_mul(1000)
                            < self.min_body_rate.saturating_mul(elapsed)
                })
                .map(|state| (Arc::clone(state), SLOW))
        });
        let Some((state, why)) = chosen else { return false };
        open.condemn(&state, why);
        true
    }
}

/// Counts a request as in progress on its connection until its response is ready.
struct Busy(Arc<ConnectionState>);

impl Busy {
    fn new(state: &Arc<ConnectionState>) -> Self {
        state.busy.fetch_add(1, Ordering::AcqRel);
        Self(Arc::clone(state))
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.busy.fetch_sub(1, Ordering::AcqRel);
    }
}

async fn serve_connection(
    http: Arc<hyper::server::conn::http1::Builder>,
    (stream, peer): (tokio::net::TcpStream, std::net::SocketAddr),
    app: Router,
    state: Arc<ConnectionState>,
    epoch: Instant,
    mut stopped: watch::Receiver<bool>,
) {
    let counted = Arc::clone(&state);
    let service = hyper::service::service_fn(move |mut request: Request<Incoming>| {
        let busy = Busy::new(&counted);
        let mut app = app.clone();
        request.extensions_mut().insert(crate::budget::ClientAddr(peer));
        let request = request.map(|body| Body::new(Counted::new(body, &counted, epoch)));
        async move {
            let response: Result<Response, Infallible> = app.call(request).await;
            drop(busy);
            response
        }
    });
    let connection = http.serve_connection(TokioIo::new(stream), service);
    let mut connection = pin!(connection);
    let mut stopping = false;
    loop {
        tokio::select! {
            result = connection.as_mut() => {
                if let Err(error) = result {
                    tracing::debug!(error = %error, "connection ended with an error");
                }
                return;
            }
            () = state.shed.notified() => {
                if state.condemned.load(Ordering::Acquire) == SLOW {
                    tracing::debug!("closing a connection whose body arrives below the floor rate to make room");
                    return;
                }
                if state.busy.load(Ordering::Acquire) == 0 {
                    tracing::debug!("closing an idle connection to make room for a new one");
                    return;
                }
                connection.as_mut().graceful_shutdown();
            }
            changed = stopped.changed(), if !stopping => {
                stopping = true;
                if changed.is_err() || *stopped.borrow() {
                    connection.as_mut().graceful_shutdown();
                }
            }
        }
    }
}

/// A request's body, counting on its connection the bytes that have arrived, so the
/// server can tell a body that crawls.
struct Counted {
    inner: Incoming,
    state: Arc<ConnectionState>,
    epoch: Instant,
    /// Set once the body had to be waited for (its start is then recorded).
    waited: bool,
}

impl Counted {
    /// A body counted from when it first has to be waited for: one whole in hand when
    /// read costs no clock read.
    fn new(inner: Incoming, state: &Arc<ConnectionState>, epoch: Instant) -> Self {
        state.body_bytes.store(0, Ordering::Release);
        state.body_started.store(u64::MAX, Ordering::Release);
        Self { inner, state: Arc::clone(state), epoch, waited: false }
    }

    fn finished(&self) {
        self.state.body_started.store(u64::MAX, Ordering::Release);
    }
}

impl http_body::Body for Counted {
    type Data = bytes::Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<bytes::Bytes>, hyper::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                let bytes = frame.data_ref().map_or(0, bytes::Bytes::len);
                self.state.body_bytes.fetch_add(bytes as u64, Ordering::AcqRel);
                if self.inner.is_end_stream() {
                    self.finished();
                }
            }
            Poll::Ready(_) => self.finished(),
            Poll::Pending if !self.waited => {
                self.waited = true;
                self.state.body_started.store(millis_since(self.epoch), Ordering::Release);
            }
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.finished();
    }
}

#[cfg(all(test, unix))]
mod tests {
    use rustix::process::{getrlimit, setrlimit, Resource};

    #[test]
    fn the_default_cap_follows_the_descriptor_limit() {
        let before = getrlimit(Resource::Nofile);
        let mut lower = before;
        for limit in [400_u64, 2_000] {
            lower.current = Some(limit);
            setrlimit(Resource::Nofile, lower).unwrap();
            let cap = super::default_max_connections() as u64;
            assert!(cap < limit && cap >= limit / 2, "{cap} for ulimit -n {limit}");
        }
        setrlimit(Resource::Nofile, before).unwrap();
    }
}

//! Serving a router to the open internet, where anybody may open a socket.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::future::{Future, IntoFuture};
use std::io;
use std::pin::{pin, Pin};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::body::Body;
use axum::extract::Request;
use axum::response::Response;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::{watch, Notify};
use tower_service::Service;

/// How long a connection may take to send a request's headers, counted from when it
/// opened or from its previous response: idle keep-alive connections close after it.
pub const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// How many connections are served at once by default.
pub const DEFAULT_MAX_CONNECTIONS: usize = 512;

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
/// - serves at most [`max_connections`](Serve::max_connections) (512) at once; at the
///   cap, or out of file descriptors, it closes the connection idle the longest (no
///   request in progress) to take the new one, as nginx does, and when every one is
///   busy it waits for one to end;
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
        max_connections: DEFAULT_MAX_CONNECTIONS,
        max_header_bytes: DEFAULT_MAX_HEADER_BYTES,
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
    shutdown: F,
}

impl<F> std::fmt::Debug for Serve<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Serve")
            .field("listener", &self.listener)
            .field("header_timeout", &self.header_timeout)
            .field("max_connections", &self.max_connections)
            .field("max_header_bytes", &self.max_header_bytes)
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

    /// How many connections are served at once (default 512; at least 1). Keep it
    /// below the process's file-descriptor limit (`ulimit -n`).
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

    /// Stops when `signal` completes: no new connections, and the server returns once
    /// the requests in progress have been answered.
    pub fn with_graceful_shutdown<G: Future<Output = ()> + Send + 'static>(self, signal: G) -> Serve<G> {
        Serve {
            listener: self.listener,
            app: self.app,
            header_timeout: self.header_timeout,
            max_connections: self.max_connections,
            max_header_bytes: self.max_header_bytes,
            shutdown: signal,
        }
    }

    async fn run(self) -> io::Result<()> {
        let mut http = hyper::server::conn::http1::Builder::new();
        http.timer(TokioTimer::new())
            .header_read_timeout(self.header_timeout)
            .max_buf_size(self.max_header_bytes)
            .max_header_size(self.max_header_bytes);
        let http = Arc::new(http);
        let connections = Arc::new(Connections::default());
        let (stop, stopped) = watch::channel(false);
        let mut shutdown = pin!(self.shutdown);
        let mut next_id = 0_u64;

        loop {
            // At the cap: make room by closing the connection idle the longest, or wait
            // for one to end when every one is busy.
            loop {
                let ended = connections.ended.notified();
                if connections.live() < self.max_connections {
                    break;
                }
                if connections.shed_idle() {
                    // The shed connection ends as soon as its task runs again.
                    tokio::select! {
                        () = ended => {}
                        () = tokio::time::sleep(Duration::from_millis(50)) => {}
                    }
                } else {
                    tokio::select! {
                        () = ended => {}
                        () = shutdown.as_mut() => return finish(&stop, &connections).await,
                    }
                }
            }
            let stream = tokio::select! {
                accepted = self.listener.accept() => match accepted {
                    Ok((stream, _peer)) => stream,
                    Err(error) => {
                        // Out of file descriptors (the cap is above `ulimit -n`): make
                        // room as at the cap; either way back off a moment, as axum does.
                        let shed = matches!(error.raw_os_error(), Some(EMFILE | ENFILE)) && connections.shed_idle();
                        tracing::warn!(error = %error, closing_an_idle_connection = shed, "could not accept a connection");
                        tokio::time::sleep(Duration::from_millis(if shed { 5 } else { 50 })).await;
                        continue;
                    }
                },
                () = shutdown.as_mut() => return finish(&stop, &connections).await,
            };
            let _ = stream.set_nodelay(true);
            next_id += 1;
            let state = connections.open(next_id);
            let task =
                serve_connection(Arc::clone(&http), stream, self.app.clone(), Arc::clone(&state), stopped.clone());
            let connections = Arc::clone(&connections);
            tokio::spawn(async move {
                task.await;
                connections.close(next_id);
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
#[derive(Default)]
struct Connections {
    open: Mutex<BTreeMap<u64, Arc<ConnectionState>>>,
    /// Notified each time a connection ends.
    ended: Notify,
}

#[derive(Default)]
struct ConnectionState {
    /// Requests in progress on this connection.
    busy: AtomicUsize,
    /// Set when the server wants this connection closed while idle.
    shed: Notify,
}

impl Connections {
    fn live(&self) -> usize {
        self.open.lock().unwrap_or_else(PoisonError::into_inner).len()
    }

    fn open(&self, id: u64) -> Arc<ConnectionState> {
        let state = Arc::new(ConnectionState::default());
        self.open.lock().unwrap_or_else(PoisonError::into_inner).insert(id, Arc::clone(&state));
        state
    }

    fn close(&self, id: u64) {
        self.open.lock().unwrap_or_else(PoisonError::into_inner).remove(&id);
        self.ended.notify_waiters();
    }

    /// Asks the oldest connection with no request in progress to close. False when
    /// every connection is busy.
    fn shed_idle(&self) -> bool {
        let open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        match open.values().find(|state| state.busy.load(Ordering::Acquire) == 0) {
            Some(idle) => {
                idle.shed.notify_one();
                true
            }
            None => false,
        }
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
    stream: tokio::net::TcpStream,
    app: Router,
    state: Arc<ConnectionState>,
    mut stopped: watch::Receiver<bool>,
) {
    let counted = Arc::clone(&state);
    let service = hyper::service::service_fn(move |request: Request<Incoming>| {
        let busy = Busy::new(&counted);
        let mut app = app.clone();
        async move {
            let response: Result<Response, Infallible> = app.call(request.map(Body::new)).await;
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

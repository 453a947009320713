//! The operator console (feature `console`): see, search, replay and pause an inbox's
//! deliveries in a browser, server-rendered, no JavaScript.
//!
//! Nothing is served unless the application mounts it, and every request needs the
//! console token: a person enters it once in the login form and gets an `HttpOnly`,
//! `SameSite=Strict` session cookie; a script sends `Authorization: Bearer <token>`.
//! Every state-changing request is a `POST`; from a session it carries the page's
//! CSRF token and must come from the console's own origin. Every string a sender
//! controls is escaped, signature and credential headers are masked, and a strict
//! Content-Security-Policy allows no script.
//!
//! ```no_run
//! use hookroute_runtime::console::Console;
//! use hookroute_runtime::inbox::PostgresInbox;
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let inbox = PostgresInbox::connect("postgres://app@127.0.0.1/app").await?;
//! // The token from configuration, else HOOKROUTE_CONSOLE_TOKEN.
//! let console = Console::builder(inbox.clone()).build()?;
//! let app = axum::Router::new().nest("/ops/webhooks", console);
//! # let _ = app; Ok(()) }
//! ```
//!
//! An application that has its own sign-in can put its auth layer in front instead and
//! still give the console a token (its own requests then need one of the two).

mod auth;
mod html;
mod pages;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::body::{Body, Bytes};
use axum::extract::{OriginalUri, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, Response, StatusCode, Uri};
use axum::routing::any;
use axum::Router;

use crate::handler::WebhookHandlers;
use crate::inbox::{InboxAdmin, StoredDelivery};
use crate::secret::Secret;
use crate::store::IdempotencyStore;
use crate::Receiver;
use auth::{Caller, Keys};

/// The environment variable the token is read from when the builder is given none.
pub const TOKEN_VAR: &str = "HOOKROUTE_CONSOLE_TOKEN";

/// The shortest token the console accepts.
const MIN_TOKEN: usize = 16;

/// The operator console over an inbox; [`Console::builder`] makes its router.
#[derive(Debug)]
pub struct Console;

impl Console {
    /// Starts configuring a console over `inbox` (any built-in inbox, or yours that
    /// implements [`InboxAdmin`]).
    pub fn builder(inbox: impl InboxAdmin) -> ConsoleBuilder {
        ConsoleBuilder {
            inbox: Arc::new(inbox),
            token: None,
            session_ttl: Duration::from_secs(12 * 3600),
            secure_cookie: false,
            verify: None,
        }
    }
}

/// Checks a stored delivery's signature again: `Err` says why it does not verify.
pub(super) type Verify = Arc<dyn Fn(&StoredDelivery) -> Result<(), String> + Send + Sync>;

/// Sets up the console; from [`Console::builder`].
pub struct ConsoleBuilder {
    inbox: Arc<dyn InboxAdmin>,
    token: Option<Secret>,
    session_ttl: Duration,
    secure_cookie: bool,
    verify: Option<Verify>,
}

impl std::fmt::Debug for ConsoleBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConsoleBuilder").field("backend", &self.inbox.backend()).finish_non_exhaustive()
    }
}

/// Why a console could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConsoleError {
    /// No token was given and `HOOKROUTE_CONSOLE_TOKEN` is not set.
    #[error("the console needs a token: give one to ConsoleBuilder::token or set {TOKEN_VAR}")]
    NoToken,
    /// The token is too short to stand between the internet and the payloads.
    #[error("the console token must be at least {MIN_TOKEN} characters (a random one: `openssl rand -hex 24`)")]
    WeakToken,
}

impl ConsoleBuilder {
    /// The console token (else `HOOKROUTE_CONSOLE_TOKEN`). At least 16 characters.
    #[must_use]
    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(Secret::new(token.into()));
        self
    }

    /// How long a login lasts (12 hours unless set).
    #[must_use]
    pub fn session_ttl(mut self, ttl: Duration) -> Self {
        self.session_ttl = ttl;
        self
    }

    /// Marks the session cookie `Secure`: browsers send it over HTTPS only. Turn it on
    /// wherever the console is reached over HTTPS (off by default, so that
    /// `http://127.0.0.1` works).
    #[must_use]
    pub fn secure_cookie(mut self, secure: bool) -> Self {
        self.secure_cookie = secure;
        self
    }

    /// Shows on each delivery's page whether its signature still verifies with
    /// `receiver`'s secrets, as of when it arrived ([`Receiver::verify_stored`]):
    /// a delivery stored by another sender, or before a secret was rotated, says so.
    /// Without it the page says the signature was not checked.
    #[must_use]
    pub fn verifier<H: WebhookHandlers, S: IdempotencyStore>(self, receiver: &Receiver<H, S>) -> Self {
        let receiver = receiver.clone();
        self.verify_with(move |delivery| receiver.verify_stored(delivery).map_err(|err| err.to_string()))
    }

    /// Like [`verifier`](Self::verifier), with a check of your own (`Err` says why a
    /// delivery does not verify): for a console over an inbox several receivers share.
    #[must_use]
    pub fn verify_with(
        mut self,
        verify: impl Fn(&StoredDelivery) -> Result<(), String> + Send + Sync + 'static,
    ) -> Self {
        self.verify = Some(Arc::new(verify));
        self
    }

    /// The console's router, to [`nest`](Router::nest) at a path of the
    /// application's choice (or to serve alone).
    pub fn build(self) -> Result<Router, ConsoleError> {
        let token = match self.token {
            Some(token) => token,
            None => Secret::new(std::env::var(TOKEN_VAR).map_err(|_| ConsoleError::NoToken)?),
        };
        if token.expose().len() < MIN_TOKEN {
            return Err(ConsoleError::WeakToken);
        }
        let keys = Keys::new(token, self.session_ttl);
        let state =
            Arc::new(Shared { inbox: self.inbox, keys, secure_cookie: self.secure_cookie, verify: self.verify });
        let mut router = Router::new();
        for path in [
            "/",
            "/login",
            "/logout",
            "/deliveries",
            "/delivery",
            "/replay",
            "/replayed",
            "/retry",
            "/purge",
            "/pause",
            "/resume",
        ] {
            router = router.route(path, any(handle));
        }
        Ok(router.fallback(handle).with_state(state))
    }
}

struct Shared {
    inbox: Arc<dyn InboxAdmin>,
    keys: Keys,
    secure_cookie: bool,
    verify: Option<Verify>,
}

/// One request, as the pages see it.
pub(super) struct Request {
    /// Where the console is mounted (`/ops/webhooks`, or empty at the root).
    prefix: String,
    /// The path below it (`/deliveries`).
    path: String,
    method: Method,
    query: Vec<(String, String)>,
    form: Vec<(String, String)>,
    caller: Caller,
}

impl Request {
    fn param<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
        pairs.iter().find(|(key, _)| key == name).map(|(_, value)| value.as_str()).filter(|value| !value.is_empty())
    }

    /// A query parameter, empty ones as absent.
    pub(super) fn query(&self, name: &str) -> Option<&str> {
        Self::param(&self.query, name)
    }

    /// A form field, empty ones as absent.
    pub(super) fn field(&self, name: &str) -> Option<&str> {
        Self::param(&self.form, name)
    }
}

/// What a page answers: a status and its HTML, or a redirect.
pub(super) enum Answer {
    Page(StatusCode, String),
    SeeOther(String),
    LoggedIn(String, String),
    LoggedOut(String),
}

async fn handle(
    State(shared): State<Arc<Shared>>,
    OriginalUri(original): OriginalUri,
    uri: Uri,
    method: Method,
    headers: HeaderMap,
    body: Bytes,
) -> Response<Body> {
    let path = uri.path().to_owned();
    let full = original.path();
    let prefix = full.strip_suffix(path.as_str()).unwrap_or(full).trim_end_matches('/');
    // Links and redirects start with it: never a `//host` of another site.
    let prefix = if prefix.starts_with('/') && !prefix.starts_with("//") { prefix.to_owned() } else { String::new() };
    let parse = |text: &[u8]| form_urlencoded::parse(text).into_owned().collect::<Vec<_>>();
    let query = parse(uri.query().unwrap_or_default().as_bytes());
    let form = if method == Method::POST { parse(&body) } else { Vec::new() };
    let caller = shared.keys.caller(&headers, SystemTime::now());
    let request = Request { prefix, path, method, query, form, caller };
    let answer = match pages::guard(&request, &headers) {
        Some(refused) => refused,
        None => pages::answer(&*shared.inbox, &shared.keys, shared.verify.as_ref(), &request).await,
    };
    respond(&request, &shared, answer)
}

fn respond(request: &Request, shared: &Shared, answer: Answer) -> Response<Body> {
    let cookie_path = if request.prefix.is_empty() { "/" } else { request.prefix.as_str() };
    let secure = if shared.secure_cookie { "; Secure" } else { "" };
    let (status, body, location, cookie) = match answer {
        Answer::Page(status, html) => (status, html, None, None),
        Answer::SeeOther(to) => (StatusCode::SEE_OTHER, String::new(), Some(to), None),
        Answer::LoggedIn(to, session) => {
            let max_age = shared.keys.session_ttl().as_secs();
            let cookie = format!(
                "{}={session}; Path={cookie_path}; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}",
                auth::COOKIE
            );
            (StatusCode::SEE_OTHER, String::new(), Some(to), Some(cookie))
        }
        Answer::LoggedOut(to) => {
            let cookie = format!("{}=; Path={cookie_path}; HttpOnly; SameSite=Strict; Max-Age=0{secure}", auth::COOKIE);
            (StatusCode::SEE_OTHER, String::new(), Some(to), Some(cookie))
        }
    };
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    // `same-origin`, not `no-referrer`: with no referrer, Chromium sends `Origin: null`
    // on a form post, and the same-origin check could not tell the console's own forms.
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(html::content_security_policy()));
    if let Some(location) = location.and_then(|to| HeaderValue::from_str(&to).ok()) {
        headers.insert(header::LOCATION, location);
    }
    if let Some(cookie) = cookie.and_then(|cookie| HeaderValue::from_str(&cookie).ok()) {
        headers.insert(header::SET_COOKIE, cookie);
    }
    response
}

//! Mount a [`Receiver`] on an actix-web 4 route.
//!
//! ```no_run
//! use actix_web::{App, HttpServer};
//! use hookroute_runtime::{actix_adapter as hookroute_actix, Receiver};
//! # use hookroute_runtime::__private as p;
//! # #[derive(Clone)] struct Handlers;
//! # impl p::WebhookHandlers for Handlers {
//! #     type Provider = hookroute_runtime::Groq; type Event = ();
//! #     const EVENT_TYPES: &'static [&'static str] = &[];
//! #     fn parse(_: &p::EventMeta, _: &p::RawValue) -> Result<p::Parsed<()>, p::serde_json::Error> { Ok(p::Parsed::Ignored) }
//! #     fn dispatch<'a>(&'a self, _: (), _: &'a p::EventMeta) -> impl std::future::Future<Output = Result<(), p::HandlerError>> + Send + 'a { async { Ok(()) } }
//! # }
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let receiver = Receiver::new(Handlers)?;
//! HttpServer::new(move || App::new().route("/webhooks/groq", hookroute_actix::post(receiver.clone())))
//!     .bind(("127.0.0.1", 3000))?
//!     .run()
//!     .await?;
//! # Ok(()) }
//! ```
//!
//! Each request runs [`Receiver::handle`]: the body is read raw within the receiver's
//! limit, timeout and unverified-bytes budget, and the delivery runs to its end, in a
//! task of its own once it has to wait (see [`crate::service`]). actix-web's server
//! bounds the rest: it waits 5 s for a request's headers
//! (`HttpServer::client_request_timeout`) and keeps an idle connection 5 s
//! (`keep_alive`) by default.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use futures_util::TryStreamExt as _;
use http_body::Frame;
use http_body_util::StreamBody;

use crate::handler::WebhookHandlers;
use crate::receiver::Receiver;
use crate::store::IdempotencyStore;

/// A route that feeds `POST` requests to `receiver` and answers 405 to other methods
/// (actix-web's own `web::post()` would leave them to a 404).
pub fn post<H, S>(receiver: Receiver<H, S>) -> actix_web::Route
where
    H: WebhookHandlers,
    S: IdempotencyStore,
{
    web::route().to(move |request: HttpRequest, payload: web::Payload| {
        let receiver = receiver.clone();
        async move { handle(&receiver, &request, payload).await }
    })
}

/// Receives one actix-web request: what [`post`] runs. For a handler of your own:
/// `async fn hook(request: HttpRequest, payload: web::Payload, receiver: web::Data<…>)`.
pub async fn handle<H, S>(receiver: &Receiver<H, S>, request: &HttpRequest, payload: web::Payload) -> HttpResponse
where
    H: WebhookHandlers,
    S: IdempotencyStore,
{
    // actix-web 4 speaks `http` 0.2: the method and headers are copied across, the
    // body streamed through as it arrives.
    let method = http::Method::from_bytes(request.method().as_str().as_bytes()).unwrap_or(http::Method::GET);
    let mut headers = http::HeaderMap::with_capacity(request.headers().len());
    for (name, value) in request.headers() {
        // The same rules in both versions: a name or value actix took converts.
        if let (Ok(name), Ok(value)) =
            (http::HeaderName::from_bytes(name.as_str().as_bytes()), http::HeaderValue::from_bytes(value.as_bytes()))
        {
            headers.append(name, value);
        }
    }
    let mut converted = http::Request::new(StreamBody::new(payload.map_ok(Frame::data)));
    *converted.method_mut() = method;
    *converted.headers_mut() = headers;

    let (parts, body) = receiver.answer(converted).await.into_parts();
    let status = StatusCode::from_u16(parts.status.as_u16()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = HttpResponse::build(status);
    for (name, value) in &parts.headers {
        if name == http::header::CONNECTION {
            // actix-web writes this header itself.
            response.force_close();
        } else {
            response.insert_header((name.as_str(), value.as_bytes()));
        }
    }
    response.body(body)
}

//! What every example receiver does around its handlers: logs, the store named by
//! `HOOKROUTE_STORE`, the receiver (secret from the provider's environment variable),
//! an axum server on 127.0.0.1:$PORT (3000 unless set; 0 picks a free port), and a
//! graceful stop on Ctrl-C. The actix-web and Lambda examples take the parts they use.
#![allow(dead_code)] // each example uses its part

use std::process::ExitCode;

use hookroute::{IdempotencyStore, Provider, Receiver, WebhookHandlers};

pub(crate) mod inbox;

pub(crate) async fn serve<H: WebhookHandlers>(handlers: H) -> ExitCode {
    serve_with(handlers, axum::Router::new()).await
}

/// [`serve`], with more routes beside the receiver's (`/metrics`, say).
pub(crate) async fn serve_with<H: WebhookHandlers>(handlers: H, routes: axum::Router) -> ExitCode {
    init_logs();
    let receiver = match receiver(handlers).await {
        Ok(receiver) => receiver,
        Err(exit) => return exit,
    };
    let port = match port() {
        Ok(port) => port,
        Err(exit) => return exit,
    };
    let route = format!("/webhooks/{}", <H::Provider as Provider>::NAME);
    let app = routes.route(&route, hookroute::axum::post(receiver));
    let listener = match tokio::net::TcpListener::bind(("127.0.0.1", port)).await {
        Ok(listener) => listener,
        Err(error) => {
            eprintln!("error: cannot listen on 127.0.0.1:{port}: {error}");
            return ExitCode::FAILURE;
        }
    };
    let address = listener.local_addr().map_or_else(|_| format!("127.0.0.1:{port}"), |a| a.to_string());
    tracing::info!("listening on http://{address}{route}");
    let shutdown = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    if let Err(error) = hookroute::axum::serve(listener, app).with_graceful_shutdown(shutdown).await {
        eprintln!("error: server stopped: {error}");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

/// Logs to stdout, `RUST_LOG` (default `info`).
pub(crate) fn init_logs() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info,hookroute=info".into()),
        )
        .init();
}

/// The receiver, with the store `HOOKROUTE_STORE` names; a bad store URL or a missing
/// secret is said on stderr.
pub(crate) async fn receiver<H: WebhookHandlers>(
    handlers: H,
) -> Result<Receiver<H, Box<dyn IdempotencyStore>>, ExitCode> {
    // Swapping the backend is this one line: any `IdempotencyStore` will do.
    let store = match hookroute::store::connect(&std::env::var("HOOKROUTE_STORE").unwrap_or_default()).await {
        Ok(store) => store,
        Err(error) => {
            eprintln!("error: HOOKROUTE_STORE: {error}");
            return Err(ExitCode::FAILURE);
        }
    };
    // The secret comes from the provider's variable (GROQ_WEBHOOK_SECRET, ...); a
    // missing one is a clear error.
    Receiver::builder(handlers).store(store).build().map_err(|error| {
        eprintln!("error: {error}");
        ExitCode::FAILURE
    })
}

/// `PORT`, 3000 unless set.
pub(crate) fn port() -> Result<u16, ExitCode> {
    match std::env::var("PORT").map(|port| port.parse::<u16>()) {
        Err(_) => Ok(3000),
        Ok(Ok(port)) => Ok(port),
        Ok(Err(_)) => {
            eprintln!("error: PORT must be a port number (0-65535)");
            Err(ExitCode::FAILURE)
        }
    }
}

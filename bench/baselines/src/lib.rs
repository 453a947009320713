//! Shared by the end-to-end benchmark's baselines (`bench/e2e`): see the binaries.

use std::future::Future;
use std::process::ExitCode;

pub mod handwritten;

/// Serves `router` on 127.0.0.1:$PORT (3000 unless set), like the example receivers:
/// until Ctrl-C, then gracefully (in-flight requests finish).
pub async fn serve(router: axum::Router) -> ExitCode {
    serve_until(
        router,
        Some(async {
            let _ = tokio::signal::ctrl_c().await;
        }),
    )
    .await
}

/// Serves `router` on 127.0.0.1:$PORT with no graceful shutdown at all: the bare HTTP
/// stack, for the no-work ceiling.
pub async fn serve_plainly(router: axum::Router) -> ExitCode {
    serve_until(router, None::<std::future::Pending<()>>).await
}

async fn serve_until(router: axum::Router, shutdown: Option<impl Future<Output = ()> + Send + 'static>) -> ExitCode {
    let port = match std::env::var("PORT").map(|port| port.parse::<u16>()) {
        Err(_) => 3000,
        Ok(Ok(port)) => port,
        Ok(Err(_)) => {
            eprintln!("error: PORT must be a port number (0-65535)");
            return ExitCode::FAILURE;
        }
    };
    let listener = match tokio::net::TcpListener::bind(("127.0.0.1", port)).await {
        Ok(listener) => listener,
        Err(error) => {
            eprintln!("error: cannot listen on 127.0.0.1:{port}: {error}");
            return ExitCode::FAILURE;
        }
    };
    let served = match shutdown {
        Some(shutdown) => axum::serve(listener, router).with_graceful_shutdown(shutdown).await,
        None => axum::serve(listener, router).await,
    };
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: server stopped: {error}");
            ExitCode::FAILURE
        }
    }
}

//! Shared by the end-to-end benchmark's baselines (`bench/e2e`): see the binaries.

use std::process::ExitCode;

pub mod handwritten;

/// Serves `router` on 127.0.0.1:$PORT (3000 unless set) until the process is stopped.
pub async fn serve(router: axum::Router) -> ExitCode {
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
    match axum::serve(listener, router).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: server stopped: {error}");
            ExitCode::FAILURE
        }
    }
}

//! A Groq webhook receiver whose metrics Prometheus scrapes at `/metrics`.
//!
//! ```sh
//! GROQ_WEBHOOK_SECRET=whsec_dev cargo run --example metrics_receiver --features metrics
//! # in a second terminal:
//! GROQ_WEBHOOK_SECRET=whsec_dev cargo run --example send_event -- resource.created
//! curl -s 127.0.0.1:3000/metrics | grep hookroute_deliveries
//! ```
//!
//! hookroute records through the `metrics` facade; the application picks the
//! exporter, here `metrics-exporter-prometheus`. Around that, it serves as the other
//! examples do (`examples/support`): 127.0.0.1:$PORT (default 3000; 0 picks a free
//! port), the store `HOOKROUTE_STORE` names.

use std::process::ExitCode;

use hookroute::{webhook_handlers, EventMeta, HandlerError};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder};
use serde::Deserialize;

mod support;

/// The `data` of Groq's `resource.*` events.
#[derive(Debug, Deserialize)]
struct Resource {
    id: String,
}

struct Handlers;

#[webhook_handlers(provider = "groq")]
impl Handlers {
    #[event("resource.created")]
    async fn created(&self, data: Resource, meta: &EventMeta) -> Result<(), HandlerError> {
        tracing::info!(event = meta.id(), resource = %data.id, "resource created");
        Ok(())
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    // Histograms as Prometheus histograms (buckets in seconds), not summaries.
    let buckets = [0.000_1, 0.000_5, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 30.0];
    let recorder = PrometheusBuilder::new().set_buckets_for_metric(Matcher::Suffix("duration".into()), &buckets);
    let prometheus = match recorder.and_then(PrometheusBuilder::install_recorder) {
        Ok(handle) => handle,
        Err(error) => {
            eprintln!("error: cannot install the metrics recorder: {error}");
            return ExitCode::FAILURE;
        }
    };
    // Histograms drain their samples into buckets on upkeep.
    let upkeep = prometheus.clone();
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(std::time::Duration::from_secs(5)).await;
            upkeep.run_upkeep();
        }
    });

    let metrics =
        axum::Router::new().route("/metrics", axum::routing::get(move || std::future::ready(prometheus.render())));
    support::serve_with(Handlers, metrics).await
}

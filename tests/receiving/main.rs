//! Receiving a delivery: each provider's verification (against the providers' own
//! libraries too), the receiver's pipeline, every HTTP stack over real sockets on
//! 127.0.0.1, what the attribute generates, traces and metrics. One test binary, a
//! module per concern (see ARCHITECTURE.md); modules that need a feature are compiled
//! with it (`scripts/test` turns on all).

#[path = "../support/mod.rs"]
mod support;

mod built_in_providers;
mod hygiene;
#[cfg(all(feature = "lambda", feature = "redis"))]
mod lambda;
#[cfg(feature = "metrics")]
mod metrics;
mod official_libraries;
mod providers;
mod receiver;
mod receiver_http;
mod scheme;
mod service;
mod serving;
mod traces;

//! `hookroute send --count N`: a bounded load run against a receiver, then a summary.

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::stream::{self, StreamExt};

use crate::{Failure, Recipe};

/// How much load, and where it may go.
pub(crate) struct Plan {
    pub(crate) count: u64,
    pub(crate) concurrency: usize,
    /// How many times each event is sent (1 + duplicates).
    pub(crate) copies: u64,
    pub(crate) allow_remote: bool,
    pub(crate) fixed_id: Option<String>,
    /// Print the summary as one JSON object.
    pub(crate) json: bool,
}

/// Whether the URL's host is this machine.
fn is_loopback(url: &reqwest::Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(domain)) => domain.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

pub(crate) async fn run(recipe: Recipe, url: reqwest::Url, plan: Plan) -> Result<ExitCode, Failure> {
    if !plan.allow_remote && !is_loopback(&url) {
        return Err(format!(
            "refusing to load-test {}: not a loopback address; pass --allow-remote if you mean it",
            url.host_str().unwrap_or("?")
        ));
    }
    let recipe = Arc::new(recipe);
    let client = reqwest::Client::new();
    let bar = indicatif::ProgressBar::new(plan.count);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} requests, {per_sec}, {eta} left")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let run = crate::fresh_id(0);
    let started = Instant::now();
    let results: Vec<(Option<u16>, Duration)> = stream::iter(0..plan.count)
        .map(|n| {
            let (recipe, client, url, bar) = (Arc::clone(&recipe), client.clone(), url.clone(), bar.clone());
            let id = plan.fixed_id.clone().unwrap_or_else(|| format!("{run}_{}", n / plan.copies));
            async move {
                let (headers, body) = recipe.build(&id);
                let sent = Instant::now();
                let status = match client.post(url).headers(headers).body(body).send().await {
                    Ok(response) => {
                        let status = response.status().as_u16();
                        let _ = response.bytes().await;
                        Some(status)
                    }
                    Err(_) => None,
                };
                bar.inc(1);
                (status, sent.elapsed())
            }
        })
        .buffer_unordered(plan.concurrency)
        .collect()
        .await;
    let elapsed = started.elapsed();
    bar.finish_and_clear();
    Ok(summarize(&results, elapsed, plan.json))
}

fn summarize(results: &[(Option<u16>, Duration)], elapsed: Duration, json: bool) -> ExitCode {
    let mut latencies: Vec<Duration> = results.iter().map(|(_, latency)| *latency).collect();
    latencies.sort_unstable();
    let percentile = |p: usize| {
        latencies.get((latencies.len() * p / 100).min(latencies.len().saturating_sub(1))).copied().unwrap_or_default()
    };
    let mut statuses: BTreeMap<String, usize> = BTreeMap::new();
    for (status, _) in results {
        *statuses.entry(status.map_or_else(|| "error".to_owned(), |s| s.to_string())).or_default() += 1;
    }
    #[allow(clippy::cast_precision_loss)] // a request count far below 2^52
    let rate = results.len() as f64 / elapsed.as_secs_f64().max(f64::EPSILON);
    // Duplicates answer 200 and copies in flight 409: both are the receiver doing its job.
    let healthy = results.iter().all(|(status, _)| matches!(status, Some(200..=299 | 409)));
    if json {
        let millis = |latency: Duration| latency.as_secs_f64() * 1000.0;
        let summary = serde_json::json!({
            "requests": results.len(),
            "seconds": elapsed.as_secs_f64(),
            "requests_per_second": rate,
            "latency_ms": {
                "p50": millis(percentile(50)),
                "p90": millis(percentile(90)),
                "p99": millis(percentile(99)),
                "max": millis(latencies.last().copied().unwrap_or_default()),
            },
            "statuses": statuses,
            "healthy": healthy,
        });
        println!("{summary}");
    } else {
        println!("requests: {} in {:.2} s, {rate:.0} requests/s", results.len(), elapsed.as_secs_f64());
        println!(
            "latency: p50 {:?}, p90 {:?}, p99 {:?}, max {:?}",
            percentile(50),
            percentile(90),
            percentile(99),
            latencies.last().copied().unwrap_or_default()
        );
        let counts: Vec<String> = statuses.iter().map(|(status, n)| format!("{status}: {n}")).collect();
        println!("statuses: {}", counts.join(", "));
    }
    if healthy {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

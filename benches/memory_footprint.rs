//! How many bytes a `MemoryStore` spends per remembered event id, and that its cap
//! bounds it: `cargo bench --bench memory_footprint`. Reads the process's resident
//! memory from /proc (Linux), so it is a figure to report, not a test. Also times the
//! claims and completions (with the cap, nine in ten of them evict the oldest event).

use std::time::{Duration, Instant};

use hookroute::store::{Claim, IdempotencyStore};
use hookroute::MemoryStore;

const IDS: usize = 1_000_000;

/// Resident set size in bytes, from /proc/self/statm (pages × 4 KiB).
fn rss() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    statm.split_whitespace().nth(1).and_then(|pages| pages.parse::<usize>().ok()).unwrap_or(0) * 4096
}

async fn remember(store: &MemoryStore, ids: usize) {
    for n in 0..ids {
        // A realistic key: provider, and an id the length of Stripe's `evt_` ids.
        let key = format!("stripe:event:evt_1NG8Du2eZvKYlo2CUI{n:08}");
        let Claim::Acquired(token) = store.claim(&key, Duration::from_secs(60)).await.expect("claim") else {
            panic!("fresh key not acquired")
        };
        store.complete(&key, &token, Duration::from_secs(7 * 24 * 3600)).await.expect("complete");
    }
}

fn main() {
    // Each case runs in a process of its own, so one cannot reuse the memory another freed.
    let case = std::env::args().find(|arg| arg == "uncapped" || arg == "capped");
    let Some(case) = case else {
        let exe = std::env::current_exe().expect("own path");
        for case in ["uncapped", "capped"] {
            let status = std::process::Command::new(&exe).arg(case).status().expect("the case runs");
            assert!(status.success(), "the {case} case failed");
        }
        return;
    };
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    runtime.block_on(async {
        let before = rss();
        let started = Instant::now();
        if case == "uncapped" {
            let store = MemoryStore::with_capacity(IDS);
            remember(&store, IDS).await;
            let per_id = started.elapsed().as_nanos() / IDS as u128;
            let grown = rss() - before;
            println!(
                "MemoryStore, {IDS} ids remembered: {} MiB more resident, {} bytes per id (keys of {} bytes); \
                 {per_id} ns per claim + complete",
                grown / (1024 * 1024),
                grown / IDS,
                "stripe:event:evt_1NG8Du2eZvKYlo2CUI00000000".len()
            );
        } else {
            let store = MemoryStore::with_capacity(IDS / 10);
            remember(&store, IDS).await;
            let per_id = started.elapsed().as_nanos() / IDS as u128;
            let grown = rss() - before;
            println!(
                "MemoryStore capped at {}, {IDS} ids sent: holds {}, {} MiB more resident ({} bytes per id held); \
                 {per_id} ns per claim + complete",
                IDS / 10,
                store.len(),
                grown / (1024 * 1024),
                grown / store.len().max(1)
            );
        }
    });
}

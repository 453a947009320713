//! The checks every [`Inbox`] must pass (feature `testing`).
//!
//! hookroute runs them against each of its backends; run them against yours (an SQS,
//! NATS or Kafka inbox). Unlike the store's checks, each check needs an inbox of its
//! own, **empty and seen by no other check** (a fresh table, key prefix or file), since
//! it takes whatever is due: the suite asks a closure for one per check.
//!
//! ```
//! use hookroute_runtime::{inbox::MemoryInbox, testing::inbox_conformance};
//!
//! # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
//! inbox_conformance::run_all(|| async { MemoryInbox::new() }).await;
//! # });
//! ```
//!
//! or one test per check with [`inbox_conformance_tests!`](crate::inbox_conformance_tests).
//!
//! Lease, delay and TTL checks wait for short times (1 s) to run out. Timing only ever
//! loosens an assertion, so a slow machine cannot make a correct inbox fail.

#![allow(clippy::missing_panics_doc)]

use std::collections::HashSet;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::inbox::{
    DeliveryState, Enqueued, Filter, Inbox, InboxAdmin, InboxError, Lease, Leased, Limits, NewDelivery, Order, StepKind,
};

/// A lease or TTL long enough never to run out during a check.
const LONG: Duration = Duration::from_secs(300);
/// A lease, delay or TTL the checks wait out.
const SHORT: Duration = Duration::from_secs(1);
/// How long past a short time the checks wait, for clocks and rounding.
const MARGIN: Duration = Duration::from_millis(300);

/// How many deliveries [`concurrent_takes_lease_each_once`] queues.
pub const MANY: usize = 200;
/// How many workers race in [`concurrent_takes_lease_each_once`] and
/// [`concurrent_enqueues_store_one`].
pub const RACERS: usize = 16;

/// Runs every check, each on an inbox `make` creates for it.
pub async fn run_all<I, F, Fut>(make: F)
where
    I: InboxAdmin,
    F: Fn() -> Fut,
    Fut: Future<Output = I>,
{
    enqueue_stores_once_exactly_as_received(&make().await).await;
    concurrent_enqueues_store_one(&Arc::new(make().await)).await;
    take_leases_the_oldest_due_delivery(&make().await).await;
    complete_makes_it_done(&make().await).await;
    retry_waits_for_its_delay_and_keeps_the_error(&make().await).await;
    dead_letters_wait_for_a_replay(&make().await).await;
    a_history_numbers_attempts_across_replays(&make().await).await;
    counts_by_type_and_activity_say_what_happened(&make().await).await;
    release_gives_it_back_unattempted(&make().await).await;
    an_expired_lease_is_taken_over(&make().await).await;
    a_batched_take_takes_each_expired_lease_over_once(&make().await).await;
    a_renewed_lease_is_kept(&make().await).await;
    done_is_remembered_for_its_ttl(&make().await).await;
    purge_deletes_old_done_records(&make().await).await;
    stats_count_every_state(&make().await).await;
    search_filters_and_pages_newest_first(&make().await).await;
    a_paused_type_stays_queued_until_resumed(&make().await).await;
    concurrent_takes_lease_each_once(&Arc::new(make().await)).await;
    batched_takes_lease_each_once_and_keep_pauses(&Arc::new(make().await)).await;
    let probe = make().await;
    if probe.orders() {
        a_key_runs_one_at_a_time_oldest_first(&probe).await;
        a_retrying_delivery_holds_its_key_and_a_dead_one_frees_it(&make().await).await;
        a_retry_releasing_its_key_lets_later_ones_run(&make().await).await;
        an_expired_lease_holds_its_key_until_it_ends(&make().await).await;
        in_flight_lets_that_many_of_a_key_run(&make().await).await;
        a_busy_key_goes_to_the_back_of_the_line(&make().await).await;
        a_type_cap_holds_across_keys(&make().await).await;
        a_batched_take_passes_over_a_capped_type_and_loses_none(&make().await).await;
        a_key_rate_spaces_its_starts(&make().await).await;
        a_stale_delivery_is_superseded(&make().await).await;
        a_delivery_queued_while_its_key_settles_is_taken(&make().await).await;
        a_search_finds_deliveries_waiting_behind_their_key(&make().await).await;
        a_batched_take_keeps_each_key_in_order(&make().await).await;
        concurrent_takes_keep_each_key_in_order(&Arc::new(make().await)).await;
    }
}

/// A paused event type stays queued, new deliveries of it too, while other types run;
/// resumed, its deliveries run again. Pausing twice or resuming a type that runs
/// answers `false`. (An inbox whose `pause` is [`InboxError::Unsupported`] skips it.)
pub async fn a_paused_type_stays_queued_until_resumed<I: InboxAdmin>(inbox: &I) {
    let check = "a_paused_type_stays_queued_until_resumed";
    let paused_type = "resource.deleted";
    let of_type = |key| NewDelivery { event_type: paused_type, ..delivery(key) };
    enqueue_keyed(check, inbox, &of_type("groq:event:p1")).await;
    enqueue(check, inbox, "groq:event:other").await;
    match inbox.pause(paused_type).await {
        // An inbox that cannot pause says so (the operator's tools show it); nothing to check.
        Err(InboxError::Unsupported { .. }) => return,
        first => assert!(ok(check, "pause", first), "{check}: a first pause"),
    }
    assert!(!ok(check, "pause", inbox.pause(paused_type).await), "{check}: a second pause of one type");
    assert_eq!(ok(check, "paused", inbox.paused().await), [paused_type], "{check}");
    enqueue_keyed(check, inbox, &of_type("groq:event:p2")).await;
    let other = take(check, inbox).await;
    assert_eq!(other.delivery.key, "groq:event:other", "{check}: another type runs");
    ok(check, "complete", inbox.complete(&other.lease, LONG).await);
    nothing(check, inbox, "its type is paused").await;
    let stats = ok(check, "stats", inbox.stats().await);
    assert_eq!(stats.queued, 2, "{check}: a paused type's deliveries count as queued");
    assert_eq!(state(check, inbox, "groq:event:p1").await, DeliveryState::Queued, "{check}");
    assert!(!ok(check, "resume", inbox.resume("resource.created").await), "{check}: resume of a type that runs");
    assert!(ok(check, "resume", inbox.resume(paused_type).await), "{check}: resume");
    assert!(ok(check, "paused", inbox.paused().await).is_empty(), "{check}");
    let mut taken = Vec::new();
    for _ in 0..2 {
        let leased = take(check, inbox).await;
        ok(check, "complete", inbox.complete(&leased.lease, LONG).await);
        taken.push(leased.delivery.key);
    }
    taken.sort();
    assert_eq!(taken, ["groq:event:p1", "groq:event:p2"], "{check}: both run once resumed");
}

/// A search finds what each filter asks for, newest first (by the time received,
/// then the key), a page at a time: the pages after each other's cursor hold every
/// match once.
pub async fn search_filters_and_pages_newest_first<I: InboxAdmin>(inbox: &I) {
    let check = "search_filters_and_pages_newest_first";
    let keys = ["groq:event:s1", "groq:event:s2", "groq:event:s3", "groq:event:s4", "groq:event:s5"];
    for (n, key) in keys.iter().enumerate() {
        let event_type = if n % 2 == 0 { "resource.created" } else { "resource.deleted" };
        let order = if n == 4 { Order { key: Some("cus_9"), ..Order::NONE } } else { Order::NONE };
        enqueue_keyed(check, inbox, &NewDelivery { event_type, order, ..delivery(key) }).await;
        tokio::time::sleep(Duration::from_millis(3)).await;
    }
    let dead = take(check, inbox).await;
    ok(check, "dead_letter", inbox.dead_letter(&dead.lease, "upstream TIMEOUT (504)").await);
    let retrying = take(check, inbox).await;
    ok(check, "retry", inbox.retry(&retrying.lease, LONG, "bad gateway").await);
    let done = take(check, inbox).await;
    ok(check, "complete", inbox.complete(&done.lease, LONG).await);
    let mut stored = Vec::new();
    for key in keys {
        stored.push(get(check, inbox, key).await);
    }
    stored.sort_by(|a, b| (b.received_at, &b.key).cmp(&(a.received_at, &a.key)));
    let newest_first: Vec<&str> = stored.iter().map(|d| d.key.as_str()).collect();

    let mut paged = Vec::new();
    let mut after = None;
    for page in 1..=3 {
        let found = ok(check, "search", inbox.search(&Filter::default(), after.as_ref(), 2).await);
        assert_eq!(found.deliveries.len(), if page < 3 { 2 } else { 1 }, "{check}: page {page}");
        assert_eq!(found.next.is_some(), page < 3, "{check}: a next cursor on page {page} of 3");
        paged.extend(found.deliveries.into_iter().map(|d| d.key));
        after = found.next;
    }
    assert_eq!(paged, newest_first, "{check}: the pages, newest first");

    let keys_of = |page: crate::inbox::Page| page.deliveries.into_iter().map(|d| d.key).collect::<Vec<_>>();
    let search = |filter: Filter| async move { keys_of(ok(check, "search", inbox.search(&filter, None, 10).await)) };
    let in_state = |state| Filter { state: Some(state), ..Filter::default() };
    assert_eq!(search(in_state(DeliveryState::Dead)).await, std::slice::from_ref(&dead.delivery.key), "{check}: dead");
    assert_eq!(
        search(in_state(DeliveryState::Retrying)).await,
        std::slice::from_ref(&retrying.delivery.key),
        "{check}: retrying"
    );
    assert_eq!(search(in_state(DeliveryState::Done)).await, std::slice::from_ref(&done.delivery.key), "{check}: done");
    let deleted: Vec<String> =
        stored.iter().filter(|d| d.event_type == "resource.deleted").map(|d| d.key.clone()).collect();
    let by_type = Filter { event_type: Some("resource.deleted".into()), ..Filter::default() };
    assert_eq!(search(by_type).await, deleted, "{check}: by event type");
    let error = |text: &str| Filter { error: Some(text.into()), ..Filter::default() };
    assert_eq!(
        search(error("timeout")).await,
        std::slice::from_ref(&dead.delivery.key),
        "{check}: error text in any case"
    );
    assert!(search(error("%")).await.is_empty(), "{check}: `%` in the error text is a character, not a wildcard");
    if inbox.orders() {
        // An inbox that does not order keeps no ordering key to search by.
        let by_key = Filter { order_key: Some("cus_9".into()), ..Filter::default() };
        assert_eq!(search(by_key).await, ["groq:event:s5"], "{check}: by ordering key");
    }
    let (newest, oldest) = (&stored[0], &stored[stored.len() - 1]);
    let since_newest = Filter { received_from: Some(newest.received_at), ..Filter::default() };
    assert_eq!(search(since_newest).await.first(), Some(&newest.key), "{check}: received from");
    let before_oldest = Filter { received_until: Some(oldest.received_at), ..Filter::default() };
    assert!(search(before_oldest).await.is_empty(), "{check}: received before the oldest");
    let both =
        Filter { state: Some(DeliveryState::Queued), event_type: Some("resource.created".into()), ..Filter::default() };
    let queued_created: Vec<String> = stored
        .iter()
        .filter(|d| d.state == DeliveryState::Queued && d.event_type == "resource.created")
        .map(|d| d.key.clone())
        .collect();
    assert!(!queued_created.is_empty(), "{check}: a queued delivery of the first type is left");
    assert_eq!(search(both.clone()).await, queued_created, "{check}: by state and event type");

    // Counting and replaying what a filter matches, a batch at a time.
    let count = |filter: Filter| async move { ok(check, "count", inbox.count(&filter).await) };
    assert_eq!(count(Filter::default()).await, 5, "{check}: count of all");
    assert_eq!(count(both).await, queued_created.len() as u64, "{check}: count by state and type");
    assert_eq!(count(in_state(DeliveryState::Dead)).await, 1, "{check}: count of the dead");
    let replayed = ok(check, "replay_matching", inbox.replay_matching(&in_state(DeliveryState::Dead), 1).await);
    assert_eq!(replayed, 1, "{check}: replay of what a filter matches");
    assert_eq!(state(check, inbox, &dead.delivery.key).await, DeliveryState::Queued, "{check}");
    assert_eq!(count(in_state(DeliveryState::Dead)).await, 0, "{check}: no dead left");
}

/// A new key is queued; the same key again is a duplicate; the record keeps the
/// headers, body and facts byte for byte.
pub async fn enqueue_stores_once_exactly_as_received<I: InboxAdmin>(inbox: &I) {
    let check = "enqueue_stores_once_exactly_as_received";
    let body = b"{\"id\":\"evt_1\",\"data\":{\"x\":\"\xc3\xa9\"}}   ";
    let headers = b"x-groq-signature: abc\r\nx-groq-timestamp: 1700000000\r\n";
    let new = NewDelivery {
        key: "groq:event:evt_1",
        id: "evt_1",
        event_type: "resource.created",
        headers,
        body,
        signed_at: Some(1_700_000_000),
        order: Order::NONE,
    };
    assert_eq!(ok(check, "enqueue", inbox.enqueue(&new).await), Enqueued::Queued, "{check}: first enqueue");
    assert_eq!(ok(check, "enqueue", inbox.enqueue(&new).await), Enqueued::Duplicate, "{check}: second enqueue");
    let stored = ok(check, "get", inbox.get(new.key).await).unwrap_or_else(|| panic!("{check}: get found nothing"));
    assert_eq!(stored.key, new.key, "{check}");
    assert_eq!(stored.id, "evt_1", "{check}");
    assert_eq!(stored.event_type, "resource.created", "{check}");
    assert_eq!(stored.headers, headers, "{check}: headers not kept exactly");
    assert_eq!(stored.body, body, "{check}: body not kept exactly");
    assert_eq!(stored.signed_at, Some(1_700_000_000), "{check}");
    assert_eq!((stored.state, stored.attempts), (DeliveryState::Queued, 0), "{check}");
    assert_eq!(stored.last_error, None, "{check}");
    assert!(ok(check, "get", inbox.get("groq:event:unknown").await).is_none(), "{check}: get of an unknown key");
}

/// [`RACERS`] enqueues of one key at once store one record: exactly one is queued.
pub async fn concurrent_enqueues_store_one<I: InboxAdmin>(inbox: &Arc<I>) {
    let check = "concurrent_enqueues_store_one";
    for round in 0..4 {
        let key: Arc<str> = format!("groq:event:race_{round}").into();
        let start = Arc::new(tokio::sync::Barrier::new(RACERS));
        let racers: Vec<_> = (0..RACERS)
            .map(|_| {
                let (inbox, key, start) = (Arc::clone(inbox), Arc::clone(&key), Arc::clone(&start));
                tokio::spawn(async move {
                    start.wait().await;
                    inbox.enqueue(&delivery(&key)).await
                })
            })
            .collect();
        let mut queued = 0;
        for racer in racers {
            match racer.await {
                Ok(Ok(Enqueued::Queued)) => queued += 1,
                Ok(Ok(Enqueued::Duplicate)) => {}
                Ok(Err(error)) => panic!("{check}: a racing enqueue failed: {error}"),
                Err(join) => panic!("{check}: a racing enqueue panicked: {join}"),
            }
        }
        assert_eq!(queued, 1, "{check}: {queued} of {RACERS} racing enqueues stored a record");
    }
    let stats = ok(check, "stats", inbox.stats().await);
    assert_eq!(stats.queued, 4, "{check}: {stats:?}");
}

/// Deliveries are taken oldest first, each once, with its attempt counted; nothing is
/// taken from an empty inbox or twice while leased.
pub async fn take_leases_the_oldest_due_delivery<I: InboxAdmin>(inbox: &I) {
    let check = "take_leases_the_oldest_due_delivery";
    assert!(ok(check, "take", inbox.take(LONG).await).is_none(), "{check}: took from an empty inbox");
    for n in 0..3 {
        enqueue(check, inbox, &format!("groq:event:order_{n}")).await;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    for n in 0..3 {
        let taken = take(check, inbox).await;
        assert_eq!(taken.delivery.key, format!("groq:event:order_{n}"), "{check}: not oldest first");
        assert_eq!(taken.delivery.attempts, 1, "{check}");
        assert_eq!(taken.delivery.state, DeliveryState::Running, "{check}");
        assert_eq!(taken.lease.key(), taken.delivery.key, "{check}");
    }
    assert!(ok(check, "take", inbox.take(LONG).await).is_none(), "{check}: took a leased delivery");
}

/// A completed delivery is done: a redelivery is a duplicate, nothing takes it, and
/// its lease cannot act again.
pub async fn complete_makes_it_done<I: InboxAdmin>(inbox: &I) {
    let check = "complete_makes_it_done";
    let key = "groq:event:done";
    enqueue(check, inbox, key).await;
    let taken = take(check, inbox).await;
    ok(check, "complete", inbox.complete(&taken.lease, LONG).await);
    assert_eq!(state(check, inbox, key).await, DeliveryState::Done, "{check}");
    assert_eq!(ok(check, "enqueue", inbox.enqueue(&delivery(key)).await), Enqueued::Duplicate, "{check}");
    assert!(ok(check, "take", inbox.take(LONG).await).is_none(), "{check}: took a done delivery");
    lost(check, "completing twice", inbox.complete(&taken.lease, LONG).await);
    lost(check, "retrying after complete", inbox.retry(&taken.lease, SHORT, "x").await);
    lost(check, "releasing after complete", inbox.release(&taken.lease).await);
    lost(check, "renewing after complete", inbox.renew(&taken.lease, LONG).await);
    let forged = Lease::new(key, "not-a-token");
    lost(check, "a lease with a wrong token", inbox.dead_letter(&forged, "x").await);
}

/// A retried delivery waits for its delay, keeps the error, and counts its attempts.
pub async fn retry_waits_for_its_delay_and_keeps_the_error<I: InboxAdmin>(inbox: &I) {
    let check = "retry_waits_for_its_delay_and_keeps_the_error";
    let key = "groq:event:retry";
    enqueue(check, inbox, key).await;
    let taken = take(check, inbox).await;
    let retried = Instant::now();
    ok(check, "retry", inbox.retry(&taken.lease, SHORT, "payment service down").await);
    let stored = get(check, inbox, key).await;
    assert_eq!(stored.state, DeliveryState::Retrying, "{check}");
    assert_eq!(stored.last_error.as_deref(), Some("payment service down"), "{check}");
    let early = ok(check, "take", inbox.take(LONG).await);
    if retried.elapsed() < SHORT {
        assert!(early.is_none(), "{check}: taken before its delay");
    }
    tokio::time::sleep_until((retried + SHORT + MARGIN).into()).await;
    let again = take(check, inbox).await;
    assert_eq!(again.delivery.attempts, 2, "{check}: the second attempt");
    assert_eq!(again.delivery.last_error.as_deref(), Some("payment service down"), "{check}");
    ok(check, "complete", inbox.complete(&again.lease, LONG).await);
}

/// A dead letter keeps its error, is never taken, is listed, and runs again once
/// replayed (with a fresh count of attempts); running or unknown deliveries are not
/// replayed.
pub async fn dead_letters_wait_for_a_replay<I: InboxAdmin>(inbox: &I) {
    let check = "dead_letters_wait_for_a_replay";
    let key = "groq:event:dead";
    enqueue(check, inbox, key).await;
    let taken = take(check, inbox).await;
    ok(check, "dead_letter", inbox.dead_letter(&taken.lease, "unknown customer").await);
    let stored = get(check, inbox, key).await;
    assert_eq!(stored.state, DeliveryState::Dead, "{check}");
    assert_eq!(stored.last_error.as_deref(), Some("unknown customer"), "{check}");
    assert!(ok(check, "take", inbox.take(LONG).await).is_none(), "{check}: took a dead letter");
    assert_eq!(ok(check, "enqueue", inbox.enqueue(&delivery(key)).await), Enqueued::Duplicate, "{check}");
    let dead = ok(check, "list", inbox.list(DeliveryState::Dead, 10).await);
    assert_eq!(dead.iter().map(|d| d.key.as_str()).collect::<Vec<_>>(), [key], "{check}: list of dead");
    assert!(ok(check, "replay", inbox.replay(key).await), "{check}: replay of a dead letter");
    assert!(!ok(check, "replay", inbox.replay("groq:event:unknown").await), "{check}: replay of an unknown key");
    let again = take(check, inbox).await;
    assert_eq!((again.delivery.key.as_str(), again.delivery.attempts), (key, 1), "{check}: after the replay");
    assert!(!ok(check, "replay", inbox.replay(key).await), "{check}: replay of a running delivery");
    ok(check, "complete", inbox.complete(&again.lease, LONG).await);
    assert!(ok(check, "list", inbox.list(DeliveryState::Dead, 10).await).is_empty(), "{check}: still listed dead");
    // A second dead letter, replayed with the rest.
    enqueue(check, inbox, "groq:event:dead_2").await;
    let taken = take(check, inbox).await;
    ok(check, "dead_letter", inbox.dead_letter(&taken.lease, "x").await);
    assert_eq!(ok(check, "replay_dead", inbox.replay_dead().await), 1, "{check}: replay_dead");
    assert_eq!(state(check, inbox, "groq:event:dead_2").await, DeliveryState::Queued, "{check}");
}

/// The history keeps each failed attempt with its error and each replay, and numbers
/// attempts across replays: the first attempt after a replay of a delivery that had 2
/// is attempt 3, though its schedule starts again (`attempts` is 1). A released
/// attempt leaves no step. (An inbox whose `history` is `None` keeps none: skipped.)
pub async fn a_history_numbers_attempts_across_replays<I: InboxAdmin>(inbox: &I) {
    let check = "a_history_numbers_attempts_across_replays";
    let key = "groq:event:history";
    if ok(check, "history", inbox.history(key).await).is_none() {
        return;
    }
    enqueue(check, inbox, key).await;
    let taken = take(check, inbox).await;
    ok(check, "retry", inbox.retry(&taken.lease, Duration::from_millis(1), "first: timeout").await);
    tokio::time::sleep(MARGIN).await;
    let taken = take(check, inbox).await;
    ok(check, "dead_letter", inbox.dead_letter(&taken.lease, "second: <b>gone</b>\n\"quoted\"").await);
    assert!(ok(check, "replay", inbox.replay(key).await), "{check}: replay");
    let taken = take(check, inbox).await;
    assert_eq!(taken.delivery.attempts, 1, "{check}: the schedule starts again after a replay");
    ok(check, "release", inbox.release(&taken.lease).await);
    let taken = take(check, inbox).await;
    // A long error is kept whole as the last error, cut in the history.
    let long = format!("third {}", "é".repeat(1500));
    ok(check, "retry", inbox.retry(&taken.lease, LONG, &long).await);
    assert_eq!(get(check, inbox, key).await.last_error.as_deref(), Some(long.as_str()), "{check}: the last error");
    let mut history = ok(check, "history", inbox.history(key).await).unwrap_or_default();
    let kept = history.steps.last_mut().and_then(|step| step.error.replace("third".into())).unwrap_or_default();
    assert!(
        long.starts_with(&kept) && (500..=1000).contains(&kept.chars().count()),
        "{check}: a history keeps at most 1,000 characters of an error, cut between two: {} kept",
        kept.chars().count()
    );
    let steps: Vec<(u32, StepKind, Option<&str>)> =
        history.steps.iter().map(|step| (step.attempt, step.kind, step.error.as_deref())).collect();
    assert_eq!(
        steps,
        [
            (1, StepKind::Retried, Some("first: timeout")),
            (2, StepKind::Dead, Some("second: <b>gone</b>\n\"quoted\"")),
            (2, StepKind::Replayed, None),
            (3, StepKind::Retried, Some("third")),
        ],
        "{check}"
    );
    assert_eq!(history.steps[2].from, Some(DeliveryState::Dead), "{check}: replayed from");
    let last = history.steps.last().map(|step| step.at);
    assert!(history.changed_at.is_some() && history.changed_at >= last, "{check}: when it last changed state");
    assert!(history.steps.windows(2).all(|pair| pair[0].at <= pair[1].at), "{check}: oldest first");
    assert_eq!(history.latest_attempt(&get(check, inbox, key).await), 3, "{check}: latest attempt");
    let unknown = ok(check, "history", inbox.history("groq:event:unknown").await).unwrap_or_default();
    assert!(unknown.steps.is_empty(), "{check}: history of an unknown key");
}

/// The counts by type hold each type's queued, running, retrying and dead deliveries;
/// the activity counts each completion and each failed attempt in its period. (An
/// inbox whose `activity` is `None` cannot tell: that part is skipped.)
pub async fn counts_by_type_and_activity_say_what_happened<I: InboxAdmin>(inbox: &I) {
    let check = "counts_by_type_and_activity_say_what_happened";
    let deleted = |key| NewDelivery { event_type: "resource.deleted", ..delivery(key) };
    // c1 done; c2 fails, then fails for good; c3 runs; d1 and d2 wait.
    for key in ["groq:event:c1", "groq:event:c2"] {
        enqueue(check, inbox, key).await;
    }
    let first = take(check, inbox).await;
    ok(check, "complete", inbox.complete(&first.lease, LONG).await);
    let second = take(check, inbox).await;
    ok(check, "retry", inbox.retry(&second.lease, Duration::from_millis(1), "down").await);
    tokio::time::sleep(MARGIN).await;
    let again = take(check, inbox).await;
    assert_eq!(again.delivery.key, second.delivery.key, "{check}: the retry is due first");
    ok(check, "dead_letter", inbox.dead_letter(&again.lease, "gone").await);
    enqueue(check, inbox, "groq:event:c3").await;
    enqueue_keyed(check, inbox, &deleted("groq:event:d1")).await;
    enqueue_keyed(check, inbox, &deleted("groq:event:d2")).await;
    let running = take(check, inbox).await;
    assert_eq!(running.delivery.key, "groq:event:c3", "{check}");
    let counts = ok(check, "type_counts", inbox.type_counts().await);
    let by_type: Vec<(&str, [u64; 4])> = counts
        .iter()
        .map(|counted| (counted.event_type.as_str(), [counted.queued, counted.running, counted.retrying, counted.dead]))
        .collect();
    assert_eq!(by_type, [("resource.created", [0, 1, 0, 1]), ("resource.deleted", [2, 0, 0, 0])], "{check}");
    let period = Duration::from_secs(60);
    let now = std::time::SystemTime::now();
    let start = now - Duration::from_secs(10 * 60);
    let Some(activity) = ok(check, "activity", inbox.activity(start, period, 12).await) else { return };
    assert_eq!((activity.done.len(), activity.failed.len()), (12, 12), "{check}");
    assert_eq!(activity.done.iter().sum::<u64>(), 1, "{check}: one completion: {activity:?}");
    assert_eq!(activity.failed.iter().sum::<u64>(), 2, "{check}: two failed attempts: {activity:?}");
    let later = ok(check, "activity", inbox.activity(now + Duration::from_secs(3600), period, 12).await);
    assert!(
        later.is_none_or(|later| later.done.iter().chain(&later.failed).all(|count| *count == 0)),
        "{check}: nothing happened in the next hour"
    );
}

/// A released delivery is due at once and its attempt is not counted.
pub async fn release_gives_it_back_unattempted<I: InboxAdmin>(inbox: &I) {
    let check = "release_gives_it_back_unattempted";
    let key = "groq:event:release";
    enqueue(check, inbox, key).await;
    let taken = take(check, inbox).await;
    ok(check, "release", inbox.release(&taken.lease).await);
    let stored = get(check, inbox, key).await;
    assert_eq!((stored.state, stored.attempts), (DeliveryState::Queued, 0), "{check}");
    lost(check, "releasing twice", inbox.release(&taken.lease).await);
    let again = take(check, inbox).await;
    assert_eq!(again.delivery.attempts, 1, "{check}");
    assert_ne!(again.lease, taken.lease, "{check}: the new lease reused the old token");
}

/// A lease that runs out (its worker died) lets another worker take the delivery; the
/// old lease cannot act on it any more.
pub async fn an_expired_lease_is_taken_over<I: InboxAdmin>(inbox: &I) {
    let check = "an_expired_lease_is_taken_over";
    let key = "groq:event:expired";
    enqueue(check, inbox, key).await;
    let started = Instant::now();
    let stale = ok(check, "take", inbox.take(SHORT).await).unwrap_or_else(|| panic!("{check}: nothing to take"));
    let early = ok(check, "take", inbox.take(LONG).await);
    if started.elapsed() < SHORT {
        assert!(early.is_none(), "{check}: taken within the lease");
    }
    tokio::time::sleep_until((started + SHORT + MARGIN).into()).await;
    let fresh = take(check, inbox).await;
    assert_eq!(fresh.delivery.attempts, 2, "{check}: the takeover is a second attempt");
    lost(check, "the stale lease completing", inbox.complete(&stale.lease, LONG).await);
    lost(check, "the stale lease renewing", inbox.renew(&stale.lease, LONG).await);
    ok(check, "the fresh lease completing", inbox.complete(&fresh.lease, LONG).await);
}

/// A batched take takes over each expired lease once, beside new deliveries: it looks
/// for expired leases again after each one it takes over, so a takeover's new lease
/// must be in place before the next look.
pub async fn a_batched_take_takes_each_expired_lease_over_once<I: InboxAdmin>(inbox: &I) {
    let check = "a_batched_take_takes_each_expired_lease_over_once";
    for n in 0..3 {
        enqueue(check, inbox, &format!("groq:event:expiring-{n}")).await;
    }
    let started = Instant::now();
    let mut stale = Vec::new();
    while stale.len() < 2 {
        match ok(check, "take", inbox.take(SHORT).await) {
            Some(leased) => stale.push(leased),
            None => panic!("{check}: {} taken of the 2 wanted", stale.len()),
        }
    }
    tokio::time::sleep_until((started + SHORT + MARGIN).into()).await;
    let mut taken = Vec::new();
    while taken.len() < 3 {
        let more = ok(check, "take_many", inbox.take_many(LONG, 10).await);
        assert!(!more.is_empty(), "{check}: {} taken of 3", taken.len());
        taken.extend(more);
    }
    let mut keys: Vec<&str> = taken.iter().map(|leased| leased.lease.key()).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["groq:event:expiring-0", "groq:event:expiring-1", "groq:event:expiring-2"], "{check}");
    let mut attempts: Vec<u32> = taken.iter().map(|leased| leased.delivery.attempts).collect();
    attempts.sort_unstable();
    assert_eq!(attempts, [1, 2, 2], "{check}: the two expired ones are second attempts");
    nothing(check, inbox, "every delivery is leased").await;
    for leased in &stale {
        lost(check, "a stale lease completing", inbox.complete(&leased.lease, LONG).await);
    }
}

/// A lease renewed in time is never taken over.
pub async fn a_renewed_lease_is_kept<I: InboxAdmin>(inbox: &I) {
    let check = "a_renewed_lease_is_kept";
    enqueue(check, inbox, "groq:event:renewed").await;
    let taken = ok(check, "take", inbox.take(SHORT).await).unwrap_or_else(|| panic!("{check}: nothing to take"));
    for _ in 0..8 {
        tokio::time::sleep(SHORT / 4).await;
        let renewed = Instant::now();
        ok(check, "renew", inbox.renew(&taken.lease, SHORT).await);
        let other = ok(check, "take", inbox.take(LONG).await);
        if renewed.elapsed() < SHORT {
            assert!(other.is_none(), "{check}: taken while its lease was renewed");
        }
    }
    ok(check, "complete", inbox.complete(&taken.lease, LONG).await);
}

/// A done key is a duplicate for its TTL, and a new delivery after it.
pub async fn done_is_remembered_for_its_ttl<I: InboxAdmin>(inbox: &I) {
    let check = "done_is_remembered_for_its_ttl";
    let key = "groq:event:ttl";
    enqueue(check, inbox, key).await;
    let taken = take(check, inbox).await;
    let completed = Instant::now();
    ok(check, "complete", inbox.complete(&taken.lease, SHORT).await);
    let again = ok(check, "enqueue", inbox.enqueue(&delivery(key)).await);
    if completed.elapsed() < SHORT {
        assert_eq!(again, Enqueued::Duplicate, "{check}: within the TTL");
    }
    tokio::time::sleep_until((completed + SHORT + MARGIN).into()).await;
    assert_eq!(ok(check, "enqueue", inbox.enqueue(&delivery(key)).await), Enqueued::Queued, "{check}: after the TTL");
    let taken = take(check, inbox).await;
    assert_eq!(taken.delivery.attempts, 1, "{check}: a new record");
}

/// `purge_done` deletes done records older than asked, and nothing else.
pub async fn purge_deletes_old_done_records<I: InboxAdmin>(inbox: &I) {
    let check = "purge_deletes_old_done_records";
    for n in 0..3 {
        let key = format!("groq:event:purge_{n}");
        enqueue(check, inbox, &key).await;
        let taken = take(check, inbox).await;
        ok(check, "complete", inbox.complete(&taken.lease, LONG).await);
    }
    enqueue(check, inbox, "groq:event:purge_queued").await;
    assert_eq!(ok(check, "purge_done", inbox.purge_done(LONG).await), 0, "{check}: purged recent records");
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_eq!(ok(check, "purge_done", inbox.purge_done(Duration::ZERO).await), 3, "{check}");
    assert!(ok(check, "get", inbox.get("groq:event:purge_0").await).is_none(), "{check}: still there");
    assert_eq!(state(check, inbox, "groq:event:purge_queued").await, DeliveryState::Queued, "{check}");
}

/// `stats` and `list` count and show each state; `stats_without_done` the same but
/// the done ones; `waiting` counts what waits.
pub async fn stats_count_every_state<I: InboxAdmin>(inbox: &I) {
    let check = "stats_count_every_state";
    for name in ["done", "dead", "retrying", "running"] {
        enqueue(check, inbox, &format!("groq:event:{name}")).await;
        let taken = take(check, inbox).await;
        match name {
            "done" => ok(check, "complete", inbox.complete(&taken.lease, LONG).await),
            "dead" => ok(check, "dead_letter", inbox.dead_letter(&taken.lease, "x").await),
            "retrying" => ok(check, "retry", inbox.retry(&taken.lease, LONG, "x").await),
            _ => {}
        }
    }
    enqueue(check, inbox, "groq:event:queued_1").await;
    enqueue(check, inbox, "groq:event:queued_2").await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    let stats = ok(check, "stats", inbox.stats().await);
    assert_eq!(
        (stats.queued, stats.running, stats.retrying, stats.done, stats.dead),
        (2, 1, 1, 1, 1),
        "{check}: {stats:?}"
    );
    // What health checks and gauges read: the same, the done ones left out.
    let without_done = ok(check, "stats_without_done", inbox.stats_without_done().await);
    assert_eq!(
        (without_done.queued, without_done.running, without_done.retrying, without_done.done, without_done.dead),
        (2, 1, 1, 0, 1),
        "{check}: stats_without_done {without_done:?}"
    );
    assert!(without_done.oldest_due_age.is_some(), "{check}: stats_without_done gave no oldest due age");
    // What the room check counts: queued and retrying, no more than asked for.
    assert_eq!(ok(check, "waiting", inbox.waiting(100).await), 3, "{check}: waiting, 2 queued and 1 retrying");
    assert_eq!(ok(check, "waiting", inbox.waiting(2).await), 2, "{check}: waiting up to 2");
    let oldest = stats.oldest_due_age.unwrap_or_else(|| panic!("{check}: no oldest due age with 2 queued"));
    assert!(oldest >= Duration::from_millis(10) && oldest < LONG, "{check}: oldest due age {oldest:?}");
    for (wanted, keys) in [
        (DeliveryState::Queued, &["groq:event:queued_1", "groq:event:queued_2"][..]),
        (DeliveryState::Running, &["groq:event:running"][..]),
        (DeliveryState::Retrying, &["groq:event:retrying"][..]),
        (DeliveryState::Done, &["groq:event:done"][..]),
        (DeliveryState::Dead, &["groq:event:dead"][..]),
    ] {
        let listed = ok(check, "list", inbox.list(wanted, 10).await);
        let mut listed: Vec<&str> = listed.iter().map(|d| d.key.as_str()).collect();
        listed.sort_unstable();
        assert_eq!(listed, keys, "{check}: list of {wanted}");
    }
    let limited = ok(check, "list", inbox.list(DeliveryState::Queued, 1).await);
    assert_eq!(limited.len(), 1, "{check}: list with limit 1");
}

/// [`MANY`] deliveries taken by [`RACERS`] workers at once: each is leased exactly once.
pub async fn concurrent_takes_lease_each_once<I: InboxAdmin>(inbox: &Arc<I>) {
    let check = "concurrent_takes_lease_each_once";
    for n in 0..MANY {
        enqueue(check, &**inbox, &format!("groq:event:many_{n}")).await;
    }
    let seen = Arc::new(Mutex::new(Vec::new()));
    let workers: Vec<_> = (0..RACERS)
        .map(|_| {
            let (inbox, seen) = (Arc::clone(inbox), Arc::clone(&seen));
            tokio::spawn(async move {
                while let Some(taken) = inbox.take(LONG).await.expect("take") {
                    seen.lock().expect("not poisoned").push(taken.delivery.key.clone());
                    inbox.complete(&taken.lease, LONG).await.expect("complete");
                }
            })
        })
        .collect();
    each_taken_once(check, workers, &seen).await;
    assert_eq!(ok(check, "stats", inbox.stats().await).done, MANY as u64, "{check}");
}

/// [`Inbox::take_many`] from [`RACERS`] workers at once, completing what they took
/// concurrently: each delivery is leased once, no answer holds more than was asked,
/// and a paused type's delivery is never taken. (An inbox whose `pause` is
/// [`InboxError::Unsupported`] checks the rest.)
pub async fn batched_takes_lease_each_once_and_keep_pauses<I: InboxAdmin>(inbox: &Arc<I>) {
    let check = "batched_takes_lease_each_once_and_keep_pauses";
    let pauses = match inbox.pause("resource.paused").await {
        Ok(paused) => paused,
        Err(InboxError::Unsupported { .. }) => false,
        Err(error) => panic!("inbox conformance `{check}`: pause failed: {error}"),
    };
    if pauses {
        let held_back = NewDelivery { event_type: "resource.paused", ..delivery("groq:event:paused") };
        assert_eq!(ok(check, "enqueue", inbox.enqueue(&held_back).await), Enqueued::Queued, "{check}");
    }
    for n in 0..MANY {
        enqueue(check, &**inbox, &format!("groq:event:many_{n}")).await;
    }
    let seen = Arc::new(Mutex::new(Vec::new()));
    let workers: Vec<_> = (0..RACERS)
        .map(|racer| {
            let (inbox, seen) = (Arc::clone(inbox), Arc::clone(&seen));
            let most = 1 + racer % 8;
            tokio::spawn(async move {
                loop {
                    let taken = inbox.take_many(LONG, most).await.expect("take_many");
                    assert!(taken.len() <= most, "took {} when {most} were asked for", taken.len());
                    if taken.is_empty() {
                        return;
                    }
                    let completes = taken.into_iter().map(|leased| {
                        seen.lock().expect("not poisoned").push(leased.delivery.key.clone());
                        let inbox = Arc::clone(&inbox);
                        tokio::spawn(async move { inbox.complete(&leased.lease, LONG).await.expect("complete") })
                    });
                    for complete in completes.collect::<Vec<_>>() {
                        complete.await.expect("a completion failed");
                    }
                }
            })
        })
        .collect();
    let distinct = each_taken_once(check, workers, &seen).await;
    let stats = ok(check, "stats", inbox.stats().await);
    assert_eq!(stats.done, MANY as u64, "{check}");
    if pauses {
        assert!(!distinct.contains("groq:event:paused"), "{check}: a paused type's delivery was taken");
        assert_eq!(stats.queued, 1, "{check}: the paused type's delivery is not queued");
    }
}

/// Waits for the racing workers; one that panicked fails the check.
async fn join_all(check: &str, workers: Vec<tokio::task::JoinHandle<()>>) {
    for worker in workers {
        if let Err(join) = worker.await {
            panic!("{check}: a worker failed: {join}");
        }
    }
}

/// Waits for the racing workers, then checks that they took each of [`MANY`]
/// deliveries (the keys in `seen`) once; answers the keys.
async fn each_taken_once(
    check: &str,
    workers: Vec<tokio::task::JoinHandle<()>>,
    seen: &Mutex<Vec<String>>,
) -> HashSet<String> {
    join_all(check, workers).await;
    let seen = seen.lock().expect("not poisoned").clone();
    assert_eq!(seen.len(), MANY, "{check}: {} takes for {MANY} deliveries", seen.len());
    let distinct: HashSet<String> = seen.into_iter().collect();
    assert_eq!(distinct.len(), MANY, "{check}: {} of {MANY} deliveries taken", distinct.len());
    distinct
}

/// A delivery of an ordering key, created at `created` (ms), with `limits`.
fn keyed<'a>(key: &'a str, lane: &'a str, created: u64, limits: Limits) -> NewDelivery<'a> {
    NewDelivery { order: Order { key: Some(lane), created_ms: Some(created), limits }, ..delivery(key) }
}

async fn enqueue_keyed<I: InboxAdmin + ?Sized>(check: &str, inbox: &I, new: &NewDelivery<'_>) {
    let enqueued = ok(check, "enqueue", inbox.enqueue(new).await);
    assert_eq!(enqueued, Enqueued::Queued, "inbox conformance `{check}`: enqueue of a new key `{}`", new.key);
}

/// Enqueues a `charge.succeeded` delivery without an ordering key, its type under `limits`.
async fn enqueue_capped<I: InboxAdmin + ?Sized>(check: &str, inbox: &I, key: &str, limits: Limits) {
    let new = NewDelivery {
        event_type: "charge.succeeded",
        order: Order { key: None, created_ms: None, limits },
        ..delivery(key)
    };
    enqueue_keyed(check, inbox, &new).await;
}

async fn nothing<I: InboxAdmin + ?Sized>(check: &str, inbox: &I, why: &str) {
    if let Some(taken) = ok(check, "take", inbox.take(LONG).await) {
        panic!("inbox conformance `{check}`: took `{}` though {why}", taken.delivery.key);
    }
}

/// The deliveries of one ordering key run one at a time, the one created first first
/// (whatever the order they arrived in); other deliveries run beside them; the key
/// and creation time are kept.
pub async fn a_key_runs_one_at_a_time_oldest_first<I: InboxAdmin>(inbox: &I) {
    let check = "a_key_runs_one_at_a_time_oldest_first";
    for (n, created) in [(1, 3000), (2, 1000), (3, 2000)] {
        enqueue_keyed(check, inbox, &keyed(&format!("groq:event:k{n}"), "cus_1", created, Limits::NONE)).await;
    }
    enqueue(check, inbox, "groq:event:free").await;
    let first = take(check, inbox).await;
    assert_eq!(first.delivery.key, "groq:event:k2", "{check}: not the key's oldest first");
    assert_eq!(first.delivery.order_key.as_deref(), Some("cus_1"), "{check}: the ordering key is not kept");
    assert_eq!(first.delivery.created_at, std::time::UNIX_EPOCH + Duration::from_secs(1), "{check}: creation time");
    assert!(!first.superseded, "{check}");
    assert_eq!(take(check, inbox).await.delivery.key, "groq:event:free", "{check}: an unordered one must run beside");
    nothing(check, inbox, "its key's delivery is running").await;
    ok(check, "complete", inbox.complete(&first.lease, LONG).await);
    let second = take(check, inbox).await;
    assert_eq!(second.delivery.key, "groq:event:k3", "{check}: not the next oldest");
    nothing(check, inbox, "its key's delivery is running").await;
    ok(check, "complete", inbox.complete(&second.lease, LONG).await);
    assert_eq!(take(check, inbox).await.delivery.key, "groq:event:k1", "{check}");
}

/// [`Inbox::take_many`] keeps each key's order and `in_flight`: asked for ten at a
/// time, an inbox leases the oldest two of a key that runs two at once beside the
/// unordered ones, never a third while they run, and the next two once they are done.
pub async fn a_batched_take_keeps_each_key_in_order<I: InboxAdmin>(inbox: &I) {
    let check = "a_batched_take_keeps_each_key_in_order";
    let two = Limits { in_flight: 2, ..Limits::NONE };
    for n in 1..=4 {
        enqueue_keyed(check, inbox, &keyed(&format!("groq:event:k{n}"), "cus_1", 1000 * n, two)).await;
    }
    for n in 1..=3 {
        enqueue(check, inbox, &format!("groq:event:free{n}")).await;
    }
    // Until nothing more may run.
    let taken = || async move {
        let mut running = Vec::new();
        for _ in 0..20 {
            let batch = ok(check, "take_many", inbox.take_many(LONG, 10).await);
            assert!(batch.len() <= 10, "{check}: took {} when 10 were asked for", batch.len());
            if batch.is_empty() {
                break;
            }
            running.extend(batch);
        }
        let mut keys: Vec<String> = running.iter().map(|leased| leased.delivery.key.clone()).collect();
        keys.sort_unstable();
        (running, keys)
    };
    let (running, keys) = taken().await;
    assert_eq!(
        keys,
        ["groq:event:free1", "groq:event:free2", "groq:event:free3", "groq:event:k1", "groq:event:k2"],
        "{check}: the key's oldest two beside the unordered ones, and no more of the key"
    );
    for leased in &running {
        ok(check, "complete", inbox.complete(&leased.lease, LONG).await);
    }
    let (_, keys) = taken().await;
    assert_eq!(keys, ["groq:event:k3", "groq:event:k4"], "{check}: the key's next two");
}

/// A search and a count find the deliveries waiting behind their key's running one (a
/// backend may keep them apart from the ones due), and the counts by type hold them.
pub async fn a_search_finds_deliveries_waiting_behind_their_key<I: InboxAdmin>(inbox: &I) {
    let check = "a_search_finds_deliveries_waiting_behind_their_key";
    for (n, created) in [(1, 1000), (2, 2000), (3, 3000)] {
        enqueue_keyed(check, inbox, &keyed(&format!("groq:event:w{n}"), "cus_w", created, Limits::NONE)).await;
    }
    let running = take(check, inbox).await;
    assert_eq!(running.delivery.key, "groq:event:w1", "{check}");
    let waiting = Filter { state: Some(DeliveryState::Queued), order_key: Some("cus_w".into()), ..Filter::default() };
    let page = ok(check, "search", inbox.search(&waiting, None, 10).await);
    let mut found: Vec<&str> = page.deliveries.iter().map(|delivery| delivery.key.as_str()).collect();
    found.sort_unstable();
    assert_eq!(found, ["groq:event:w2", "groq:event:w3"], "{check}: the queued ones behind the running one");
    assert_eq!(ok(check, "count", inbox.count(&waiting).await), 2, "{check}: count");
    let counts = ok(check, "type_counts", inbox.type_counts().await);
    let created = counts.iter().find(|counted| counted.event_type == "resource.created");
    assert_eq!(created.map(|counted| (counted.queued, counted.running)), Some((2, 1)), "{check}: by type");
}

/// A delivery waiting for its retry holds its key: the later ones wait behind it. A
/// dead letter frees it.
pub async fn a_retrying_delivery_holds_its_key_and_a_dead_one_frees_it<I: InboxAdmin>(inbox: &I) {
    let check = "a_retrying_delivery_holds_its_key_and_a_dead_one_frees_it";
    enqueue_keyed(check, inbox, &keyed("groq:event:a", "cus_1", 1000, Limits::NONE)).await;
    enqueue_keyed(check, inbox, &keyed("groq:event:b", "cus_1", 2000, Limits::NONE)).await;
    let a = take(check, inbox).await;
    assert_eq!(a.delivery.key, "groq:event:a", "{check}");
    ok(check, "retry", inbox.retry(&a.lease, SHORT, "boom").await);
    nothing(check, inbox, "the key's older delivery waits for its retry").await;
    tokio::time::sleep(SHORT + MARGIN).await;
    let again = take(check, inbox).await;
    assert_eq!((again.delivery.key.as_str(), again.delivery.attempts), ("groq:event:a", 2), "{check}");
    ok(check, "dead_letter", inbox.dead_letter(&again.lease, "boom").await);
    assert_eq!(take(check, inbox).await.delivery.key, "groq:event:b", "{check}: a dead letter must free its key");
}

/// A retry that releases its key (`Inbox::retry_releasing`) lets the key's later
/// deliveries run while it waits; once due, it runs again.
pub async fn a_retry_releasing_its_key_lets_later_ones_run<I: InboxAdmin>(inbox: &I) {
    let check = "a_retry_releasing_its_key_lets_later_ones_run";
    enqueue_keyed(check, inbox, &keyed("groq:event:a", "cus_1", 1000, Limits::NONE)).await;
    enqueue_keyed(check, inbox, &keyed("groq:event:b", "cus_1", 2000, Limits::NONE)).await;
    let a = take(check, inbox).await;
    assert_eq!(a.delivery.key, "groq:event:a", "{check}");
    ok(check, "retry_releasing", inbox.retry_releasing(&a.lease, SHORT, "boom").await);
    let b = take(check, inbox).await;
    assert_eq!(b.delivery.key, "groq:event:b", "{check}: the key's later delivery must run while `a` waits");
    ok(check, "complete", inbox.complete(&b.lease, LONG).await);
    tokio::time::sleep(SHORT + MARGIN).await;
    let again = take(check, inbox).await;
    assert_eq!((again.delivery.key.as_str(), again.delivery.attempts), ("groq:event:a", 2), "{check}");
}

/// A worker that died holds its key until its lease ends; then the same delivery is
/// taken again, before the key's later ones and before deliveries queued while it
/// ran (a backlog must not hold the key for longer than the lease).
pub async fn an_expired_lease_holds_its_key_until_it_ends<I: InboxAdmin>(inbox: &I) {
    let check = "an_expired_lease_holds_its_key_until_it_ends";
    enqueue_keyed(check, inbox, &keyed("groq:event:a", "cus_1", 1000, Limits::NONE)).await;
    enqueue_keyed(check, inbox, &keyed("groq:event:b", "cus_1", 2000, Limits::NONE)).await;
    let a = ok(check, "take", inbox.take(SHORT).await).unwrap_or_else(|| panic!("{check}: nothing to take"));
    assert_eq!(a.delivery.key, "groq:event:a", "{check}");
    nothing(check, inbox, "the lease on its key's delivery holds").await;
    enqueue(check, inbox, "groq:event:backlog").await;
    tokio::time::sleep(SHORT + MARGIN).await;
    let again = take(check, inbox).await;
    assert_eq!((again.delivery.key.as_str(), again.delivery.attempts), ("groq:event:a", 2), "{check}");
}

/// `in_flight = 2` lets two deliveries of a key run at once, the two oldest.
pub async fn in_flight_lets_that_many_of_a_key_run<I: InboxAdmin>(inbox: &I) {
    let check = "in_flight_lets_that_many_of_a_key_run";
    let two = Limits { in_flight: 2, ..Limits::NONE };
    for n in 1..=3 {
        enqueue_keyed(check, inbox, &keyed(&format!("groq:event:k{n}"), "cus_1", 1000 * n, two)).await;
    }
    let (a, b) = (take(check, inbox).await, take(check, inbox).await);
    assert_eq!([a.delivery.key.as_str(), b.delivery.key.as_str()], ["groq:event:k1", "groq:event:k2"], "{check}");
    nothing(check, inbox, "two of its key run").await;
    ok(check, "complete", inbox.complete(&b.lease, LONG).await);
    assert_eq!(take(check, inbox).await.delivery.key, "groq:event:k3", "{check}");
}

/// After a delivery of a busy key finished, the deliveries of other keys queued
/// before the busy key's next one run first: one key never holds the line.
pub async fn a_busy_key_goes_to_the_back_of_the_line<I: InboxAdmin>(inbox: &I) {
    let check = "a_busy_key_goes_to_the_back_of_the_line";
    for n in 1..=3 {
        enqueue_keyed(check, inbox, &keyed(&format!("groq:event:busy{n}"), "busy", n, Limits::NONE)).await;
    }
    tokio::time::sleep(Duration::from_millis(5)).await;
    for n in 1..=3 {
        enqueue_keyed(check, inbox, &keyed(&format!("groq:event:other{n}"), &format!("other{n}"), n, Limits::NONE))
            .await;
    }
    let busy = take(check, inbox).await;
    assert_eq!(busy.delivery.key, "groq:event:busy1", "{check}");
    ok(check, "complete", inbox.complete(&busy.lease, LONG).await);
    for n in 1..=3 {
        let taken = take(check, inbox).await;
        assert_eq!(taken.delivery.key, format!("groq:event:other{n}"), "{check}: the busy key went first");
        ok(check, "complete", inbox.complete(&taken.lease, LONG).await);
    }
    assert_eq!(take(check, inbox).await.delivery.key, "groq:event:busy2", "{check}");
}

/// `concurrency = 2` on a type: at most two of its deliveries run at once, whatever
/// their keys; other types run beside them.
pub async fn a_type_cap_holds_across_keys<I: InboxAdmin>(inbox: &I) {
    let check = "a_type_cap_holds_across_keys";
    let capped = Limits { type_concurrency: Some(2), ..Limits::NONE };
    for n in 1..=3 {
        enqueue_capped(check, inbox, &format!("groq:event:c{n}"), capped).await;
    }
    enqueue(check, inbox, "groq:event:free").await;
    let (a, b) = (take(check, inbox).await, take(check, inbox).await);
    assert_eq!(take(check, inbox).await.delivery.key, "groq:event:free", "{check}: another type must run beside");
    nothing(check, inbox, "two of its type run").await;
    ok(check, "complete", inbox.complete(&a.lease, LONG).await);
    assert_eq!(take(check, inbox).await.delivery.key, "groq:event:c3", "{check}");
    nothing(check, inbox, "two of its type run").await;
    ok(check, "retry", inbox.retry(&b.lease, LONG, "boom").await);
}

/// A batched take passes over the deliveries of a type at its cap and takes the others
/// behind them; the ones passed over are not lost: each runs once its type frees up,
/// one at a time, and every delivery is taken once.
pub async fn a_batched_take_passes_over_a_capped_type_and_loses_none<I: InboxAdmin>(inbox: &I) {
    let check = "a_batched_take_passes_over_a_capped_type_and_loses_none";
    let capped = Limits { type_concurrency: Some(1), ..Limits::NONE };
    for n in 1..=3 {
        enqueue_capped(check, inbox, &format!("groq:event:c{n}"), capped).await;
        enqueue(check, inbox, &format!("groq:event:free{n}")).await;
    }
    // Batches of `most` until nothing more may run (an inbox may answer fewer).
    let take_all = |most: usize| async move {
        let mut running = Vec::new();
        for _ in 0..20 {
            let batch = ok(check, "take_many", inbox.take_many(LONG, most).await);
            if batch.is_empty() {
                break;
            }
            running.extend(batch);
        }
        let mut keys: Vec<String> = running.iter().map(|leased| leased.delivery.key.clone()).collect();
        keys.sort_unstable();
        (running, keys)
    };
    let (mut running, keys) = take_all(2).await;
    assert_eq!(
        keys,
        ["groq:event:c1", "groq:event:free1", "groq:event:free2", "groq:event:free3"],
        "{check}: one of the capped type and every other one"
    );
    for next in ["groq:event:c2", "groq:event:c3"] {
        nothing(check, inbox, "one of its type runs").await;
        for leased in running.drain(..) {
            ok(check, "complete", inbox.complete(&leased.lease, LONG).await);
        }
        let (batch, keys) = take_all(10).await;
        assert_eq!(keys, [next], "{check}: the capped type's next, alone");
        running = batch;
    }
    for leased in running {
        ok(check, "complete", inbox.complete(&leased.lease, LONG).await);
    }
    nothing(check, inbox, "every delivery ran").await;
}

/// A key's rate spaces its starts: the next one waits until the interval passed. A
/// delivery of the key without a rate neither waits for it nor counts toward it.
pub async fn a_key_rate_spaces_its_starts<I: InboxAdmin>(inbox: &I) {
    let check = "a_key_rate_spaces_its_starts";
    let slow = Limits { key_interval_ms: Some(u64::try_from(SHORT.as_millis()).unwrap_or(1000)), ..Limits::NONE };
    enqueue_keyed(check, inbox, &keyed("groq:event:unrated", "cus_2", 1000, Limits::NONE)).await;
    enqueue_keyed(check, inbox, &keyed("groq:event:rated", "cus_2", 2000, slow)).await;
    let unrated = take(check, inbox).await;
    ok(check, "complete", inbox.complete(&unrated.lease, LONG).await);
    let rated = ok(check, "take", inbox.take(LONG).await);
    let rated = rated.unwrap_or_else(|| panic!("{check}: a start without a rate held the key's rate-limited one"));
    ok(check, "complete", inbox.complete(&rated.lease, LONG).await);
    enqueue_keyed(check, inbox, &keyed("groq:event:a", "cus_1", 1000, slow)).await;
    enqueue_keyed(check, inbox, &keyed("groq:event:b", "cus_1", 2000, slow)).await;
    let started = Instant::now();
    let a = take(check, inbox).await;
    ok(check, "complete", inbox.complete(&a.lease, LONG).await);
    if let Some(early) = ok(check, "take", inbox.take(LONG).await) {
        assert!(started.elapsed() >= SHORT, "{check}: took `{}` before the key's interval", early.delivery.key);
        return;
    }
    tokio::time::sleep(SHORT + MARGIN).await;
    assert_eq!(take(check, inbox).await.delivery.key, "groq:event:b", "{check}");
}

/// A delivery of a key queued while the key's running one settles is never stranded:
/// whichever finishes first, the new one can be taken at once after both. (A backend
/// that parks a key's backlog at enqueue must not park it behind a delivery whose
/// settle, under way, does not see it.)
pub async fn a_delivery_queued_while_its_key_settles_is_taken<I: InboxAdmin>(inbox: &I) {
    let check = "a_delivery_queued_while_its_key_settles_is_taken";
    for round in 0..40_u64 {
        let (head, next) = (format!("groq:event:head{round}"), format!("groq:event:next{round}"));
        enqueue_keyed(check, inbox, &keyed(&head, "cus_race", 1000 + 2 * round, Limits::NONE)).await;
        let running = take(check, inbox).await;
        assert_eq!(running.delivery.key, head, "{check}");
        let racing = keyed(&next, "cus_race", 1001 + 2 * round, Limits::NONE);
        let (completed, queued) = tokio::join!(inbox.complete(&running.lease, LONG), inbox.enqueue(&racing));
        ok(check, "complete", completed);
        assert_eq!(ok(check, "enqueue", queued), Enqueued::Queued, "{check}");
        let taken = ok(check, "take", inbox.take(LONG).await).unwrap_or_else(|| {
            panic!("inbox conformance `{check}`: `{next}` stranded behind its done key (round {round})")
        });
        assert_eq!(taken.delivery.key, next, "{check}");
        ok(check, "complete", inbox.complete(&taken.lease, LONG).await);
    }
}

/// A delivery of a key whose newer delivery (created later) is already done is
/// taken as superseded.
pub async fn a_stale_delivery_is_superseded<I: InboxAdmin>(inbox: &I) {
    let check = "a_stale_delivery_is_superseded";
    let two = Limits { in_flight: 2, ..Limits::NONE };
    enqueue_keyed(check, inbox, &keyed("groq:event:old", "cus_1", 1000, two)).await;
    enqueue_keyed(check, inbox, &keyed("groq:event:new", "cus_1", 2000, two)).await;
    let (old, new) = (take(check, inbox).await, take(check, inbox).await);
    assert!(!old.superseded && !new.superseded, "{check}: nothing newer was done yet");
    ok(check, "complete", inbox.complete(&new.lease, LONG).await);
    ok(check, "retry", inbox.retry(&old.lease, Duration::from_millis(1), "boom").await);
    tokio::time::sleep(Duration::from_millis(20)).await;
    let again = take(check, inbox).await;
    assert_eq!(again.delivery.key, "groq:event:old", "{check}");
    assert!(again.superseded, "{check}: a newer delivery of its key is done");
}

/// [`RACERS`] workers (half of them taking three at a time) drain 20 keys × 5 deliveries: no two runs of a key overlap,
/// and each key's deliveries run in creation order.
pub async fn concurrent_takes_keep_each_key_in_order<I: InboxAdmin>(inbox: &Arc<I>) {
    let check = "concurrent_takes_keep_each_key_in_order";
    for n in (0..5).rev() {
        for key in 0..20 {
            let name = format!("groq:event:k{key}_{n}");
            enqueue_keyed(check, &**inbox, &keyed(&name, &format!("cus_{key}"), 1000 + n, Limits::NONE)).await;
        }
    }
    let runs = Arc::new(Mutex::new(Vec::new()));
    let workers: Vec<_> = (0..RACERS)
        .map(|racer| {
            let (inbox, runs) = (Arc::clone(inbox), Arc::clone(&runs));
            // Half the workers take in batches.
            let most = if racer % 2 == 0 { 1 } else { 3 };
            tokio::spawn(async move {
                let mut idle = 0;
                while idle < 3 {
                    let taken = inbox.take_many(LONG, most).await.expect("take_many");
                    if taken.is_empty() {
                        idle += 1;
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        continue;
                    }
                    idle = 0;
                    for taken in taken {
                        let start = Instant::now();
                        tokio::time::sleep(Duration::from_millis(fastrand::u64(0..3))).await;
                        let end = Instant::now();
                        let lane = taken.delivery.order_key.clone().unwrap_or_default();
                        runs.lock().expect("not poisoned").push((lane, taken.delivery.created_at, start, end));
                        inbox.complete(&taken.lease, LONG).await.expect("complete");
                    }
                }
            })
        })
        .collect();
    join_all(check, workers).await;
    let mut runs = runs.lock().expect("not poisoned").clone();
    assert_eq!(runs.len(), 100, "{check}: {} runs of 100 deliveries", runs.len());
    runs.sort_by_key(|(lane, _, start, _)| (lane.clone(), *start));
    for pair in runs.windows(2) {
        let [(lane, created, _, end), (next_lane, next_created, next_start, _)] = pair else { continue };
        if lane == next_lane {
            assert!(end <= next_start, "{check}: two runs of `{lane}` overlapped");
            assert!(created < next_created, "{check}: `{lane}` ran out of creation order");
        }
    }
}

fn delivery(key: &str) -> NewDelivery<'_> {
    let id = key.rsplit(':').next().unwrap_or(key);
    NewDelivery {
        key,
        id,
        event_type: "resource.created",
        headers: b"x-groq-timestamp: 1700000000\r\n",
        body: b"{}",
        signed_at: None,
        order: Order::NONE,
    }
}

#[track_caller]
fn ok<T>(check: &str, what: &str, result: Result<T, InboxError>) -> T {
    result.unwrap_or_else(|error| panic!("inbox conformance `{check}`: {what} failed: {error}"))
}

#[track_caller]
fn lost(check: &str, what: &str, result: Result<(), InboxError>) {
    match result {
        Err(InboxError::ClaimLost { .. }) => {}
        other => panic!("inbox conformance `{check}`: {what} answered {other:?}, expected Err(ClaimLost)"),
    }
}

async fn enqueue<I: InboxAdmin + ?Sized>(check: &str, inbox: &I, key: &str) {
    let enqueued = ok(check, "enqueue", inbox.enqueue(&delivery(key)).await);
    assert_eq!(enqueued, Enqueued::Queued, "inbox conformance `{check}`: enqueue of a new key `{key}`");
}

async fn take<I: InboxAdmin + ?Sized>(check: &str, inbox: &I) -> Leased {
    ok(check, "take", inbox.take(LONG).await).unwrap_or_else(|| panic!("inbox conformance `{check}`: nothing to take"))
}

async fn get<I: InboxAdmin + ?Sized>(check: &str, inbox: &I, key: &str) -> crate::inbox::StoredDelivery {
    ok(check, "get", inbox.get(key).await).unwrap_or_else(|| panic!("inbox conformance `{check}`: `{key}` not found"))
}

async fn state<I: InboxAdmin + ?Sized>(check: &str, inbox: &I, key: &str) -> DeliveryState {
    get(check, inbox, key).await.state
}

/// Writes one `#[tokio::test]` per inbox conformance check for the inbox that `$make`
/// builds (an expression evaluated in an `async` block for each check, so it may
/// `.await`; each evaluation must give an empty inbox no other check sees). Needs
/// `tokio` with the `macros` and `rt-multi-thread` features among the caller's
/// dev-dependencies. `inbox_conformance_tests!(ordered: $make)` adds the ordering
/// checks, for an inbox that [orders](crate::inbox::Inbox::orders).
///
/// ```ignore
/// mod sqlite_inbox {
///     hookroute::inbox_conformance_tests!(
///         hookroute::inbox::SqliteInbox::open(tempfile::tempdir().unwrap().keep().join("inbox.db")).await.unwrap()
///     );
/// }
/// ```
#[macro_export]
macro_rules! inbox_conformance_tests {
    // The ordering checks, for an inbox that orders (`Inbox::orders`).
    (ordered: $make:expr) => {
        $crate::inbox_conformance_tests!($make);
        $crate::inbox_conformance_tests!(@checks ($make)
            a_key_runs_one_at_a_time_oldest_first a_retrying_delivery_holds_its_key_and_a_dead_one_frees_it
            a_retry_releasing_its_key_lets_later_ones_run
            an_expired_lease_holds_its_key_until_it_ends in_flight_lets_that_many_of_a_key_run
            a_busy_key_goes_to_the_back_of_the_line a_type_cap_holds_across_keys
            a_batched_take_passes_over_a_capped_type_and_loses_none a_key_rate_spaces_its_starts
            a_stale_delivery_is_superseded a_delivery_queued_while_its_key_settles_is_taken
            a_search_finds_deliveries_waiting_behind_their_key a_batched_take_keeps_each_key_in_order);
        $crate::inbox_conformance_tests!(@shared ($make) concurrent_takes_keep_each_key_in_order);
    };
    ($make:expr) => {
        $crate::inbox_conformance_tests!(@checks ($make)
            enqueue_stores_once_exactly_as_received take_leases_the_oldest_due_delivery
            complete_makes_it_done retry_waits_for_its_delay_and_keeps_the_error
            dead_letters_wait_for_a_replay a_history_numbers_attempts_across_replays
            counts_by_type_and_activity_say_what_happened release_gives_it_back_unattempted an_expired_lease_is_taken_over
            a_batched_take_takes_each_expired_lease_over_once
            a_renewed_lease_is_kept done_is_remembered_for_its_ttl purge_deletes_old_done_records
            stats_count_every_state search_filters_and_pages_newest_first
            a_paused_type_stays_queued_until_resumed);
        $crate::inbox_conformance_tests!(@shared ($make)
            concurrent_enqueues_store_one concurrent_takes_lease_each_once
            batched_takes_lease_each_once_and_keep_pauses);
    };
    (@checks ($make:expr) $($check:ident)+) => {
        $(
            #[::tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $check() {
                let inbox = $make;
                $crate::testing::inbox_conformance::$check(&inbox).await;
            }
        )+
    };
    (@shared ($make:expr) $($check:ident)+) => {
        $(
            #[::tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $check() {
                let inbox = ::std::sync::Arc::new($make);
                $crate::testing::inbox_conformance::$check(&inbox).await;
            }
        )+
    };
}

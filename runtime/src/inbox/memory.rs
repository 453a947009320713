//! An inbox in this process's memory: for tests and demos, not durable.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime};

use super::{
    from_unix_millis, lease_token, unix_millis, Activity, Cursor, DeliveryState, Enqueued, Filter, History,
    HistoryLine, Inbox, InboxAdmin, InboxError, InboxStats, KeyStats, Lease, Leased, Limits, NewDelivery, Page,
    StoredDelivery, TypeCounts,
};
use crate::backend::millis;

/// Done records past their TTL are swept once every this many enqueues.
const SWEEP_EVERY: u64 = 1024;

/// An inbox in memory. **Not durable**: what it holds is lost with the process, so a
/// `202` from a receiver on it promises nothing across a restart. For tests, demos
/// and trying the inbox out; production wants `SqliteInbox`, `PostgresInbox` or
/// `RedisInbox`.
///
/// ```
/// let inbox = hookroute_runtime::inbox::MemoryInbox::new();
/// ```
#[derive(Default)]
pub struct MemoryInbox {
    state: Mutex<State>,
}

impl std::fmt::Debug for MemoryInbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryInbox").field("records", &self.lock().records.len()).finish()
    }
}

#[derive(Default)]
struct State {
    records: HashMap<String, Record>,
    /// Queued and running records by when they are due (the lease's end for running
    /// ones), then by arrival.
    due: BTreeMap<(i64, u64), String>,
    /// The places in `due` of the running records (by when their leases end).
    leases: BTreeSet<(i64, u64)>,
    sequence: u64,
    /// The namespace whose deliveries these are, once a receiver bound it.
    owner: Option<String>,
    /// Each ordering key's pending deliveries and history.
    lanes: HashMap<String, Lane>,
    /// The keys of the running deliveries of each event type with a fleet-wide cap.
    running_by_type: HashMap<String, BTreeSet<String>>,
    /// The paused event types.
    paused: BTreeSet<String>,
}

/// One ordering key.
#[derive(Default)]
struct Lane {
    /// Its queued, retrying and running deliveries, in order: (created, arrival, key).
    pending: BTreeSet<(i64, u64, String)>,
    /// When its last delivery started (for a rate).
    last_start: Option<i64>,
    /// The newest creation time among its done deliveries, and when the last of them
    /// expires.
    done: Option<(i64, i64)>,
}

struct Record {
    delivery: StoredDelivery,
    /// Queued or running: its place in `due`. Done: when it expires.
    slot: (i64, u64),
    token: Option<String>,
    updated_at: i64,
    /// Its place in its lane: (created, arrival).
    place: (i64, u64),
    limits: Limits,
    /// Waiting for a retry that does not hold its key: until when.
    releases_until: Option<i64>,
    /// Its failed attempts and replays, as [`HistoryLine`]s.
    history: String,
}

impl Record {
    fn lane_entry(&self) -> Option<(&str, (i64, u64, String))> {
        let lane = self.delivery.order_key.as_deref()?;
        Some((lane, (self.place.0, self.place.1, self.delivery.key.clone())))
    }

    fn running_until(&self, now: i64) -> bool {
        self.delivery.state == DeliveryState::Running && self.slot.0 > now
    }
}

impl MemoryInbox {
    /// An empty inbox.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Every method leaves the maps consistent before it can panic.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn now() -> i64 {
    unix_millis(SystemTime::now())
}

fn after(now: i64, duration: Duration) -> i64 {
    now.saturating_add(millis(duration))
}

impl State {
    fn next_slot(&mut self, at: i64) -> (i64, u64) {
        self.sequence += 1;
        (at, self.sequence)
    }

    /// The record `lease` holds, if it still does.
    fn held(&mut self, lease: &Lease) -> Result<&mut Record, InboxError> {
        match self.records.get_mut(lease.key()) {
            Some(record)
                if record.delivery.state == DeliveryState::Running
                    && record.token.as_deref() == Some(lease.token()) =>
            {
                Ok(record)
            }
            _ => Err(InboxError::ClaimLost { key: lease.key().to_owned() }),
        }
    }

    /// Moves the record `lease` holds to `state`, due (or expiring) at `at`.
    fn settle(&mut self, lease: &Lease, state: DeliveryState, at: i64, error: Option<&str>) -> Result<(), InboxError> {
        let slot = self.next_slot(at);
        let now = now();
        let record = self.held(lease)?;
        let old = std::mem::replace(&mut record.slot, slot);
        record.delivery.state = state;
        record.token = None;
        record.updated_at = now;
        if let Some(error) = error {
            record.delivery.last_error = Some(error.to_owned());
            let dead = state == DeliveryState::Dead;
            record.history.push_str(&HistoryLine::failed(record.delivery.attempts, now, dead, error));
        }
        let (lane, typed) = (record.lane_entry(), record.limits.type_concurrency.map(|_| &record.delivery.event_type));
        let (lane, typed) = (lane.map(|(lane, entry)| (lane.to_owned(), entry)), typed.cloned());
        self.due.remove(&old);
        self.leases.remove(&old);
        if matches!(state, DeliveryState::Queued | DeliveryState::Retrying) {
            self.due.insert(slot, lease.key().to_owned());
        }
        if let Some(running) = typed.and_then(|event_type| self.running_by_type.get_mut(&event_type)) {
            running.remove(lease.key());
        }
        if let Some((name, entry)) = lane {
            let lane = self.lanes.entry(name).or_default();
            if matches!(state, DeliveryState::Done | DeliveryState::Dead) {
                lane.pending.remove(&entry);
            }
            if state == DeliveryState::Done {
                let (newest, expires) = lane.done.unwrap_or((i64::MIN, i64::MIN));
                lane.done = Some((newest.max(entry.0), expires.max(at)));
            }
            // The lane goes to the back of the line: its next delivery is due no
            // earlier than now.
            let next = lane.pending.iter().find(|(_, _, key)| key != lease.key()).map(|(_, _, key)| key.clone());
            if let Some(next) = next {
                self.behind(&next, now);
            }
        }
        Ok(())
    }

    /// Makes the queued delivery under `key` due no earlier than `at`.
    fn behind(&mut self, key: &str, at: i64) {
        let Some(record) = self.records.get(key) else { return };
        if record.delivery.state == DeliveryState::Running || record.slot.0 >= at {
            return;
        }
        let old = record.slot;
        let slot = self.next_slot(at);
        if let Some(record) = self.records.get_mut(key) {
            record.slot = slot;
        }
        self.due.remove(&old);
        self.due.insert(slot, key.to_owned());
    }

    /// Whether the record's ordering key and limits let it run now.
    fn may_run(&self, record: &Record, now: i64) -> bool {
        let limits = record.limits;
        if let Some((name, entry)) = record.lane_entry() {
            let Some(lane) = self.lanes.get(name) else { return true };
            let in_flight = limits.in_flight as usize;
            let holds = |key: &String| {
                self.records.get(key).is_none_or(|other| other.releases_until.is_none_or(|until| until <= now))
            };
            if lane.pending.range(..entry).filter(|(_, _, key)| holds(key)).take(in_flight).count() >= in_flight {
                return false;
            }
            let running = lane
                .pending
                .iter()
                .filter(|(_, _, key)| *key != record.delivery.key)
                .filter(|(_, _, key)| self.records.get(key).is_some_and(|other| other.running_until(now)))
                .take(in_flight)
                .count();
            if running >= in_flight {
                return false;
            }
            if let (Some(interval), Some(last)) = (limits.key_interval_ms, lane.last_start) {
                if now < last.saturating_add(i64::try_from(interval).unwrap_or(i64::MAX)) {
                    return false;
                }
            }
        }
        if let Some(cap) = limits.type_concurrency {
            let running = self.running_by_type.get(&record.delivery.event_type).map_or(0, |keys| {
                keys.iter()
                    .filter(|key| **key != record.delivery.key)
                    .filter(|key| self.records.get(*key).is_some_and(|other| other.running_until(now)))
                    .count()
            });
            if running >= cap as usize {
                return false;
            }
        }
        true
    }

    fn sweep(&mut self, now: i64) {
        self.records.retain(|_, record| !(record.delivery.state == DeliveryState::Done && record.slot.0 <= now));
        self.lanes.retain(|_, lane| !lane.pending.is_empty() || lane.done.is_some_and(|(_, expires)| expires > now));
    }
}

#[async_trait::async_trait]
impl Inbox for MemoryInbox {
    fn backend(&self) -> &'static str {
        "memory"
    }

    fn orders(&self) -> bool {
        true
    }

    async fn owner(&self) -> Result<Option<String>, InboxError> {
        Ok(self.lock().owner.clone())
    }

    async fn forget_payloads(&self, older_than: Duration) -> Result<u64, InboxError> {
        let cutoff = now().saturating_sub(i64::try_from(older_than.as_millis()).unwrap_or(i64::MAX));
        let mut state = self.lock();
        let mut forgotten = 0;
        for record in state.records.values_mut() {
            let delivery = &mut record.delivery;
            if delivery.state == DeliveryState::Done && record.updated_at <= cutoff && !delivery.body.is_empty() {
                delivery.body = Vec::new();
                delivery.headers = Vec::new();
                forgotten += 1;
            }
        }
        Ok(forgotten)
    }

    async fn bind(&self, namespace: &str, also: &[String]) -> Result<(), InboxError> {
        let mut state = self.lock();
        let owner = state.owner.get_or_insert_with(|| namespace.to_owned());
        if let Some(new) = super::bind_owner(owner, namespace, also, "another `MemoryInbox`")? {
            new.clone_into(owner);
        }
        Ok(())
    }

    async fn enqueue(&self, delivery: &NewDelivery<'_>) -> Result<Enqueued, InboxError> {
        let now = now();
        let mut state = self.lock();
        if let Some(record) = state.records.get(delivery.key) {
            let expired = record.delivery.state == DeliveryState::Done && record.slot.0 <= now;
            if !expired {
                return Ok(Enqueued::Duplicate);
            }
        }
        let slot = state.next_slot(now);
        if slot.1 % SWEEP_EVERY == 0 {
            state.sweep(now);
        }
        let created = delivery.order.created_ms.map_or(now, |at| i64::try_from(at).unwrap_or(i64::MAX));
        let record = Record {
            delivery: StoredDelivery {
                key: delivery.key.to_owned(),
                id: delivery.id.to_owned(),
                event_type: delivery.event_type.to_owned(),
                headers: delivery.headers.to_owned(),
                body: delivery.body.to_owned(),
                signed_at: delivery.signed_at,
                state: DeliveryState::Queued,
                attempts: 0,
                last_error: None,
                received_at: from_unix_millis(now),
                order_key: delivery.order.key.map(str::to_owned),
                created_at: from_unix_millis(created),
            },
            slot,
            token: None,
            updated_at: now,
            place: (created, slot.1),
            limits: delivery.order.limits,
            releases_until: None,
            history: String::new(),
        };
        if let Some((lane, entry)) = record.lane_entry() {
            state.lanes.entry(lane.to_owned()).or_default().pending.insert(entry);
        }
        state.records.insert(delivery.key.to_owned(), record);
        state.due.insert(slot, delivery.key.to_owned());
        Ok(Enqueued::Queued)
    }

    async fn take(&self, lease: Duration) -> Result<Option<Leased>, InboxError> {
        let now = now();
        let mut state = self.lock();
        let state = &mut *state;
        let may_run = |slot: &(i64, u64)| {
            let key = state.due.get(slot);
            key.and_then(|key| state.records.get(key)).is_some_and(|record| state.may_run(record, now))
        };
        let paused = |slot: &(i64, u64)| {
            let key = state.due.get(slot);
            key.and_then(|key| state.records.get(key))
                .is_some_and(|record| state.paused.contains(&record.delivery.event_type))
        };
        // An expired lease first: its delivery is the oldest, and with an ordering key it
        // holds the key until taken again. Then the delivery due longest, unless its
        // type is paused.
        let due = ..(now.saturating_add(1), 0);
        let expired = state.leases.range(due).find(|slot| may_run(slot)).copied();
        let found = expired.or_else(|| {
            state
                .due
                .range(due)
                .map(|(slot, _)| slot)
                .find(|slot| !state.leases.contains(slot) && may_run(slot) && !paused(slot))
                .copied()
        });
        let Some(old) = found else { return Ok(None) };
        state.leases.remove(&old);
        let key = state.due.remove(&old).unwrap_or_default();
        let slot = state.next_slot(after(now, lease));
        let token = lease_token();
        let Some(record) = state.records.get_mut(&key) else {
            return Err(InboxError::Unavailable(format!("memory inbox lost the record of `{key}`").into()));
        };
        record.slot = slot;
        record.token = Some(token.clone());
        record.updated_at = now;
        record.delivery.state = DeliveryState::Running;
        record.delivery.attempts += 1;
        record.releases_until = None;
        let delivery = record.delivery.clone();
        let (place, typed, rated) =
            (record.place.0, record.limits.type_concurrency.is_some(), record.limits.key_interval_ms.is_some());
        state.due.insert(slot, key.clone());
        state.leases.insert(slot);
        if typed {
            state.running_by_type.entry(delivery.event_type.clone()).or_default().insert(key.clone());
        }
        let mut superseded = false;
        if let Some(lane) = delivery.order_key.as_ref().and_then(|lane| state.lanes.get_mut(lane)) {
            if rated {
                lane.last_start = Some(now);
            }
            superseded = lane.done.is_some_and(|(newest, expires)| newest > place && expires > now);
        }
        Ok(Some(Leased { delivery, lease: Lease::new(key, token), superseded }))
    }

    async fn renew(&self, lease: &Lease, duration: Duration) -> Result<(), InboxError> {
        let mut state = self.lock();
        let slot = state.next_slot(after(now(), duration));
        let record = state.held(lease)?;
        let old = std::mem::replace(&mut record.slot, slot);
        state.due.remove(&old);
        state.leases.remove(&old);
        state.due.insert(slot, lease.key().to_owned());
        state.leases.insert(slot);
        Ok(())
    }

    async fn complete(&self, lease: &Lease, ttl: Duration) -> Result<(), InboxError> {
        self.lock().settle(lease, DeliveryState::Done, after(now(), ttl), None)
    }

    async fn retry(&self, lease: &Lease, delay: Duration, error: &str) -> Result<(), InboxError> {
        self.lock().settle(lease, DeliveryState::Retrying, after(now(), delay), Some(error))
    }

    async fn retry_releasing(&self, lease: &Lease, delay: Duration, error: &str) -> Result<(), InboxError> {
        let mut state = self.lock();
        let until = after(now(), delay);
        state.held(lease)?.releases_until = Some(until);
        state.settle(lease, DeliveryState::Retrying, until, Some(error))
    }

    async fn dead_letter(&self, lease: &Lease, error: &str) -> Result<(), InboxError> {
        self.lock().settle(lease, DeliveryState::Dead, i64::MAX, Some(error))
    }

    async fn release(&self, lease: &Lease) -> Result<(), InboxError> {
        let mut state = self.lock();
        let record = state.held(lease)?;
        record.delivery.attempts = record.delivery.attempts.saturating_sub(1);
        let back = if record.delivery.attempts == 0 { DeliveryState::Queued } else { DeliveryState::Retrying };
        state.settle(lease, back, now(), None)
    }

    async fn stats(&self) -> Result<InboxStats, InboxError> {
        let now = now();
        let inbox = self.lock();
        let mut stats = InboxStats::default();
        for record in inbox.records.values() {
            // A done record past its TTL is forgotten, though not swept yet.
            if !(record.delivery.state == DeliveryState::Done && record.slot.0 <= now) {
                stats.add(record.delivery.state, 1);
            }
        }
        stats.oldest_due_age = inbox
            .due
            .iter()
            .find(|(_, key)| inbox.records.get(*key).is_some_and(|r| r.delivery.state != DeliveryState::Running))
            .and_then(|(&(due, _), _)| (due <= now).then(|| Duration::from_millis((now - due).unsigned_abs())));
        Ok(stats)
    }

    async fn key_stats(&self) -> Result<Option<KeyStats>, InboxError> {
        let inbox = self.lock();
        let mut counted = KeyStats::default();
        for lane in inbox.lanes.values() {
            let records: Vec<&Record> = lane.pending.iter().filter_map(|(_, _, key)| inbox.records.get(key)).collect();
            let in_flight = records.first().map_or(1, |record| record.limits.in_flight as usize);
            counted.waiting += u64::from(records.len() > in_flight);
            counted.held_by_retry += u64::from(
                records
                    .iter()
                    .take(in_flight)
                    .any(|record| record.delivery.state == DeliveryState::Retrying && record.releases_until.is_none()),
            );
        }
        Ok(Some(counted))
    }
}

#[async_trait::async_trait]
impl InboxAdmin for MemoryInbox {
    async fn list(&self, wanted: DeliveryState, limit: usize) -> Result<Vec<StoredDelivery>, InboxError> {
        let now = now();
        let state = self.lock();
        let mut found: Vec<(i64, &StoredDelivery)> = state
            .records
            .values()
            .filter(|r| r.delivery.state == wanted && !(wanted == DeliveryState::Done && r.slot.0 <= now))
            .map(|r| (r.updated_at, &r.delivery))
            .collect();
        found.sort_by_key(|(updated, delivery)| (*updated, delivery.key.as_str()));
        Ok(found.into_iter().take(limit).map(|(_, delivery)| delivery.clone()).collect())
    }

    async fn search(&self, filter: &Filter, after: Option<&Cursor>, limit: usize) -> Result<Page, InboxError> {
        let now = now();
        let state = self.lock();
        let mut found: Vec<&StoredDelivery> = state
            .records
            .values()
            .filter(|r| !(r.delivery.state == DeliveryState::Done && r.slot.0 <= now))
            .map(|r| &r.delivery)
            .filter(|delivery| filter.matches(delivery) && after.is_none_or(|after| after.precedes(delivery)))
            .collect();
        found.sort_unstable_by(|a, b| Page::newest_first(a, b));
        Ok(Page::of(found.into_iter().take(limit.saturating_add(1)).cloned().collect(), limit))
    }

    async fn pause(&self, event_type: &str) -> Result<bool, InboxError> {
        Ok(self.lock().paused.insert(event_type.to_owned()))
    }

    async fn resume(&self, event_type: &str) -> Result<bool, InboxError> {
        Ok(self.lock().paused.remove(event_type))
    }

    async fn paused(&self) -> Result<Vec<String>, InboxError> {
        Ok(self.lock().paused.iter().cloned().collect())
    }

    async fn get(&self, key: &str) -> Result<Option<StoredDelivery>, InboxError> {
        Ok(self.lock().records.get(key).map(|record| record.delivery.clone()))
    }

    async fn type_counts(&self) -> Result<Vec<TypeCounts>, InboxError> {
        let state = self.lock();
        let rows = state.records.values().filter(|r| r.delivery.state != DeliveryState::Done);
        Ok(TypeCounts::from_rows(rows.map(|r| (r.delivery.event_type.clone(), r.delivery.state, 1))))
    }

    async fn activity(
        &self,
        start: SystemTime,
        period: Duration,
        periods: usize,
    ) -> Result<Option<Activity>, InboxError> {
        let now = now();
        let mut activity = Activity::new(start, period, periods);
        let state = self.lock();
        for record in state.records.values() {
            if record.delivery.state == DeliveryState::Done && record.slot.0 > now {
                activity.add_done(record.updated_at, 1);
            }
            activity.add_history(&record.history);
        }
        Ok(Some(activity))
    }

    async fn history(&self, key: &str) -> Result<Option<History>, InboxError> {
        let state = self.lock();
        let read = |record: &Record| HistoryLine::read(&record.history, Some(record.updated_at));
        Ok(Some(state.records.get(key).map(read).unwrap_or_default()))
    }

    async fn list_key(&self, order_key: &str, limit: usize) -> Result<Vec<StoredDelivery>, InboxError> {
        let state = self.lock();
        let Some(lane) = state.lanes.get(order_key) else { return Ok(Vec::new()) };
        let pending = lane.pending.iter().filter_map(|(_, _, key)| state.records.get(key));
        Ok(pending.take(limit).map(|record| record.delivery.clone()).collect())
    }

    async fn replay(&self, key: &str) -> Result<bool, InboxError> {
        let now = now();
        let mut state = self.lock();
        let slot = state.next_slot(now);
        let Some(record) = state.records.get_mut(key) else { return Ok(false) };
        if record.delivery.state == DeliveryState::Running {
            return Ok(false);
        }
        let old = std::mem::replace(&mut record.slot, slot);
        record.history.push_str(&HistoryLine::replayed(record.delivery.attempts, now, record.delivery.state));
        record.delivery.state = DeliveryState::Queued;
        record.delivery.attempts = 0;
        record.updated_at = now;
        let lane = record.lane_entry().map(|(lane, entry)| (lane.to_owned(), entry));
        state.due.remove(&old);
        state.due.insert(slot, key.to_owned());
        if let Some((lane, entry)) = lane {
            state.lanes.entry(lane).or_default().pending.insert(entry);
        }
        Ok(true)
    }

    async fn purge_done(&self, older_than: Duration) -> Result<u64, InboxError> {
        let now = now();
        let cutoff = now.saturating_sub(millis(older_than));
        let mut state = self.lock();
        let before = state.records.len();
        state.records.retain(|_, record| {
            record.delivery.state != DeliveryState::Done || (record.updated_at > cutoff && record.slot.0 > now)
        });
        Ok((before - state.records.len()) as u64)
    }
}

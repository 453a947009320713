//! The operator's side of an inbox: look deliveries up, search them, replay and purge.
//!
//! [`Inbox`] is what receivers and workers need (enqueue, take, settle, count).
//! [`InboxAdmin`] is what an operator's tools need on top (the `hookroute inbox`
//! command): a backend that can only queue (a message broker) implements the first
//! alone, and those tools say what it cannot show.

use std::fmt;
use std::str::FromStr;
use std::time::{Duration, SystemTime};

use super::{unix_millis, DeliveryState, Inbox, InboxError, StoredDelivery};

/// Which deliveries a [search](InboxAdmin::search) finds: each field that is set
/// narrows it; the default finds every delivery (done ones while remembered).
///
/// ```
/// use hookroute_runtime::inbox::{DeliveryState, Filter};
///
/// let failing = Filter { state: Some(DeliveryState::Dead), event_type: Some("invoice.paid".into()), ..Filter::default() };
/// assert!(failing.matches_state(DeliveryState::Dead));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    /// Only deliveries in this state.
    pub state: Option<DeliveryState>,
    /// Only deliveries of this event type (exactly).
    pub event_type: Option<String>,
    /// Only deliveries of this ordering key (exactly).
    pub order_key: Option<String>,
    /// Only deliveries whose last error contains this text (ASCII letters in any case).
    pub error: Option<String>,
    /// Only deliveries received at or after this time (to the millisecond).
    pub received_from: Option<SystemTime>,
    /// Only deliveries received before this time (to the millisecond).
    pub received_until: Option<SystemTime>,
}

impl Filter {
    /// Whether it narrows by something other than time (a state, a type, a key or an
    /// error text): what a replay of "everything it matches" must ask for.
    pub fn narrows(&self) -> bool {
        self.state.is_some() || self.event_type.is_some() || self.order_key.is_some() || self.error.is_some()
    }

    /// Whether a delivery in `state` can match (no state asked, or that one).
    pub fn matches_state(&self, state: DeliveryState) -> bool {
        self.state.is_none_or(|wanted| wanted == state)
    }

    /// Whether `delivery` matches every field that is set: what a backend that reads
    /// records one by one filters with.
    pub fn matches(&self, delivery: &StoredDelivery) -> bool {
        let received = unix_millis(delivery.received_at);
        self.matches_state(delivery.state)
            && self.event_type.as_ref().is_none_or(|wanted| *wanted == delivery.event_type)
            && self.order_key.as_ref().is_none_or(|wanted| delivery.order_key.as_ref() == Some(wanted))
            && self.error.as_ref().is_none_or(|wanted| {
                delivery.last_error.as_ref().is_some_and(|error| contains_ignoring_case(error, wanted))
            })
            && self.received_from.is_none_or(|from| received >= unix_millis(from))
            && self.received_until.is_none_or(|until| received < unix_millis(until))
    }

    /// The error text as a SQL `LIKE` pattern (`%`, `_` and `\` escaped with `\`), for
    /// the backends that search in SQL.
    #[cfg(any(feature = "postgres", feature = "sqlite"))]
    pub(crate) fn error_pattern(&self) -> Option<String> {
        self.error.as_ref().map(|text| {
            let mut pattern = String::with_capacity(text.len() + 2);
            pattern.push('%');
            for c in text.chars() {
                if matches!(c, '%' | '_' | '\\') {
                    pattern.push('\\');
                }
                pattern.push(c);
            }
            pattern.push('%');
            pattern
        })
    }
}

fn contains_ignoring_case(haystack: &str, needle: &str) -> bool {
    needle.is_empty()
        || haystack.as_bytes().windows(needle.len()).any(|window| window.eq_ignore_ascii_case(needle.as_bytes()))
}

/// Where a page of a search ended: the next page starts after it. Searches run newest
/// first (by the time received, then the key): a cursor is a position in that order,
/// never an offset, so a page costs the same wherever it is and deliveries arriving
/// meanwhile do not shift it.
///
/// Written as `<unix ms>:<key>` (its [`Display`](fmt::Display) and [`FromStr`]), for
/// a URL or a command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    received_ms: i64,
    key: String,
}

impl Cursor {
    /// The cursor just past `delivery`.
    pub fn after(delivery: &StoredDelivery) -> Self {
        Self { received_ms: unix_millis(delivery.received_at), key: delivery.key.clone() }
    }

    /// When the last delivery of the page was received, in Unix milliseconds.
    pub fn received_ms(&self) -> i64 {
        self.received_ms
    }

    /// The key of the last delivery of the page.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// Whether `delivery` comes after this cursor, newest first.
    pub fn precedes(&self, delivery: &StoredDelivery) -> bool {
        (unix_millis(delivery.received_at), delivery.key.as_str()) < (self.received_ms, self.key.as_str())
    }
}

impl fmt::Display for Cursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.received_ms, self.key)
    }
}

impl FromStr for Cursor {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let (ms, key) = text
            .split_once(':')
            .ok_or_else(|| format!("`{text}` is not a cursor: expected `<unix ms>:<key>`, as a page's `next` gives"))?;
        let received_ms =
            ms.parse().map_err(|_| format!("`{text}` is not a cursor: `{ms}` is not a time in Unix milliseconds"))?;
        if key.is_empty() {
            return Err(format!("`{text}` is not a cursor: the key after `:` is empty"));
        }
        Ok(Self { received_ms, key: key.to_owned() })
    }
}

/// One page of a [search](InboxAdmin::search), newest first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Page {
    /// At most the limit asked for.
    pub deliveries: Vec<StoredDelivery>,
    /// Where the next page starts; `None` on the last page.
    pub next: Option<Cursor>,
}

impl Page {
    /// The order of a search: newest first by the time received, then the key (what a
    /// [`Cursor`] is a position in), for a backend that sorts what it read.
    pub fn newest_first(a: &StoredDelivery, b: &StoredDelivery) -> std::cmp::Ordering {
        (b.received_at, &b.key).cmp(&(a.received_at, &a.key))
    }

    /// The page of `limit` from `found` (newest first, at most `limit + 1` read, the
    /// extra one telling that another page follows).
    pub fn of(mut found: Vec<StoredDelivery>, limit: usize) -> Self {
        let more = found.len() > limit;
        found.truncate(limit);
        let next = if more { found.last().map(Cursor::after) } else { None };
        Self { deliveries: found, next }
    }
}

/// How many deliveries of one event type wait, run or failed: a row of
/// [`InboxAdmin::type_counts`]. Done deliveries are not counted by type.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TypeCounts {
    /// The event type.
    pub event_type: String,
    /// Waiting for their first attempt.
    pub queued: u64,
    /// Held by a worker.
    pub running: u64,
    /// Failed, waiting for their next attempt.
    pub retrying: u64,
    /// Dead letters.
    pub dead: u64,
}

impl TypeCounts {
    /// Counts `count` more in `state` (done is not counted by type).
    pub fn add(&mut self, state: DeliveryState, count: u64) {
        match state {
            DeliveryState::Queued => self.queued += count,
            DeliveryState::Running => self.running += count,
            DeliveryState::Retrying => self.retrying += count,
            DeliveryState::Dead => self.dead += count,
            DeliveryState::Done => {}
        }
    }

    /// Sorted by type, from (type, state name, count) rows a SQL backend read.
    #[cfg(any(feature = "postgres", feature = "sqlite"))]
    pub(crate) fn from_named_rows(rows: Vec<(String, String, i64)>) -> Result<Vec<Self>, InboxError> {
        let mut counted = Vec::with_capacity(rows.len());
        for (event_type, state, count) in rows {
            let state = state.parse().map_err(|err: String| InboxError::Unavailable(err.into()))?;
            counted.push((event_type, state, count.unsigned_abs()));
        }
        Ok(Self::from_rows(counted))
    }

    /// Sorted by type, from (type, state, count) rows.
    pub fn from_rows(rows: impl IntoIterator<Item = (String, DeliveryState, u64)>) -> Vec<Self> {
        let mut by_type: std::collections::BTreeMap<String, Self> = std::collections::BTreeMap::new();
        for (event_type, state, count) in rows {
            by_type
                .entry(event_type)
                .or_insert_with_key(|event_type| Self { event_type: event_type.clone(), ..Self::default() })
                .add(state, count);
        }
        by_type.into_values().collect()
    }
}

/// Deliveries done and attempts failed in each period of equal length from `start`,
/// oldest first: what [`InboxAdmin::activity`] answers, for the console's chart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Activity {
    /// When the first period starts.
    pub start: SystemTime,
    /// How long each period is.
    pub period: Duration,
    /// Deliveries completed in each period.
    pub done: Vec<u64>,
    /// Attempts that failed (retried or dead-lettered) in each period.
    pub failed: Vec<u64>,
}

impl Activity {
    /// `periods` empty periods of `period` from `start`.
    pub fn new(start: SystemTime, period: Duration, periods: usize) -> Self {
        Self { start, period: period.max(Duration::from_millis(1)), done: vec![0; periods], failed: vec![0; periods] }
    }

    /// Its span in Unix milliseconds, for a backend that counts in storage: (the
    /// start, a period's length, the end).
    pub fn span_ms(&self) -> (i64, i64, i64) {
        let (from, period) = (unix_millis(self.start), i64::try_from(self.period.as_millis()).unwrap_or(i64::MAX));
        let periods = i64::try_from(self.done.len()).unwrap_or(i64::MAX);
        (from, period, from.saturating_add(period.saturating_mul(periods)))
    }

    /// The period holding Unix millisecond `at`, if any.
    pub fn period_of(&self, at_ms: i64) -> Option<usize> {
        let since = at_ms.checked_sub(unix_millis(self.start))?;
        let index = usize::try_from(since / i64::try_from(self.period.as_millis()).ok()?).ok()?;
        (index < self.done.len()).then_some(index)
    }

    /// Counts `count` completions at Unix millisecond `at` (outside every period: none).
    pub fn add_done(&mut self, at_ms: i64, count: u64) {
        if let Some(index) = self.period_of(at_ms) {
            self.done[index] += count;
        }
    }

    /// Counts `count` failed attempts at Unix millisecond `at`.
    pub fn add_failed(&mut self, at_ms: i64, count: u64) {
        if let Some(index) = self.period_of(at_ms) {
            self.failed[index] += count;
        }
    }

    /// Counts the failed attempts of a stored history (see [`HistoryLine`]).
    pub(crate) fn add_history(&mut self, text: &str) {
        for step in HistoryLine::read(text, None).steps {
            if step.kind != StepKind::Replayed {
                self.add_failed(unix_millis(step.at), 1);
            }
        }
    }
}

/// What became of a delivery's attempts that failed, and its replays, oldest first:
/// what [`InboxAdmin::history`] answers. A delivery's attempts are numbered across
/// replays: the first attempt after a replay of a delivery that had 3 is attempt 4
/// (its retry schedule starts again, so the handler's
/// [`attempt`](crate::EventMeta::attempt) is 1).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct History {
    /// The failed attempts and the replays, oldest first.
    pub steps: Vec<Step>,
    /// How many attempts the delivery had before its last replay: its current
    /// [`attempts`](StoredDelivery::attempts) count on from there.
    pub earlier_attempts: u32,
    /// When the delivery last changed state: for a done one, when its last attempt
    /// succeeded; for a running one, when its attempt started.
    pub changed_at: Option<SystemTime>,
}

impl History {
    /// The number, across replays, of the delivery's latest attempt.
    pub fn latest_attempt(&self, delivery: &StoredDelivery) -> u32 {
        self.earlier_attempts.saturating_add(delivery.attempts)
    }
}

/// One step of a [`History`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// The attempt's number across replays; for a replay, the number of the last
    /// attempt before it.
    pub attempt: u32,
    /// When the attempt ended, or the replay was asked for.
    pub at: SystemTime,
    /// What it was.
    pub kind: StepKind,
    /// The handler's error, for a failed attempt: its first 1,000 characters (Redis:
    /// bytes, cut between two characters). The delivery's `last_error` keeps it whole.
    pub error: Option<String>,
    /// For a replay, the state it was replayed from (`done` after a successful attempt).
    pub from: Option<DeliveryState>,
}

/// What a [`Step`] was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum StepKind {
    /// The attempt failed; another was scheduled.
    Retried,
    /// The attempt failed for good: the delivery became a dead letter.
    Dead,
    /// An operator queued the delivery again.
    Replayed,
}

impl StepKind {
    /// `retried`, `dead` or `replayed`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Retried => "retried",
            Self::Dead => "dead",
            Self::Replayed => "replayed",
        }
    }
}

/// The most characters of an error a history keeps per attempt (the delivery's
/// `last_error` keeps it whole): a handler failing with a long message many times does
/// not grow its record without bound.
pub(crate) const HISTORY_ERROR_CHARS: usize = 1000;

/// How a backend stores a history: one JSON object a line, appended. A failed attempt:
/// `{"n": <attempt of this schedule>, "at": <unix ms>, "o": "retry" | "dead", "error": …}`;
/// a replay: `{"replayed": <attempts of the schedule it ends>, "at": <unix ms>, "from":
/// <the state it left>}`. A backend writes them in its own language (SQL's
/// `json_build_object`, Lua's `cjson`); these read and write them in Rust.
#[derive(serde::Serialize, serde::Deserialize)]
pub(crate) struct HistoryLine {
    #[serde(skip_serializing_if = "Option::is_none")]
    n: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    replayed: Option<u32>,
    at: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    o: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    from: Option<String>,
}

impl HistoryLine {
    /// The line of a failed attempt (`dead`: for good).
    pub(crate) fn failed(attempt: u32, at: i64, dead: bool, error: &str) -> String {
        let o = Some(if dead { "dead" } else { "retry" }.to_owned());
        let error = error.chars().take(HISTORY_ERROR_CHARS).collect();
        Self::write(&Self { n: Some(attempt), replayed: None, at, o, error: Some(error), from: None })
    }

    /// The line of a replay of a delivery in state `from` that had `attempts` in its
    /// schedule.
    pub(crate) fn replayed(attempts: u32, at: i64, from: DeliveryState) -> String {
        let from = Some(from.as_str().to_owned());
        Self::write(&Self { n: None, replayed: Some(attempts), at, o: None, error: None, from })
    }

    fn write(line: &Self) -> String {
        let mut text = serde_json::to_string(line).unwrap_or_default();
        text.push('\n');
        text
    }

    /// Reads the lines a backend stored (a line that does not read is left out), of a
    /// delivery that last changed state at Unix millisecond `changed_ms`.
    pub(crate) fn read(text: &str, changed_ms: Option<i64>) -> History {
        let mut history = History { changed_at: changed_ms.map(super::from_unix_millis), ..History::default() };
        for line in text.lines().filter_map(|line| serde_json::from_str::<Self>(line).ok()) {
            let at = super::from_unix_millis(line.at);
            if let Some(attempts) = line.replayed {
                history.earlier_attempts = history.earlier_attempts.saturating_add(attempts);
                let attempt = history.earlier_attempts;
                let from = line.from.and_then(|from| from.parse().ok());
                history.steps.push(Step { attempt, at, kind: StepKind::Replayed, error: None, from });
            } else if let Some(n) = line.n {
                let kind = if line.o.as_deref() == Some("dead") { StepKind::Dead } else { StepKind::Retried };
                let attempt = history.earlier_attempts.saturating_add(n);
                history.steps.push(Step { attempt, at, kind, error: line.error, from: None });
            }
        }
        history
    }
}

/// An operator's view of an [`Inbox`]: look a delivery up, list and search them,
/// replay and purge. The `hookroute inbox` command stands on it; every built-in
/// backend implements it.
#[async_trait::async_trait]
pub trait InboxAdmin: Inbox {
    /// Up to `limit` deliveries in `state`, oldest first.
    async fn list(&self, state: DeliveryState, limit: usize) -> Result<Vec<StoredDelivery>, InboxError>;

    /// One page of the deliveries `filter` matches, newest first (by the time received,
    /// then the key), starting after `after` (the previous page's
    /// [`next`](Page::next)), at most `limit`.
    ///
    /// The built-in backends read one page (PostgreSQL and SQLite through indexes).
    /// The default reads every delivery of the states asked through
    /// [`list`](Self::list) and filters them here: a custom backend overrides it.
    async fn search(&self, filter: &Filter, after: Option<&Cursor>, limit: usize) -> Result<Page, InboxError> {
        let mut found = Vec::new();
        for state in DeliveryState::ALL.into_iter().filter(|state| filter.matches_state(*state)) {
            let listed = self.list(state, usize::MAX).await?;
            found.extend(
                listed
                    .into_iter()
                    .filter(|delivery| filter.matches(delivery) && after.is_none_or(|after| after.precedes(delivery))),
            );
        }
        found.sort_by(Page::newest_first);
        found.truncate(limit.saturating_add(1));
        Ok(Page::of(found, limit))
    }

    /// The pending deliveries (queued, retrying, running) of the ordering key
    /// `order_key`, in the key's order, up to `limit`: what runs next, and what waits
    /// behind it. The default reads every pending delivery through [`list`](Self::list).
    async fn list_key(&self, order_key: &str, limit: usize) -> Result<Vec<StoredDelivery>, InboxError> {
        let mut found = Vec::new();
        for state in [DeliveryState::Running, DeliveryState::Retrying, DeliveryState::Queued] {
            let listed = self.list(state, 100_000).await?;
            found.extend(listed.into_iter().filter(|delivery| delivery.order_key.as_deref() == Some(order_key)));
        }
        found.sort_by_key(|delivery| (delivery.created_at, delivery.received_at));
        found.truncate(limit);
        Ok(found)
    }

    /// The delivery stored under `key`.
    async fn get(&self, key: &str) -> Result<Option<StoredDelivery>, InboxError>;

    /// Queues a dead, retrying or done delivery to run now with a fresh schedule.
    /// Answers `false` when there is no such delivery or it is running.
    async fn replay(&self, key: &str) -> Result<bool, InboxError>;

    /// Deletes the done records older than `older_than` and answers how many.
    async fn purge_done(&self, older_than: Duration) -> Result<u64, InboxError>;

    /// How many deliveries `filter` matches (done ones while remembered). The default
    /// pages through [`search`](Self::search); PostgreSQL and SQLite count in SQL.
    async fn count(&self, filter: &Filter) -> Result<u64, InboxError> {
        let mut counted = 0;
        let mut after = None;
        loop {
            let page = self.search(filter, after.as_ref(), 1000).await?;
            counted += page.deliveries.len() as u64;
            match page.next {
                Some(next) => after = Some(next),
                None => return Ok(counted),
            }
        }
    }

    /// Replays every delivery `filter` matches that is not running (as
    /// [`replay`](Self::replay) does one), `batch` at a time: one page of a search, then
    /// its replays, then the next page. Answers how many were queued again. What
    /// arrives after the first page was read is left alone.
    async fn replay_matching(&self, filter: &Filter, batch: usize) -> Result<u64, InboxError> {
        let batch = batch.max(1);
        let mut replayed = 0;
        let mut after = None;
        loop {
            // Newest first from a cursor: a later page holds only deliveries received
            // before the ones already seen, and a replay leaves the time received as it is.
            let page = self.search(filter, after.as_ref(), batch).await?;
            for delivery in &page.deliveries {
                if self.replay(&delivery.key).await? {
                    replayed += 1;
                }
            }
            match page.next {
                Some(next) => after = Some(next),
                None => return Ok(replayed),
            }
        }
    }

    /// Pauses an event type: workers leave its queued and retrying deliveries where
    /// they are (new ones queue up too) until it is [resumed](Self::resume), while
    /// every other type runs: the switch for an incident in one handler. Deliveries
    /// running when it is paused finish; one whose worker died is taken over. Answers
    /// `false` when it was paused already. Every built-in backend pauses; the default
    /// is [`InboxError::Unsupported`].
    async fn pause(&self, event_type: &str) -> Result<bool, InboxError> {
        let _ = event_type;
        Err(InboxError::Unsupported { backend: self.backend(), what: "pause an event type" })
    }

    /// Lets workers take the deliveries of a paused event type again, each in its
    /// place (a retry waits for its time). Answers `false` when it was not paused.
    async fn resume(&self, event_type: &str) -> Result<bool, InboxError> {
        let _ = event_type;
        Err(InboxError::Unsupported { backend: self.backend(), what: "resume an event type" })
    }

    /// The paused event types, sorted. None by default.
    async fn paused(&self) -> Result<Vec<String>, InboxError> {
        Ok(Vec::new())
    }

    /// How many deliveries of each event type are queued, running, retrying and dead,
    /// sorted by type. Every built-in backend counts them all (Redis by reading every
    /// record, as its searches do); the default counts among the first 10,000 of each
    /// state [`list`](Self::list) reads.
    async fn type_counts(&self) -> Result<Vec<TypeCounts>, InboxError> {
        let mut rows = Vec::new();
        for state in [DeliveryState::Queued, DeliveryState::Running, DeliveryState::Retrying, DeliveryState::Dead] {
            rows.extend(self.list(state, 10_000).await?.into_iter().map(|delivery| (delivery.event_type, state, 1)));
        }
        Ok(TypeCounts::from_rows(rows))
    }

    /// Deliveries done and attempts failed in each of `periods` periods of `period`
    /// from `start`; `Ok(None)` (the default) when the inbox cannot tell. Completions
    /// are counted while their records are kept (the done TTL; Redis keeps its counts
    /// 25 hours).
    async fn activity(
        &self,
        start: SystemTime,
        period: Duration,
        periods: usize,
    ) -> Result<Option<Activity>, InboxError> {
        let _ = (start, period, periods);
        Ok(None)
    }

    /// The delivery's failed attempts and replays, oldest first; `Ok(None)` (the
    /// default) when the inbox keeps no history. Every built-in backend keeps it (in
    /// the delivery's record, written only when an attempt fails or an operator
    /// replays: healthy traffic never pays for it).
    async fn history(&self, key: &str) -> Result<Option<History>, InboxError> {
        let _ = key;
        Ok(None)
    }

    /// Replays every dead letter and answers how many.
    async fn replay_dead(&self) -> Result<u64, InboxError> {
        let mut replayed = 0;
        loop {
            let dead = self.list(DeliveryState::Dead, 500).await?;
            if dead.is_empty() {
                return Ok(replayed);
            }
            for delivery in dead {
                if self.replay(&delivery.key).await? {
                    replayed += 1;
                }
            }
        }
    }
}

/// An [`Inbox`] that implements only the worker protocol (a queue such as SQS or NATS
/// that cannot list what it holds), as an [`InboxAdmin`] whose operator methods answer
/// [`InboxError::Unsupported`]: what the console and `hookroute inbox` need to show
/// its counts ([`Inbox::stats`]) and say what else it cannot show.
///
/// ```
/// use hookroute_runtime::inbox::{InboxAdmin, InboxError, MemoryInbox, QueueOnly};
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let queue = QueueOnly(MemoryInbox::new());
/// assert!(matches!(queue.get("k").await, Err(InboxError::Unsupported { .. })));
/// # });
/// ```
#[derive(Debug, Clone)]
pub struct QueueOnly<I: ?Sized>(pub I);

impl<I: ?Sized> std::ops::Deref for QueueOnly<I> {
    type Target = I;

    fn deref(&self) -> &I {
        &self.0
    }
}

impl<I: Inbox + ?Sized> QueueOnly<I> {
    fn cannot(&self, what: &'static str) -> InboxError {
        InboxError::Unsupported { backend: self.0.backend(), what }
    }
}

#[async_trait::async_trait]
impl<I: Inbox + ?Sized> InboxAdmin for QueueOnly<I> {
    async fn list(&self, _: DeliveryState, _: usize) -> Result<Vec<StoredDelivery>, InboxError> {
        Err(self.cannot("list its deliveries"))
    }
    async fn search(&self, _: &Filter, _: Option<&Cursor>, _: usize) -> Result<Page, InboxError> {
        Err(self.cannot("search its deliveries"))
    }
    async fn list_key(&self, _: &str, _: usize) -> Result<Vec<StoredDelivery>, InboxError> {
        Err(self.cannot("list the deliveries of an ordering key"))
    }
    async fn get(&self, _: &str) -> Result<Option<StoredDelivery>, InboxError> {
        Err(self.cannot("look a delivery up"))
    }
    async fn replay(&self, _: &str) -> Result<bool, InboxError> {
        Err(self.cannot("replay a delivery"))
    }
    async fn purge_done(&self, _: Duration) -> Result<u64, InboxError> {
        Err(self.cannot("purge done deliveries"))
    }
    async fn count(&self, _: &Filter) -> Result<u64, InboxError> {
        Err(self.cannot("count what a search matches"))
    }
    async fn type_counts(&self) -> Result<Vec<TypeCounts>, InboxError> {
        Err(self.cannot("count its deliveries by event type"))
    }
}

/// A shared or boxed admin is an admin: `Arc<PostgresInbox>`, `Box<dyn InboxAdmin>`.
macro_rules! forward_admin {
    ($($wrapper:ident)::+) => {
        #[async_trait::async_trait]
        impl<I: InboxAdmin + ?Sized> InboxAdmin for $($wrapper)::+<I> {
            async fn list(&self, state: DeliveryState, limit: usize) -> Result<Vec<StoredDelivery>, InboxError> {
                (**self).list(state, limit).await
            }
            async fn search(&self, filter: &Filter, after: Option<&Cursor>, limit: usize) -> Result<Page, InboxError> {
                (**self).search(filter, after, limit).await
            }
            async fn get(&self, key: &str) -> Result<Option<StoredDelivery>, InboxError> {
                (**self).get(key).await
            }
            async fn list_key(&self, order_key: &str, limit: usize) -> Result<Vec<StoredDelivery>, InboxError> {
                (**self).list_key(order_key, limit).await
            }
            async fn replay(&self, key: &str) -> Result<bool, InboxError> {
                (**self).replay(key).await
            }
            async fn purge_done(&self, older_than: Duration) -> Result<u64, InboxError> {
                (**self).purge_done(older_than).await
            }
            async fn replay_dead(&self) -> Result<u64, InboxError> {
                (**self).replay_dead().await
            }
            async fn pause(&self, event_type: &str) -> Result<bool, InboxError> {
                (**self).pause(event_type).await
            }
            async fn count(&self, filter: &Filter) -> Result<u64, InboxError> {
                (**self).count(filter).await
            }
            async fn replay_matching(&self, filter: &Filter, batch: usize) -> Result<u64, InboxError> {
                (**self).replay_matching(filter, batch).await
            }
            async fn resume(&self, event_type: &str) -> Result<bool, InboxError> {
                (**self).resume(event_type).await
            }
            async fn paused(&self) -> Result<Vec<String>, InboxError> {
                (**self).paused().await
            }
            async fn history(&self, key: &str) -> Result<Option<History>, InboxError> {
                (**self).history(key).await
            }
            async fn type_counts(&self) -> Result<Vec<TypeCounts>, InboxError> {
                (**self).type_counts().await
            }
            async fn activity(
                &self,
                start: SystemTime,
                period: Duration,
                periods: usize,
            ) -> Result<Option<Activity>, InboxError> {
                (**self).activity(start, period, periods).await
            }
        }
    };
}

forward_admin!(std::sync::Arc);
forward_admin!(Box);

/// A value a SQL search binds.
#[cfg(any(feature = "postgres", feature = "sqlite"))]
pub(crate) enum SqlValue {
    Text(String),
    Millis(i64),
}

/// How a SQL backend writes a search.
#[cfg(any(feature = "postgres", feature = "sqlite"))]
pub(crate) struct SqlDialect {
    /// `SELECT … FROM … WHERE <what every search keeps>`, using placeholders below `first`.
    pub(crate) head: String,
    /// The number of the first placeholder the search binds.
    pub(crate) first: usize,
    /// The case-insensitive `LIKE`.
    pub(crate) like: &'static str,
    /// The n-th placeholder.
    pub(crate) param: fn(usize) -> String,
    /// A placeholder holding Unix milliseconds as the `received_at` column holds a time.
    pub(crate) millis: fn(&str) -> String,
}

/// A search in SQL, newest first, reading one more than `limit` (see [`Page::of`]);
/// without a limit, unordered (to count): the statement and the values of its
/// placeholders from `first`, in order.
#[cfg(any(feature = "postgres", feature = "sqlite"))]
pub(crate) fn sql_search(
    dialect: &SqlDialect,
    filter: &Filter,
    after: Option<&Cursor>,
    limit: Option<usize>,
) -> (String, Vec<SqlValue>) {
    let mut sql = dialect.head.clone();
    let mut values = Vec::new();
    // Appends ` AND condition`, each `?` in it the next placeholder, bound in turn.
    let mut and = |condition: &str, bound: Vec<SqlValue>| {
        sql.push_str(" AND ");
        for (n, part) in condition.split('?').enumerate() {
            if n > 0 {
                sql.push_str(&(dialect.param)(dialect.first + values.len() + n - 1));
            }
            sql.push_str(part);
        }
        values.extend(bound);
    };
    if let Some(state) = filter.state {
        and("state = ?", vec![SqlValue::Text(state.as_str().to_owned())]);
    }
    if let Some(event_type) = &filter.event_type {
        and("event_type = ?", vec![SqlValue::Text(event_type.clone())]);
    }
    if let Some(order_key) = &filter.order_key {
        and("order_key = ?", vec![SqlValue::Text(order_key.clone())]);
    }
    if let Some(pattern) = filter.error_pattern() {
        // `IS NOT NULL` first: the rows with an error are few, and indexable apart.
        and(
            &format!("last_error IS NOT NULL AND last_error {} ? ESCAPE '\\'", dialect.like),
            vec![SqlValue::Text(pattern)],
        );
    }
    let at = (dialect.millis)("?");
    if let Some(from) = filter.received_from {
        and(&format!("received_at >= {at}"), vec![SqlValue::Millis(unix_millis(from))]);
    }
    if let Some(until) = filter.received_until {
        and(&format!("received_at < {at}"), vec![SqlValue::Millis(unix_millis(until))]);
    }
    if let Some(after) = after {
        and(
            &format!("(received_at, key) < ({at}, ?)"),
            vec![SqlValue::Millis(after.received_ms), SqlValue::Text(after.key.clone())],
        );
    }
    if let Some(limit) = limit {
        let read = i64::try_from(limit.saturating_add(1)).unwrap_or(i64::MAX);
        sql.push_str(" ORDER BY received_at DESC, key DESC LIMIT ");
        sql.push_str(&read.to_string());
    }
    (sql, values)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_reads_back_what_it_writes_and_says_what_is_wrong() {
        let cursor: Cursor = "1700000000123:ns:groq:event:evt_1".parse().unwrap();
        assert_eq!((cursor.received_ms(), cursor.key()), (1_700_000_000_123, "ns:groq:event:evt_1"));
        assert_eq!(cursor.to_string().parse::<Cursor>().unwrap(), cursor);
        assert!("no-colon".parse::<Cursor>().unwrap_err().contains("expected `<unix ms>:<key>`"));
        assert!("soon:key".parse::<Cursor>().unwrap_err().contains("`soon` is not a time"));
        assert!("12:".parse::<Cursor>().unwrap_err().contains("empty"));
    }

    #[test]
    #[cfg(any(feature = "postgres", feature = "sqlite"))]
    fn an_error_pattern_escapes_what_like_would_read() {
        let filter = Filter { error: Some("50%_of\\it".into()), ..Filter::default() };
        assert_eq!(filter.error_pattern().unwrap(), "%50\\%\\_of\\\\it%");
    }

    #[test]
    fn a_history_numbers_attempts_across_replays() {
        let mut text = HistoryLine::failed(1, 1_000, false, "timeout");
        text += &HistoryLine::failed(2, 2_000, true, "bad \"quote\"\nline");
        text += &HistoryLine::replayed(2, 3_000, DeliveryState::Dead);
        text += "not json\n";
        text += &HistoryLine::failed(1, 4_000, false, "again");
        let history = HistoryLine::read(&text, Some(5_000));
        assert_eq!(history.changed_at, Some(SystemTime::UNIX_EPOCH + Duration::from_secs(5)));
        let steps: Vec<(u32, StepKind)> = history.steps.iter().map(|step| (step.attempt, step.kind)).collect();
        assert_eq!(
            steps,
            [(1, StepKind::Retried), (2, StepKind::Dead), (2, StepKind::Replayed), (3, StepKind::Retried)]
        );
        assert_eq!(history.steps[1].error.as_deref(), Some("bad \"quote\"\nline"));
        assert_eq!(history.earlier_attempts, 2);
    }

    #[test]
    fn error_text_matches_in_any_case() {
        assert!(contains_ignoring_case("Timeout: UPSTREAM", "upstream"));
        assert!(!contains_ignoring_case("timeout", "upstream"));
    }
}

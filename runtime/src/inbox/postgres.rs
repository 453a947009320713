//! An inbox in PostgreSQL, shared by every replica and worker that points at it.

use std::collections::HashSet;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio_postgres::types::ToSql;
use tokio_postgres::Row;

use super::admin::{sql_search, SqlDialect, SqlValue, HISTORY_ERROR_CHARS};
use super::{batch_answer, batch_failed};
use super::{
    from_unix_millis, lease_token, Activity, Cursor, DeliveryState, Enqueued, Filter, History, HistoryLine, Inbox,
    InboxAdmin, InboxError, InboxStats, KeyStats, Lease, Leased, NewDelivery, OwnedDelivery, Page, StoredDelivery,
    TypeCounts,
};
use crate::backend::batch::Batcher;
use crate::backend::postgres::{check_table, sweep_while_alive, Database, PostgresBuilder};
use crate::backend::{connect_error, millis, nearest_first};

/// The table a [`PostgresInbox`] keeps deliveries in unless told otherwise.
pub const DEFAULT_INBOX_TABLE: &str = "hookroute_inbox";

/// A key of PostgreSQL's advisory locks, so replicas starting together migrate in turn.
const MIGRATION_LOCK: i64 = 0x686f_6f6b_696e_6278; // "hookinbx"

/// The columns [`read`] expects, in its order.
const COLUMNS: &str = "key, event_id, event_type, headers, body, signed_at, state, attempts, last_error, \
                       (extract(epoch from received_at) * 1000)::bigint, order_key, created_ms";

/// The milliseconds since the Unix epoch, in SQL.
const NOW_MS: &str = "(extract(epoch from now()) * 1000)::bigint";

/// When a delivery was received: now, to the millisecond, as searches page by it
/// ([`Cursor`] holds milliseconds).
const RECEIVED: &str = "date_trunc('milliseconds', now())";

/// A time in Unix milliseconds (the placeholder `at`) as a `timestamptz`, exactly.
fn at_millis(at: &str) -> String {
    format!("('epoch'::timestamptz + {at}::bigint * interval '1 millisecond')")
}

/// An inbox in PostgreSQL, for any number of HTTP replicas and worker processes.
///
/// One table (`hookroute_inbox` unless set), created by the inbox's own migration when
/// it connects (idempotently, under an advisory lock). `due_at` is when something
/// next happens to a row: a queued or retrying one runs, a running one's lease ends, a
/// done one expires. The database's clock decides, the same for every replica.
///
/// - **enqueue** is one statement, `INSERT ... ON CONFLICT (key) DO UPDATE ... WHERE
///   the row is done and expired RETURNING`: the deduplication and the insert are
///   one transaction, committed before the receiver answers `202`. The enqueues
///   that arrive while one is being written are written together, one statement and
///   one commit for the batch (group commit): each still answers only once its row is
///   durable.
/// - **take** is one statement: `UPDATE ... WHERE key = (SELECT key ... WHERE due_at <=
///   now() ORDER BY due_at LIMIT 1 FOR UPDATE SKIP LOCKED) RETURNING`, so concurrent
///   workers never wait on, nor take, the same row. A worker with several handlers
///   free takes as many at once ([`Inbox::take_many`]): the one a single take would
///   have, and more of those due without a type cap or a key rate, each key's rules
///   kept (see `take_statement`).
/// - Completions that arrive together are written in one statement, which also makes
///   the next delivery of each ordering key among them due.
/// - Every lease operation updates the row only `WHERE token = $token AND state =
///   'running'`, so a worker whose lease ran out cannot touch it any more.
/// - Done rows past their TTL are deleted every [`sweep_every`] (five minutes by
///   default) while the inbox lives, 5,000 rows a statement, each its own commit.
/// - Takes, leases and marks run on a second pool whose sessions set
///   `synchronous_commit = off`: they do not wait for the WAL to reach the disk (the
///   next insert's commit, or the WAL writer within `wal_writer_delay`, takes them
///   there). A crash of the database server, never of a worker, can forget the last of
///   them; the delivery then runs again, and is never lost. Inserts wait for the disk.
///
/// ```no_run
/// use hookroute_runtime::inbox::PostgresInbox;
///
/// # async fn run() -> Result<(), hookroute_runtime::inbox::InboxError> {
/// let inbox = PostgresInbox::connect("postgres://app@127.0.0.1:5432/app").await?;
/// # Ok(()) }
/// ```
///
/// [`sweep_every`]: PostgresInboxBuilder::sweep_every
#[derive(Clone)]
pub struct PostgresInbox {
    inner: Arc<Inner>,
}

struct Inner {
    db: Database,
    /// For leases and marks: sessions with `synchronous_commit = off` (see the type's docs).
    marks: Database,
    table: String,
    sql: Statements,
    /// Enqueues, written in batches (group commit).
    enqueues: Arc<Batcher<OwnedDelivery, Result<Enqueued, InboxError>>>,
    /// Completions, written in batches: the lease and the done TTL in milliseconds.
    completes: Arc<Batcher<(Lease, i64), Result<(), InboxError>>>,
}

/// The most completions one statement writes.
const COMPLETE_BATCH: usize = 256;

/// Batched completions written at once (they do not wait for the disk).
const COMPLETE_WRITERS: usize = 1;

/// The most deliveries one batched enqueue writes.
const ENQUEUE_BATCH: usize = 256;

/// Batched enqueues written at once. One: the enqueues that arrive while a batch
/// waits for its commit to reach the disk make the next batch, and fewer, larger
/// batches cost the shared core less (bench/inbox: 14,128 acks/s with one writer,
/// 12,442 with two, 10,155 with four; BENCHMARKS.md).
const ENQUEUE_WRITERS: usize = 1;

/// The most done rows one statement of a sweep or a payload pass deletes or empties.
/// Each batch commits on its own and the next waits [`SWEEP_PAUSE`]. A minute of expired
/// rows (90,000 at 1,500 deliveries a second) went in one statement, and the p99 of the
/// acknowledgements beside it rose from the minute those rows began to expire: 168–399
/// ms, against 17–104 ms in batches (`bench/soak`, BENCHMARKS.md).
const SWEEP_BATCH: i64 = 5_000;

/// The pause between two batches of a sweep or a payload pass.
const SWEEP_PAUSE: Duration = Duration::from_millis(50);

/// Every statement, written once for the table.
struct Statements {
    enqueue_many: String,
    enqueue_keyed: String,
    take: String,
    take_many: String,
    complete_many: String,
    complete_keyed: String,
    renew: String,
    complete: String,
    retry: String,
    retry_releasing: String,
    dead: String,
    release: String,
    counts: String,
    counts_without_done: String,
    waiting: String,
    oldest: String,
    keys: String,
    list_key: String,
    list: String,
    get: String,
    history: String,
    replay: String,
    purge_done: String,
    sweep: String,
    forget_expired: String,
    forget_payloads: String,
}

impl Statements {
    fn new(t: &str) -> Self {
        let held = "WHERE key = $1 AND token = $2 AND state = 'running'";
        // Done rows whose payload's retention (`$1` ms) has passed.
        let past = "state = 'done' AND updated_at <= now() - $1::bigint * interval '1 millisecond'";
        // After an attempt of a delivery with an ordering key, `{t}_unpark` makes the
        // key's next delivery due no earlier than now: the key goes to the back of the line.
        // A failed attempt's line in the delivery's history (see `HistoryLine`).
        let failed = |error: &str, outcome: &str| {
            format!(
                "history = coalesce(history, '') || json_build_object('n', attempts, 'at', {NOW_MS}, 'o', '{outcome}',
                     'error', left({error}::text, {HISTORY_ERROR_CHARS}))::text || E'\\n',"
            )
        };
        let settle = |set: &str| {
            format!(
                "WITH s AS (UPDATE {t} SET {set} {held} RETURNING key, order_key)
                 SELECT CASE WHEN s.order_key IS NULL THEN true ELSE {t}_unpark(s.order_key, s.key) END FROM s"
            )
        };
        Self {
            enqueue_many: enqueue_many_statement(t, false),
            enqueue_keyed: enqueue_many_statement(t, true),
            take: take_statement(t, false),
            take_many: take_statement(t, true),
            complete_many: complete_many_statement(t, false),
            complete_keyed: complete_many_statement(t, true),
            renew: format!("UPDATE {t} SET due_at = now() + $3::bigint * interval '1 millisecond' {held}"),
            complete: settle(
                "state = 'done', token = NULL, due_at = now() + $3::bigint * interval '1 millisecond',
                 updated_at = now()",
            ),
            retry: settle(&format!(
                "state = 'retrying', token = NULL, last_error = $4, {}
                 due_at = now() + $3::bigint * interval '1 millisecond', updated_at = now()",
                failed("$4", "retry")
            )),
            retry_releasing: settle(&format!(
                "state = 'retrying', token = NULL, last_error = $4, releases = true, {}
                 due_at = now() + $3::bigint * interval '1 millisecond', updated_at = now()",
                failed("$4", "retry")
            )),
            dead: settle(&format!(
                "state = 'dead', token = NULL, last_error = $3, {} due_at = 'infinity', updated_at = now()",
                failed("$3", "dead")
            )),
            release: settle(
                "attempts = attempts - 1, token = NULL, due_at = now(), updated_at = now(),
                 state = CASE WHEN attempts > 1 THEN 'retrying' ELSE 'queued' END",
            ),
            counts: format!("SELECT state, count(*) FROM {t} WHERE state <> 'done' OR due_at > now() GROUP BY state"),
            // From the state index, the rows that are not done alone: with 2,000,000
            // done rows and 4,000 others, 0.5 ms against 440 ms for the counts above.
            counts_without_done: format!(
                "SELECT state, count(*) FROM {t} WHERE state IN ('queued', 'running', 'retrying', 'dead') GROUP BY state"
            ),
            // The waiting rows alone, and no more than asked for: the counts above read
            // every row, done ones too, a scan of the whole table that a receiver past
            // half its room made four times a second (`bench/soak`, BENCHMARKS.md).
            waiting: format!(
                "SELECT count(*) FROM (SELECT 1 FROM {t} WHERE state IN ('queued', 'retrying') LIMIT $1) w"
            ),
            oldest: format!(
                "SELECT (extract(epoch from now() - min(due_at)) * 1000)::bigint FROM {t}
                 WHERE state IN ('queued', 'retrying') AND due_at <= now()"
            ),
            keys: format!(
                "SELECT count(*) FILTER (WHERE pending > in_flight), count(*) FILTER (WHERE held) FROM (
                     SELECT count(*) AS pending, max(in_flight) AS in_flight,
                            bool_or(state = 'retrying' AND NOT releases) AS held
                     FROM {t} WHERE order_key IS NOT NULL AND state IN ('queued', 'retrying', 'running')
                     GROUP BY order_key) k"
            ),
            list_key: format!(
                "SELECT {COLUMNS} FROM {t} WHERE order_key = $1 AND state IN ('queued', 'retrying', 'running')
                 ORDER BY created_ms, seq LIMIT $2"
            ),
            list: format!(
                "SELECT {COLUMNS} FROM {t} WHERE state = $1 AND (state <> 'done' OR due_at > now())
                 ORDER BY updated_at, key LIMIT $2"
            ),
            get: format!("SELECT {COLUMNS} FROM {t} WHERE key = $1"),
            history: format!(
                "SELECT coalesce(history, ''), (date_part('epoch', updated_at) * 1000)::bigint FROM {t} WHERE key = $1"
            ),
            replay: format!(
                "UPDATE {t} SET state = 'queued', attempts = 0, token = NULL, due_at = now(), updated_at = now(),
                     history = coalesce(history, '') || json_build_object('replayed', attempts, 'at', {NOW_MS}, 'from', state)::text
                         || E'\\n'
                 WHERE key = $1 AND state <> 'running'"
            ),
            purge_done: format!(
                "DELETE FROM {t} WHERE state = 'done'
                   AND (updated_at <= now() - $1::bigint * interval '1 millisecond' OR due_at <= now())"
            ),
            // The sweep and the payload pass go in batches of `$n` rows (`in_batches`):
            // the outer condition is checked again on each row, so one replayed (or
            // stored anew) since the inner read is left alone.
            sweep: {
                let expired = "state = 'done' AND due_at <= now()";
                format!("DELETE FROM {t} WHERE key IN (SELECT key FROM {t} WHERE {expired} LIMIT $1) AND {expired}")
            },
            // The payload pass (`forget_payloads`): of the rows past their retention, one
            // past its TTL goes whole, as the sweep would have it: emptied first, it would
            // be written once more only to be deleted (a retention as long as the TTL
            // rewrote every done row, then deleted it). Both read the same rows, by `{t}_state`.
            forget_expired: {
                let expired = format!("{past} AND due_at <= now()");
                format!("DELETE FROM {t} WHERE key IN (SELECT key FROM {t} WHERE {expired} LIMIT $2) AND {expired}")
            },
            forget_payloads: {
                let kept = format!("{past} AND due_at > now() AND octet_length(body) > 0");
                format!(
                    "UPDATE {t} SET body = ''::bytea, headers = ''::bytea
                     WHERE key IN (SELECT key FROM {t} WHERE {kept} LIMIT $2) AND {kept}"
                )
            },
        }
    }
}

/// The enqueue of a batch of deliveries: one row each, in one statement and one commit
/// (group commit). Parameters are arrays, one element a delivery, keys distinct;
/// answers the keys stored. Rows go in in key order, so two batches inserting the
/// same keys at once wait for each other in one order and never deadlock.
///
/// `keyed` (some delivery of the batch has an ordering key) adds `$11`, the ordering
/// keys, and each key's line:
/// - A delivery of a key that runs one at a time, behind an older one of its key
///   still pending, is parked (due at infinity: no take reads it) until the key's
///   settle unparks it. `FOR SHARE` makes that safe: the lock waits for a settle of
///   the older one that is under way and then reads its new state, and a settle that
///   comes after waits for this insert to commit, so its `{t}_unpark` (a fresh
///   snapshot) sees the parked one.
/// - Deliveries of one key in one batch do not see each other, as two enqueued at
///   once by two statements do not: a take's `{t}_may_run` parks the newer.
/// - `seq`, a delivery's place among its key's equal creation times, is drawn in
///   arrival order, before the rows are sorted by key.
///
/// A delivery of a paused type waits at infinity, its due time kept in `paused_due`
/// (the `FOR SHARE` on the pause makes `resume` see it).
fn enqueue_many_statement(t: &str, keyed: bool) -> String {
    let columns = "key, event_id, event_type, headers, body, signed_at, created_ms, in_flight, type_cap, key_interval";
    let arrays = "$1::text[], $2::text[], $3::text[], $4::bytea[], $5::bytea[], $6::bigint[], $7::bigint[], \
                  $8::integer[], $9::integer[], $10::bigint[]";
    let (deliveries, order_key, seq) = if keyed {
        (
            format!(
                "u AS MATERIALIZED (SELECT u.*, nextval((SELECT pg_get_serial_sequence('{t}', 'seq'))::regclass) AS seq
                   FROM unnest({arrays}, $11::text[]) WITH ORDINALITY AS u({columns}, order_key, n) ORDER BY u.n),
                 i AS MATERIALIZED (SELECT u.*, CASE WHEN a.ahead THEN 'infinity'::timestamptz ELSE now() END AS at
                   FROM u LEFT JOIN LATERAL (SELECT true AS ahead FROM {t} o WHERE u.in_flight = 1
                          AND o.order_key = u.order_key AND o.state IN ('queued', 'retrying', 'running')
                          AND o.created_ms <= coalesce(u.created_ms, {NOW_MS})
                          AND NOT (o.state = 'retrying' AND o.releases AND o.due_at > now())
                        ORDER BY o.order_key, o.created_ms, o.seq LIMIT 1 FOR SHARE) a ON true)"
            ),
            "i.order_key",
            ("seq, ", "i.seq, "),
        )
    } else {
        (format!("i AS (SELECT *, now() AS at FROM unnest({arrays}) AS i({columns}))"), "NULL", ("", ""))
    };
    let (seq_column, seq_value) = seq;
    format!(
        "WITH {deliveries},
              paused AS (SELECT event_type FROM {t}_paused WHERE event_type = ANY($3::text[]) FOR SHARE)
         INSERT INTO {t} (key, event_id, event_type, headers, body, signed_at, state, attempts, due_at,
             received_at, updated_at, order_key, created_ms, in_flight, type_cap, key_interval, {seq_column}paused_due)
         SELECT i.key, i.event_id, i.event_type, i.headers, i.body, i.signed_at, 'queued', 0,
             CASE WHEN i.event_type IN (SELECT event_type FROM paused) THEN 'infinity' ELSE i.at END,
             {RECEIVED}, now(), {order_key}, coalesce(i.created_ms, {NOW_MS}), i.in_flight, i.type_cap,
             i.key_interval, {seq_value}CASE WHEN i.event_type IN (SELECT event_type FROM paused) THEN i.at END
         FROM i ORDER BY i.key
         ON CONFLICT (key) DO UPDATE SET event_id = excluded.event_id, event_type = excluded.event_type,
             headers = excluded.headers, body = excluded.body, signed_at = excluded.signed_at,
             state = 'queued', attempts = 0, due_at = excluded.due_at, token = NULL, last_error = NULL,
             received_at = {RECEIVED}, updated_at = now(), order_key = excluded.order_key,
             created_ms = excluded.created_ms, in_flight = excluded.in_flight, type_cap = excluded.type_cap,
             key_interval = excluded.key_interval, started_at = NULL, paused_due = excluded.paused_due,
             history = NULL
           WHERE {t}.state = 'done' AND {t}.due_at <= now()
         RETURNING key"
    )
}

/// The completion of a batch of leased deliveries: parameters are arrays of keys,
/// tokens and done TTLs in milliseconds; answers the keys marked done.
///
/// Without `keyed` it settles only deliveries without an ordering key. With it, each
/// done delivery of a key then makes the key's next one due (`{t}_unpark`, which waits
/// for the key's lock): in the keys' order, so that two batches never wait for each
/// other's keys.
fn complete_many_statement(t: &str, keyed: bool) -> String {
    let update = format!(
        "UPDATE {t} SET state = 'done', token = NULL, due_at = now() + l.ttl * interval '1 millisecond',
             updated_at = now()
         FROM unnest($1::text[], $2::text[], $3::bigint[]) AS l(key, token, ttl)
         WHERE {t}.key = l.key AND {t}.token = l.token AND {t}.state = 'running'"
    );
    if keyed {
        format!(
            "WITH s AS ({update} RETURNING {t}.key, {t}.order_key)
             SELECT d.key, CASE WHEN d.order_key IS NULL THEN true ELSE {t}_unpark(d.order_key, d.key) END
             FROM (SELECT key, order_key FROM s ORDER BY order_key OFFSET 0) d"
        )
    } else {
        format!("{update} AND {t}.order_key IS NULL RETURNING {t}.key")
    }
}

/// The take: an expired lease first, then the delivery due longest, among those their
/// ordering key and limits let run.
fn take_statement(t: &str, batch: bool) -> String {
    // An expired lease first: its delivery is the oldest, and with an ordering
    // key it holds the key until taken again. Then the delivery due longest. A
    // key's backlog is parked at enqueue, so the rows a take reads are mostly ones
    // that may run; `_may_run` locks their key and decides. Rows of a type at its
    // cap (as this statement's snapshot sees it) are passed over without it.
    let full = format!(
        "(type_cap IS NOT NULL AND (SELECT count(*) FROM (SELECT 1 FROM {t} o
                WHERE o.event_type = r.event_type AND o.state = 'running' AND o.type_cap IS NOT NULL
                  AND o.due_at > now() AND o.key <> r.key LIMIT r.type_cap) x) >= r.type_cap)"
    );
    let allowed = format!(
        "CASE WHEN order_key IS NULL AND type_cap IS NULL THEN true
              WHEN {full} THEN false
              ELSE {t}_may_run(key, order_key, created_ms, seq, in_flight, event_type, type_cap, key_interval) END"
    );
    let next = |states: &str, also: &str| {
        format!(
            "SELECT key FROM {t} r WHERE state IN ({states}) AND due_at <= now() {also} AND {allowed}
             ORDER BY due_at LIMIT 1 FOR UPDATE SKIP LOCKED"
        )
    };
    // A paused type's deliveries wait at infinity (`paused_due`); this catches one that
    // became due while its type was being paused (a retry, a replay, an enqueue racing
    // the pause). An expired lease is taken over whatever its type.
    let unpaused = format!("AND r.event_type <> ALL (ARRAY(SELECT event_type FROM {t}_paused))");
    let first = format!("coalesce(({}), ({}))", next("'running'", ""), next("'queued', 'retrying'", &unpaused));
    // With `$3`: as many more as that of the due deliveries without a type cap or a
    // key rate, those with an ordering key among them. `{t}_may_run` decides each keyed
    // one with a snapshot in which the others this statement takes are still queued:
    // one of its key behind an older one of the key that this take reads too counts it
    // as pending and is parked, so a batch takes no more of a key than may run at
    // once. A type cap and a key rate count running deliveries and starts, which the
    // rows taken beside them are not yet: those are decided alone, by the first. The
    // first is decided before and passed over here, so a key's lone due row is decided
    // once (twice cost a drain of one key a third of its rate): at most `$3 + 1` in all.
    let (more, which) = if batch {
        (
            format!(
                "WITH first AS MATERIALIZED (SELECT {first} AS key),
                 more AS MATERIALIZED (SELECT key FROM {t} r WHERE state IN ('queued', 'retrying')
                   AND due_at <= now() AND type_cap IS NULL AND key_interval IS NULL {unpaused}
                   AND r.key IS DISTINCT FROM (SELECT key FROM first) AND {allowed}
                 ORDER BY due_at LIMIT $3 FOR UPDATE SKIP LOCKED)"
            ),
            "key IN (SELECT key FROM first UNION ALL SELECT key FROM more)".to_owned(),
        )
    } else {
        (String::new(), format!("key = {first}"))
    };
    // The lease token of a keyed delivery says so (`lane-`): its completion unparks
    // the key's next one (in the batch's statement), as its other settles do alone.
    format!(
        "{more} UPDATE {t} SET state = 'running', attempts = attempts + 1,
             token = CASE WHEN order_key IS NULL THEN $1 ELSE '{LANE_TOKEN}' || $1 END,
             due_at = now() + $2::bigint * interval '1 millisecond', updated_at = now(), started_at = now(),
             releases = false
         WHERE {which}
         RETURNING {COLUMNS}, order_key IS NOT NULL AND EXISTS (SELECT 1 FROM {t} d
             WHERE d.order_key = {t}.order_key AND d.state = 'done' AND d.due_at > now()
               AND d.created_ms > {t}.created_ms), token"
    )
}

/// How the lease token of a delivery with an ordering key begins.
const LANE_TOKEN: &str = "lane-";

impl fmt::Debug for PostgresInbox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresInbox")
            .field("table", &self.inner.table)
            .field("timeout", &self.inner.db.timeout)
            .field("pool", &self.inner.db.pool.status())
            .finish_non_exhaustive()
    }
}

/// Sets up a [`PostgresInbox`]; from [`PostgresInbox::builder`].
pub type PostgresInboxBuilder = PostgresBuilder<PostgresInbox>;

impl PostgresInbox {
    /// Connects to the database at `url` with the default settings, creating the
    /// table if needed.
    pub async fn connect(url: &str) -> Result<Self, InboxError> {
        Self::builder(url).connect().await
    }

    /// Starts configuring an inbox for the database at `url`.
    pub fn builder(url: impl Into<String>) -> PostgresInboxBuilder {
        PostgresBuilder::new(url.into(), DEFAULT_INBOX_TABLE)
    }

    async fn execute(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<u64, InboxError> {
        Ok(self.inner.db.execute(sql, params).await?)
    }

    /// Runs `sql`, a delete or update of at most `$n` rows (its last parameter, after
    /// `params`), batch after batch until one touches fewer than [`SWEEP_BATCH`], each
    /// its own commit, [`SWEEP_PAUSE`] apart; answers the rows touched.
    async fn in_batches(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<u64, InboxError> {
        let mut params = params.to_vec();
        params.push(&SWEEP_BATCH);
        let mut touched = 0;
        loop {
            let batch = self.execute(sql, &params).await?;
            touched += batch;
            if batch < SWEEP_BATCH.unsigned_abs() {
                return Ok(touched);
            }
            tokio::time::sleep(SWEEP_PAUSE).await;
        }
    }

    async fn query(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Vec<Row>, InboxError> {
        Ok(self.inner.db.query(sql, params).await?)
    }

    /// The rows of a search: `select` (`{COLUMNS}` stands for the columns [`read`]
    /// expects) from the deliveries `filter` matches, a page of `limit` or all of them.
    async fn search_rows(
        &self,
        select: &str,
        filter: &Filter,
        after: Option<&Cursor>,
        limit: Option<usize>,
    ) -> Result<Vec<Row>, InboxError> {
        let select = select.replace("{COLUMNS}", COLUMNS);
        let dialect = SqlDialect {
            head: format!("{select} FROM {} WHERE (state <> 'done' OR due_at > now())", self.inner.table),
            first: 1,
            like: "ILIKE",
            param: |n| format!("${n}"),
            millis: at_millis,
        };
        let (sql, values) = sql_search(&dialect, filter, after, limit);
        let bound: Vec<Box<dyn ToSql + Sync + Send>> = values
            .into_iter()
            .map(|value| match value {
                SqlValue::Text(text) => Box::new(text) as Box<dyn ToSql + Sync + Send>,
                SqlValue::Millis(ms) => Box::new(ms),
            })
            .collect();
        let params: Vec<&(dyn ToSql + Sync)> = bound.iter().map(|value| &**value as &(dyn ToSql + Sync)).collect();
        self.query(&sql, &params).await
    }

    /// The counts by state that `counts` (a statement of `state, count` rows) answers,
    /// and the oldest due age.
    async fn counted(&self, counts: &str) -> Result<InboxStats, InboxError> {
        let mut stats = InboxStats::default();
        for row in self.query(counts, &[]).await? {
            let name: String = row.try_get(0).map_err(|err| InboxError::Unavailable(Box::new(err)))?;
            let count: i64 = row.try_get(1).map_err(|err| InboxError::Unavailable(Box::new(err)))?;
            stats.add(name.parse().unwrap_or(DeliveryState::Dead), u64::try_from(count).unwrap_or(0));
        }
        let oldest = self.query(&self.inner.sql.oldest, &[]).await?;
        let millis: Option<i64> = match oldest.first() {
            Some(row) => row.try_get(0).map_err(|err| InboxError::Unavailable(Box::new(err)))?,
            None => None,
        };
        stats.oldest_due_age = millis.map(|ms| Duration::from_millis(ms.unsigned_abs()));
        Ok(stats)
    }

    /// A lease operation that must touch exactly the leased row.
    async fn held(&self, lease: &Lease, sql: &str, extra: &[&(dyn ToSql + Sync)]) -> Result<(), InboxError> {
        let (key, token) = (lease.key(), lease.token());
        let mut params: Vec<&(dyn ToSql + Sync)> = vec![&key, &token];
        params.extend_from_slice(extra);
        match self.inner.marks.execute(sql, &params).await? {
            1 => Ok(()),
            _ => Err(InboxError::ClaimLost { key: key.to_owned() }),
        }
    }
}

impl PostgresInboxBuilder {
    /// Opens only an inbox that exists: [`connect`](Self::connect) creates nothing,
    /// and a table that is not there is an error naming the inbox tables that are (an
    /// operator's tool looking at a misspelt table must not make an empty inbox).
    #[must_use]
    pub fn existing_only(mut self) -> Self {
        self.existing = true;
        self
    }

    /// Connects, creates the table if it is missing (unless
    /// [`existing_only`](Self::existing_only)), and starts the sweeper.
    pub async fn connect(self) -> Result<PostgresInbox, InboxError> {
        let PostgresBuilder { url, table, timeout, pool_size, sweep_every, existing, .. } = self;
        check_table(&table)?;
        let (db, target) = Database::new(&url, timeout, pool_size)?;
        // No bitmap scans for takes and marks: a table filled in a burst has no
        // statistics yet, and the planner then read every waiting row through two
        // bitmaps and sorted them, checking each one's key (a second a take); the due
        // index, read in order, stops at the first delivery that may run. One plan a
        // statement (`force_generic_plan`): the batched completion's arrays made the
        // planner plan it afresh on every call (683 ms in a drain of 20,000).
        let (marks, _) = Database::with_options(
            &url,
            timeout,
            pool_size,
            Some("-c synchronous_commit=off -c enable_bitmapscan=off -c plan_cache_mode=force_generic_plan"),
        )?;
        let failed = |err: InboxError| connect_error("PostgreSQL", target.clone(), err);
        let enqueues = Arc::new(Batcher::new(ENQUEUE_BATCH, ENQUEUE_WRITERS));
        let completes = Arc::new(Batcher::new(COMPLETE_BATCH, COMPLETE_WRITERS));
        let inner = Arc::new(Inner { db, marks, sql: Statements::new(&table), table, enqueues, completes });
        let migration = format!(
            "BEGIN;
             SELECT pg_advisory_xact_lock({MIGRATION_LOCK});
             CREATE TABLE IF NOT EXISTS {t} (
               key text PRIMARY KEY,
               event_id text NOT NULL,
               event_type text NOT NULL,
               headers bytea NOT NULL,
               body bytea NOT NULL,
               signed_at bigint,
               state text NOT NULL,
               attempts integer NOT NULL,
               due_at timestamptz NOT NULL,
               token text,
               last_error text,
               received_at timestamptz NOT NULL,
               updated_at timestamptz NOT NULL
             );
             CREATE INDEX IF NOT EXISTS {t}_due ON {t} (due_at) WHERE state IN ('queued', 'retrying', 'running');
             CREATE INDEX IF NOT EXISTS {t}_state ON {t} (state, updated_at);
             CREATE TABLE IF NOT EXISTS {t}_owner (id integer PRIMARY KEY CHECK (id = 1), namespace text NOT NULL);
             CREATE TABLE IF NOT EXISTS {t}_paused (event_type text PRIMARY KEY);
             {order}
             {admin}
             {planning}
             COMMIT;",
            t = inner.table,
            order = order_migration(&inner.table),
            admin = admin_migration(&inner.table),
            planning = planning_migration(&inner.table),
        );
        if existing {
            inner.check_exists().await.map_err(failed)?;
        } else {
            inner.db.migrate(&migration).await.map_err(|err| failed(err.into()))?;
            inner.warn_of_old_sample().await;
        }
        if let Some(every) = sweep_every {
            // Expired done rows go while the inbox lives.
            tokio::spawn(sweep_while_alive(Arc::downgrade(&inner), every, |inner| async move {
                let inbox = PostgresInbox { inner };
                if let Err(err) = inbox.in_batches(&inbox.inner.sql.sweep, &[]).await {
                    tracing::warn!(error = %err, table = %inbox.inner.table, "could not delete expired inbox records");
                }
            }));
        }
        Ok(PostgresInbox { inner })
    }
}

impl Inner {
    /// Stores a batch of deliveries in one statement and one commit (the statement
    /// with the keys' lines when one has an ordering key), and answers each: a key met
    /// earlier in the batch is a duplicate of it.
    async fn enqueue_many(&self, batch: Vec<OwnedDelivery>) -> Vec<Result<Enqueued, InboxError>> {
        let mut seen = HashSet::with_capacity(batch.len());
        let first: Vec<bool> = batch.iter().map(|fresh| seen.insert(fresh.key.as_str())).collect();
        let written = || batch.iter().zip(&first).filter(|(_, &first)| first).map(|(fresh, _)| fresh);
        let keys: Vec<&str> = written().map(|fresh| fresh.key.as_str()).collect();
        let ids: Vec<&str> = written().map(|fresh| fresh.id.as_str()).collect();
        let types: Vec<&str> = written().map(|fresh| fresh.event_type.as_str()).collect();
        let headers: Vec<&[u8]> = written().map(|fresh| fresh.headers.as_slice()).collect();
        let bodies: Vec<&[u8]> = written().map(|fresh| fresh.body.as_slice()).collect();
        let (mut signed_at, mut created, mut in_flight, mut type_cap, mut key_interval) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for fresh in written() {
            let (at, created_ms, flight, cap, interval) = columns(&fresh.new_delivery());
            signed_at.push(at);
            created.push(created_ms);
            in_flight.push(flight);
            type_cap.push(cap);
            key_interval.push(interval);
        }
        let order_keys: Vec<Option<&str>> = written().map(|fresh| fresh.order_key.as_deref()).collect();
        let mut params: Vec<&(dyn ToSql + Sync)> =
            vec![&keys, &ids, &types, &headers, &bodies, &signed_at, &created, &in_flight, &type_cap, &key_interval];
        let statement = if order_keys.iter().any(Option::is_some) {
            params.push(&order_keys);
            &self.sql.enqueue_keyed
        } else {
            &self.sql.enqueue_many
        };
        let stored = self.db.query(statement, &params).await;
        let stored: HashSet<String> = match stored {
            Ok(rows) => rows.iter().filter_map(|row| row.try_get(0).ok()).collect(),
            Err(error) => return batch_failed(batch.len(), &error),
        };
        batch
            .iter()
            .zip(first)
            .map(|(fresh, first)| {
                Ok(if first && stored.contains(&fresh.key) { Enqueued::Queued } else { Enqueued::Duplicate })
            })
            .collect()
    }

    /// Marks a batch of leased deliveries done in one statement (unparking their
    /// keys' next when one has a `lane-` token); a lease the batch did not settle is
    /// answered [`InboxError::ClaimLost`].
    async fn complete_many(&self, batch: Vec<(Lease, i64)>) -> Vec<Result<(), InboxError>> {
        let keys: Vec<&str> = batch.iter().map(|(lease, _)| lease.key()).collect();
        let tokens: Vec<&str> = batch.iter().map(|(lease, _)| lease.token()).collect();
        let ttls: Vec<i64> = batch.iter().map(|(_, ttl)| *ttl).collect();
        let keyed = tokens.iter().any(|token| token.starts_with(LANE_TOKEN));
        let statement = if keyed { &self.sql.complete_keyed } else { &self.sql.complete_many };
        let done: HashSet<String> = match self.marks.query(statement, &[&keys, &tokens, &ttls]).await {
            Ok(rows) => rows.iter().filter_map(|row| row.try_get(0).ok()).collect(),
            Err(error) => return batch_failed(batch.len(), &error),
        };
        // A lease given twice in one batch is settled once.
        let mut answered = HashSet::with_capacity(batch.len());
        batch
            .iter()
            .map(|(lease, _)| {
                if done.contains(lease.key()) && answered.insert(lease.key()) {
                    Ok(())
                } else {
                    Err(InboxError::ClaimLost { key: lease.key().to_owned() })
                }
            })
            .collect()
    }

    /// Whether a table of that name exists (in the search path).
    async fn exists(&self, table: &str) -> Result<bool, InboxError> {
        let found = self.db.query("SELECT to_regclass($1)::text", &[&table]).await?;
        Ok(found.first().and_then(|row| row.try_get::<_, Option<String>>(0).ok()).flatten().is_some())
    }

    /// Says in the log when a sample of `state` from before `planning_migration` is
    /// still there (only a superuser may delete it), and how to be rid of it.
    async fn warn_of_old_sample(&self) {
        let t = &self.table;
        let sampled = format!(
            "SELECT EXISTS (SELECT 1 FROM pg_stats WHERE attname = 'state'
                 AND to_regclass(format('%I.%I', schemaname, tablename)) = to_regclass('{t}'))"
        );
        match self.db.query_one(&sampled, &[]).await {
            Ok(row) if row.get::<_, bool>(0) => tracing::warn!(
                table = %t,
                "the planner still has a sample of {t}.state from before hookroute stopped sampling it; a \
                 backlog can make each take slower than the last until it goes. Delete it as a superuser \
                 (DELETE FROM pg_statistic WHERE starelid = '{t}'::regclass AND staattnum = (SELECT attnum \
                 FROM pg_attribute WHERE attrelid = '{t}'::regclass AND attname = 'state')), or run ALTER \
                 TABLE {t} ALTER COLUMN state TYPE text at a quiet time (it rebuilds the partial indexes)"
            ),
            Ok(_) => {}
            Err(err) => tracing::debug!(error = %err, table = %t, "could not look for an old sample of state"),
        }
    }

    /// Fails unless the inbox's table exists, naming the inbox tables that do.
    async fn check_exists(&self) -> Result<(), InboxError> {
        if self.exists(&self.table).await? {
            return Ok(());
        }
        // An inbox table has these columns, whatever its name.
        let tables = self
            .db
            .query(
                "SELECT table_name::text FROM information_schema.columns
                 WHERE table_schema = current_schema() AND column_name IN ('event_id', 'due_at', 'token', 'attempts')
                 GROUP BY table_name HAVING count(*) = 4 ORDER BY table_name",
                &[],
            )
            .await?;
        let names: Vec<String> = tables.iter().filter_map(|row| row.try_get(0).ok()).collect();
        Err(InboxError::InvalidConfig(format!(
            "there is no inbox table `{}`; {}",
            self.table,
            if names.is_empty() {
                "this database holds none".to_owned()
            } else {
                format!("the inbox tables here, nearest first: {}", nearest_first(&self.table, names))
            }
        )))
    }
}

/// The columns, indexes and function of ordered lanes and type caps (see
/// [`Order`](super::Order)); idempotent, for tables made before them too.
///
/// `{t}_may_run` decides whether a row may run. It takes a transaction-level advisory
/// lock on the row's key (and type) without waiting, so two takes never decide on one
/// key at once, and, being `VOLATILE`, reads with a snapshot taken after the lock: it
/// sees every take of the key that committed before. A row it finds behind older ones
/// of its key it parks (due at infinity). `{t}_unpark`, after a settle, waits for that
/// lock and makes the key's oldest waiting row due: a parked row always has an older
/// one of its key pending whose settle comes after it was parked.
fn order_migration(t: &str) -> String {
    format!(
        "DO $do$ BEGIN
           -- ALTER TABLE locks the table: only when a column is missing (a table made
           -- before ordered lanes), never on every connect of a busy fleet.
           IF NOT EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = '{t}'::regclass AND attname = 'releases'
                          AND NOT attisdropped) THEN
             ALTER TABLE {t} ADD COLUMN IF NOT EXISTS seq bigserial,
                 ADD COLUMN IF NOT EXISTS order_key text,
                 ADD COLUMN IF NOT EXISTS created_ms bigint NOT NULL DEFAULT 0,
                 ADD COLUMN IF NOT EXISTS in_flight integer NOT NULL DEFAULT 1,
                 ADD COLUMN IF NOT EXISTS type_cap integer,
                 ADD COLUMN IF NOT EXISTS key_interval bigint,
                 ADD COLUMN IF NOT EXISTS started_at timestamptz,
                 ADD COLUMN IF NOT EXISTS releases boolean NOT NULL DEFAULT false;
             CREATE INDEX IF NOT EXISTS {t}_lease ON {t} (due_at) WHERE state = 'running';
             CREATE INDEX IF NOT EXISTS {t}_running_type ON {t} (event_type)
                 WHERE state = 'running' AND type_cap IS NOT NULL;
           END IF;
           -- A lane's pending deliveries, its done ones (for the stale guard) and its
           -- rate-limited starts apart: a take reading the pending ones of a key never
           -- walks the key's history. (One index of every row made the cost of each
           -- take grow with the key's done deliveries.)
           IF to_regclass('{t}_lane_pending') IS NULL THEN
             CREATE INDEX IF NOT EXISTS {t}_lane_pending ON {t} (order_key, created_ms, seq)
                 WHERE order_key IS NOT NULL AND state IN ('queued', 'retrying', 'running');
             CREATE INDEX IF NOT EXISTS {t}_lane_done ON {t} (order_key, created_ms)
                 WHERE order_key IS NOT NULL AND state = 'done';
             CREATE INDEX IF NOT EXISTS {t}_lane_started ON {t} (order_key, started_at)
                 WHERE order_key IS NOT NULL AND key_interval IS NOT NULL;
             DROP INDEX IF EXISTS {t}_lane;
           END IF;
           -- A lane's running deliveries, which `{t}_may_run` counts for each row it
           -- decides: through `{t}_lane_pending` it read the key's whole backlog to find
           -- them, so a drain of one key cost each take more the longer its queue.
           IF to_regclass('{t}_lane_running') IS NULL THEN
             CREATE INDEX IF NOT EXISTS {t}_lane_running ON {t} (order_key)
                 WHERE order_key IS NOT NULL AND state = 'running';
           END IF;
         END $do$;
         DO $do$ BEGIN
           -- The due deliveries without a key or a type cap, which a batched take added
           -- beside its first while it left keyed ones to it; it reads `{t}_due` now.
           IF to_regclass('{t}_due_free') IS NOT NULL THEN
             DROP INDEX {t}_due_free;
           END IF;
         END $do$;
         {functions}",
        functions = lane_functions(t),
    )
}

/// `{t}_unpark` and `{t}_may_run` (see [`order_migration`]), made anew at each connect.
fn lane_functions(t: &str) -> String {
    format!(
        "CREATE OR REPLACE FUNCTION {t}_unpark(p_lane text, p_k text) RETURNS boolean
         LANGUAGE plpgsql VOLATILE AS $fn$
         BEGIN
           -- After a take that parked a delivery of the key (in `_may_run`) committed.
           PERFORM pg_advisory_xact_lock(hashtext('{t}:lane'), hashtext(p_lane));
           -- A paused one keeps waiting: its due time for when its type resumes.
           UPDATE {t} SET due_at = CASE WHEN paused_due IS NOT NULL THEN due_at
                                        WHEN due_at = 'infinity' THEN now() ELSE greatest(due_at, now()) END,
                          paused_due = CASE WHEN paused_due IS NULL THEN NULL
                                            WHEN paused_due = 'infinity' THEN now() ELSE greatest(paused_due, now()) END
           -- Of a key that runs several at once, one already due is passed over: an
           -- earlier settle unparked it, and it waits for a take (two settles unpark
           -- two). A key that runs one at a time unparks its oldest, as ever.
           WHERE key = (SELECT o.key FROM {t} o WHERE o.order_key = p_lane AND o.state IN ('queued', 'retrying')
                          AND o.key <> p_k AND (o.in_flight = 1 OR o.due_at > now())
                          AND NOT (o.state = 'retrying' AND o.releases AND o.due_at > now())
                        ORDER BY o.order_key, o.created_ms, o.seq LIMIT 1);
           RETURN true;
         END
         $fn$;
         CREATE OR REPLACE FUNCTION {t}_may_run(p_k text, p_lane text, p_created bigint, p_s bigint, p_in_flight integer,
                                                p_etype text, p_type_cap integer, p_key_interval bigint)
         RETURNS boolean LANGUAGE plpgsql VOLATILE AS $fn$
         BEGIN
           IF p_lane IS NOT NULL THEN
             IF NOT pg_try_advisory_xact_lock(hashtext('{t}:lane'), hashtext(p_lane)) THEN RETURN false; END IF;
             IF (SELECT count(*) FROM (SELECT 1 FROM {t} o WHERE o.order_key = p_lane
                   AND o.state IN ('queued', 'retrying', 'running') AND (o.created_ms, o.seq) < (p_created, p_s)
                   AND NOT (o.state = 'retrying' AND o.releases AND o.due_at > now())
                   LIMIT p_in_flight) x) >= p_in_flight THEN
               -- Behind older ones of its key (two enqueued at once, neither seeing
               -- the other): parked until the key's next settle, which waits for
               -- this lock, unparks it.
               UPDATE {t} SET due_at = 'infinity' WHERE key = p_k AND state = 'queued' AND paused_due IS NULL;
               RETURN false;
             END IF;
             IF (SELECT count(*) FROM (SELECT 1 FROM {t} o WHERE o.order_key = p_lane AND o.state = 'running'
                   AND o.due_at > now() AND o.key <> p_k LIMIT p_in_flight) x) >= p_in_flight THEN RETURN false; END IF;
             IF p_key_interval IS NOT NULL AND EXISTS (SELECT 1 FROM {t} o WHERE o.order_key = p_lane
                   AND o.key_interval IS NOT NULL AND o.started_at > now() - p_key_interval * interval '1 millisecond')
             THEN RETURN false; END IF;
           END IF;
           IF p_type_cap IS NOT NULL THEN
             IF NOT pg_try_advisory_xact_lock(hashtext('{t}:type'), hashtext(p_etype)) THEN RETURN false; END IF;
             IF (SELECT count(*) FROM (SELECT 1 FROM {t} o WHERE o.event_type = p_etype AND o.state = 'running'
                   AND o.type_cap IS NOT NULL AND o.due_at > now() AND o.key <> p_k LIMIT p_type_cap) x) >= p_type_cap
             THEN RETURN false; END IF;
           END IF;
           RETURN true;
         END
         $fn$;"
    )
}

/// No statistics of `state`, the column every take, lane and sweep reads first:
/// idempotent, for tables made before too.
///
/// A queue's mix of states turns over faster than `ANALYZE` samples it. A sample
/// taken while every row was queued (a backlog, a fresh table) told the planner no
/// row is done, so the stale guard of each keyed take read every done row through
/// `{t}_state` to find its key's; one taken while every row was done sent each lane's
/// lookup of its pending rows through every queued row of every key. Either way each
/// take cost more than the last, until the next sample: a keyed drain of 5,000 fell
/// from 1,462 to 381 and 347 a second, and a drain of 20,000 of a fresh table
/// stalled for a minute about one time in six. With no sample the planner assumes a
/// state is rare, and each lookup reads the index of its key, whatever the mix.
///
/// A sample taken before is deleted where the role may (a superuser); otherwise
/// [`PostgresInboxBuilder::connect`] says so in the log.
fn planning_migration(t: &str) -> String {
    format!(
        "DO $do$ BEGIN
           -- The setting takes a lock that lets reads and writes on: once, not at every connect.
           IF (SELECT attstattarget FROM pg_attribute WHERE attrelid = '{t}'::regclass AND attname = 'state')
                IS DISTINCT FROM 0 THEN
             ALTER TABLE {t} ALTER COLUMN state SET STATISTICS 0;
             BEGIN
               DELETE FROM pg_statistic WHERE starelid = '{t}'::regclass AND staattnum =
                   (SELECT attnum FROM pg_attribute WHERE attrelid = '{t}'::regclass AND attname = 'state');
             EXCEPTION WHEN insufficient_privilege THEN NULL;
             END;
           END IF;
         END $do$;"
    )
}

/// What the operator's side needs (see [`InboxAdmin`]): a paused type's kept due time,
/// and the search indexes; idempotent, for tables made before them too.
fn admin_migration(t: &str) -> String {
    format!(
        "DO $do$ BEGIN
           -- Paused event types: their deliveries wait at infinity, their due time kept.
           IF NOT EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = '{t}'::regclass AND attname = 'paused_due'
                          AND NOT attisdropped) THEN
             ALTER TABLE {t} ADD COLUMN IF NOT EXISTS paused_due timestamptz;
           END IF;
           -- Each delivery's failed attempts and replays (`HistoryLine`s).
           IF NOT EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = '{t}'::regclass AND attname = 'history'
                          AND NOT attisdropped) THEN
             ALTER TABLE {t} ADD COLUMN IF NOT EXISTS history text;
           END IF;
           -- The rows with a history by when they were last written: the console's chart
           -- of failures reads them. Partial: a delivery that never failed is not in it.
           IF to_regclass('{t}_history') IS NULL THEN
             CREATE INDEX IF NOT EXISTS {t}_history ON {t} (updated_at) WHERE history IS NOT NULL;
           END IF;
           -- Searches, newest first, all of them and by event type (by state: {t}_state).
           IF to_regclass('{t}_received') IS NULL THEN
             CREATE INDEX IF NOT EXISTS {t}_received ON {t} (received_at, key);
             CREATE INDEX IF NOT EXISTS {t}_type_received ON {t} (event_type, received_at, key);
           END IF;
           -- The failures, newest first, by state and by state and type, and by error
           -- text (only the rows that have one). Partial: healthy traffic never writes
           -- them. With 1,000,000 rows, a planner without them read every dead letter
           -- to find a type's (160 ms), or every row for an error text (550 ms).
           IF to_regclass('{t}_failed_type') IS NULL THEN
             CREATE INDEX IF NOT EXISTS {t}_failed ON {t} (state, received_at, key)
                 WHERE state IN ('dead', 'retrying');
             CREATE INDEX IF NOT EXISTS {t}_failed_type ON {t} (state, event_type, received_at, key)
                 WHERE state IN ('dead', 'retrying');
             CREATE INDEX IF NOT EXISTS {t}_errors ON {t} (received_at, key) WHERE last_error IS NOT NULL;
           END IF;
           -- Error text through trigrams (`pg_trgm`, trusted since PostgreSQL 13: a
           -- database owner may create it): a text no failure has is answered without
           -- reading every failed row. Where the extension cannot be made, searches
           -- read `{t}_errors` as before.
           IF to_regclass('{t}_error_text') IS NULL THEN
             BEGIN
               CREATE EXTENSION IF NOT EXISTS pg_trgm;
               CREATE INDEX IF NOT EXISTS {t}_error_text ON {t} USING gin (last_error gin_trgm_ops)
                   WHERE last_error IS NOT NULL;
             EXCEPTION WHEN OTHERS THEN
               RAISE NOTICE 'hookroute: no trigram index on {t}.last_error (%): error searches read every failed row',
                   SQLERRM;
             END;
           END IF;
         END $do$;"
    )
}

/// A delivery's signed time, creation time, `in_flight`, type cap and key interval as
/// the table's columns hold them.
fn columns(delivery: &NewDelivery<'_>) -> (Option<i64>, Option<i64>, i32, Option<i32>, Option<i64>) {
    let limits = &delivery.order.limits;
    (
        delivery.signed_at.and_then(|at| i64::try_from(at).ok()),
        delivery.order.created_ms.map(|at| i64::try_from(at).unwrap_or(i64::MAX)),
        i32::try_from(limits.in_flight.max(1)).unwrap_or(i32::MAX),
        limits.type_concurrency.map(|cap| i32::try_from(cap.max(1)).unwrap_or(i32::MAX)),
        limits.key_interval_ms.map(|every| i64::try_from(every).unwrap_or(i64::MAX)),
    )
}

/// A row a take answered: [`read`]'s columns, whether it is superseded, its token.
fn leased(row: &Row) -> Result<Leased, InboxError> {
    let unavailable = |err: tokio_postgres::Error| InboxError::Unavailable(Box::new(err));
    let delivery = read(row)?;
    let superseded = row.try_get(12).map_err(unavailable)?;
    let token: String = row.try_get(13).map_err(unavailable)?;
    Ok(Leased { lease: Lease::new(delivery.key.clone(), token), delivery, superseded })
}

fn read(row: &Row) -> Result<StoredDelivery, InboxError> {
    let unavailable = |err: tokio_postgres::Error| InboxError::Unavailable(Box::new(err));
    let state: String = row.try_get(6).map_err(unavailable)?;
    let signed_at: Option<i64> = row.try_get(5).map_err(unavailable)?;
    let attempts: i32 = row.try_get(7).map_err(unavailable)?;
    Ok(StoredDelivery {
        key: row.try_get(0).map_err(unavailable)?,
        id: row.try_get(1).map_err(unavailable)?,
        event_type: row.try_get(2).map_err(unavailable)?,
        headers: row.try_get(3).map_err(unavailable)?,
        body: row.try_get(4).map_err(unavailable)?,
        signed_at: signed_at.and_then(|at| u64::try_from(at).ok()),
        state: state.parse().map_err(|err: String| InboxError::Unavailable(err.into()))?,
        attempts: u32::try_from(attempts).unwrap_or(0),
        last_error: row.try_get(8).map_err(unavailable)?,
        received_at: from_unix_millis(row.try_get(9).map_err(unavailable)?),
        order_key: row.try_get(10).map_err(unavailable)?,
        created_at: from_unix_millis(row.try_get(11).map_err(unavailable)?),
    })
}

#[async_trait::async_trait]
impl Inbox for PostgresInbox {
    fn backend(&self) -> &'static str {
        "postgresql"
    }

    fn orders(&self) -> bool {
        true
    }

    async fn forget_payloads(&self, older_than: Duration) -> Result<u64, InboxError> {
        let (sql, older_than) = (&self.inner.sql, millis(older_than));
        let swept = self.in_batches(&sql.forget_expired, &[&older_than]).await?;
        Ok(swept + self.in_batches(&sql.forget_payloads, &[&older_than]).await?)
    }

    async fn owner(&self) -> Result<Option<String>, InboxError> {
        let owner_table = format!("{}_owner", self.inner.table);
        // An inbox made before owners were kept has no such table.
        if !self.inner.exists(&owner_table).await? {
            return Ok(None);
        }
        let rows = self.query(&format!("SELECT namespace FROM {owner_table} WHERE id = 1"), &[]).await?;
        Ok(rows.first().and_then(|row| row.try_get(0).ok()))
    }

    async fn bind(&self, namespace: &str, also: &[String]) -> Result<(), InboxError> {
        let t = &self.inner.table;
        let insert = format!("INSERT INTO {t}_owner (id, namespace) VALUES (1, $1) ON CONFLICT (id) DO NOTHING");
        self.execute(&insert, &[&namespace]).await?;
        let rows = self.query(&format!("SELECT namespace FROM {t}_owner WHERE id = 1"), &[]).await?;
        let owner: String = rows
            .first()
            .and_then(|row| row.try_get(0).ok())
            .ok_or_else(|| InboxError::Unavailable(format!("{t}_owner has no row").into()))?;
        if let Some(new) = super::bind_owner(&owner, namespace, also, "`?table=` another table")? {
            // Only from the namespace read: two receivers taking over at once agree.
            let update = format!("UPDATE {t}_owner SET namespace = $1 WHERE id = 1 AND namespace = $2");
            self.execute(&update, &[&new, &owner]).await?;
        }
        Ok(())
    }

    async fn enqueue(&self, delivery: &NewDelivery<'_>) -> Result<Enqueued, InboxError> {
        // Written with the others arriving now: one statement, one commit.
        let fresh = OwnedDelivery::of(delivery);
        let inner = Arc::clone(&self.inner);
        let write = move |batch| {
            let inner = Arc::clone(&inner);
            async move { inner.enqueue_many(batch).await }
        };
        batch_answer(self.inner.enqueues.submit(fresh, write).await, "enqueue")
    }

    async fn take(&self, lease: Duration) -> Result<Option<Leased>, InboxError> {
        let rows = self.inner.marks.query(&self.inner.sql.take, &[&lease_token(), &millis(lease)]).await?;
        rows.first().map(leased).transpose()
    }

    async fn take_many(&self, lease: Duration, most: usize) -> Result<Vec<Leased>, InboxError> {
        if most <= 1 {
            return Ok(self.take(lease).await?.into_iter().collect());
        }
        let more = i64::try_from(most - 1).unwrap_or(i64::MAX);
        let rows = self.inner.marks.query(&self.inner.sql.take_many, &[&lease_token(), &millis(lease), &more]).await?;
        let mut taken = rows.iter().map(leased).collect::<Result<Vec<_>, _>>()?;
        // Due longest first, as one take at a time would have them.
        taken.sort_by_key(|leased| leased.delivery.received_at);
        Ok(taken)
    }

    async fn renew(&self, lease: &Lease, duration: Duration) -> Result<(), InboxError> {
        self.held(lease, &self.inner.sql.renew, &[&millis(duration)]).await
    }

    async fn complete(&self, lease: &Lease, ttl: Duration) -> Result<(), InboxError> {
        let inner = Arc::clone(&self.inner);
        let write = move |batch| {
            let inner = Arc::clone(&inner);
            async move { inner.complete_many(batch).await }
        };
        let completed = self.inner.completes.submit((lease.clone(), millis(ttl)), write).await;
        match batch_answer(completed, "completion") {
            // Not among the batch's rows: a lease that is lost, or one the batch does not
            // settle (a keyed delivery leased before `lane-` tokens); the single
            // statement decides which.
            Err(InboxError::ClaimLost { .. }) => self.held(lease, &self.inner.sql.complete, &[&millis(ttl)]).await,
            answer => answer,
        }
    }

    async fn retry(&self, lease: &Lease, delay: Duration, error: &str) -> Result<(), InboxError> {
        self.held(lease, &self.inner.sql.retry, &[&millis(delay), &error]).await
    }

    async fn retry_releasing(&self, lease: &Lease, delay: Duration, error: &str) -> Result<(), InboxError> {
        self.held(lease, &self.inner.sql.retry_releasing, &[&millis(delay), &error]).await
    }

    async fn dead_letter(&self, lease: &Lease, error: &str) -> Result<(), InboxError> {
        self.held(lease, &self.inner.sql.dead, &[&error]).await
    }

    async fn release(&self, lease: &Lease) -> Result<(), InboxError> {
        self.held(lease, &self.inner.sql.release, &[]).await
    }

    async fn stats(&self) -> Result<InboxStats, InboxError> {
        self.counted(&self.inner.sql.counts).await
    }

    async fn stats_without_done(&self) -> Result<InboxStats, InboxError> {
        self.counted(&self.inner.sql.counts_without_done).await
    }

    async fn waiting(&self, up_to: u64) -> Result<u64, InboxError> {
        let limit = i64::try_from(up_to).unwrap_or(i64::MAX);
        let rows = self.query(&self.inner.sql.waiting, &[&limit]).await?;
        let count: i64 = match rows.first() {
            Some(row) => row.try_get(0).map_err(|err| InboxError::Unavailable(Box::new(err)))?,
            None => 0,
        };
        Ok(count.unsigned_abs())
    }

    async fn key_stats(&self) -> Result<Option<KeyStats>, InboxError> {
        let rows = self.query(&self.inner.sql.keys, &[]).await?;
        let Some(row) = rows.first() else { return Ok(Some(KeyStats::default())) };
        let count = |at: usize| -> Result<u64, InboxError> {
            let count: i64 = row.try_get(at).map_err(|err| InboxError::Unavailable(Box::new(err)))?;
            Ok(count.unsigned_abs())
        };
        Ok(Some(KeyStats { waiting: count(0)?, held_by_retry: count(1)? }))
    }
}

#[async_trait::async_trait]
impl InboxAdmin for PostgresInbox {
    async fn list(&self, state: DeliveryState, limit: usize) -> Result<Vec<StoredDelivery>, InboxError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = self.query(&self.inner.sql.list, &[&state.as_str(), &limit]).await?;
        rows.iter().map(read).collect()
    }

    async fn search(&self, filter: &Filter, after: Option<&Cursor>, limit: usize) -> Result<Page, InboxError> {
        let rows = self.search_rows("SELECT {COLUMNS}", filter, after, Some(limit)).await?;
        Ok(Page::of(rows.iter().map(read).collect::<Result<_, _>>()?, limit))
    }

    async fn count(&self, filter: &Filter) -> Result<u64, InboxError> {
        let rows = self.search_rows("SELECT count(*)", filter, None, None).await?;
        let count: i64 = match rows.first() {
            Some(row) => row.try_get(0).map_err(|err| InboxError::Unavailable(Box::new(err)))?,
            None => 0,
        };
        Ok(count.unsigned_abs())
    }

    async fn pause(&self, event_type: &str) -> Result<bool, InboxError> {
        let t = &self.inner.table;
        let pause = format!("INSERT INTO {t}_paused (event_type) VALUES ($1) ON CONFLICT DO NOTHING");
        let paused = self.execute(&pause, &[&event_type]).await? == 1;
        // After the pause committed: what an enqueue saw unpaused is caught here or
        // by the take's check.
        let park = format!(
            "UPDATE {t} SET paused_due = due_at, due_at = 'infinity'
             WHERE event_type = $1 AND state IN ('queued', 'retrying') AND paused_due IS NULL"
        );
        self.execute(&park, &[&event_type]).await?;
        Ok(paused)
    }

    async fn resume(&self, event_type: &str) -> Result<bool, InboxError> {
        let t = &self.inner.table;
        // The delete waits for the enqueues that saw the pause (`FOR SHARE`); the
        // update after it, a statement of its own, sees what they stored.
        let resume = format!("DELETE FROM {t}_paused WHERE event_type = $1");
        let resumed = self.execute(&resume, &[&event_type]).await? == 1;
        let unpark = format!(
            "UPDATE {t} SET due_at = paused_due, paused_due = NULL WHERE event_type = $1 AND paused_due IS NOT NULL"
        );
        self.execute(&unpark, &[&event_type]).await?;
        Ok(resumed)
    }

    async fn paused(&self) -> Result<Vec<String>, InboxError> {
        let rows = self.query(&format!("SELECT event_type FROM {}_paused ORDER BY 1", self.inner.table), &[]).await?;
        rows.iter().map(|row| row.try_get(0).map_err(|err| InboxError::Unavailable(Box::new(err)))).collect()
    }

    async fn get(&self, key: &str) -> Result<Option<StoredDelivery>, InboxError> {
        let rows = self.query(&self.inner.sql.get, &[&key]).await?;
        rows.first().map(read).transpose()
    }

    async fn type_counts(&self) -> Result<Vec<TypeCounts>, InboxError> {
        let sql = format!(
            "SELECT event_type, state, count(*) FROM {} WHERE state IN ('queued', 'running', 'retrying', 'dead')
             GROUP BY 1, 2",
            self.inner.table
        );
        let unavailable = |err| InboxError::Unavailable(Box::new(err));
        let mut named = Vec::new();
        for row in self.query(&sql, &[]).await? {
            named.push((
                row.try_get(0).map_err(unavailable)?,
                row.try_get(1).map_err(unavailable)?,
                row.try_get(2).map_err(unavailable)?,
            ));
        }
        TypeCounts::from_named_rows(named)
    }

    async fn activity(
        &self,
        start: SystemTime,
        period: Duration,
        periods: usize,
    ) -> Result<Option<Activity>, InboxError> {
        let mut activity = Activity::new(start, period, periods);
        let (from, period_ms, until) = activity.span_ms();
        let t = &self.inner.table;
        // Completions through the state index alone (an index-only scan: no `due_at`
        // check, and `date_part`'s float, 3 times faster than `extract`'s numeric), one
        // row a period; failures from the
        // histories of the rows written since (`{t}_history` holds only those).
        let done = format!(
            "SELECT ((date_part('epoch', updated_at) * 1000)::bigint - $1) / $3 AS period, count(*) FROM {t}
             WHERE state = 'done' AND updated_at >= {at1} AND updated_at < {at2} GROUP BY 1",
            at1 = at_millis("$1"),
            at2 = at_millis("$2"),
        );
        let unavailable = |err| InboxError::Unavailable(Box::new(err));
        for row in self.query(&done, &[&from, &until, &period_ms]).await? {
            let (period, count): (i64, i64) =
                (row.try_get(0).map_err(unavailable)?, row.try_get(1).map_err(unavailable)?);
            activity.add_done(from + period * period_ms, count.unsigned_abs());
        }
        let failed = format!("SELECT history FROM {t} WHERE history IS NOT NULL AND updated_at >= {}", at_millis("$1"));
        for row in self.query(&failed, &[&from]).await? {
            let history: String = row.try_get(0).map_err(unavailable)?;
            activity.add_history(&history);
        }
        Ok(Some(activity))
    }

    async fn history(&self, key: &str) -> Result<Option<History>, InboxError> {
        let unavailable = |err| InboxError::Unavailable(Box::new(err));
        let Some(row) = self.query(&self.inner.sql.history, &[&key]).await?.into_iter().next() else {
            return Ok(Some(History::default()));
        };
        let (text, changed): (String, i64) =
            (row.try_get(0).map_err(unavailable)?, row.try_get(1).map_err(unavailable)?);
        Ok(Some(HistoryLine::read(&text, Some(changed))))
    }

    async fn list_key(&self, order_key: &str, limit: usize) -> Result<Vec<StoredDelivery>, InboxError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = self.query(&self.inner.sql.list_key, &[&order_key, &limit]).await?;
        rows.iter().map(read).collect()
    }

    async fn replay(&self, key: &str) -> Result<bool, InboxError> {
        Ok(self.execute(&self.inner.sql.replay, &[&key]).await? == 1)
    }

    async fn purge_done(&self, older_than: Duration) -> Result<u64, InboxError> {
        let older_than = if older_than.is_zero() { 0 } else { millis(older_than) };
        self.execute(&self.inner.sql.purge_done, &[&older_than]).await
    }
}

//! A store in Redis, shared by every replica that points at the same server.

use std::fmt;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use redis::aio::ConnectionManager;
use redis::{ErrorKind, RedisError, Script, ServerErrorKind, Value};
use tokio::sync::oneshot;

use super::{fresh_token, Claim, ClaimToken, IdempotencyStore, StoreError};
use crate::backend::redis::{connection, RedisBuilder};
use crate::backend::{millis, within};

/// The completions and releases of one batch, in the order they were asked for.
/// `KEYS[i]` is the i-th operation's key; `ARGV[3i-2]` what it does (`d` complete, `r`
/// release), `ARGV[3i-1]` its token and `ARGV[3i]` its TTL in milliseconds. The i-th
/// answer: 1 when the token still held the key, else 0; and -1 when Redis refused that
/// one command (a key of another type), without failing the rest. Claims need no
/// script: see [`Batcher::run`].
const BATCH: &str = r"
local answers = {}
for i, key in ipairs(KEYS) do
  local op, token, ms = ARGV[3 * i - 2], ARGV[3 * i - 1], ARGV[3 * i]
  local answer
  local current = redis.pcall('GET', key)
  if type(current) == 'table' and current.err then answer = -1
  elseif current ~= token then answer = 0
  elseif op == 'd' then redis.call('SET', key, 'done', 'PX', ms); answer = 1
  else redis.call('DEL', key); answer = 1 end
  answers[i] = answer
end
return answers
";

/// The most operations one script call carries; a larger batch is split, and its
/// parts sent together.
const MAX_BATCH: usize = 256;

/// An idempotency store in Redis (7.0 or newer), for receivers on several replicas.
///
/// - **claim** is `SET key token NX PX lease GET`: it sets the key only if absent and
///   answers what was there (`done`, someone's token, or nothing). A claimant that
///   dies holds the key only until the lease expires.
/// - **complete** and **release** act only if the key still holds the caller's
///   token, so a claimant whose lease ran out cannot touch the claim that replaced it.
///   A completed key holds `done` and expires after the TTL.
/// - **Batched**: the operations that concurrent deliveries ask for while one round
///   trip is under way go to Redis together, in one pipeline: the completions and
///   releases as one call of one Lua script (the token check and the write must be
///   atomic, and Redis 7 has no command for that), the claims as plain commands, each
///   as atomic as on its own. Under load a delivery's two round trips are shared with
///   every other delivery's; alone, it costs what it did.
///
/// Keys are the receiver's (`<namespace>:<provider>:event:<id>`) behind an optional prefix. The
/// connection is a [`ConnectionManager`], which reconnects after the server comes back;
/// every operation has a deadline ([`DEFAULT_STORE_TIMEOUT`](super::DEFAULT_STORE_TIMEOUT) unless set), so an outage
/// makes the receiver answer 503 at once instead of hanging. One server, not a
/// Redis Cluster: a batch's keys need not share a slot.
///
/// ```no_run
/// use hookroute_runtime::store::RedisStore;
///
/// # async fn run() -> Result<(), hookroute_runtime::store::StoreError> {
/// let store = RedisStore::builder("redis://127.0.0.1:6379/").prefix("billing:").connect().await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct RedisStore {
    batcher: Arc<Batcher>,
}

/// Gathers operations into batches and sends them, one batch at a time.
struct Batcher {
    connection: ConnectionManager,
    prefix: String,
    timeout: Duration,
    script: Script,
    pending: Mutex<Pending>,
}

/// The operations asked for and not yet sent.
#[derive(Default)]
struct Pending {
    /// Each operation's key (prefix included) and token, back to back.
    bytes: Vec<u8>,
    operations: Vec<Operation>,
    /// Whether a task is sending batches; it takes these when it is ready.
    sending: bool,
}

struct Operation {
    kind: Kind,
    /// Where its key and its token end in `bytes` (each starts where the previous ends).
    key_end: usize,
    token_end: usize,
    millis: i64,
    answer: oneshot::Sender<Result<i64, RedisError>>,
}

#[derive(Clone, Copy)]
enum Kind {
    Claim,
    Complete,
    Release,
}

impl Kind {
    fn code(self) -> &'static str {
        match self {
            Self::Claim => "c", // sent as a command of its own, not to the script
            Self::Complete => "d",
            Self::Release => "r",
        }
    }
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStore")
            .field("prefix", &self.batcher.prefix)
            .field("timeout", &self.batcher.timeout)
            .finish_non_exhaustive()
    }
}

/// Sets up a [`RedisStore`]; from [`RedisStore::builder`].
pub type RedisStoreBuilder = RedisBuilder<RedisStore>;

impl RedisStore {
    /// Connects to the Redis server at `url` (`redis://[:password@]host[:port][/db]`)
    /// with the default settings.
    ///
    /// Fails with [`StoreError::Connect`] if the URL is invalid or the server does not
    /// answer within the timeout.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Self::builder(url).connect().await
    }

    /// Starts configuring a store for the server at `url`.
    pub fn builder(url: impl Into<String>) -> RedisStoreBuilder {
        RedisBuilder::new(url.into(), "")
    }

    /// Asks for one operation: queues it, makes sure a task is sending, and waits for
    /// its answer, which comes within the timeout of its batch's sending.
    async fn ask(&self, kind: Kind, key: &str, token: &str, millis: i64) -> Result<i64, StoreError> {
        let batcher = &self.batcher;
        let (answer, answered) = oneshot::channel();
        let start_sending = {
            let mut pending = batcher.lock();
            let Pending { bytes, operations, sending } = &mut *pending;
            bytes.extend_from_slice(batcher.prefix.as_bytes());
            bytes.extend_from_slice(key.as_bytes());
            let key_end = bytes.len();
            bytes.extend_from_slice(token.as_bytes());
            operations.push(Operation { kind, key_end, token_end: bytes.len(), millis, answer });
            !std::mem::replace(sending, true)
        };
        if start_sending {
            tokio::spawn(Arc::clone(batcher).send_all());
        }
        // No timer of its own: the batch it goes in has one, and when a batch fails for
        // want of the server, the operations queued behind it fail with it.
        match answered.await.map_err(|_| StoreError::Unavailable("the Redis batch was dropped".into()))? {
            Ok(-1) => Err(StoreError::Unavailable(
                format!("Redis refused the operation on `{key}` (does the key hold another type?)").into(),
            )),
            Ok(answer) => Ok(answer),
            Err(error) => Err(StoreError::Unavailable(Box::new(error))),
        }
    }
}

impl Batcher {
    fn lock(&self) -> std::sync::MutexGuard<'_, Pending> {
        // Every statement leaves the queue consistent.
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Sends what is queued, batch after batch, until nothing is; then stops.
    async fn send_all(self: Arc<Self>) {
        // Let the tasks that are ready to run ask first: they join this batch.
        tokio::task::yield_now().await;
        let mut stop = StopSending { batcher: &self, armed: true };
        let mut batch = Pending::default();
        loop {
            {
                let mut pending = self.lock();
                if pending.operations.is_empty() {
                    // Under the lock: whoever asks next sees that nobody is sending.
                    pending.sending = false;
                    stop.armed = false;
                    return;
                }
                std::mem::swap(&mut pending.bytes, &mut batch.bytes);
                std::mem::swap(&mut pending.operations, &mut batch.operations);
            }
            if let Some(error) = self.send(&mut batch).await {
                let queued = {
                    let mut pending = self.lock();
                    pending.bytes.clear();
                    std::mem::take(&mut pending.operations)
                };
                for operation in queued {
                    let _ = operation.answer.send(Err(error.clone()));
                }
            }
            batch.bytes.clear();
        }
    }

    /// Sends one batch, in parts of at most `MAX_BATCH` sent together, and hands each
    /// operation its answer. Returns the error of a part that failed for want of the
    /// server (it did not answer in time, or the connection failed).
    async fn send(&self, batch: &mut Pending) -> Option<RedisError> {
        let Pending { bytes, operations, .. } = batch;
        let mut parts = Vec::with_capacity(operations.len().div_ceil(MAX_BATCH));
        let mut start = 0;
        for part in operations.chunks(MAX_BATCH) {
            parts.push(self.run(bytes, start, part));
            start = part.last().map_or(start, |operation| operation.token_end);
        }
        let results = futures_util::future::join_all(parts).await;
        let unreachable = results.iter().find_map(|result| match result {
            Err(error) if error.is_timeout() || error.is_io_error() || error.is_connection_dropped() => {
                Some(error.clone())
            }
            _ => None,
        });
        let mut operations = operations.drain(..);
        // The asker may have stopped waiting: then nobody needs the answer.
        for result in results {
            match result {
                // `run` answers once per operation of its part.
                Ok(answers) => {
                    for (answer, operation) in answers.into_iter().zip(operations.by_ref()) {
                        let _ = operation.answer.send(number(answer));
                    }
                }
                Err(error) => {
                    for operation in operations.by_ref().take(MAX_BATCH) {
                        let _ = operation.answer.send(Err(error.clone()));
                    }
                }
            }
        }
        unreachable
    }

    /// Runs one part of a batch in one round trip; `start` is where its first key
    /// begins. Its completions and releases go in one call of the script, which checks
    /// each token; its claims, which need no check, go as plain commands beside it
    /// (`SET key token NX PX lease GET`), which cost Redis less than the same command
    /// run from Lua. The operations of a batch were all asked for before any was
    /// answered, so running the script's first is an order they could have had.
    async fn run(&self, bytes: &[u8], start: usize, part: &[Operation]) -> Result<Vec<Value>, RedisError> {
        let mut connection = self.connection.clone();
        // Each operation's key and token, by where they start and end in `bytes`.
        let spans: Vec<(&[u8], &[u8])> = part
            .iter()
            .scan(start, |at, operation| {
                let key = &bytes[*at..operation.key_end];
                *at = operation.token_end;
                Some((key, &bytes[operation.key_end..operation.token_end]))
            })
            .collect();
        let scripted: Vec<usize> = (0..part.len()).filter(|&i| !matches!(part[i].kind, Kind::Claim)).collect();
        let mut pipeline = redis::pipe();
        pipeline.ignore_errors();
        if !scripted.is_empty() {
            pipeline.add_command(Self::command("EVALSHA", self.script.get_hash(), part, &spans, &scripted));
        }
        for (operation, (key, token)) in part.iter().zip(&spans) {
            if matches!(operation.kind, Kind::Claim) {
                pipeline.cmd("SET").arg(*key).arg(*token).arg("NX").arg("PX").arg(operation.millis).arg("GET");
            }
        }
        let answers: Vec<Value> = timed(self.timeout, pipeline.query_async(&mut connection)).await?;
        let mut answers = answers.into_iter();
        let mut script = if scripted.is_empty() {
            None
        } else {
            Some(answers.next().ok_or_else(|| RedisError::from((ErrorKind::Parse, "no answer to the batch script")))?)
        };
        if let Some(Value::ServerError(error)) = &script {
            if error.kind() == Some(ServerErrorKind::NoScript) {
                // The server forgot the script (a restart, SCRIPT FLUSH): send it whole.
                let command = Self::command("EVAL", BATCH, part, &spans, &scripted);
                script = Some(timed(self.timeout, command.query_async(&mut connection)).await?);
            }
        }
        let mut scripted_answers = match script {
            None => Vec::new(),
            Some(Value::Array(answers)) if answers.len() == scripted.len() => answers,
            // The script failed: its operations fail with its answer (each reads it as
            // an error), and the claims beside it, which ran, keep theirs.
            Some(other) => vec![other; scripted.len()],
        }
        .into_iter();
        let mut claimed = answers;
        let answers: Vec<Value> = part
            .iter()
            .map(|operation| match operation.kind {
                Kind::Claim => claimed.next().map(claim_answer),
                Kind::Complete | Kind::Release => scripted_answers.next(),
            })
            .collect::<Option<_>>()
            .ok_or_else(|| RedisError::from((ErrorKind::Parse, "fewer answers than operations in the batch")))?;
        Ok(answers)
    }

    /// `<verb> <script> <n> <keys…> <op token millis…>` for the operations of a part
    /// at `which`.
    fn command(verb: &str, script: &str, part: &[Operation], spans: &[(&[u8], &[u8])], which: &[usize]) -> redis::Cmd {
        let length: usize = which.iter().map(|&i| spans[i].0.len() + spans[i].1.len() + 24).sum();
        let mut command = redis::Cmd::with_capacity(3 + 4 * which.len(), script.len() + 32 + length);
        command.arg(verb).arg(script).arg(which.len());
        for &i in which {
            command.arg(spans[i].0);
        }
        for &i in which {
            command.arg(part[i].kind.code()).arg(spans[i].1).arg(part[i].millis);
        }
        command
    }
}

/// A claim's answer as the script would give it: 0 when the key was free (now ours),
/// 1 when it holds `done`, 2 when someone's token, -1 when Redis refused the command.
fn claim_answer(answer: Value) -> Value {
    Value::Int(match answer {
        Value::Nil => 0,
        Value::BulkString(held) if held == b"done" => 1,
        Value::ServerError(_) => -1,
        _ => 2,
    })
}

/// One operation's answer: the number the script gave it (or a claim's, as the script
/// would have), or the error Redis answered in its place.
fn number(answer: Value) -> Result<i64, RedisError> {
    match answer {
        Value::Int(answer) => Ok(answer),
        Value::ServerError(error) => Err(error.into()),
        other => Err(RedisError::from((ErrorKind::Parse, "unexpected answer in the batch", format!("{other:?}")))),
    }
}

/// If the sending task ends early (its runtime shut down), whoever asks next starts
/// another, and the operations it had taken fail at once (their answers are dropped).
struct StopSending<'a> {
    batcher: &'a Batcher,
    armed: bool,
}

impl Drop for StopSending<'_> {
    fn drop(&mut self) {
        if self.armed {
            self.batcher.lock().sending = false;
        }
    }
}

/// `operation` bounded by `timeout`, failing as Redis's own timeouts do.
async fn timed<T>(timeout: Duration, operation: impl Future<Output = Result<T, RedisError>>) -> Result<T, RedisError> {
    tokio::time::timeout(timeout, operation).await.unwrap_or_else(|_| {
        Err(RedisError::from(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "Redis did not answer within the store's timeout",
        )))
    })
}

impl RedisStoreBuilder {
    /// Connects, failing with [`StoreError::Connect`] rather than waiting forever, and
    /// with [`StoreError::InvalidConfig`] when the server may evict keys.
    pub async fn connect(self) -> Result<RedisStore, StoreError> {
        let RedisBuilder { url, prefix, timeout, allow_eviction, .. } = self;
        let (mut connection, _target) = connection(&url, timeout, allow_eviction).await?;
        let script = Script::new(BATCH);
        // Loaded now so that the first batch need not be sent twice; were it refused
        // (an ACL without SCRIPT), each batch would still send it whole when needed.
        let mut load = redis::cmd("SCRIPT");
        load.arg("LOAD").arg(BATCH);
        if let Err(error) = within::<String, _>(timeout, "Redis", load.query_async(&mut connection)).await {
            tracing::debug!(error = %error, "could not load the store's script ahead");
        }
        Ok(RedisStore {
            batcher: Arc::new(Batcher { connection, prefix, timeout, script, pending: Mutex::new(Pending::default()) }),
        })
    }
}

#[async_trait::async_trait]
impl IdempotencyStore for RedisStore {
    fn backend(&self) -> &'static str {
        "redis"
    }

    async fn claim(&self, key: &str, lease: Duration) -> Result<Claim, StoreError> {
        let token = fresh_token()?;
        Ok(match self.ask(Kind::Claim, key, token.as_str(), millis(lease)).await? {
            0 => Claim::Acquired(token),
            1 => Claim::Done,
            _ => Claim::InFlight,
        })
    }

    async fn complete(&self, key: &str, token: &ClaimToken, ttl: Duration) -> Result<(), StoreError> {
        held(key, self.ask(Kind::Complete, key, token.as_str(), millis(ttl)).await?)
    }

    async fn release(&self, key: &str, token: &ClaimToken) -> Result<(), StoreError> {
        held(key, self.ask(Kind::Release, key, token.as_str(), 0).await?)
    }
}

/// The script answers 1 when the token held the claim, 0 when it did not.
fn held(key: &str, answer: i64) -> Result<(), StoreError> {
    match answer {
        1 => Ok(()),
        _ => Err(StoreError::ClaimLost { key: key.to_owned() }),
    }
}

//! The drivers' layer: what the idempotency stores (`store/`) and the inboxes
//! (`inbox/`) of one database share. URLs and their schemes, connecting (pools, TLS,
//! server checks), deadlines on every call, and the errors a failed connection makes.
//! A store or inbox imports from here, never from its sibling.
//!
//! Public here: [`KINDS`], the one table of the URLs [`store::connect`](crate::store::connect),
//! [`inbox::connect`](crate::inbox::connect) and the CLI accept, and each database's
//! builder, which its store and its inbox share.

use std::time::Duration;

use crate::store::error::StoreError;

/// How long a shared store or inbox waits for its server by default before it gives
/// up on an operation (and the receiver answers 503): 2 seconds.
pub const DEFAULT_STORE_TIMEOUT: Duration = Duration::from_secs(2);

#[cfg(any(feature = "postgres", feature = "sqlite", feature = "redis"))]
pub(crate) mod batch;
#[cfg(feature = "postgres")]
pub(crate) mod postgres;
#[cfg(feature = "redis")]
pub(crate) mod redis;
#[cfg(feature = "sqlite")]
pub(crate) mod sqlite;

#[cfg(feature = "postgres")]
pub use postgres::PostgresBuilder;
#[cfg(feature = "redis")]
pub use redis::RedisBuilder;

/// A kind of backend a store or inbox URL can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Kind {
    /// Its name: `memory`, `redis`, `postgres`, `sqlite`.
    pub name: &'static str,
    /// The URL schemes that name it, lower case (`""` is an empty URL).
    pub schemes: &'static [&'static str],
    /// How its URLs look, for help and errors.
    pub form: &'static str,
    /// The hookroute feature it needs, if any.
    pub feature: Option<&'static str>,
    /// Whether this build has that feature.
    pub enabled: bool,
}

/// Every backend a URL can name, in the order help lists them.
pub const KINDS: [Kind; 4] = [
    Kind { name: "memory", schemes: &["", "memory"], form: "memory:", feature: None, enabled: true },
    Kind {
        name: "redis",
        schemes: &["redis", "rediss"],
        form: "redis://…",
        feature: Some("redis"),
        enabled: cfg!(feature = "redis"),
    },
    Kind {
        name: "postgres",
        schemes: &["postgres", "postgresql"],
        form: "postgres://…",
        feature: Some("postgres"),
        enabled: cfg!(feature = "postgres"),
    },
    Kind {
        name: "sqlite",
        schemes: &["sqlite"],
        form: "sqlite:<path>",
        feature: Some("sqlite"),
        enabled: cfg!(feature = "sqlite"),
    },
];

impl Kind {
    /// The kind of backend `url`'s scheme names (case-insensitive), if any.
    #[must_use]
    pub fn of(url: &str) -> Option<&'static Kind> {
        let scheme = scheme_of(url);
        KINDS.iter().find(|kind| kind.schemes.iter().any(|known| known.eq_ignore_ascii_case(scheme)))
    }
}

/// The scheme of `url`, as written: what comes before the first `:`.
fn scheme_of(url: &str) -> &str {
    url.split_once(':').map_or(url, |(scheme, _)| scheme)
}

/// A store or inbox URL with hookroute's own parameters taken out: `?prefix=` (Redis)
/// and `?table=` (PostgreSQL). The others stay for the driver (`sslmode=…`).
pub(crate) struct Location {
    /// The URL without hookroute's parameters.
    pub(crate) url: String,
    prefix: Option<String>,
    table: Option<String>,
}

impl Location {
    pub(crate) fn of(url: &str) -> Self {
        let (url, prefix) = take_param(url, "prefix");
        let (url, table) = take_param(&url, "table");
        Self { url, prefix, table }
    }

    /// The `?prefix=` of a Redis URL; a `?table=` there is an error.
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub(crate) fn prefix(&self, what: &str) -> Result<Option<String>, StoreError> {
        if self.table.is_some() {
            return Err(StoreError::InvalidConfig(format!(
                "a Redis {what} takes `?prefix=` (its keys' prefix), not `?table=`"
            )));
        }
        Ok(self.prefix.clone())
    }

    /// The `?table=` of a PostgreSQL URL; a `?prefix=` there is an error.
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    pub(crate) fn table(&self, what: &str) -> Result<Option<String>, StoreError> {
        if self.prefix.is_some() {
            return Err(StoreError::InvalidConfig(format!(
                "a PostgreSQL {what} takes `?table=` (its table's name), not `?prefix=`"
            )));
        }
        Ok(self.table.clone())
    }

    /// `builder` with the URL's `?prefix=`, if it gives one.
    #[cfg(feature = "redis")]
    pub(crate) fn redis<T>(&self, what: &str, builder: RedisBuilder<T>) -> Result<RedisBuilder<T>, StoreError> {
        Ok(match self.prefix(what)? {
            Some(prefix) => builder.prefix(prefix),
            None => builder,
        })
    }

    /// `builder` with the URL's `?table=`, if it gives one.
    #[cfg(feature = "postgres")]
    pub(crate) fn postgres<T>(
        &self,
        what: &str,
        builder: PostgresBuilder<T>,
    ) -> Result<PostgresBuilder<T>, StoreError> {
        Ok(match self.table(what)? {
            Some(table) => builder.table(table),
            None => builder,
        })
    }

    /// For a URL given to a PostgreSQL builder, which names its table with `.table()`.
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    pub(crate) fn plain_postgres(&self) -> Result<(), StoreError> {
        if self.prefix.is_some() || self.table.is_some() {
            return Err(StoreError::InvalidConfig(
                "`?table=` is read by `store::connect` and `inbox::connect`; with a builder, call `.table(..)`"
                    .to_owned(),
            ));
        }
        Ok(())
    }

    /// For backends that hold one app's data by themselves (a file, the process).
    pub(crate) fn plain(&self, what: &str) -> Result<(), StoreError> {
        if self.prefix.is_some() || self.table.is_some() {
            return Err(StoreError::InvalidConfig(format!(
                "`?prefix=` and `?table=` are for Redis and PostgreSQL; give each app its own {what} file or process instead"
            )));
        }
        Ok(())
    }
}

/// `url` without its query parameter `name`, and the parameter's value (the last one
/// given); the other parameters stay as they were.
pub(crate) fn take_param(url: &str, name: &str) -> (String, Option<String>) {
    let Some((base, query)) = url.split_once('?') else {
        return (url.to_owned(), None);
    };
    let mut value = None;
    let mut rest = Vec::new();
    for pair in query.split('&').filter(|pair| !pair.is_empty()) {
        match pair.split_once('=') {
            Some((key, found)) if key == name => value = Some(found.to_owned()),
            _ => rest.push(pair),
        }
    }
    let url = if rest.is_empty() { base.to_owned() } else { format!("{base}?{}", rest.join("&")) };
    (url, value)
}

/// The backend a URL names, for [`connect`] and `inbox::connect`.
pub(crate) enum Backend {
    Memory,
    #[cfg(feature = "redis")]
    Redis,
    #[cfg(feature = "postgres")]
    Postgres,
    /// The file's path.
    #[cfg(feature = "sqlite")]
    Sqlite(String),
}

impl Backend {
    /// Reads the scheme of `url` from [`KINDS`]. `what` (`store`, `inbox`) and
    /// `example` (a file name) word the errors: a backend whose feature is off, an
    /// unknown scheme, a `sqlite:` URL without a path.
    // `example` is unused without SQLite.
    #[cfg_attr(not(feature = "sqlite"), allow(unused_variables))]
    pub(crate) fn of(url: &str, what: &str, example: &str) -> Result<Self, StoreError> {
        let scheme = scheme_of(url).to_ascii_lowercase();
        let Some(kind) = Kind::of(url) else {
            let forms: Vec<&str> = KINDS.iter().map(|kind| kind.form).collect();
            return Err(StoreError::InvalidConfig(format!(
                "unknown kind of {what} `{scheme}`: use {} or {}",
                forms[..forms.len() - 1].join(", "),
                forms[forms.len() - 1]
            )));
        };
        let feature_off = || {
            StoreError::InvalidConfig(format!(
                "a `{scheme}:` {what} needs hookroute's `{}` feature, which this build lacks",
                kind.feature.unwrap_or(kind.name)
            ))
        };
        match kind.name {
            "memory" => Ok(Self::Memory),
            #[cfg(feature = "redis")]
            "redis" => Ok(Self::Redis),
            #[cfg(feature = "postgres")]
            "postgres" => Ok(Self::Postgres),
            #[cfg(feature = "sqlite")]
            "sqlite" => {
                let path = url.split_once(':').map_or("", |(_, path)| path.trim_start_matches("//"));
                if path.is_empty() {
                    // SQLite would open a private temporary database: not what was asked for.
                    return Err(StoreError::InvalidConfig(format!(
                        "a sqlite: {what} needs a file path: sqlite:{example}"
                    )));
                }
                Ok(Self::Sqlite(path.to_owned()))
            }
            // A kind of the table whose feature this build lacks.
            _ => Err(feature_off()),
        }
    }
}

/// The inboxes (tables, prefixes) that exist, for the error about one that does not:
/// at most 20, nearest to `wanted` first (the most characters shared at the start and
/// at the end, as a typo leaves them), and how many more there are.
#[cfg(any(feature = "redis", feature = "postgres"))]
pub(crate) fn nearest_first(wanted: &str, mut names: Vec<String>) -> String {
    const SHOWN: usize = 20;
    let shared = |name: &str| {
        let start = wanted.bytes().zip(name.bytes()).take_while(|(a, b)| a == b).count();
        let end = wanted.bytes().rev().zip(name.bytes().rev()).take_while(|(a, b)| a == b).count();
        (start + end).min(wanted.len().min(name.len()))
    };
    names.sort_by(|a, b| shared(b).cmp(&shared(a)).then_with(|| a.cmp(b)));
    names.dedup();
    let more = names.len().saturating_sub(SHOWN);
    names.truncate(SHOWN);
    let list = names.join(", ");
    if more > 0 {
        format!("{list} (and {more} more)")
    } else {
        list
    }
}

/// A duration in whole milliseconds for a server: at least 1, at most 100 years (a
/// "forever" lease or TTL must not overflow the server's clock arithmetic).
pub(crate) fn millis(duration: Duration) -> i64 {
    const MAX: i64 = 100 * 365 * 24 * 3600 * 1000;
    i64::try_from(duration.as_millis()).unwrap_or(MAX).clamp(1, MAX)
}

/// The errors of the drivers' callers: a store's ([`StoreError`]) and an inbox's
/// ([`InboxError`](crate::inbox::InboxError)), each made from what this layer says.
#[cfg(any(feature = "redis", feature = "postgres"))]
pub(crate) trait DriverError: From<StoreError> + std::error::Error + Send + Sync + 'static {
    /// What went wrong: the source of an `Unavailable`, else the error itself; or the
    /// error as it is when it is not about reaching the server (a configuration error).
    fn into_cause(self) -> Result<Box<dyn std::error::Error + Send + Sync>, Self>;
}

#[cfg(any(feature = "redis", feature = "postgres"))]
impl DriverError for StoreError {
    fn into_cause(self) -> Result<Box<dyn std::error::Error + Send + Sync>, Self> {
        match self {
            Self::Unavailable(source) => Ok(source),
            Self::InvalidConfig(_) => Err(self),
            other => Ok(Box::new(other)),
        }
    }
}

/// A failure while setting a store or inbox up, as its `Connect` error (not wrapping
/// an `Unavailable` inside it, which would say "unavailable" twice); a configuration
/// error (an evicting server, a missing inbox) stays one.
#[cfg(any(feature = "redis", feature = "postgres"))]
pub(crate) fn connect_error<E: DriverError>(store: &'static str, target: String, error: E) -> E {
    let source = match error.into_cause() {
        Ok(source) => source,
        Err(config) => return config,
    };
    // Drivers keep the useful part ("Connection refused") a few sources down; say it.
    let mut message = source.to_string();
    let mut cause = source.source();
    while let Some(error) = cause {
        let text = error.to_string();
        if !message.contains(&text) {
            message = format!("{message}: {text}");
        }
        cause = error.source();
    }
    E::from(StoreError::Connect { store, target, source: message.into() })
}

/// Runs a store operation with a deadline, so a server that stopped answering turns
/// into [`StoreError::Unavailable`] instead of a request that hangs.
#[cfg(any(feature = "redis", feature = "postgres"))]
pub(crate) async fn within<T, E>(
    timeout: Duration,
    what: &'static str,
    operation: impl std::future::Future<Output = Result<T, E>>,
) -> Result<T, StoreError>
where
    E: std::error::Error + Send + Sync + 'static,
{
    match tokio::time::timeout(timeout, operation).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(err)) => Err(StoreError::Unavailable(Box::new(err))),
        Err(_) => Err(StoreError::Unavailable(format!("{what} did not answer within {timeout:?}").into())),
    }
}

#[cfg(test)]
mod tests {
    #[cfg(any(feature = "redis", feature = "postgres"))]
    #[test]
    fn the_names_nearest_a_typo_come_first_and_the_list_is_bounded() {
        let mut names: Vec<String> = (0..30).map(|n| format!("inbox_{n:02}_x:")).collect();
        names.push("billing:".to_owned());
        names.push("billling_x:".to_owned());
        let list = super::nearest_first("billing_x:", names);
        assert!(list.starts_with("billling_x:, billing:, "), "{list}");
        assert!(list.ends_with(" (and 12 more)"), "{list}");
    }

    #[test]
    fn every_scheme_names_one_kind() {
        for kind in super::KINDS {
            for scheme in kind.schemes {
                assert_eq!(super::Kind::of(&format!("{scheme}:x")).map(|found| found.name), Some(kind.name));
            }
        }
        assert!(super::Kind::of("kafka://x").is_none());
        assert_eq!(super::Kind::of("PostgreSQL://x").map(|kind| kind.name), Some("postgres"));
    }
}

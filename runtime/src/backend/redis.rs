//! Redis: a connection manager that reconnects, bounded by a deadline, to a server
//! checked at connect (an evicting one is refused).

use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::Client;

use super::{connect_error, within};
use crate::store::StoreError;

/// A connection to the server at `url` that reconnects after an outage, with every
/// wait bounded by `timeout`, and where it points (without the password). A server
/// whose `maxmemory-policy` evicts keys is refused unless `allow_eviction`.
pub(crate) async fn connection(
    url: &str,
    timeout: Duration,
    allow_eviction: bool,
) -> Result<(ConnectionManager, String), StoreError> {
    if cfg!(not(feature = "redis-tls")) && url.get(..7).is_some_and(|scheme| scheme.eq_ignore_ascii_case("rediss:")) {
        return Err(StoreError::InvalidConfig(
            "a `rediss://` URL (TLS) needs hookroute's `redis-tls` feature, which this build lacks".to_owned(),
        ));
    }
    let client = Client::open(url).map_err(|err| StoreError::Connect {
        store: "Redis",
        target: "the configured URL".to_owned(),
        source: Box::new(err),
    })?;
    let target = client.get_connection_info().addr().to_string();
    let config = ConnectionManagerConfig::new()
        .set_connection_timeout(Some(timeout))
        .set_response_timeout(Some(timeout))
        .set_number_of_retries(1)
        .set_min_delay(Duration::from_millis(10))
        .set_max_delay(Duration::from_millis(200));
    let mut connection = within(timeout, "Redis", ConnectionManager::new_with_config(client, config))
        .await
        .map_err(|err| connect_error("Redis", target.clone(), err))?;
    if !allow_eviction {
        check_eviction(&mut connection, &target, timeout).await?;
    }
    Ok((connection, target))
}

/// Refuses a server that may evict keys, where it lets us ask (managed services often
/// disable `CONFIG`; then nothing can be known, and the documentation has to do).
async fn check_eviction(connection: &mut ConnectionManager, target: &str, timeout: Duration) -> Result<(), StoreError> {
    let mut command = redis::cmd("CONFIG");
    command.arg("GET").arg("maxmemory-policy");
    let Ok(answer) = within::<Vec<String>, _>(timeout, "Redis", command.query_async(connection)).await else {
        tracing::debug!(target = %target, "cannot read Redis's maxmemory-policy; make sure it is noeviction");
        return Ok(());
    };
    match answer.get(1).map(String::as_str) {
        None | Some("noeviction") => Ok(()),
        Some(policy) => Err(StoreError::InvalidConfig(format!(
            "Redis at {target} evicts keys when full (maxmemory-policy {policy}): an evicted done mark or queued \
             delivery is lost silently. Set `maxmemory-policy noeviction`, or call `.allow_eviction()` to accept it"
        ))),
    }
}

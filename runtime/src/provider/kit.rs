//! The building blocks of the built-in schemes, for a scheme of your own.
//!
//! A custom [`Provider`](super::Provider) written with these gets what the built-in
//! ones get: keys derived once at start-up and wiped when dropped, every configured
//! secret and every signature compared in constant time with no early exit, strict
//! signature decoding and timestamp parsing, the replay window in both directions,
//! and a refusal of missing or empty secrets.
//!
//! ```
//! use std::time::{Duration, SystemTime, UNIX_EPOCH};
//!
//! use hookroute_runtime::provider::kit::{self, HmacKeys};
//! use hookroute_runtime::provider::ProviderConfig;
//! use hookroute_runtime::{Secret, VerifyError};
//! use http::HeaderMap;
//!
//! // "Acme" signs `<timestamp>:<body>` and sends the MAC as hex.
//! let config = ProviderConfig { secrets: vec![Secret::from("acme-secret")], tolerance: Duration::from_secs(300) };
//! let keys = HmacKeys::from_config(&config, "acme")?;
//!
//! let now = SystemTime::now();
//! let timestamp = now.duration_since(UNIX_EPOCH)?.as_secs().to_string();
//! let body = br#"{"tracking":"1Z999"}"#;
//! let mac = kit::hmac_sha256(b"acme-secret", &[timestamp.as_bytes(), b":", body]);
//!
//! let mut headers = HeaderMap::new();
//! headers.insert("x-acme-timestamp", timestamp.parse()?);
//! headers.insert("x-acme-signature", hex::encode(mac).parse()?);
//!
//! // What `Provider::verify` does with them:
//! let check = |headers: &HeaderMap| -> Result<u64, VerifyError> {
//!     let text = kit::header(headers, "x-acme-timestamp")?;
//!     let timestamp = kit::parse_timestamp(text, "x-acme-timestamp")?; // `+1`, ` 1`, `1e3` refused
//!     kit::check_window(timestamp, now, config.tolerance)?;
//!     let signature = kit::decode_hex(kit::header(headers, "x-acme-signature")?);
//!     keys.check(&[text.as_bytes(), b":", body], [signature])?;
//!     Ok(timestamp)
//! };
//! assert!(check(&headers).is_ok());
//! headers.insert("x-acme-timestamp", "+1".parse()?);
//! assert!(matches!(check(&headers), Err(VerifyError::MalformedTimestamp(_))));
//!
//! // An empty secret is refused when the scheme is built, as the built-ins refuse it.
//! let empty = ProviderConfig { secrets: vec![Secret::from("")], tolerance: Duration::from_secs(300) };
//! assert!(HmacKeys::from_config(&empty, "acme").is_err());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub use super::mac::{decode_base64, decode_hex, header_str as header, hmac as hmac_sha256, MAC_LEN};
pub use super::{check_window, parse_timestamp};

use super::mac::{check_any, check_secrets, Keys};
use super::{ConfigError, ProviderConfig, VerifyError};

/// A scheme's HMAC-SHA256 keys, one per configured secret (for rotation), each
/// derived once. Never printed; wiped when dropped.
#[derive(Debug)]
pub struct HmacKeys(Keys);

impl HmacKeys {
    /// The keys of `config`'s secrets. Refuses a config with no secret, or with an
    /// empty one (`ConfigError::NoSecret`, `ConfigError::EmptySecret`, naming
    /// `provider`).
    pub fn from_config(config: &ProviderConfig, provider: &'static str) -> Result<Self, ConfigError> {
        check_secrets(config, provider)?;
        Ok(Self(Keys::new(&config.secrets)))
    }

    /// Passes if any of `signatures` is the MAC of `message` (its parts concatenated,
    /// fed without copying) under any key. Every signature is compared with every key
    /// in constant time, with no early exit. Fails with the first signature's decoding
    /// error when none matched and one did not decode, else with
    /// `VerifyError::SignatureMismatch`.
    pub fn check(
        &self,
        message: &[&[u8]],
        signatures: impl IntoIterator<Item = Result<[u8; MAC_LEN], VerifyError>>,
    ) -> Result<(), VerifyError> {
        check_any(self.0.macs(message).as_slice(), signatures)
    }
}

//! What the HMAC-SHA256 schemes share: keys, the MAC over parts of a message,
//! signature decoding, and a constant-time comparison against every key.

use base64::Engine as _;
use hmac::{Hmac, Mac};
use http::HeaderMap;
use sha2::Sha256;
use subtle::{Choice, ConstantTimeEq};

use super::{ConfigError, ProviderConfig, VerifyError};
use crate::secret::Secret;

/// The length of an HMAC-SHA256 tag in bytes.
pub const MAC_LEN: usize = 32;

/// A scheme's keys: every configured secret, none empty, at least one.
pub(crate) fn check_secrets(config: &ProviderConfig, provider: &'static str) -> Result<(), ConfigError> {
    if config.secrets.is_empty() {
        return Err(ConfigError::NoSecret { provider });
    }
    if config.secrets.iter().any(Secret::is_empty) {
        return Err(ConfigError::EmptySecret { provider });
    }
    Ok(())
}

/// HMAC-SHA256 of the concatenated `parts`, fed one by one so the body is never copied.
///
/// # Panics
///
/// Never: HMAC takes keys of any length.
pub fn hmac(key: &[u8], parts: &[&[u8]]) -> [u8; MAC_LEN] {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC accepts keys of any length");
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

/// A scheme's verification keys, each an HMAC-SHA256 state with its key already
/// absorbed: the two padded key blocks are hashed once at start-up, not per delivery,
/// so checking a delivery costs the hashing of its own bytes only.
///
/// A keyed state forges MACs as well as the key does, so it is treated like the
/// [`Secret`]: never printed, and overwritten when dropped.
pub(crate) struct Keys(Vec<KeyState>);

impl Keys {
    pub(crate) fn new(secrets: &[Secret]) -> Self {
        Self(secrets.iter().map(|secret| KeyState::new(secret.expose())).collect())
    }

    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }

    /// The MAC of the message (the concatenated `parts`) under every key.
    pub(crate) fn macs(&self, parts: &[&[u8]]) -> Macs {
        match &self.0[..] {
            [key] => Macs::One(key.mac(parts)),
            keys => Macs::Many(keys.iter().map(|key| key.mac(parts)).collect()),
        }
    }
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Keys({} redacted)", self.0.len())
    }
}

/// One key's HMAC state, boxed so that it stays where it was written and `Drop` can
/// overwrite it in place.
struct KeyState(Box<Hmac<Sha256>>);

impl KeyState {
    fn new(key: &[u8]) -> Self {
        Self(Box::new(Hmac::new_from_slice(key).expect("HMAC accepts keys of any length")))
    }

    fn mac(&self, parts: &[&[u8]]) -> [u8; MAC_LEN] {
        let mut mac = (*self.0).clone();
        for part in parts {
            mac.update(part);
        }
        mac.finalize().into_bytes().into()
    }
}

impl Drop for KeyState {
    fn drop(&mut self) {
        // `hmac` cannot zeroize its state, so replace it with the state of an empty
        // key, written where the old one was, and keep the write from being elided.
        *self.0 = Hmac::new_from_slice(&[]).expect("HMAC accepts keys of any length");
        std::hint::black_box(&mut *self.0);
    }
}

/// The MACs of one message under every key: one key (the common case) needs no
/// allocation.
pub(crate) enum Macs {
    One([u8; MAC_LEN]),
    Many(Vec<[u8; MAC_LEN]>),
}

impl Macs {
    pub(crate) fn as_slice(&self) -> &[[u8; MAC_LEN]] {
        match self {
            Self::One(mac) => std::slice::from_ref(mac),
            Self::Many(macs) => macs,
        }
    }
}

/// Whether `given` equals any of `expected`, comparing every one in constant time.
pub(crate) fn matches_any(expected: &[[u8; MAC_LEN]], given: &[u8; MAC_LEN]) -> Choice {
    expected.iter().fold(Choice::from(0), |matched, mac| matched | mac.ct_eq(given))
}

/// Passes if any of `signatures` equals the MAC under any key: every one is compared,
/// with no early exit. Fails with the first signature's decoding error if none
/// matched, else with a mismatch.
pub(crate) fn check_any(
    expected: &[[u8; MAC_LEN]],
    signatures: impl IntoIterator<Item = Result<[u8; MAC_LEN], VerifyError>>,
) -> Result<(), VerifyError> {
    let mut matched = Choice::from(0);
    let mut first_error = None;
    for signature in signatures {
        match signature {
            Ok(given) => matched |= matches_any(expected, &given),
            Err(err) => {
                first_error.get_or_insert(err);
            }
        }
    }
    if bool::from(matched) {
        Ok(())
    } else {
        Err(first_error.unwrap_or(VerifyError::SignatureMismatch))
    }
}

/// A header's value as text: `VerifyError::MissingHeader` when absent,
/// `VerifyError::InvalidHeader` when it is not visible ASCII.
pub fn header_str<'h>(headers: &'h HeaderMap, name: &'static str) -> Result<&'h str, VerifyError> {
    headers.get(name).ok_or(VerifyError::MissingHeader(name))?.to_str().map_err(|_| VerifyError::InvalidHeader(name))
}

/// A hex-encoded MAC (either case).
pub fn decode_hex(text: &str) -> Result<[u8; MAC_LEN], VerifyError> {
    let mut out = [0u8; MAC_LEN];
    // The common case, a well-formed MAC, in one pass; the rest only to say what is wrong.
    if hex::decode_to_slice(text, &mut out).is_ok() {
        return Ok(out);
    }
    if text.len() % 2 == 1 {
        return Err(VerifyError::SignatureOddLength);
    }
    if !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(VerifyError::SignatureNotHex);
    }
    Err(VerifyError::SignatureLength { expected: MAC_LEN, found: text.len() / 2 })
}

/// A base64-encoded (standard alphabet, padded) MAC.
pub fn decode_base64(text: &str) -> Result<[u8; MAC_LEN], VerifyError> {
    let engine = base64::engine::general_purpose::STANDARD;
    let mut out = [0u8; MAC_LEN];
    // Decoded in place; only a value too long for a MAC is decoded again, to say why.
    let found = match engine.decode_slice(text, &mut out) {
        Ok(MAC_LEN) => return Ok(out),
        Ok(found) => found,
        Err(base64::DecodeSliceError::DecodeError(_)) => return Err(VerifyError::SignatureNotBase64),
        Err(base64::DecodeSliceError::OutputSliceTooSmall) => {
            engine.decode(text).map_err(|_| VerifyError::SignatureNotBase64)?.len()
        }
    };
    Err(VerifyError::SignatureLength { expected: MAC_LEN, found })
}

/// Base64 (standard alphabet, padded) of a MAC, for signing.
pub(crate) fn encode_base64(mac: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(mac)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_decode_in_place_and_say_what_is_wrong() {
        let mac = [7u8; MAC_LEN];
        assert_eq!(decode_base64(&encode_base64(&mac)), Ok(mac));
        assert_eq!(decode_hex(&hex::encode(mac)), Ok(mac));
        for len in [0, 31, 33, 48, 300] {
            let expected = Err(VerifyError::SignatureLength { expected: MAC_LEN, found: len });
            assert_eq!(decode_base64(&encode_base64(&vec![7; len])), expected, "base64 of {len} bytes");
            assert_eq!(decode_hex(&hex::encode(vec![7; len])), expected, "hex of {len} bytes");
        }
        assert_eq!(decode_base64("not base64!"), Err(VerifyError::SignatureNotBase64));
        assert_eq!(decode_base64(&"!".repeat(400)), Err(VerifyError::SignatureNotBase64));
        assert_eq!(decode_hex(&"zz".repeat(32)), Err(VerifyError::SignatureNotHex));
        assert_eq!(decode_hex("abc"), Err(VerifyError::SignatureOddLength));
    }
}

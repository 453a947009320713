//! Webhook signing secrets, kept out of logs.

use std::fmt;

use zeroize::Zeroizing;

/// A webhook signing secret.
///
/// `Debug` and `Display` print `<redacted>`, so a secret never reaches a log line by
/// accident, and the bytes are wiped from memory when the value is dropped.
///
/// ```
/// use hookroute_runtime::Secret;
///
/// let secret = Secret::new("whsec_live_1234");
/// assert_eq!(format!("{secret:?}"), "Secret(<redacted>)");
/// assert_eq!(secret.to_string(), "<redacted>");
/// ```
/// Two secrets compare equal in constant time (`subtle`): how long the comparison takes
/// says nothing about where they differ.
#[derive(Clone)]
pub struct Secret(Zeroizing<Vec<u8>>);

impl PartialEq for Secret {
    fn eq(&self, other: &Self) -> bool {
        // Lengths differ: unequal, and a length is no secret.
        bool::from(subtle::ConstantTimeEq::ct_eq(self.0.as_slice(), other.0.as_slice()))
    }
}

impl Eq for Secret {}

impl Secret {
    /// Wraps the secret's bytes, used as the HMAC key exactly as given.
    pub fn new(bytes: impl Into<Vec<u8>>) -> Self {
        Self(Zeroizing::new(bytes.into()))
    }

    /// Reads a secret from the environment variable `var`.
    ///
    /// An unset, empty or non-UTF-8 variable is an error that names the variable
    /// (never its value).
    pub fn from_env(var: &str) -> Result<Self, SecretError> {
        match std::env::var(var) {
            Ok(value) if value.is_empty() => Err(SecretError::Empty { var: var.to_owned() }),
            Ok(value) => Ok(Self::new(value)),
            Err(std::env::VarError::NotPresent) => Err(SecretError::NotSet { var: var.to_owned() }),
            Err(std::env::VarError::NotUnicode(_)) => Err(SecretError::NotUnicode { var: var.to_owned() }),
        }
    }

    /// The secret's bytes, for signature schemes that need the key.
    ///
    /// Handle with care: do not log or return them.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    /// A name for this secret that gives it away no more than a signed delivery does:
    /// 12 hex digits of HMAC-SHA256 under it of a fixed text. The receiver's default
    /// [namespace](crate::ReceiverBuilder::namespace).
    pub fn fingerprint(&self) -> String {
        use hmac::Mac;
        let Ok(mut mac) = <hmac::Hmac<sha2::Sha256> as hmac::digest::KeyInit>::new_from_slice(&self.0) else {
            unreachable!("HMAC takes a key of any length")
        };
        mac.update(b"hookroute key namespace v1");
        hex::encode(&mac.finalize().into_bytes()[..6])
    }

    /// Whether the secret has no bytes at all (never a usable key).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Self::new(value)
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Self::new(value)
    }
}

impl From<&[u8]> for Secret {
    fn from(value: &[u8]) -> Self {
        Self::new(value)
    }
}

impl From<Vec<u8>> for Secret {
    fn from(value: Vec<u8>) -> Self {
        Self::new(value)
    }
}

/// Why a secret could not be read from the environment.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    /// The variable is not set.
    #[error(
        "{var} is not set: export the webhook signing secret from your provider's dashboard, e.g. `export {var}=...`"
    )]
    NotSet {
        /// The variable's name.
        var: String,
    },
    /// The variable is set but empty.
    #[error("{var} is empty: an empty secret would accept signatures anyone can compute")]
    Empty {
        /// The variable's name.
        var: String,
    },
    /// The variable holds bytes that are not UTF-8.
    #[error("{var} is not valid UTF-8")]
    NotUnicode {
        /// The variable's name.
        var: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_never_show_the_bytes() {
        let secret = Secret::new("hunter2-very-secret");
        for shown in [format!("{secret:?}"), format!("{secret}"), format!("{secret:#?}")] {
            assert!(!shown.contains("hunter2"), "{shown}");
        }
    }

    #[test]
    fn from_env_names_the_variable_not_the_value() {
        let err = Secret::from_env("HOOKROUTE_TEST_SURELY_UNSET_VAR").unwrap_err();
        assert_eq!(err, SecretError::NotSet { var: "HOOKROUTE_TEST_SURELY_UNSET_VAR".into() });
        assert!(err.to_string().contains("HOOKROUTE_TEST_SURELY_UNSET_VAR"));
    }
}

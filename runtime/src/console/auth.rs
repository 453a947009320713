//! Who may use the console: the console token, entered once in the login form (a
//! session cookie after it) or sent as `Authorization: Bearer` by a script; and, for a
//! browser's state-changing requests, a CSRF token and the page's own origin.
//!
//! Sessions are stateless: the cookie is `<issued unix s>.<hex HMAC>` and the CSRF
//! token an HMAC of the cookie, both keyed by a key derived from the console token.
//! Every replica of an application accepts them, and changing the token ends them all.

use std::time::{Duration, SystemTime};

use hmac::{Hmac, Mac};
use http::HeaderMap;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::secret::Secret;

/// The session cookie's name.
pub(super) const COOKIE: &str = "hookroute_console";

/// How a request proved who it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Caller {
    /// The console token as `Authorization: Bearer`: a script, no CSRF token needed
    /// (a browser never adds that header by itself).
    Bearer,
    /// A session cookie from the login form; its CSRF token.
    Session { csrf: String },
    /// Neither, or a wrong or expired one.
    Anonymous,
}

/// The console's keys, from its token.
pub(super) struct Keys {
    token: Secret,
    key: [u8; 32],
    session_ttl: Duration,
}

impl Keys {
    pub(super) fn new(token: Secret, session_ttl: Duration) -> Self {
        let mut digest = Sha256::new();
        digest.update(b"hookroute console session key\0");
        digest.update(token.expose());
        Self { key: digest.finalize().into(), token, session_ttl }
    }

    fn mac(&self, purpose: &str, data: &str) -> String {
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(&self.key) else {
            unreachable!("HMAC takes a key of any length")
        };
        mac.update(purpose.as_bytes());
        mac.update(b"\0");
        mac.update(data.as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }

    /// Whether `offered` is the console token, in constant time.
    pub(super) fn is_token(&self, offered: &str) -> bool {
        // Hash both first: equal lengths, and the token's length stays unknown.
        let want = Sha256::digest(self.token.expose());
        let got = Sha256::digest(offered.as_bytes());
        bool::from(want.ct_eq(&got))
    }

    /// A new session cookie's value.
    pub(super) fn new_session(&self, now: SystemTime) -> String {
        let issued = now.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default().as_secs();
        let data = issued.to_string();
        format!("{data}.{}", self.mac("session", &data))
    }

    /// The CSRF token of a session.
    pub(super) fn csrf(&self, session: &str) -> String {
        self.mac("csrf", session)
    }

    /// Whether a cookie's value is a session this console issued and that has not ended.
    pub(super) fn valid_session(&self, session: &str, now: SystemTime) -> bool {
        let Some((issued, mac)) = session.split_once('.') else { return false };
        let expected = self.mac("session", issued);
        if !bool::from(expected.as_bytes().ct_eq(mac.as_bytes())) {
            return false;
        }
        let Ok(issued) = issued.parse::<u64>() else { return false };
        let issued = SystemTime::UNIX_EPOCH + Duration::from_secs(issued);
        now.duration_since(issued).is_ok_and(|age| age <= self.session_ttl)
    }

    /// Who sent `headers`.
    pub(super) fn caller(&self, headers: &HeaderMap, now: SystemTime) -> Caller {
        // A `Bearer` is the console token or nothing; other schemes (the Basic auth of
        // a proxy in front) are not the console's and leave the cookie to decide.
        let bearer = headers.get(http::header::AUTHORIZATION).and_then(|value| value.to_str().ok());
        if let Some(token) = bearer.and_then(|value| value.strip_prefix("Bearer ")) {
            return if self.is_token(token.trim()) { Caller::Bearer } else { Caller::Anonymous };
        }
        match session_cookie(headers) {
            Some(session) if self.valid_session(&session, now) => Caller::Session { csrf: self.csrf(&session) },
            _ => Caller::Anonymous,
        }
    }

    /// How long a session lasts.
    pub(super) fn session_ttl(&self) -> Duration {
        self.session_ttl
    }
}

/// The session cookie's value in `headers`, if any.
fn session_cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.to_owned())
}

/// Whether a browser's state-changing request comes from the console's own pages:
/// no `Sec-Fetch-Site` saying otherwise, and an `Origin` (when sent) naming the host
/// the request went to (`Host`, or the `X-Forwarded-Host` of a proxy that rewrites
/// `Host`: a page of another site can set neither).
pub(super) fn same_origin(headers: &HeaderMap) -> bool {
    let header = |name: &str| headers.get(name).and_then(|value| value.to_str().ok());
    if header("sec-fetch-site").is_some_and(|site| site != "same-origin" && site != "none") {
        return false;
    }
    let Some(origin) = header("origin") else { return true };
    let Some((_, authority)) = origin.split_once("://") else { return false };
    [header("host"), header("x-forwarded-host").and_then(|hosts| hosts.split(',').next())]
        .into_iter()
        .flatten()
        .any(|host| authority.eq_ignore_ascii_case(host.trim()))
}

/// Whether `offered` is the CSRF token `expected`, in constant time.
pub(super) fn csrf_matches(expected: &str, offered: &str) -> bool {
    bool::from(expected.as_bytes().ct_eq(offered.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> Keys {
        Keys::new(Secret::new("console-token-for-tests"), Duration::from_secs(3600))
    }

    #[test]
    fn a_session_is_valid_until_it_ends_and_only_with_its_own_mac() {
        let keys = keys();
        let now = SystemTime::now();
        let session = keys.new_session(now);
        assert!(keys.valid_session(&session, now));
        assert!(!keys.valid_session(&session, now + Duration::from_secs(3601)), "ended");
        let (issued, _) = session.split_once('.').unwrap();
        assert!(!keys.valid_session(&format!("{issued}.{}", "0".repeat(64)), now), "a forged mac");
        let other = Keys::new(Secret::new("another-console-token"), Duration::from_secs(3600));
        assert!(!other.valid_session(&session, now), "a session of another token");
        assert!(!keys.valid_session("garbage", now));
    }

    #[test]
    fn the_caller_is_read_from_a_bearer_token_or_the_cookie() {
        let keys = keys();
        let now = SystemTime::now();
        let mut headers = HeaderMap::new();
        assert_eq!(keys.caller(&headers, now), Caller::Anonymous);
        headers.insert("authorization", "Bearer console-token-for-tests".parse().unwrap());
        assert_eq!(keys.caller(&headers, now), Caller::Bearer);
        headers.insert("authorization", "Bearer wrong".parse().unwrap());
        assert_eq!(keys.caller(&headers, now), Caller::Anonymous);
        headers.remove("authorization");
        let session = keys.new_session(now);
        headers.insert("cookie", format!("theme=dark; {COOKIE}={session}").parse().unwrap());
        assert_eq!(keys.caller(&headers, now), Caller::Session { csrf: keys.csrf(&session) });
        // The Basic auth of a proxy in front leaves the cookie to decide; a wrong Bearer does not.
        headers.insert("authorization", "Basic dXNlcjpwYXNz".parse().unwrap());
        assert_eq!(keys.caller(&headers, now), Caller::Session { csrf: keys.csrf(&session) });
        headers.insert("authorization", "Bearer wrong".parse().unwrap());
        assert_eq!(keys.caller(&headers, now), Caller::Anonymous);
    }

    #[test]
    fn another_origin_is_refused() {
        let mut headers = HeaderMap::new();
        headers.insert("host", "127.0.0.1:8080".parse().unwrap());
        assert!(same_origin(&headers), "no Origin: a form post from an older browser, or a script");
        headers.insert("origin", "http://127.0.0.1:8080".parse().unwrap());
        assert!(same_origin(&headers));
        headers.insert("origin", "https://evil.example".parse().unwrap());
        assert!(!same_origin(&headers));
        headers.insert("origin", "https://ops.example".parse().unwrap());
        headers.insert("x-forwarded-host", "ops.example".parse().unwrap());
        assert!(same_origin(&headers), "behind a proxy that rewrites Host");
        headers.remove("x-forwarded-host");
        headers.insert("origin", "http://127.0.0.1:8080".parse().unwrap());
        headers.insert("sec-fetch-site", "cross-site".parse().unwrap());
        assert!(!same_origin(&headers));
    }
}

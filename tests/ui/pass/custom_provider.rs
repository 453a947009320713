//! A scheme of the user's own, named by path: a shared-token header and an envelope
//! whose id and type are headers.
use std::borrow::Cow;
use std::time::SystemTime;

use hookroute::provider::{ConfigError, Envelope, EnvelopeError, ProviderConfig, Verified};
use hookroute::{webhook_handlers, HandlerError, Provider, VerifyError};
use http::HeaderMap;
use subtle::ConstantTimeEq;

mod schemes {
    pub struct Acme {
        pub(super) secrets: Vec<hookroute::Secret>,
    }
}

impl Provider for schemes::Acme {
    const NAME: &'static str = "acme";
    const SECRET_ENV: &'static str = "ACME_WEBHOOK_TOKEN";

    fn from_config(config: ProviderConfig) -> Result<Self, ConfigError> {
        Ok(Self { secrets: config.secrets })
    }

    fn verify(&self, headers: &HeaderMap, _body: &[u8], _now: SystemTime) -> Result<Verified, VerifyError> {
        let token = headers.get("x-acme-token").ok_or(VerifyError::MissingHeader("x-acme-token"))?;
        let matched = self.secrets.iter().fold(subtle::Choice::from(0), |m, s| m | s.expose().ct_eq(token.as_bytes()));
        if bool::from(matched) { Ok(Verified::at(None)) } else { Err(VerifyError::SignatureMismatch) }
    }

    fn envelope<'a>(headers: &'a HeaderMap, body: &'a [u8]) -> Result<Envelope<'a>, EnvelopeError> {
        let header = |name| headers.get(name).and_then(|v| v.to_str().ok()).ok_or(EnvelopeError::Header(name));
        let data = serde_json::from_slice(body)?;
        Envelope::new(header("x-acme-id")?, header("x-acme-event")?, Cow::Borrowed(data))
    }
}

struct App;

#[webhook_handlers(provider = schemes::Acme)]
impl App {
    #[event("order.created")]
    async fn created(&self, _data: serde_json::Value) -> Result<(), HandlerError> {
        Ok(())
    }
}

fn main() {
    let _ = hookroute::Receiver::builder(App).secret("token").build().unwrap();
}

//! `event_enum = pub Name` names the enum and makes it visible outside its module.
mod handlers {
    use hookroute::{webhook_handlers, HandlerError};

    #[derive(serde::Deserialize)]
    pub struct Payment {
        pub amount: u64,
    }

    pub struct Billing;

    #[webhook_handlers(provider = "groq", event_enum = pub BillingEvent)]
    impl Billing {
        #[event("payment.succeeded", unlisted)]
        async fn succeeded(&self, _data: Payment) -> Result<(), HandlerError> {
            Ok(())
        }

        #[event("payment_intent.requires-action", unlisted)]
        async fn requires_action(&self, _data: Payment) -> Result<(), HandlerError> {
            Ok(())
        }

        #[event("orders/create", unlisted)]
        async fn order(&self, _data: serde_json::Value) -> Result<(), HandlerError> {
            Ok(())
        }

        #[event("2fa.enabled", unlisted)]
        async fn two_factor(&self, _data: serde_json::Value) -> Result<(), HandlerError> {
            Ok(())
        }
    }
}

use handlers::BillingEvent;

fn main() {
    let event = BillingEvent::from_slice(br#"{"id":"e","type":"payment.succeeded","data":{"amount":5}}"#).unwrap();
    if let BillingEvent::PaymentSucceeded(payment) = event {
        assert_eq!(payment.amount, 5);
    } else {
        panic!("wrong variant");
    }
    let _ = |e: BillingEvent| match e {
        BillingEvent::PaymentSucceeded(_)
        | BillingEvent::PaymentIntentRequiresAction(_)
        | BillingEvent::OrdersCreate(_)
        | BillingEvent::Event2faEnabled(_)
        | BillingEvent::Unknown(_) => {}
    };
}

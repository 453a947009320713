//! A fallback alone takes every event.
use hookroute::{webhook_handlers, UnknownEvent};

struct Logger;

#[webhook_handlers(provider = "groq")]
impl Logger {
    #[fallback]
    async fn any(&self, event: UnknownEvent) -> Result<(), std::convert::Infallible> {
        let _ = event.meta().id();
        Ok(())
    }
}

fn main() {
    assert!(LoggerEvent::EVENT_TYPES.is_empty());
}

//! A GitHub event type newer than hookroute's list compiles with `unlisted`; a known
//! event with any action compiles as it is.
use hookroute::{webhook_handlers, HandlerError};

struct App;

#[webhook_handlers(provider = "github")]
impl App {
    #[event("brand_new_event", unlisted)]
    async fn new_event(&self, _data: serde_json::Value) -> Result<(), HandlerError> {
        Ok(())
    }

    #[event("pull_request.some_future_action")]
    async fn future_action(&self, _data: serde_json::Value) -> Result<(), HandlerError> {
        Ok(())
    }
}

fn main() {
    assert_eq!(AppEvent::EVENT_TYPES, ["brand_new_event", "pull_request.some_future_action"]);
}

//! An impl block over a generic type: the handlers are generic over the app's state.
use hookroute::{webhook_handlers, HandlerError};

trait Db: Send + Sync + 'static {
    fn save(&self, id: &str);
}

struct App<D> {
    db: D,
}

#[webhook_handlers(provider = "groq")]
impl<D: Db> App<D> {
    #[event("resource.created")]
    async fn created(&self, data: serde_json::Value) -> Result<(), HandlerError> {
        self.db.save(data["id"].as_str().unwrap_or_default());
        Ok(())
    }
}

struct NoDb;
impl Db for NoDb {
    fn save(&self, _id: &str) {}
}

fn assert_handlers<H: hookroute::WebhookHandlers>() {}

fn main() {
    assert_handlers::<App<NoDb>>();
    let _ = App { db: NoDb };
}

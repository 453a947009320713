//! A GitHub webhook receiver: `X-Hub-Signature-256` verified, each delivery processed
//! once (by `X-GitHub-Delivery`), routed by event and action.
//!
//! ```sh
//! GITHUB_WEBHOOK_SECRET=dev cargo run --example github_receiver
//! # in a second terminal:
//! GITHUB_WEBHOOK_SECRET=dev PROVIDER=github cargo run --example send_event -- issues.opened
//! GITHUB_WEBHOOK_SECRET=dev PROVIDER=github cargo run --example send_event -- issues.closed
//! ```
//!
//! Listens on 127.0.0.1:$PORT (default 3000) at `/webhooks/github`; set the same
//! secret in the repository's webhook settings.

use std::process::ExitCode;

use hookroute::{webhook_handlers, EventMeta, HandlerError};
use serde::Deserialize;

mod support;

#[derive(Debug, Deserialize)]
struct IssueEvent {
    issue: Issue,
}

#[derive(Debug, Deserialize)]
struct Issue {
    number: u64,
    #[serde(default)]
    title: String,
}

#[derive(Debug, Deserialize)]
struct Push {
    #[serde(rename = "ref")]
    git_ref: String,
    #[serde(default)]
    commits: Vec<serde_json::Value>,
}

struct App;

#[webhook_handlers(provider = "github")]
impl App {
    /// `issues` with `"action": "opened"`.
    #[event("issues.opened")]
    async fn issue_opened(&self, event: IssueEvent, meta: &EventMeta) -> Result<(), HandlerError> {
        tracing::info!(delivery = meta.id(), number = event.issue.number, title = %event.issue.title, "issue opened");
        Ok(())
    }

    /// Every other `issues` action: `issues.closed`, `issues.labeled`, ...
    #[event("issues")]
    async fn issue_changed(&self, event: IssueEvent, meta: &EventMeta) -> Result<(), HandlerError> {
        tracing::info!(delivery = meta.id(), number = event.issue.number, action = meta.event_type(), "issue changed");
        Ok(())
    }

    #[event("push")]
    async fn push(&self, push: Push, meta: &EventMeta) -> Result<(), HandlerError> {
        tracing::info!(delivery = meta.id(), git_ref = %push.git_ref, commits = push.commits.len(), "push");
        Ok(())
    }

    /// GitHub's first delivery to a new webhook.
    #[event("ping")]
    async fn ping(&self, _ping: serde_json::Value, meta: &EventMeta) -> Result<(), HandlerError> {
        tracing::info!(delivery = meta.id(), "ping");
        Ok(())
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    support::serve(App).await
}

//! The event types a built-in provider is known to send, so a misspelt `#[event]` is a
//! compile error with a suggestion instead of a handler that never runs.

use syn::LitStr;

use crate::parse::{edit_distance, Errors};

/// A provider's published event names.
pub(crate) struct Known {
    /// How the provider is called in messages.
    label: &'static str,
    /// Every event name it documents.
    events: &'static [&'static str],
    /// Whether a name may carry an `.action` suffix (GitHub's `issues.opened`), checked
    /// only up to the first `.`.
    actions: bool,
}

/// GitHub's webhook events, from docs.github.com/en/webhooks/webhook-events-and-payloads.
const GITHUB: Known = Known {
    label: "GitHub",
    actions: true,
    events: &[
        "branch_protection_configuration",
        "branch_protection_rule",
        "check_run",
        "check_suite",
        "code_scanning_alert",
        "commit_comment",
        "create",
        "custom_property",
        "custom_property_values",
        "delete",
        "dependabot_alert",
        "deploy_key",
        "deployment",
        "deployment_protection_rule",
        "deployment_review",
        "deployment_status",
        "discussion",
        "discussion_comment",
        "fork",
        "github_app_authorization",
        "gollum",
        "installation",
        "installation_repositories",
        "installation_target",
        "issue_comment",
        "issue_dependencies",
        "issues",
        "label",
        "marketplace_purchase",
        "member",
        "membership",
        "merge_group",
        "meta",
        "milestone",
        "org_block",
        "organization",
        "package",
        "page_build",
        "personal_access_token_request",
        "ping",
        "project",
        "project_card",
        "project_column",
        "projects_v2",
        "projects_v2_item",
        "projects_v2_status_update",
        "public",
        "pull_request",
        "pull_request_review",
        "pull_request_review_comment",
        "pull_request_review_thread",
        "push",
        "registry_package",
        "release",
        "repository",
        "repository_advisory",
        "repository_dispatch",
        "repository_import",
        "repository_ruleset",
        "repository_vulnerability_alert",
        "secret_scanning_alert",
        "secret_scanning_alert_location",
        "secret_scanning_scan",
        "security_advisory",
        "security_and_analysis",
        "sponsorship",
        "star",
        "status",
        "sub_issues",
        "team",
        "team_add",
        "watch",
        "workflow_dispatch",
        "workflow_job",
        "workflow_run",
    ],
};

/// The list of a built-in provider, for those that publish one.
pub(crate) fn for_provider(name: &str) -> Option<&'static Known> {
    match name {
        "github" => Some(&GITHUB),
        _ => None,
    }
}

impl Known {
    /// Records an error at `event` if its name is not one the provider sends.
    pub(crate) fn check(&self, event: &LitStr, errors: &mut Errors) {
        let value = event.value();
        let name = if self.actions { value.split_once('.').map_or(value.as_str(), |(name, _)| name) } else { &value };
        if self.events.contains(&name) {
            return;
        }
        let closest = self.events.iter().map(|known| (edit_distance(known, name), *known)).min();
        let help = match closest.filter(|(distance, _)| *distance <= 3.max(name.len() / 4)) {
            Some((_, known)) => {
                let suggestion = if self.actions { value.replacen(name, known, 1) } else { known.to_owned() };
                format!("\nhelp: did you mean `{suggestion}`?")
            }
            None => String::new(),
        };
        let message = format!(
            "`{name}` is not a {} event type{help}\nnote: for a type this list does not know yet, write \
             `#[event(\"{value}\", unlisted)]`",
            self.label
        );
        errors.at(event, message);
    }
}

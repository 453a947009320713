//! The other direction of `tests/official_libraries.rs`: what `hookroute sign` prints is
//! checked by the providers' own verifiers (`standardwebhooks` and `svix` for Node.js and
//! Python, `stripe`, `@octokit/webhooks`, `slack_sdk`, `@shopify/shopify-api`), installed
//! in `tests/senders/` by `scripts/senders` (which `scripts/test` runs). Without them
//! this test fails, never skips.

use std::collections::BTreeSet;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

fn senders() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/senders")
}

/// What `hookroute sign --json` prints for `provider`, as a line for the verifiers.
fn signed(provider: &str, secret: &str, event_type: &str, data: &str, extra: &[&str]) -> String {
    let output = assert_cmd::Command::cargo_bin("hookroute")
        .unwrap()
        .args(["sign", "--provider", provider, "--secret", secret, "--json", "--type", event_type, "--data", data])
        .args(extra)
        .output()
        .unwrap();
    assert!(output.status.success(), "{provider}: {}", String::from_utf8_lossy(&output.stderr));
    let signed: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    serde_json::json!({ "provider": provider, "secret": secret, "headers": signed["headers"], "body": signed["body"] })
        .to_string()
}

/// Feeds `lines` to a verifier; answers what it printed, one verdict a line.
fn verdicts(mut command: Command, lines: &[String]) -> Vec<serde_json::Value> {
    let mut child = command
        .current_dir(senders())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{command:?}: {e} (run scripts/senders; scripts/test does)"));
    let mut stdin = child.stdin.take().unwrap();
    for line in lines {
        writeln!(stdin, "{line}").unwrap();
    }
    drop(stdin);
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "{command:?}: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).unwrap().lines().map(|line| serde_json::from_str(line).unwrap()).collect()
}

#[test]
fn everything_hookroute_sign_prints_verifies_in_each_official_verifier() {
    assert!(
        senders().join("node_modules/@octokit/webhooks").exists(),
        "tests/senders/node_modules is missing: run scripts/senders (scripts/test does)"
    );
    let python =
        std::env::var_os("HOOKROUTE_TEST_PYTHON").map_or_else(|| senders().join(".venv/bin/python"), PathBuf::from);
    assert!(python.exists(), "{} is missing: run scripts/senders (scripts/test does)", python.display());

    let standard = "whsec_aG9va3JvdXRlLXNlbmRlcnMtMjA=";
    let lines = [
        signed("standard", standard, "invoice.paid", r#"{"id":"in_1"}"#, &[]),
        signed("standard", standard.trim_end_matches('='), "invoice.paid", r#"{"id":"in_2"}"#, &[]),
        signed(
            "stripe",
            "whsec_cli",
            "customer.subscription.updated",
            r#"{"object":{"id":"sub_1","object":"subscription"}}"#,
            &[],
        ),
        signed(
            "stripe",
            "whsec_cli",
            "v1.billing.meter.error_report_triggered",
            r#"{"related_object":{"id":"mtr_1","type":"billing.meter","url":"/v1/billing/meters/mtr_1"}}"#,
            &[],
        ),
        signed("github", "gh-secret", "projects_v2_item.edited", r#"{"projects_v2_item":{"id":1}}"#, &[]),
        signed("slack", "slack-secret", "app_mention", r#"{"text":"hi"}"#, &[]),
        signed("shopify", "shpss_cli", "orders/create", r#"{"id":1}"#, &[]),
        signed("shopify", "shpss_cli", "orders/paid", r#"{"id":2}"#, &["--shop-domain", "acme.myshopify.com"]),
    ];
    let mut node = Command::new("node");
    node.arg("verify.mjs");
    let mut all = verdicts(node, &lines);
    let mut python = Command::new(python);
    python.arg("verify.py");
    all.extend(verdicts(python, &lines));

    let refused: Vec<_> = all.iter().filter(|verdict| verdict["valid"] != true).collect();
    assert!(refused.is_empty(), "refused by an official verifier: {refused:#?}");
    let libraries: BTreeSet<&str> = all.iter().map(|verdict| verdict["library"].as_str().unwrap()).collect();
    let expected = [
        "@octokit/webhooks",
        "@shopify/shopify-api",
        "slack_sdk",
        "standardwebhooks",
        "standardwebhooks (python)",
        "stripe",
        "svix",
        "svix (python)",
    ];
    assert_eq!(libraries, expected.into_iter().collect(), "every official verifier had its say");
    // Each delivery was checked by every verifier of its provider.
    assert_eq!(all.len(), 2 * 4 + 2 + 1 + 1 + 2, "{all:#?}");
}

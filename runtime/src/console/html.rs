//! The console's HTML: every string from a delivery goes through [`esc`]; the page
//! carries no script and one stylesheet, allowed by its hash.

use std::fmt::Write;
use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

use base64::Engine;
use sha2::{Digest, Sha256};

use crate::inbox::Activity;

/// The only style the pages use, allowed by the Content-Security-Policy's hash.
pub(super) const STYLE: &str = "body{font:14px/1.4 system-ui,sans-serif;margin:1.5rem;color:#222}\
a{color:#0645ad}table{border-collapse:collapse;margin:.5rem 0}\
td,th{border:1px solid #ccc;padding:.25rem .5rem;text-align:left;vertical-align:top}\
th{background:#f3f3f3}pre{background:#f7f7f7;padding:.5rem;overflow:auto;white-space:pre-wrap;word-break:break-all}\
.error{color:#a00}nav a{margin-right:1rem}form.inline{display:inline}\
.counts td:first-child{font-weight:bold}input,select,button{margin:.15rem}";

/// `Content-Security-Policy`: nothing but this page's style, forms posting to itself,
/// no frames, no scripts.
pub(super) fn content_security_policy() -> &'static str {
    static POLICY: OnceLock<String> = OnceLock::new();
    POLICY.get_or_init(|| {
        let hash = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(STYLE.as_bytes()));
        format!(
            "default-src 'none'; style-src 'sha256-{hash}'; img-src 'self'; form-action 'self'; \
             frame-ancestors 'none'; base-uri 'none'"
        )
    })
}

/// `text` with the five characters that mean something in HTML escaped: safe in
/// element content and in quoted attributes.
pub(super) fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// `text` for a query string value (then [`esc`] for the attribute it goes in).
pub(super) fn query_value(text: &str) -> String {
    form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

/// The overview's address: the mount path itself (axum's `nest` does not answer it with
/// a slash after), or `/` at the root.
pub(super) fn home(prefix: &str) -> String {
    if prefix.is_empty() {
        "/".to_owned()
    } else {
        prefix.to_owned()
    }
}

/// A whole page: the title, the navigation (with the log-out button when `csrf` is
/// known), then `body`.
pub(super) fn page(prefix: &str, title: &str, csrf: Option<&str>, body: &str) -> String {
    let mut html = String::with_capacity(body.len() + 1024);
    let _ = write!(
        html,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width\"><title>{} · hookroute</title>\
         <style>{STYLE}</style></head><body>",
        esc(title)
    );
    let p = esc(prefix);
    let _ = write!(
        html,
        "<nav><a href=\"{home}\">Overview</a><a href=\"{p}/deliveries\">Deliveries</a>\
         <a href=\"{p}/deliveries?state=dead\">Dead letters</a><a href=\"{p}/deliveries?state=retrying\">Retrying</a>",
        home = esc(&home(prefix))
    );
    if let Some(csrf) = csrf {
        let _ = write!(html, "{}", button(prefix, "logout", csrf, &[], "Log out"));
    }
    let _ = write!(html, "</nav><h1>{}</h1>{body}</body></html>", esc(title));
    html
}

/// A form with one button posting `fields` (and the CSRF token) to `action`.
pub(super) fn button(prefix: &str, action: &str, csrf: &str, fields: &[(&str, &str)], label: &str) -> String {
    let mut html = format!(
        "<form class=\"inline\" method=\"post\" action=\"{}/{}\"><input type=\"hidden\" name=\"csrf\" value=\"{}\">",
        esc(prefix),
        esc(action),
        esc(csrf)
    );
    for (name, value) in fields {
        let _ = write!(html, "<input type=\"hidden\" name=\"{}\" value=\"{}\">", esc(name), esc(value));
    }
    let _ = write!(html, "<button type=\"submit\">{}</button></form>", esc(label));
    html
}

/// A time as `2026-12-07 01:02:03 UTC`.
pub(super) fn stamp(at: SystemTime) -> String {
    humantime::format_rfc3339_seconds(at).to_string().replace('T', " ").replace('Z', " UTC")
}

/// A time as `2026-12-07 01:02:03 UTC (4m ago)`.
pub(super) fn when(at: SystemTime) -> String {
    let stamp = stamp(at);
    match SystemTime::now().duration_since(at) {
        Ok(ago) => format!("{stamp} ({} ago)", short(ago)),
        Err(_) => stamp,
    }
}

/// A duration in its largest whole unit: `12s`, `4m`, `3h`, `2d`.
pub(super) fn short(duration: Duration) -> String {
    let secs = duration.as_secs();
    match secs {
        0..60 => format!("{secs}s"),
        60..3600 => format!("{}m", secs / 60),
        3600..86_400 => format!("{}h", secs / 3600),
        _ => format!("{}d", secs / 86_400),
    }
}

/// The chart of completions and failed attempts per period: two bars a period
/// (done, then failed, in red), drawn on the server as SVG with presentation
/// attributes only (the policy allows no inline style), each bar titled with its count.
pub(super) fn chart(activity: &Activity) -> String {
    const WIDTH: usize = 720;
    const HEIGHT: usize = 140;
    const AXIS: usize = 18;
    let periods = activity.done.len().max(1);
    let slot = WIDTH / periods;
    let bar = (slot.saturating_sub(2) / 2).max(1);
    let highest = activity.done.iter().chain(&activity.failed).copied().max().unwrap_or(0).max(1);
    let plot = HEIGHT - AXIS;
    let (done, failed) = (activity.done.iter().sum::<u64>(), activity.failed.iter().sum::<u64>());
    let mut svg = format!(
        "<figure id=\"activity\" data-done=\"{done}\" data-failed=\"{failed}\"><svg xmlns=\"http://www.w3.org/2000/svg\" \
         width=\"{WIDTH}\" height=\"{HEIGHT}\" viewBox=\"0 0 {WIDTH} {HEIGHT}\" role=\"img\" \
         aria-label=\"{done} done and {failed} failed attempts over the last {span}\">\
         <line x1=\"0\" y1=\"{plot}\" x2=\"{WIDTH}\" y2=\"{plot}\" stroke=\"#999\"/>",
        span = short(activity.period * u32::try_from(periods).unwrap_or(u32::MAX)),
    );
    for (index, (done, failed)) in activity.done.iter().zip(&activity.failed).enumerate() {
        let start = activity.start + activity.period * u32::try_from(index).unwrap_or(0);
        let at = stamp(start);
        for (offset, count, colour, what) in [(0, *done, "#4a7ab5", "done"), (bar, *failed, "#c0392b", "failed")] {
            let height = usize::try_from(count.saturating_mul(plot as u64) / highest).unwrap_or(plot);
            let height = if count > 0 { height.max(1) } else { 0 };
            let _ = write!(
                svg,
                "<rect x=\"{}\" y=\"{}\" width=\"{bar}\" height=\"{height}\" fill=\"{colour}\"><title>{count} {what} from {}</title></rect>",
                index * slot + offset,
                plot - height,
                esc(&at)
            );
        }
    }
    let _ = write!(
        svg,
        "<text x=\"0\" y=\"{HEIGHT}\" font-size=\"11\">{} ago</text>\
         <text x=\"{WIDTH}\" y=\"{HEIGHT}\" font-size=\"11\" text-anchor=\"end\">now</text>\
         <text x=\"0\" y=\"11\" font-size=\"11\">{highest} a period at most</text></svg>\
         <figcaption>Each {}: <span class=\"done\">done</span> (blue) and <span class=\"error\">failed \
         attempts</span> (red). In all: {done} done, {failed} failed.</figcaption></figure>",
        short(activity.period * u32::try_from(periods).unwrap_or(u32::MAX)),
        short(activity.period),
    );
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_leaves_no_markup() {
        let hostile = r#"<script>alert(1)</script><img src=x onerror="alert(2)"> & 'quoted'"#;
        let escaped = esc(hostile);
        assert!(!escaped.contains('<') && !escaped.contains('>') && !escaped.contains('"') && !escaped.contains('\''));
        assert_eq!(esc("a&b"), "a&amp;b");
    }

    #[test]
    fn the_policy_allows_the_style_by_its_hash_and_no_script() {
        let policy = content_security_policy();
        assert!(policy.contains("style-src 'sha256-"));
        assert!(policy.starts_with("default-src 'none'"));
        assert!(!policy.contains("unsafe"));
    }

    #[test]
    fn the_chart_draws_each_count_to_scale_without_style() {
        let mut activity = Activity::new(SystemTime::UNIX_EPOCH, Duration::from_secs(900), 4);
        activity.add_done(0, 10);
        activity.add_failed(900_000, 5);
        let svg = chart(&activity);
        assert!(svg.contains("data-done=\"10\" data-failed=\"5\""));
        assert!(svg.contains("height=\"122\" fill=\"#4a7ab5\"><title>10 done from 1970-01-01 00:00:00 UTC"));
        assert!(svg.contains("height=\"61\" fill=\"#c0392b\"><title>5 failed from 1970-01-01 00:15:00 UTC"));
        assert!(!svg.contains("style="));
    }
}

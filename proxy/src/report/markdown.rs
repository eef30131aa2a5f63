//! The report as GitHub-flavoured markdown: the job summary.
//!
//! Every value in it came from the job (server names, URLs, script lines), i.e. possibly from an
//! attacker, and GitHub renders the summary as markdown with some HTML: [`escape`] makes each
//! value plain text, so a crafted host name cannot add a link, an image or a table cell.

use std::fmt::Write;

use super::{DestinationItem, Report};

/// Renders the whole report.
pub fn render(r: &Report) -> String {
    let mut out = String::new();
    head(&mut out, r);
    anomalies(&mut out, r);
    blocked(&mut out, r);
    destinations(&mut out, r);
    endpoints(&mut out, r);
    out
}

fn head(out: &mut String, r: &Report) {
    let e = &r.enforcement;
    let held = if e.held && e.live {
        "enforcement on for the whole job so far, and still on (sudo is disabled: Warden keeps \
         enforcing until the runner exits)"
            .to_string()
    } else if e.held {
        "enforcement held for the whole job".to_string()
    } else {
        "**enforcement did NOT hold for the whole job**".to_string()
    };
    let icon = if e.held { "✅" } else { "❌" };
    let _ = writeln!(out, "## Warden: {} mode\n", escape(&r.mode));
    let _ = writeln!(out, "{icon} {held}.\n");
    for p in &e.problems {
        let _ = writeln!(out, "- {}", escape(p));
    }
    if !e.problems.is_empty() {
        out.push('\n');
    }
    let t = &r.totals;
    let _ = writeln!(
        out,
        "{} connection{}, {} DNS lookup{}, {} inspected HTTPS request{}; **{} blocked**, **{} with anomalies**.\n",
        t.connections,
        plural(t.connections),
        t.lookups,
        plural(t.lookups),
        t.requests,
        plural(t.requests),
        t.blocked,
        t.anomalies,
    );
    if r.unreadable_lines > 0 {
        let _ = writeln!(
            out,
            "⚠️ {} line(s) of the audit log were not records.\n",
            r.unreadable_lines
        );
    }
}

fn anomalies(out: &mut String, r: &Report) {
    if r.anomalies.is_empty() {
        return;
    }
    let _ = writeln!(out, "### Anomalies\n");
    let _ = writeln!(
        out,
        "| kind | detail | destination | step | process | count |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|---:|");
    for a in &r.anomalies {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} |",
            escape(&a.kind),
            escape(&a.detail),
            escape(&a.destination),
            escape(a.step.as_deref().unwrap_or("-")),
            escape(&a.process),
            a.count
        );
    }
    out.push('\n');
}

fn blocked(out: &mut String, r: &Report) {
    if r.blocked.is_empty() {
        return;
    }
    let _ = writeln!(out, "### Blocked\n");
    let _ = writeln!(
        out,
        "| destination | to allow it, add | step | process | count |"
    );
    let _ = writeln!(out, "|---|---|---|---|---:|");
    for b in &r.blocked {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} |",
            escape(&b.destination),
            match (&b.allow_with, &b.allow_url) {
                (Some(e), _) => escape(e),
                (None, Some(u)) => format!("allowed-urls: {}", escape(u)),
                (None, None) => "-".into(),
            },
            escape_list(&b.steps),
            escape_list(&b.processes),
            b.count
        );
    }
    out.push('\n');
}

fn destinations(out: &mut String, r: &Report) {
    if r.steps.is_empty() {
        return;
    }
    let _ = writeln!(out, "### Destinations by step\n");
    let _ = writeln!(
        out,
        "| step | process | destination | connections | up | down | decision |"
    );
    let _ = writeln!(out, "|---|---|---|---:|---:|---:|---|");
    let mut urls = String::new();
    for s in &r.steps {
        let step = escape(s.step.as_deref().unwrap_or("(outside any step)"));
        for p in &s.processes {
            for d in &p.destinations {
                row(out, &step, &escape(&p.exe), d);
                if !d.urls.is_empty() {
                    let _ = writeln!(
                        urls,
                        "- {} — {} — {}",
                        step,
                        escape(&p.exe),
                        escape(&d.destination)
                    );
                    for u in &d.urls {
                        let _ = writeln!(urls, "  - {}", escape(u));
                    }
                    if d.urls_omitted > 0 {
                        let _ = writeln!(urls, "  - … and {} more", d.urls_omitted);
                    }
                }
            }
        }
    }
    out.push('\n');
    if !urls.is_empty() {
        let _ = writeln!(
            out,
            "<details><summary>Inspected requests</summary>\n\n{urls}\n</details>\n"
        );
    }
}

fn row(out: &mut String, step: &str, exe: &str, d: &DestinationItem) {
    let decision = if d.blocked > 0 && d.blocked < d.connections {
        format!("{} ({} blocked)", d.decision, d.blocked)
    } else {
        d.decision.clone()
    };
    let _ = writeln!(
        out,
        "| {step} | {exe} | {} | {} | {} | {} | {} |",
        escape(&d.destination),
        d.connections,
        human_bytes(d.bytes_up),
        human_bytes(d.bytes_down),
        escape(&decision),
    );
}

fn endpoints(out: &mut String, r: &Report) {
    let _ = writeln!(out, "### allowed-endpoints\n");
    if r.allowed_endpoints.is_empty() {
        let _ = writeln!(out, "Nothing to allow: the job reached no destination.\n");
    } else {
        let _ = writeln!(
            out,
            "Everything the job reached or tried to, ready to paste into the workflow (review it \
             first: it includes what was blocked):\n"
        );
        let entries: Vec<String> = r
            .allowed_endpoints
            .iter()
            .map(|e| crate::suggest::action_entry(e))
            .collect();
        yaml_block(out, "allowed-endpoints: >", &entries);
    }
    if !r.allowed_urls.is_empty() {
        let _ = writeln!(
            out,
            "URL rules for the strict hosts (`allowed-urls`), the same way:\n"
        );
        yaml_block(out, "allowed-urls: |", &r.allowed_urls);
    }
}

/// A fenced YAML block: shown verbatim, so entries need no escaping but a backtick (never in a
/// host name or a URL rule; replaced to be sure the fence cannot be closed early).
fn yaml_block(out: &mut String, key: &str, entries: &[String]) {
    let _ = writeln!(out, "```yaml\n{key}");
    for e in entries {
        let _ = writeln!(out, "  {}", e.replace('`', "'"));
    }
    let _ = writeln!(out, "```\n");
}

fn escape_list(items: &[String]) -> String {
    if items.is_empty() {
        return "-".into();
    }
    items
        .iter()
        .map(|i| escape(i))
        .collect::<Vec<_>>()
        .join("<br>")
}

fn plural(n: u64) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// `text` as plain text in a markdown table cell: HTML special characters become entities,
/// markdown punctuation is backslash-escaped, line breaks become spaces.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '|' => out.push_str("&#124;"),
            '\\' | '`' | '*' | '_' | '[' | ']' | '#' | '!' | '~' => {
                out.push('\\');
                out.push(c);
            }
            '\r' | '\n' | '\t' => out.push(' '),
            c if c.is_control() => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    // GitHub autolinks bare `www.` and `http(s)://` text; a zero-width joiner after the
    // scheme's colon keeps a job's URL from becoming a clickable link in the summary.
    out.replace("://", ":\u{2060}//")
        .replace("www.", "www\u{2060}.")
}

use crate::summary::human_bytes;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::from_records;
    use serde_json::json;

    #[test]
    fn job_values_cannot_add_markup() {
        let e = escape("a|b <img src=x> [x](https://evil.example) `c` *d*\nnext");
        assert!(
            !e.contains('|') && !e.contains('<') && !e.contains('\n'),
            "{e}"
        );
        assert!(
            e.contains("\\[x\\]") && e.contains("\\`c\\`") && e.contains("\\*d\\*"),
            "{e}"
        );
        assert!(!e.contains("https://"), "no autolink: {e}");
    }

    #[test]
    fn renders_anomalies_first_then_blocked_then_destinations_and_endpoints() {
        let records = vec![
            json!({"time":"t0","kind":"enforcement","enforcement":{"event":"start","mode":"audit"}}),
            json!({"time":"t1","kind":"connection","process":{"exe":"/usr/bin/curl","step":"s1 (run: curl)"},
                   "dst":{"ip":"192.0.2.10","port":443,"proto":"tcp","name":"a|b.example"},"decision":"audited",
                   "reason":"no rule; to allow it, add to allowed-endpoints: a|b.example","bytes":{"up":2048,"down":1},
                   "anomalies":[{"kind":"domain-fronting","detail":"Host differs"}]}),
            json!({"time":"t2","kind":"enforcement","enforcement":{"event":"stop","mode":"audit"}}),
        ];
        let md = render(&from_records(&records, false));
        let a = md.find("### Anomalies").unwrap();
        let d = md.find("### Destinations by step").unwrap();
        let e = md.find("allowed-endpoints: >").unwrap();
        assert!(a < d && d < e, "{md}");
        assert!(md.contains("enforcement held for the whole job"), "{md}");
        assert!(md.contains("| s1 (run: curl) | /usr/bin/curl |"), "{md}");
        assert!(md.contains("a&#124;b.example:443"), "{md}");
        assert!(md.contains("2.0 KiB"), "{md}");
        assert!(!md.contains("### Blocked"), "{md}");
    }
}

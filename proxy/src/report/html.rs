//! The HTML report (issue #9): one self-contained file (no network: styles and the few lines of
//! script are inline) that a person opens from a job's artifacts.
//!
//! Everything is rendered here, so the page reads the same with scripts off; the script only
//! filters and sorts. Sections, in the order a person needs them: enforcement and totals,
//! anomalies, blocked calls with the entry that would allow each, a timeline of connections with
//! one row per step, the process tree, and every destination in a filterable table. Blocked and
//! anomalous items carry the classes `blocked` and `anomaly`, which the tests also look for.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use serde_json::Value;

use crate::logs::str_at;

/// Renders the report `report` (the JSON report's value) with the events of `records` (the
/// log it came from) as one HTML document.
pub fn render(report: &Value, records: &[Value]) -> String {
    let mut out = String::with_capacity(64 * 1024);
    out.push_str(HEAD);
    header(&mut out, report);
    anomalies(&mut out, report);
    blocked(&mut out, report);
    timeline(&mut out, records);
    tree(&mut out, records);
    destinations(&mut out, report);
    out.push_str(SCRIPT);
    out.push_str("</body></html>\n");
    out
}

const HEAD: &str = r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Warden report</title>
<style>
body{font:14px/1.45 system-ui,sans-serif;margin:1.5em auto;max-width:1200px;padding:0 1em;color:#1f2328}
h1{font-size:1.5em}h2{font-size:1.15em;margin-top:1.8em;border-bottom:1px solid #d0d7de}
table{border-collapse:collapse;width:100%}th,td{text-align:left;padding:.25em .5em;border-bottom:1px solid #eaeef2;vertical-align:top}
th{cursor:pointer;background:#f6f8fa;user-select:none}code{font-size:.92em}
.ok{color:#1a7f37}.bad{color:#cf222e;font-weight:600}
.blocked{background:#fff1f0}.anomaly{background:#fff8c5}
.pill{display:inline-block;border-radius:1em;padding:0 .6em;font-size:.85em;border:1px solid #d0d7de}
.timeline-row{display:flex;align-items:center;margin:.2em 0}
.timeline-row .label{width:22em;flex:none;overflow:hidden;text-overflow:ellipsis;white-space:nowrap}
.track{position:relative;flex:1;height:1.3em;background:#f6f8fa;border-radius:3px}
.event{position:absolute;top:.15em;width:6px;height:1em;margin-left:-3px;border-radius:2px;background:#2da44e}
.event.audited{background:#bf8700}.event.blocked{background:#cf222e}.event.anomaly{outline:2px solid #8250df}
.tree ul{list-style:none;padding-left:1.2em;margin:0}.tree li{margin:.1em 0}
.controls{margin:.5em 0;display:flex;gap:1em;align-items:center}
.hidden{display:none}
</style></head><body>
"#;

fn header(out: &mut String, r: &Value) {
    let mode = r["mode"].as_str().unwrap_or("unknown");
    let held = r["enforcement"]["held"].as_bool().unwrap_or(false);
    let t = &r["totals"];
    let _ = write!(
        out,
        "<h1>Warden report</h1>\n<p id=\"summary\">Mode <b>{}</b> · enforcement {} · \
         {} connections · {} lookups · {} inspected requests · \
         <span class=\"{}\">{} blocked</span> · <span class=\"{}\">{} anomalies</span></p>\n",
        esc(mode),
        if held {
            "<span class=\"ok\">held for the whole job</span>".to_string()
        } else {
            format!(
                "<span class=\"bad\">did not hold</span> ({})",
                esc(&strings(&r["enforcement"]["problems"]).join("; "))
            )
        },
        t["connections"].as_u64().unwrap_or(0),
        t["lookups"].as_u64().unwrap_or(0),
        t["requests"].as_u64().unwrap_or(0),
        if t["blocked"].as_u64().unwrap_or(0) > 0 {
            "bad"
        } else {
            "ok"
        },
        t["blocked"].as_u64().unwrap_or(0),
        if t["anomalies"].as_u64().unwrap_or(0) > 0 {
            "bad"
        } else {
            "ok"
        },
        t["anomalies"].as_u64().unwrap_or(0),
    );
}

fn anomalies(out: &mut String, r: &Value) {
    let items = r["anomalies"].as_array().map_or(&[][..], Vec::as_slice);
    out.push_str("<h2 id=\"anomalies\">Anomalies</h2>\n");
    if items.is_empty() {
        out.push_str("<p class=\"ok\">None.</p>\n");
        return;
    }
    out.push_str(
        "<table><thead><tr><th>Kind</th><th>Destination</th><th>Step</th><th>Process</th>\
         <th>Count</th><th>Evidence</th></tr></thead><tbody>\n",
    );
    for a in items {
        let _ = writeln!(
            out,
            "<tr class=\"anomaly\"><td><b>{}</b></td><td><code>{}</code></td><td>{}</td>\
             <td><code>{}</code></td><td>{}</td><td>{}</td></tr>",
            esc(a["kind"].as_str().unwrap_or("")),
            esc(a["destination"].as_str().unwrap_or("")),
            esc(a["step"].as_str().unwrap_or("—")),
            esc(a["process"].as_str().unwrap_or("")),
            a["count"].as_u64().unwrap_or(1),
            esc(a["detail"].as_str().unwrap_or("")),
        );
    }
    out.push_str("</tbody></table>\n");
}

fn blocked(out: &mut String, r: &Value) {
    let items = r["blocked"].as_array().map_or(&[][..], Vec::as_slice);
    out.push_str("<h2 id=\"blocked\">Blocked</h2>\n");
    if items.is_empty() {
        out.push_str("<p class=\"ok\">Nothing was blocked.</p>\n");
        return;
    }
    out.push_str(
        "<table><thead><tr><th>Destination</th><th>To allow it</th><th>Steps</th>\
         <th>Processes</th><th>Count</th><th>Reason</th></tr></thead><tbody>\n",
    );
    for b in items {
        let _ = writeln!(
            out,
            "<tr class=\"blocked\" data-destination=\"{}\"><td><code>{}</code></td>\
             <td><code>{}</code></td><td>{}</td><td><code>{}</code></td><td>{}</td><td>{}</td></tr>",
            esc(b["destination"].as_str().unwrap_or("")),
            esc(b["destination"].as_str().unwrap_or("")),
            esc(b["allow_with"].as_str().unwrap_or("—")),
            esc(&strings(&b["steps"]).join(", ")),
            esc(&strings(&b["processes"]).join(", ")),
            b["count"].as_u64().unwrap_or(1),
            esc(b["reason"].as_str().unwrap_or("")),
        );
    }
    out.push_str("</tbody></table>\n");
}

/// One event on the timeline.
struct Event {
    millis: i64,
    class: &'static str,
    anomaly: bool,
    title: String,
}

/// Milliseconds since the epoch of an RFC 3339 UTC time as Warden writes it
/// (`2026-11-30T00:46:40.258Z`).
fn millis(time: &str) -> Option<i64> {
    let (date, rest) = time.split_once('T')?;
    let mut d = date.split('-').map(|p| p.parse::<i64>().ok());
    let (y, m, day) = (d.next()??, d.next()??, d.next()??);
    let rest = rest.trim_end_matches('Z');
    let mut t = rest.split(':');
    let (h, min) = (
        t.next()?.parse::<i64>().ok()?,
        t.next()?.parse::<i64>().ok()?,
    );
    let sec: f64 = t.next()?.parse().ok()?;
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(((days * 24 + h) * 60 + min) * 60_000 + (sec * 1000.0) as i64)
}

fn step_of(r: &Value) -> String {
    str_at(r, &["process", "step"])
        .unwrap_or("(outside any step)")
        .to_string()
}

fn destination_of(r: &Value) -> String {
    if r["kind"] == "dns" {
        return format!("lookup {}", str_at(r, &["dns", "qname"]).unwrap_or("?"));
    }
    let host = str_at(r, &["dst", "name"])
        .or_else(|| str_at(r, &["dst", "ip"]))
        .unwrap_or("?");
    format!("{host}:{}", r["dst"]["port"].as_u64().unwrap_or(0))
}

fn timeline(out: &mut String, records: &[Value]) {
    let mut rows: BTreeMap<String, Vec<Event>> = BTreeMap::new();
    let mut first_seen: BTreeMap<String, i64> = BTreeMap::new();
    for r in records {
        let kind = r["kind"].as_str().unwrap_or("");
        let wanted = matches!(kind, "connection" | "udp" | "request")
            || (kind == "dns" && r["decision"] == "blocked");
        let Some(t) = str_at(r, &["time"]).and_then(millis) else {
            continue;
        };
        if !wanted {
            continue;
        }
        let class = match r["decision"].as_str() {
            Some("blocked") => "blocked",
            Some("audited") => "audited",
            _ => "allowed",
        };
        let step = step_of(r);
        let exe = str_at(r, &["process", "exe"]).unwrap_or("?");
        let what = match str_at(r, &["http", "url"]) {
            Some(url) if kind == "request" => url.to_string(),
            _ => destination_of(r),
        };
        first_seen.entry(step.clone()).or_insert(t);
        rows.entry(step).or_default().push(Event {
            millis: t,
            class,
            anomaly: r["anomalies"].as_array().is_some_and(|a| !a.is_empty()),
            title: format!(
                "{} {exe} → {what} ({})",
                str_at(r, &["time"]).unwrap_or(""),
                r["decision"].as_str().unwrap_or("?")
            ),
        });
    }
    out.push_str("<h2 id=\"timeline\">Timeline</h2>\n<div class=\"timeline\">\n");
    let (start, end) = rows
        .values()
        .flatten()
        .fold((i64::MAX, i64::MIN), |(a, b), e| {
            (a.min(e.millis), b.max(e.millis))
        });
    let span = (end - start).max(1) as f64;
    // Steps in the order they first reached out.
    let mut order: Vec<(&String, &i64)> = first_seen.iter().collect();
    order.sort_by_key(|(_, t)| **t);
    for (step, _) in order {
        let events = &rows[step];
        let blocked = events.iter().any(|e| e.class == "blocked");
        let _ = write!(
            out,
            "<div class=\"timeline-row{}\" data-step=\"{}\"><span class=\"label\" title=\"{}\">{}</span>\
             <div class=\"track\">",
            if blocked { " has-blocked" } else { "" },
            esc(step),
            esc(step),
            esc(step)
        );
        for e in events {
            let _ = write!(
                out,
                "<span class=\"event {}{}\" style=\"left:{:.2}%\" title=\"{}\"></span>",
                e.class,
                if e.anomaly { " anomaly" } else { "" },
                (e.millis - start) as f64 * 100.0 / span,
                esc(&e.title)
            );
        }
        out.push_str("</div></div>\n");
    }
    if rows.is_empty() {
        out.push_str("<p>No connections.</p>\n");
    }
    out.push_str("</div>\n");
}

/// A process seen in the log.
#[derive(Default)]
struct Proc {
    ppid: Option<u64>,
    exe: String,
    argv: String,
    step: Option<String>,
    connections: u64,
    blocked: u64,
}

fn tree(out: &mut String, records: &[Value]) {
    let mut procs: BTreeMap<u64, Proc> = BTreeMap::new();
    for r in records {
        let p = &r["process"];
        let Some(pid) = p["pid"].as_u64() else {
            continue;
        };
        let e = procs.entry(pid).or_default();
        e.ppid = e.ppid.or(p["ppid"].as_u64());
        if e.exe.is_empty() {
            e.exe = p["exe"].as_str().unwrap_or("?").to_string();
            e.argv = strings(&p["argv"]).join(" ");
        }
        e.step = e.step.take().or(p["step"].as_str().map(str::to_string));
        if matches!(r["kind"].as_str(), Some("connection" | "udp")) {
            e.connections += 1;
            e.blocked += u64::from(r["decision"] == "blocked");
        }
    }
    let mut children: BTreeMap<Option<u64>, Vec<u64>> = BTreeMap::new();
    for (&pid, p) in &procs {
        let parent = p.ppid.filter(|pp| procs.contains_key(pp) && *pp != pid);
        children.entry(parent).or_default().push(pid);
    }
    out.push_str("<h2 id=\"processes\">Processes</h2>\n<div class=\"tree\">\n");
    let mut seen = BTreeSet::new();
    branch(out, &procs, &children, None, &mut seen);
    out.push_str("</div>\n");
}

fn branch(
    out: &mut String,
    procs: &BTreeMap<u64, Proc>,
    children: &BTreeMap<Option<u64>, Vec<u64>>,
    parent: Option<u64>,
    seen: &mut BTreeSet<u64>,
) {
    let Some(kids) = children.get(&parent) else {
        return;
    };
    out.push_str("<ul>\n");
    for &pid in kids {
        if !seen.insert(pid) {
            continue;
        }
        let p = &procs[&pid];
        let _ = write!(
            out,
            "<li class=\"process{}\" data-pid=\"{pid}\"><code>{}</code> <span class=\"pill\">pid {pid}</span> \
             {}{}<br><small><code>{}</code></small>",
            if p.blocked > 0 { " blocked" } else { "" },
            esc(&p.exe),
            p.step
                .as_deref()
                .map(|s| format!("<span class=\"pill\">{}</span> ", esc(s)))
                .unwrap_or_default(),
            if p.connections > 0 {
                format!("{} connection(s), {} blocked", p.connections, p.blocked)
            } else {
                String::new()
            },
            esc(&p.argv)
        );
        branch(out, procs, children, Some(pid), seen);
        out.push_str("</li>\n");
    }
    out.push_str("</ul>\n");
}

fn destinations(out: &mut String, r: &Value) {
    out.push_str(
        "<h2 id=\"destinations\">Destinations</h2>\n<div class=\"controls\">\
         <input id=\"filter\" type=\"search\" placeholder=\"filter: host, step, process, URL\" size=\"40\">\
         <label><input id=\"only-blocked\" type=\"checkbox\"> blocked only</label>\
         <label><input id=\"only-anomalies\" type=\"checkbox\"> with anomalies only</label>\
         <span id=\"shown\"></span></div>\n<table id=\"destination-table\"><thead><tr>\
         <th data-col=\"0\">Step</th><th data-col=\"1\">Process</th><th data-col=\"2\">Destination</th>\
         <th data-col=\"3\">Decision</th><th data-col=\"4\" data-num>Connections</th>\
         <th data-col=\"5\" data-num>Bytes up</th><th data-col=\"6\" data-num>Bytes down</th>\
         <th>URLs</th></tr></thead><tbody>\n",
    );
    let anomalous: BTreeSet<(String, String)> = r["anomalies"]
        .as_array()
        .map_or(&[][..], Vec::as_slice)
        .iter()
        .map(|a| {
            (
                a["destination"].as_str().unwrap_or("").to_string(),
                a["step"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    for s in r["steps"].as_array().map_or(&[][..], Vec::as_slice) {
        let step = s["step"].as_str().unwrap_or("(outside any step)");
        for p in s["processes"].as_array().map_or(&[][..], Vec::as_slice) {
            let exe = p["exe"].as_str().unwrap_or("?");
            for d in p["destinations"].as_array().map_or(&[][..], Vec::as_slice) {
                let dest = d["destination"].as_str().unwrap_or("?");
                let decision = d["decision"].as_str().unwrap_or("?");
                let blocked = d["blocked"].as_u64().unwrap_or(0) > 0;
                let anomaly = anomalous.contains(&(dest.to_string(), step.to_string()))
                    || anomalous.contains(&(dest.to_string(), String::new()));
                let mut classes = vec!["destination"];
                if blocked {
                    classes.push("blocked");
                }
                if anomaly {
                    classes.push("anomaly");
                }
                let urls: Vec<String> = strings(&d["urls"])
                    .iter()
                    .map(|u| format!("<code>{}</code>", esc(u)))
                    .collect();
                let _ = writeln!(
                    out,
                    "<tr class=\"{}\"><td>{}</td><td><code>{}</code></td><td><code>{}</code></td>\
                     <td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                    classes.join(" "),
                    esc(step),
                    esc(exe),
                    esc(dest),
                    esc(decision),
                    d["connections"].as_u64().unwrap_or(0),
                    d["bytes_up"].as_u64().unwrap_or(0),
                    d["bytes_down"].as_u64().unwrap_or(0),
                    urls.join("<br>")
                );
            }
        }
    }
    out.push_str("</tbody></table>\n");
    let endpoints = strings(&r["allowed_endpoints"]);
    if !endpoints.is_empty() {
        let _ = write!(
            out,
            "<h2 id=\"allow\">allowed-endpoints</h2>\n<pre id=\"allowed-endpoints\">allowed-endpoints: &gt;\n{}</pre>\n",
            endpoints
                .iter()
                .map(|e| format!("  {}\n", esc(e)))
                .collect::<String>()
        );
    }
}

/// Filtering and sorting of the destination table; nothing else depends on it.
const SCRIPT: &str = r#"<script>
(function () {
  var table = document.getElementById('destination-table');
  if (!table) return;
  var rows = Array.prototype.slice.call(table.tBodies[0].rows);
  var filter = document.getElementById('filter');
  var onlyBlocked = document.getElementById('only-blocked');
  var onlyAnomalies = document.getElementById('only-anomalies');
  var shown = document.getElementById('shown');
  function apply() {
    var q = filter.value.toLowerCase(), n = 0;
    rows.forEach(function (r) {
      var ok = (!q || r.textContent.toLowerCase().indexOf(q) >= 0) &&
        (!onlyBlocked.checked || r.classList.contains('blocked')) &&
        (!onlyAnomalies.checked || r.classList.contains('anomaly'));
      r.classList.toggle('hidden', !ok);
      if (ok) n++;
    });
    shown.textContent = n + ' of ' + rows.length + ' shown';
  }
  [filter, onlyBlocked, onlyAnomalies].forEach(function (el) {
    el.addEventListener('input', apply);
    el.addEventListener('change', apply);
  });
  Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th) {
    if (!th.hasAttribute('data-col')) return;
    var col = +th.getAttribute('data-col'), num = th.hasAttribute('data-num'), asc = true;
    th.addEventListener('click', function () {
      rows.sort(function (a, b) {
        var x = a.cells[col].textContent, y = b.cells[col].textContent;
        var c = num ? (+x) - (+y) : x.localeCompare(y);
        return asc ? c : -c;
      });
      asc = !asc;
      rows.forEach(function (r) { table.tBodies[0].appendChild(r); });
    });
  });
  apply();
})();
</script>
"#;

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// HTML-escapes text for element content and attribute values.
pub fn esc(text: &str) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn times_parse_to_milliseconds() {
        assert_eq!(millis("1970-01-01T00:00:00.000Z"), Some(0));
        assert_eq!(millis("1970-01-02T00:00:01.5Z"), Some(86_401_500));
        assert_eq!(
            millis("2026-11-30T00:46:40.258Z").unwrap()
                - millis("2026-11-30T00:46:40.000Z").unwrap(),
            258
        );
        assert_eq!(millis("garbage"), None);
    }

    #[test]
    fn renders_rows_per_step_and_marks_what_was_blocked() {
        let records = vec![
            json!({"kind": "connection", "time": "2026-11-30T00:00:00.000Z", "decision": "allowed",
                   "dst": {"ip": "192.0.2.1", "port": 443, "name": "a.example"},
                   "process": {"pid": 10, "ppid": 1, "exe": "/usr/bin/curl", "step": "build"}}),
            json!({"kind": "connection", "time": "2026-11-30T00:00:05.000Z", "decision": "blocked",
                   "dst": {"ip": "192.0.2.2", "port": 443, "name": "<evil>.example"},
                   "process": {"pid": 11, "ppid": 10, "exe": "/usr/bin/wget", "step": "test"}}),
        ];
        let report = json!({"mode": "block", "enforcement": {"held": true},
            "totals": {"connections": 2, "blocked": 1},
            "blocked": [{"destination": "<evil>.example:443", "allow_with": "<evil>.example",
                         "reason": "r", "steps": ["test"], "processes": ["wget"], "count": 1}],
            "steps": [{"step": "test", "processes": [{"exe": "/usr/bin/wget", "destinations": [
                {"destination": "<evil>.example:443", "connections": 1, "blocked": 1, "decision": "blocked"}]}]}]});
        let html = render(&report, &records);
        assert_eq!(html.matches("class=\"timeline-row").count(), 2);
        assert!(html.contains("class=\"timeline-row has-blocked\" data-step=\"test\""));
        assert!(html.contains("class=\"destination blocked\""));
        assert!(!html.contains("<evil>"), "unescaped text");
        assert!(html.contains("&lt;evil&gt;.example:443"));
        assert!(
            !html.contains("http://") && !html.contains("https://"),
            "no network"
        );
    }
}

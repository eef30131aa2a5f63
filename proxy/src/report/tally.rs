//! Building a [`Report`] from records: one pass, grouping as the report shows them.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use super::{
    AnomalyItem, BlockedItem, DestinationItem, MAX_URLS, ProcessItem, REPORT_VERSION, Report,
    StepItem,
};

/// What the policy's reason says to add (`…; to allow it, add to allowed-endpoints: ENTRY`).
const SUGGESTION: &str = "to allow it, add to allowed-endpoints: ";
/// What a strict host's refusal says to add.
const URL_SUGGESTION: &str = "to allow it, add to allowed-urls: ";

type StepKey = Option<String>;

#[derive(Default)]
struct Tally {
    report: Report,
    anomalies: BTreeMap<(String, String, StepKey), AnomalyItem>,
    blocked: BTreeMap<String, (BlockedItem, BTreeSet<String>, BTreeSet<String>)>,
    steps: BTreeMap<StepKey, BTreeMap<String, BTreeMap<String, DestinationItem>>>,
    urls: BTreeSet<String>,
    /// Steps in the order their first record was written.
    step_order: Vec<StepKey>,
    started: bool,
    stopped: bool,
}

/// The report of `records` (audit log lines, in order); `live` when the daemon still enforces.
pub fn from_records(records: &[Value], live: bool) -> Report {
    let mut t = Tally::default();
    t.report.v = REPORT_VERSION;
    t.report.mode = "unknown".into();
    t.report.enforcement.live = live;
    for r in records {
        t.add(r);
    }
    let mut report = t.finish();
    report.allowed_endpoints = crate::suggest::suggest(records)
        .entries
        .into_iter()
        .map(|e| e.rule)
        .collect();
    report
}

fn s(v: &Value) -> Option<&str> {
    v.as_str()
}

impl Tally {
    fn add(&mut self, r: &Value) {
        let kind = s(&r["kind"]).unwrap_or("");
        if kind == "enforcement" {
            self.enforcement(r);
            return;
        }
        let decision = s(&r["decision"]).unwrap_or("");
        let blocked = decision == "blocked";
        match kind {
            "connection" | "udp" => self.report.totals.connections += 1,
            "dns" => self.report.totals.lookups += 1,
            "request" => self.report.totals.requests += 1,
            _ => {}
        }
        self.report.totals.blocked += u64::from(blocked);
        let step = s(&r["process"]["step"]).map(str::to_string);
        let exe = s(&r["process"]["exe"])
            .unwrap_or("unknown process")
            .to_string();
        let dst = destination(r);
        self.suggest_url(r, decision);
        if let Some(list) = r["anomalies"].as_array().filter(|a| !a.is_empty()) {
            self.report.totals.anomalies += 1;
            for a in list {
                self.anomaly(a, &dst, &step, &exe, r);
            }
        }
        if blocked {
            self.blocked(r, &dst, &step, &exe);
        }
        if matches!(kind, "connection" | "udp" | "request") {
            self.traffic(r, kind, dst, step, exe, decision);
        }
    }

    fn enforcement(&mut self, r: &Value) {
        let e = &r["enforcement"];
        let time = s(&r["time"]).unwrap_or("?").to_string();
        let held = &mut self.report.enforcement;
        match s(&e["event"]).unwrap_or("") {
            "start" => {
                if self.started {
                    held.problems
                        .push(format!("enforcement started again at {time}"));
                }
                self.started = true;
                held.since.get_or_insert(time);
                if let Some(mode) = s(&e["mode"]) {
                    self.report.mode = mode.to_string();
                }
            }
            "stop" => {
                self.stopped = true;
                held.until = Some(time);
                if let Some(why) = s(&r["reason"]) {
                    held.problems.push(format!("at stop: {why}"));
                }
            }
            event @ ("lost" | "recovered") => {
                let why = s(&r["reason"]).unwrap_or("no reason given");
                held.problems.push(format!("{event} at {time}: {why}"));
            }
            _ => {}
        }
    }

    /// The `allowed-urls` rule for a request on a strict host: the URL rule that allowed it, or
    /// the one its reason suggests. (Endpoints come from [`crate::suggest`], as `warden policy
    /// suggest` makes them.)
    fn suggest_url(&mut self, r: &Value, decision: &str) {
        if s(&r["kind"]) != Some("request") {
            return;
        }
        let url = match s(&r["rule"]).filter(|_| decision == "allowed") {
            // Allowed by its connection's endpoint, not a URL rule: nothing to add.
            Some(rule) => rule.contains("://").then(|| rule.to_string()),
            None => suggestion(r, URL_SUGGESTION),
        };
        self.urls.extend(url);
    }

    fn anomaly(&mut self, a: &Value, dst: &str, step: &StepKey, exe: &str, r: &Value) {
        let kind = s(&a["kind"]).unwrap_or("unknown").to_string();
        let key = (kind.clone(), dst.to_string(), step.clone());
        self.anomalies
            .entry(key)
            .or_insert_with(|| AnomalyItem {
                kind,
                detail: s(&a["detail"]).unwrap_or("").to_string(),
                destination: dst.to_string(),
                step: step.clone(),
                process: exe.to_string(),
                count: 0,
                time: s(&r["time"]).unwrap_or("").to_string(),
            })
            .count += 1;
    }

    fn blocked(&mut self, r: &Value, dst: &str, step: &StepKey, exe: &str) {
        // A refused request is its own entry: another URL on the same host may be allowed.
        let key = match s(&r["kind"]) {
            Some("request") => format!(
                "{} {}",
                s(&r["http"]["method"]).unwrap_or("?"),
                s(&r["http"]["url"]).unwrap_or("?")
            ),
            _ => dst.to_string(),
        };
        let (item, steps, exes) = self.blocked.entry(key.clone()).or_insert_with(|| {
            let item = BlockedItem {
                destination: key,
                allow_with: suggestion(r, SUGGESTION),
                allow_url: suggestion(r, URL_SUGGESTION),
                reason: s(&r["reason"]).unwrap_or("").to_string(),
                ..BlockedItem::default()
            };
            (item, BTreeSet::new(), BTreeSet::new())
        });
        item.count += 1;
        if let Some(step) = step {
            steps.insert(step.clone());
        }
        exes.insert(exe.to_string());
    }

    fn traffic(
        &mut self,
        r: &Value,
        kind: &str,
        dst: String,
        step: StepKey,
        exe: String,
        decision: &str,
    ) {
        if !self.steps.contains_key(&step) {
            self.step_order.push(step.clone());
        }
        let d = self
            .steps
            .entry(step)
            .or_default()
            .entry(exe)
            .or_default()
            .entry(dst.clone())
            .or_insert_with(|| DestinationItem {
                destination: dst,
                ..DestinationItem::default()
            });
        if kind == "request" {
            let http = &r["http"];
            if d.urls.len() < MAX_URLS {
                let status = http["status"]
                    .as_u64()
                    .map_or_else(|| "-".to_string(), |n| n.to_string());
                d.urls.push(format!(
                    "{} {} {status}",
                    s(&http["method"]).unwrap_or("?"),
                    s(&http["url"]).unwrap_or("?")
                ));
            } else {
                d.urls_omitted += 1;
            }
            return;
        }
        d.connections += 1;
        d.blocked += u64::from(decision == "blocked");
        d.bytes_up += r["bytes"]["up"].as_u64().unwrap_or(0);
        d.bytes_down += r["bytes"]["down"].as_u64().unwrap_or(0);
        if let Some(ip) = s(&r["dst"]["ip"])
            && !d.ips.iter().any(|i| i == ip)
        {
            d.ips.push(ip.to_string());
        }
        d.decision = match (d.decision.as_str(), decision) {
            ("", now) => now.to_string(),
            (was, now) if was == now => now.to_string(),
            _ => "mixed".to_string(),
        };
    }

    fn finish(mut self) -> Report {
        let held = &mut self.report.enforcement;
        if !self.started {
            held.problems
                .insert(0, "no start record: enforcement never began".into());
        }
        if self.started && !self.stopped && !held.live {
            held.problems
                .push("no stop record: Warden died, or the log was read before it stopped".into());
        }
        held.held = self.started && held.problems.is_empty();
        self.report.anomalies = self.anomalies.into_values().collect();
        // Most frequent first, then by name.
        self.report
            .anomalies
            .sort_by(|a, b| b.count.cmp(&a.count).then(a.kind.cmp(&b.kind)));
        self.report.blocked = self
            .blocked
            .into_values()
            .map(|(mut item, steps, exes)| {
                item.steps = steps.into_iter().collect();
                item.processes = exes.into_iter().collect();
                item
            })
            .collect();
        let mut steps = self.steps;
        self.report.steps = self
            .step_order
            .into_iter()
            .filter_map(|step| Some((step.clone(), steps.remove(&step)?)))
            .map(|(step, procs)| StepItem {
                step,
                processes: procs
                    .into_iter()
                    .map(|(exe, dsts)| ProcessItem {
                        exe,
                        destinations: dsts.into_values().collect(),
                    })
                    .collect(),
            })
            .collect();
        // Steps in the order they first reached out (records are written as connections
        // close, so this is close to the order the runner ran them), then processes outside any
        // step.
        self.report.steps.sort_by_key(|s| s.step.is_none());
        self.report.allowed_urls = self.urls.into_iter().collect();
        self.report
    }
}

/// The entry a record's reason suggests after `phrase` (none after a name/address mismatch,
/// whose cure is not another rule).
fn suggestion(r: &Value, phrase: &str) -> Option<String> {
    let reason = s(&r["reason"])?;
    let (_, rest) = reason.split_once(phrase)?;
    let entry = rest.split(';').next().unwrap_or(rest).trim();
    (!entry.is_empty()).then(|| entry.to_string())
}

/// How the report names where a record went.
fn destination(r: &Value) -> String {
    if s(&r["kind"]) == Some("dns") {
        return format!("lookup {}", s(&r["dns"]["qname"]).unwrap_or("?"));
    }
    let d = &r["dst"];
    let port = d["port"].as_u64().and_then(|p| u16::try_from(p).ok());
    let host = s(&d["name"])
        .or_else(|| s(&r["http"]["host"]).map(|h| h.split(':').next().unwrap_or(h)))
        .or_else(|| s(&d["ip"]));
    let (Some(host), Some(port)) = (host, port) else {
        return "unknown destination".into();
    };
    let mut out = if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    if s(&d["proto"]) == Some("udp") {
        out.push_str("/udp");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::Totals;
    use serde_json::json;

    fn log() -> Vec<Value> {
        vec![
            json!({"v":1,"time":"t0","kind":"enforcement","enforcement":{"event":"start","mode":"block","cgroup":"/c","programs":[]}}),
            json!({"v":1,"time":"t1","kind":"connection","process":{"pid":5,"exe":"/usr/bin/curl","ancestry":[],"step":"fetch (run: curl x)"},
                   "dst":{"ip":"192.0.2.10","port":443,"proto":"tcp","name":"tls.example"},"decision":"allowed","rule":"tls.example","bytes":{"up":10,"down":20}}),
            json!({"v":1,"time":"t2","kind":"connection","process":{"pid":6,"exe":"/usr/bin/curl","ancestry":[],"step":"fetch (run: curl x)"},
                   "dst":{"ip":"192.0.2.10","port":443,"proto":"tcp","name":"tls.example"},"decision":"allowed","rule":"tls.example","bytes":{"up":1,"down":2}}),
            json!({"v":1,"time":"t3","kind":"connection","process":{"pid":7,"exe":"/usr/bin/wget","ancestry":[],"step":"evil (run: wget)"},
                   "dst":{"ip":"203.0.113.10","port":80,"proto":"tcp","name":"raw.example"},"decision":"blocked",
                   "reason":"no rule allows raw.example:80; to allow it, add to allowed-endpoints: raw.example:80; then client reset"}),
            json!({"v":1,"time":"t4","kind":"request","process":{"pid":5,"exe":"/usr/bin/curl","ancestry":[],"step":"fetch (run: curl x)"},
                   "dst":{"ip":"192.0.2.10","port":443,"proto":"tcp","name":"tls.example"},"http":{"host":"tls.example","method":"POST","url":"https://tls.example/up","status":200},
                   "decision":"allowed","flags":["secret-exfiltration"],"anomalies":[{"kind":"secret-exfiltration","detail":"GITHUB_TOKEN in the body"}]}),
            json!({"v":1,"time":"t5","kind":"dns","process":{"pid":8,"exe":"/usr/bin/dig","ancestry":[]},"dns":{"qname":"nope.example","qtype":"A"},
                   "decision":"blocked","reason":"no rule names nope.example; to allow it, add to allowed-endpoints: nope.example"}),
            json!({"v":1,"time":"t6","kind":"connection","process":{"pid":9,"exe":"/usr/bin/runner","ancestry":[]},
                   "dst":{"ip":"192.0.2.9","port":443,"proto":"tcp","name":"results.example"},"decision":"allowed","rule":"results.example","flags":["builtin"]}),
            json!({"v":1,"time":"t7","kind":"enforcement","enforcement":{"event":"stop","mode":"block","cgroup":"/c","programs":[]}}),
        ]
    }

    #[test]
    fn groups_steps_processes_destinations() {
        let r = from_records(&log(), false);
        assert_eq!(r.mode, "block");
        assert!(r.enforcement.held, "{:?}", r.enforcement);
        assert_eq!(
            r.totals,
            Totals {
                connections: 4,
                lookups: 1,
                requests: 1,
                blocked: 2,
                anomalies: 1
            }
        );
        let order: Vec<_> = r.steps.iter().map(|s| s.step.as_deref()).collect();
        assert_eq!(
            order,
            [Some("fetch (run: curl x)"), Some("evil (run: wget)"), None]
        );
        let fetch = &r.steps[0];
        let d = &fetch.processes[0].destinations[0];
        assert_eq!(
            (
                d.destination.as_str(),
                d.connections,
                d.bytes_up,
                d.bytes_down
            ),
            ("tls.example:443", 2, 11, 22)
        );
        assert_eq!(d.urls, ["POST https://tls.example/up 200"]);
        assert_eq!(d.decision, "allowed");
        assert_eq!(r.steps.last().unwrap().step, None);
        assert_eq!(r.anomalies[0].kind, "secret-exfiltration");
        assert_eq!(r.anomalies[0].step.as_deref(), Some("fetch (run: curl x)"));
        let blocked: Vec<_> = r
            .blocked
            .iter()
            .map(|b| (b.destination.as_str(), b.allow_with.as_deref()))
            .collect();
        assert_eq!(
            blocked,
            [
                ("lookup nope.example", Some("nope.example")),
                ("raw.example:80", Some("raw.example:80"))
            ]
        );
        assert_eq!(r.blocked[1].steps, ["evil (run: wget)"]);
        // As `policy suggest` makes them: what was connected to (a refused lookup is in
        // `blocked` with its entry), not the built-in allowance.
        assert_eq!(r.allowed_endpoints, ["raw.example:80", "tls.example"]);
    }

    #[test]
    fn strict_hosts_suggest_url_rules_and_refused_requests_are_listed_by_url() {
        let req = |decision: &str, rule: Option<&str>, reason: Option<&str>, url: &str| {
            let mut r = json!({"v":1,"time":"t","kind":"request","process":{"exe":"/usr/bin/curl"},
                "dst":{"ip":"192.0.2.10","port":443,"proto":"tcp","name":"tls.example"},
                "http":{"host":"tls.example","method":"POST","url":url},"decision":decision});
            if let Some(rule) = rule {
                r["rule"] = json!(rule);
            }
            if let Some(reason) = reason {
                r["reason"] = json!(reason);
            }
            r
        };
        let records = vec![
            req(
                "allowed",
                Some("GET https://tls.example/ok/**"),
                None,
                "https://tls.example/ok/a",
            ),
            req(
                "allowed",
                Some("tls.example"),
                None,
                "https://tls.example/plain",
            ),
            req(
                "blocked",
                None,
                Some(
                    "POST https://tls.example/up is not in allowed-urls (the host is strict); to allow it, add to allowed-urls: POST https://tls.example/up",
                ),
                "https://tls.example/up",
            ),
        ];
        let r = from_records(&records, false);
        assert_eq!(
            r.allowed_urls,
            [
                "GET https://tls.example/ok/**",
                "POST https://tls.example/up"
            ]
        );
        assert!(r.allowed_endpoints.is_empty(), "{:?}", r.allowed_endpoints);
        assert_eq!(r.blocked.len(), 1);
        assert_eq!(r.blocked[0].destination, "POST https://tls.example/up");
        assert_eq!(
            r.blocked[0].allow_url.as_deref(),
            Some("POST https://tls.example/up")
        );
        assert_eq!(r.blocked[0].allow_with, None);
    }

    #[test]
    fn a_lost_or_unfinished_enforcement_did_not_hold() {
        let mut records = log();
        records.insert(3, json!({"v":1,"time":"tx","kind":"enforcement","reason":"hooks detached","enforcement":{"event":"lost","mode":"block"}}));
        let r = from_records(&records, false);
        assert!(!r.enforcement.held);
        assert!(r.enforcement.problems[0].contains("lost at tx: hooks detached"));
        let mut records = log();
        records.pop();
        assert!(!from_records(&records, false).enforcement.held);
        assert!(
            from_records(&records, true).enforcement.held,
            "live: still enforcing"
        );
        assert!(!from_records(&[], true).enforcement.held);
    }
}

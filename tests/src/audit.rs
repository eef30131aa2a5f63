//! Queries over audit records, shared by every test that checks the audit log.
//!
//! Records are kept as `serde_json::Value` on purpose: the tests check the documented JSON
//! schema (docs/audit-log.md) as a user's `jq` would see it, not the proxy's Rust types,
//! so a renamed field fails a test instead of silently following the rename.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::warden::read_records;

/// Records whose `kind` is `kind`.
pub fn of_kind<'a>(records: &'a [Value], kind: &str) -> Vec<&'a Value> {
    records.iter().filter(|r| r["kind"] == kind).collect()
}

/// `connection` records.
pub fn connections(records: &[Value]) -> Vec<&Value> {
    of_kind(records, "connection")
}

/// `enforcement` records (hooks attached, detached, tampered with, …).
pub fn enforcement(records: &[Value]) -> Vec<&Value> {
    of_kind(records, "enforcement")
}

/// `connection` records whose destination is `ip` (any textual form) and `port`.
///
/// # Panics
/// If `ip` is not an IP address: that is a mistake in the test.
pub fn connections_to<'a>(records: &'a [Value], ip: &str, port: u16) -> Vec<&'a Value> {
    let ip: IpAddr = ip
        .parse()
        .unwrap_or_else(|_| panic!("{ip:?} is not an IP address"));
    connections(records)
        .into_iter()
        .filter(|r| dst_ip(r) == Some(ip) && r["dst"]["port"] == port)
        .collect()
}

/// Whether `record` is about a destination `ip` (any textual form) and `port`.
///
/// # Panics
/// If `ip` is not an IP address: that is a mistake in the test.
pub fn is_to(record: &Value, ip: &str, port: u16) -> bool {
    let ip: IpAddr = ip
        .parse()
        .unwrap_or_else(|_| panic!("{ip:?} is not an IP address"));
    dst_ip(record) == Some(ip) && record["dst"]["port"] == port
}

/// The first `connection` record to `ip`:`port`, if any. See [`connections_to`].
pub fn find_connection<'a>(records: &'a [Value], ip: &str, port: u16) -> Option<&'a Value> {
    connections_to(records, ip, port).into_iter().next()
}

/// A record's `dst.ip`, parsed.
pub fn dst_ip(record: &Value) -> Option<IpAddr> {
    record["dst"]["ip"].as_str()?.parse().ok()
}

/// The strings in a list-valued field (`flags`, `tls.alpn`, `process.argv`, …); empty when the
/// field is absent, as the schema omits what does not apply.
pub fn strings(list: &Value) -> Vec<&str> {
    list.as_array()
        .map(|items| items.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

/// Whether `flag` is among a record's `flags`.
pub fn has_flag(record: &Value, flag: &str) -> bool {
    strings(&record["flags"]).contains(&flag)
}

/// A record's `process.exe`, or `""` when the record names no process.
pub fn exe(record: &Value) -> &str {
    record["process"]["exe"].as_str().unwrap_or_default()
}

/// The file name of a record's `process.exe` (`curl` for `/usr/bin/curl`).
pub fn exe_name(record: &Value) -> &str {
    let exe = exe(record);
    exe.rsplit('/').next().unwrap_or(exe)
}

/// Whether `exe` is a POSIX shell (`/usr/bin/sh`, `/bin/bash`, …), as the job's command
/// usually is.
pub fn is_shell(exe: &str) -> bool {
    ["/sh", "/bash", "/dash"].iter().any(|s| exe.ends_with(s))
}

/// `connection` records whose `http.url` is `url`.
pub fn with_url<'a>(records: &'a [Value], url: &str) -> Vec<&'a Value> {
    connections(records)
        .into_iter()
        .filter(|r| r["http"]["url"] == url)
        .collect()
}

/// `request` records: one per HTTP request inside a TLS connection Warden inspected
/// (docs/inspection.md, "Records").
pub fn requests(records: &[Value]) -> Vec<&Value> {
    of_kind(records, "request")
}

/// `request` records whose `http.url` (the full URL, secrets redacted) starts with
/// `url_prefix`, in the order they were written (when each response ended).
pub fn requests_to<'a>(records: &'a [Value], url_prefix: &str) -> Vec<&'a Value> {
    requests(records)
        .into_iter()
        .filter(|r| {
            r["http"]["url"]
                .as_str()
                .is_some_and(|url| url.starts_with(url_prefix))
        })
        .collect()
}

/// `request` records whose `http.url` is exactly `url`.
pub fn requests_for<'a>(records: &'a [Value], url: &str) -> Vec<&'a Value> {
    requests(records)
        .into_iter()
        .filter(|r| r["http"]["url"] == url)
        .collect()
}

/// `connection` records flagged `flag` (`inspected`, `not-inspected`, …).
pub fn connections_flagged<'a>(records: &'a [Value], flag: &str) -> Vec<&'a Value> {
    connections(records)
        .into_iter()
        .filter(|r| has_flag(r, flag))
        .collect()
}

/// `dns` records: one per lookup Warden answered (docs/dns.md, "The `dns` record").
pub fn dns_records(records: &[Value]) -> Vec<&Value> {
    of_kind(records, "dns")
}

/// `dns` records of `qtype` (`A`, `AAAA`, `HTTPS`, …) lookups of `qname` (any case, trailing
/// dot ignored), in the order they were answered.
pub fn dns_for<'a>(records: &'a [Value], qname: &str, qtype: &str) -> Vec<&'a Value> {
    let qname = qname
        .strip_suffix('.')
        .unwrap_or(qname)
        .to_ascii_lowercase();
    dns_records(records)
        .into_iter()
        .filter(|r| r["dns"]["qname"] == qname.as_str() && r["dns"]["qtype"] == qtype)
        .collect()
}

/// The `data` of a `dns` record's answers of type `rtype` (`A`, `CNAME`, …), in order.
pub fn answer_data<'a>(record: &'a Value, rtype: &str) -> Vec<&'a str> {
    record["dns"]["answers"]
        .as_array()
        .map(|answers| {
            answers
                .iter()
                .filter(|a| a["type"] == rtype)
                .filter_map(|a| a["data"].as_str())
                .collect()
        })
        .unwrap_or_default()
}

/// The `enforcement` record with `event: start` itself, for fields [`Enforcement`] does not
/// read (`enforcement.dns`, `enforcement.mode`).
pub fn start_record(records: &[Value]) -> Option<&Value> {
    enforcement(records)
        .into_iter()
        .find(|r| r["enforcement"]["event"] == "start")
}

/// What the `enforcement` records of one run say.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Enforcement {
    /// The job's cgroup directory.
    pub cgroup: PathBuf,
    /// Kernel ids of the attached eBPF programs.
    pub programs: Vec<u32>,
    /// Where the proxy listened (start record only).
    pub proxy: Option<SocketAddr>,
}

impl Enforcement {
    /// Reads an `enforcement` record's `enforcement` object; `None` if it lacks the cgroup or
    /// the programs, or has a proxy that is not an address.
    pub fn from_record(record: &Value) -> Option<Enforcement> {
        let e = &record["enforcement"];
        let programs = e["programs"]
            .as_array()?
            .iter()
            .map(|id| id.as_u64().and_then(|id| u32::try_from(id).ok()))
            .collect::<Option<Vec<u32>>>()?;
        let proxy = match &e["proxy"] {
            Value::Null => None,
            proxy => Some(proxy.as_str()?.parse().ok()?),
        };
        Some(Enforcement {
            cgroup: PathBuf::from(e["cgroup"].as_str()?),
            programs,
            proxy,
        })
    }
}

/// The `enforcement` record with `event: start`, if it has been written.
pub fn enforcement_start(records: &[Value]) -> Option<Enforcement> {
    enforcement(records)
        .into_iter()
        .find(|r| r["enforcement"]["event"] == "start")
        .and_then(Enforcement::from_record)
}

/// Checks that a finished run's log is bracketed as documented: exactly one `start` record, on
/// the first line, with the proxy address, and one `stop` record, on the last line, for the
/// same cgroup and programs and without a proxy; and that some programs were attached. Returns
/// what they say, or what is wrong with them.
pub fn enforcement_bracket(records: &[Value]) -> Result<Enforcement, String> {
    let events: Vec<&str> = enforcement(records)
        .iter()
        .map(|r| r["enforcement"]["event"].as_str().unwrap_or("?"))
        .collect();
    if events != ["start", "stop"] {
        return Err(format!("expected events [start, stop], got {events:?}"));
    }
    let (Some(first), Some(last)) = (records.first(), records.last()) else {
        return Err("the log is empty".into());
    };
    if first["enforcement"]["event"] != "start" || last["enforcement"]["event"] != "stop" {
        return Err("start is not the first record or stop is not the last".into());
    }
    let start = Enforcement::from_record(first).ok_or("malformed start record")?;
    let stop = Enforcement::from_record(last).ok_or("malformed stop record")?;
    if start.proxy.is_none() || stop.proxy.is_some() {
        return Err("the proxy address belongs in the start record only".into());
    }
    if start.programs.is_empty() {
        return Err("no programs attached".into());
    }
    if (&start.cgroup, &start.programs) != (&stop.cgroup, &stop.programs) {
        return Err(format!("start {start:?} and stop {stop:?} disagree"));
    }
    Ok(start)
}

/// Polls the audit log at `path` until a record satisfies `wanted` and returns it, or fails
/// after `timeout` showing the records seen. For tests that act while warden is running.
pub fn wait_for_record(
    path: &Path,
    timeout: Duration,
    wanted: impl Fn(&Value) -> bool,
) -> anyhow::Result<Value> {
    wait_for_record_polling(path, timeout, Duration::from_millis(20), wanted)
}

/// [`wait_for_record`], reading the log every `interval`: a short one catches a record within
/// moments of its write.
pub fn wait_for_record_polling(
    path: &Path,
    timeout: Duration,
    interval: Duration,
    wanted: impl Fn(&Value) -> bool,
) -> anyhow::Result<Value> {
    let deadline = Instant::now() + timeout;
    loop {
        let records = read_records(path)?;
        if let Some(found) = records.iter().find(|r| wanted(r)) {
            return Ok(found.clone());
        }
        if Instant::now() >= deadline {
            let lines: Vec<String> = records.iter().map(Value::to_string).collect();
            anyhow::bail!(
                "no such record in {} within {timeout:?}; it has:\n{}",
                path.display(),
                lines.join("\n")
            );
        }
        std::thread::sleep(interval);
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn records() -> Vec<Value> {
        vec![
            json!({"v": 1, "kind": "enforcement", "reason": "attached"}),
            json!({"v": 1, "kind": "connection", "dst": {"ip": "192.0.2.10", "port": 443}}),
            json!({"v": 1, "kind": "connection", "dst": {"ip": "2001:db8:0::10", "port": 80}}),
            json!({"v": 1, "kind": "dns", "dst": {"ip": "192.0.2.10", "port": 443}}),
            json!({"v": 1, "kind": "connection", "dst": {"ip": "192.0.2.10", "port": 443}}),
        ]
    }

    #[test]
    fn filters_by_kind() {
        let records = records();
        assert_eq!(connections(&records).len(), 3);
        assert_eq!(enforcement(&records).len(), 1);
        assert_eq!(of_kind(&records, "dns").len(), 1);
        assert!(of_kind(&records, "file").is_empty());
    }

    #[test]
    fn finds_connections_by_address_in_any_form() {
        let records = records();
        assert_eq!(connections_to(&records, "192.0.2.10", 443).len(), 2);
        assert!(find_connection(&records, "2001:db8::10", 80).is_some());
        assert!(find_connection(&records, "2001:db8::10", 443).is_none());
        assert!(find_connection(&records, "192.0.2.11", 443).is_none());
        // The dns record to the same address is not a connection.
        assert_eq!(
            find_connection(&records, "192.0.2.10", 443),
            Some(&records[1])
        );
    }

    #[test]
    fn reads_the_enforcement_bracket() {
        let start = json!({"kind": "enforcement", "enforcement": {"event": "start",
            "cgroup": "/cg/x", "programs": [3, 4], "proxy": "127.0.0.1:4000"}});
        let stop = json!({"kind": "enforcement", "enforcement": {"event": "stop",
            "cgroup": "/cg/x", "programs": [3, 4]}});
        let conn = json!({"kind": "connection", "flags": ["a", "b"]});
        let run = [start.clone(), conn.clone(), stop.clone()];
        let bracket = enforcement_bracket(&run).unwrap();
        assert_eq!(bracket.cgroup, PathBuf::from("/cg/x"));
        assert_eq!(bracket.programs, [3, 4]);
        assert_eq!(bracket.proxy, Some("127.0.0.1:4000".parse().unwrap()));
        assert_eq!(enforcement_start(&run[..2]), Some(bracket));
        assert!(has_flag(&conn, "b") && !has_flag(&conn, "c"));
        assert!(enforcement_bracket(&run[..2]).is_err(), "no stop");
        assert!(
            enforcement_bracket(&[conn, start, stop.clone()]).is_err(),
            "start not first"
        );
        let mut other = stop;
        other["enforcement"]["programs"] = json!([3]);
        assert!(
            enforcement_bracket(&[run[0].clone(), other]).is_err(),
            "disagree"
        );
    }

    #[test]
    fn finds_dns_records_and_their_answers() {
        let lookup = json!({"kind": "dns", "dns": {"qname": "alias.test.example", "qtype": "A",
            "answers": [{"name": "alias.test.example", "type": "CNAME", "data": "a.test.example"},
                        {"name": "a.test.example", "type": "A", "data": "192.0.2.10"}]}});
        let start = json!({"kind": "enforcement", "enforcement": {"event": "start"}});
        let run = [start.clone(), lookup.clone(), records()[3].clone()];
        assert_eq!(dns_records(&run).len(), 2);
        assert_eq!(dns_for(&run, "Alias.test.example.", "A"), [&lookup]);
        assert!(dns_for(&run, "alias.test.example", "AAAA").is_empty());
        assert_eq!(answer_data(&lookup, "A"), ["192.0.2.10"]);
        assert_eq!(answer_data(&lookup, "CNAME"), ["a.test.example"]);
        assert!(answer_data(&start, "A").is_empty());
        assert_eq!(start_record(&run), Some(&start));
    }

    #[test]
    fn finds_request_records_by_url() {
        let get = json!({"kind": "request", "http": {"url": "https://h2.example/a?x=1"}});
        let post = json!({"kind": "request", "http": {"url": "https://h2.example/a/b"}});
        let other = json!({"kind": "request", "http": {"url": "https://h1.example/a"}});
        let conn = json!({"kind": "connection", "flags": ["inspected"],
            "http": {"url": "https://h2.example/a"}});
        let run = [get.clone(), conn.clone(), post.clone(), other.clone()];
        assert_eq!(requests(&run), [&get, &post, &other]);
        assert_eq!(requests_to(&run, "https://h2.example/a"), [&get, &post]);
        assert_eq!(requests_for(&run, "https://h2.example/a/b"), [&post]);
        assert!(requests_for(&run, "https://h2.example/a").is_empty());
        assert_eq!(connections_flagged(&run, "inspected"), [&conn]);
        assert!(connections_flagged(&run, "not-inspected").is_empty());
    }

    #[test]
    #[should_panic(expected = "is not an IP address")]
    fn rejects_names_where_an_address_is_expected() {
        find_connection(&records(), "tls.example", 443);
    }
}

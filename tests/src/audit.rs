//! Queries over audit records, shared by every test that checks the audit log.
//!
//! Records are kept as `serde_json::Value` on purpose: the tests check the documented JSON
//! schema (DESIGN.md, "Audit record") as a user's `jq` would see it, not the proxy's Rust types,
//! so a renamed field fails a test instead of silently following the rename.

use std::net::IpAddr;

use serde_json::Value;

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

/// The first `connection` record to `ip`:`port`, if any. See [`connections_to`].
pub fn find_connection<'a>(records: &'a [Value], ip: &str, port: u16) -> Option<&'a Value> {
    connections_to(records, ip, port).into_iter().next()
}

/// A record's `dst.ip`, parsed.
pub fn dst_ip(record: &Value) -> Option<IpAddr> {
    record["dst"]["ip"].as_str()?.parse().ok()
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
    #[should_panic(expected = "is not an IP address")]
    fn rejects_names_where_an_address_is_expected() {
        find_connection(&records(), "tls.example", 443);
    }
}

//! Reading dnsmasq's query log: which queries reached the test DNS server.
//!
//! With `log-queries=extra` dnsmasq writes one line per query it receives, before answering:
//!
//! ```text
//! Nov 29 22:35:31 dnsmasq[25298]: 6 192.0.2.53/34285 query[A] burst.test.example from 192.0.2.53
//! ```
//!
//! (serial number, client address/port, type, name), followed by lines about the answer. dnsmasq
//! serves each TCP connection from a forked child, so a line written by a pid other than the
//! server's is a query that came over TCP.

use std::net::SocketAddr;

/// One query the server received.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Query {
    /// The name asked about, as dnsmasq logged it (no trailing dot).
    pub name: String,
    /// The type, as dnsmasq names it: `A`, `AAAA`, `HTTPS`, `TXT`, `type=1234`, …
    pub qtype: String,
    /// Who sent it (the proxy's resolver, when Warden relayed it).
    pub client: SocketAddr,
    /// Whether it came over TCP (answered by a forked child) rather than UDP.
    pub tcp: bool,
}

impl Query {
    /// Whether this is a `qtype` query for `name` (case-insensitive, trailing dot ignored).
    pub fn is(&self, name: &str, qtype: &str) -> bool {
        self.is_for(name) && self.qtype.eq_ignore_ascii_case(qtype)
    }

    /// Whether this query is for `name` (case-insensitive, trailing dot ignored).
    pub fn is_for(&self, name: &str) -> bool {
        self.name
            .eq_ignore_ascii_case(name.strip_suffix('.').unwrap_or(name))
    }
}

/// The queries in `log`, a dnsmasq log written with `log-queries=extra` by the server whose pid
/// is `server_pid`.
pub(super) fn parse(log: &str, server_pid: i32) -> Vec<Query> {
    log.lines()
        .filter_map(|line| parse_line(line, server_pid))
        .collect()
}

fn parse_line(line: &str, server_pid: i32) -> Option<Query> {
    let (_, rest) = line.split_once("dnsmasq[")?;
    let (pid, rest) = rest.split_once("]: ")?;
    let words: Vec<&str> = rest.split_whitespace().collect();
    let at = words.iter().position(|w| w.starts_with("query["))?;
    let qtype = words[at].strip_prefix("query[")?.strip_suffix(']')?;
    let (addr, port) = words.get(at.checked_sub(1)?)?.rsplit_once('/')?;
    let client = SocketAddr::new(addr.parse().ok()?, port.parse().ok()?);
    Some(Query {
        name: (*words.get(at + 1)?).to_owned(),
        qtype: qtype.to_owned(),
        client,
        tcp: pid.parse::<i32>().ok()? != server_pid,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOG: &str = "\
Nov 29 22:34:16 dnsmasq[100]: started, version 2.90 cachesize 150
Nov 29 22:35:31 dnsmasq[100]: 6 192.0.2.53/34285 query[A] burst.test.example from 192.0.2.53
Nov 29 22:35:31 dnsmasq[100]: 6 192.0.2.53/34285 config burst.test.example is 192.0.2.10
Nov 29 22:35:31 dnsmasq[101]: 7 192.0.2.53/36451 query[A] a.test.example from 192.0.2.53
Nov 29 22:35:31 dnsmasq[100]: 107 2001:db8::53/57394 query[AAAA] Alias.test.example from 2001:db8::53
Nov 29 22:35:31 dnsmasq[100]: 108 192.0.2.53/5 query[type=65280] x.test.example from 192.0.2.53
";

    #[test]
    fn finds_every_query_and_its_transport() {
        let queries = parse(LOG, 100);
        assert_eq!(queries.len(), 4, "{queries:?}");
        assert_eq!(
            queries[0],
            Query {
                name: "burst.test.example".into(),
                qtype: "A".into(),
                client: "192.0.2.53:34285".parse().unwrap(),
                tcp: false,
            }
        );
        assert!(queries[1].tcp, "logged by a forked child");
        assert_eq!(queries[2].client, "[2001:db8::53]:57394".parse().unwrap());
        assert!(queries[2].is("alias.test.example.", "aaaa"));
        assert_eq!(queries[3].qtype, "type=65280");
    }

    #[test]
    fn ignores_what_is_not_a_query() {
        assert!(parse("garbage\ndnsmasq[1]: query[A]\n\n", 1).is_empty());
    }
}

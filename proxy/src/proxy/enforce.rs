//! Applying the policy to one connection: gather what the pure policy needs (does the claimed
//! name resolve to this address? which allowed names does the address belong to?), ask it, and
//! refuse what it blocks the way the client will understand.

use std::{
    net::{IpAddr, SocketAddr},
    time::Duration,
};

use tokio::{io::AsyncReadExt, io::AsyncWriteExt, net::TcpStream};

use super::{Context, conn::reset, guard::Claimed};
use crate::{
    dns::doh,
    policy::{Connection, Decision, Host, Mode, Policy, Proto, Verdict},
};

/// How long a blocked HTTP client gets to read its 403 before the connection closes.
const BLOCK_LINGER: Duration = Duration::from_secs(1);

/// The policy's decision for a TCP connection to `dst` that claimed `claimed`, and for a
/// connection without a usable name, the name the job resolved its address from (for the
/// record's `dst.name`).
pub async fn decide(
    ctx: &Context,
    dst: SocketAddr,
    claimed: &Claimed,
) -> (Decision, Option<String>) {
    let (ip, port) = (dst.ip().to_canonical(), dst.port());
    let policy = &ctx.policy;
    let dns = ctx.dns.as_deref();
    let name = claimed.name.as_deref().filter(|_| !claimed.ech);
    // Anti-spoofing: a name only counts if the destination is one of its addresses: one the job
    // itself was given for it. Warden looks a name up itself only without the DNS layer, or when
    // the user wrote it (an exact rule): a name the job chose under a wildcard could carry data,
    // and Warden's own lookup would take it to the name's DNS servers.
    let name_resolves_to_ip = match name.and_then(|n| Some((n, policy.name_rule(n, port)?))) {
        Some((n, rule)) => match dns.and_then(|d| d.names.resolved_to(n, ip)) {
            Some(known) => Some(known),
            None if dns.is_none() || matches!(rule.host(), Host::Exact(_)) => {
                ctx.resolver.resolves_to(n, ip).await
            }
            None => None,
        },
        None => None,
    };
    let job_names = match (name, dns) {
        (None, Some(d)) => d.names.names_for(ip),
        _ => Vec::new(),
    };
    // No usable name (raw IP, or ECH hiding it): which allowed names does this address belong to?
    // Not for a stream whose name could not be read: it names *some* host, maybe another tenant
    // of a shared address, so only an address rule may allow it.
    let ip_names = if name.is_none()
        && claimed.unidentified.is_none()
        && policy.ip_rule(ip, port, Proto::Tcp).is_none()
    {
        if job_names
            .iter()
            .any(|n| policy.name_rule(n, port).is_some())
        {
            job_names.clone()
        } else {
            let mut names: Vec<&str> = policy.exact_names().map(|(n, _)| n).collect();
            names.sort_unstable();
            names.dedup();
            ctx.resolver.names_for(ip, names.into_iter()).await
        }
    } else {
        Vec::new()
    };
    let mut d = policy.decide(&Connection {
        ip,
        port,
        proto: Proto::Tcp,
        name: claimed.name.as_deref(),
        ech: claimed.ech,
        name_resolves_to_ip,
        ip_names: &ip_names,
    });
    if let Some(what) = claimed.unidentified {
        d.flags.push("unidentified");
        d.reason = format!("{what}, so judged by address only: {}", d.reason);
    }
    if let Some(dns) = dns {
        if !dns.names.knows(ip) && policy.ip_rule(ip, port, Proto::Tcp).is_none() {
            d.flags.push(FLAG_NO_DNS);
        }
        refuse_doh(policy, &mut d, name, ip, port);
    }
    (d, job_names.into_iter().next())
}

/// Flag: no answer the job got gave it this address, and no rule names the address.
const FLAG_NO_DNS: &str = "no-dns";

/// A well-known DNS-over-HTTPS resolver (by name, or by address when there is no usable name)
/// is flagged, and refused in block mode unless an exact rule names that very host or address:
/// lookups inside it would bypass Warden's resolver.
fn refuse_doh(policy: &Policy, d: &mut Decision, name: Option<&str>, ip: IpAddr, port: u16) {
    let (doh, exact) = match name {
        Some(n) => (
            doh::is_doh_host(n),
            policy
                .name_rule(n, port)
                .is_some_and(|r| matches!(r.host(), Host::Exact(_))),
        ),
        None => (
            doh::is_doh_address(ip),
            policy.ip_rule(ip, port, Proto::Tcp).is_some_and(|r| {
                matches!(r.host(), Host::Network { prefix, .. } if u32::from(*prefix) == if ip.is_ipv4() { 32 } else { 128 })
            }),
        ),
    };
    if !doh {
        return;
    }
    d.flags.push(doh::FLAG);
    let what = name.map_or_else(|| ip.to_string(), str::to_string);
    if exact || policy.mode() != Mode::Block {
        return;
    }
    let mut reason = format!(
        "{what} is a DNS-over-HTTPS resolver: lookups sent to it would bypass Warden; only an \
         exact rule for it allows it"
    );
    if d.verdict == Verdict::Blocked {
        reason = format!("{reason} (and {})", d.reason);
    }
    d.verdict = Verdict::Blocked;
    d.rule = None;
    d.suggestion = None;
    d.reason = reason;
}

/// Refuses a blocked connection: plain HTTP gets a 403 page naming the host and the rule to
/// add; TLS and raw TCP get a reset (nothing else can be said without terminating TLS).
pub async fn block(mut client: TcpStream, claimed: &Claimed, dst: SocketAddr, d: &Decision) {
    if !claimed.http {
        reset(client);
        return;
    }
    let target = match &claimed.name {
        Some(name) => format!("{name}:{} ({})", dst.port(), dst.ip()),
        None => dst.to_string(),
    };
    let response = forbidden(&target, d);
    if client.write_all(response.as_bytes()).await.is_err() {
        return;
    }
    let _ = client.shutdown().await;
    // Closing with unread request bytes would send a reset that can destroy the 403 before the
    // client reads it: drain what the client still sends, briefly.
    let mut sink = [0u8; 4096];
    let _ = tokio::time::timeout(BLOCK_LINGER, async {
        while matches!(client.read(&mut sink).await, Ok(n) if n > 0) {}
    })
    .await;
}

/// The 403 response for a blocked plain-HTTP request.
fn forbidden(target: &str, d: &Decision) -> String {
    let mut body = format!(
        "Blocked by Warden: connection to {target} is not allowed by the egress policy.\n{}\n",
        d.reason
    );
    if let Some(rule) = &d.suggestion {
        body.push_str(&format!(
            "To allow it, add this entry to allowed-endpoints: {rule}\n"
        ));
    }
    format!(
        "HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain; charset=utf-8\r\n\
         Content-Length: {}\r\nConnection: close\r\nX-Warden: blocked\r\n\r\n{body}",
        body.len()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::Verdict;

    #[test]
    fn forbidden_page_names_host_and_rule() {
        let d = Decision {
            verdict: Verdict::Blocked,
            rule: None,
            reason: "no rule allows it".into(),
            flags: vec![],
            suggestion: Some("evil.example".into()),
        };
        let page = forbidden("evil.example:80 (192.0.2.7)", &d);
        let (head, body) = page.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 403 Forbidden\r\n"));
        assert!(head.contains(&format!("Content-Length: {}", body.len())));
        assert!(body.contains("evil.example:80 (192.0.2.7)"));
        assert!(body.contains("add this entry to allowed-endpoints: evil.example"));
    }
}

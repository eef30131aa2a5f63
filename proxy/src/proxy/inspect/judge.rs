//! Judging one inspected request before any of it is sent on (issue #7): domain fronting, strict
//! mode's URL rules, and secrets in the URL and headers. The body is judged as it streams
//! ([`super::scan_body`]).
//!
//! Order: fronting first (a request for another host than the connection's is not that host's
//! request, whatever its URL), then the URL rules of the host it names, then secrets. In block
//! mode the first refusal wins and nothing is forwarded; in audit mode everything found is
//! recorded and the request goes on.

use http::{HeaderMap, Method};

use crate::{
    audit::Decision,
    exfil::Finding,
    policy::{Mode, Policy, url::UrlRule, url::normalize_path},
};

/// What Warden does with a request.
#[derive(Debug, Default)]
pub struct Judgment {
    /// The request's own decision and rule (strict hosts); `None` keeps the connection's.
    pub decision: Option<(Decision, Option<String>)>,
    /// Why it was refused or audited, and what would allow it.
    pub reason: Option<String>,
    /// Refused: the `x-warden` tag (`url-not-allowed`, `domain-fronting`,
    /// `secret-exfiltration`) and the message for the client. `None`: forward it.
    pub refusal: Option<(&'static str, String)>,
    /// Anomalies to record: kind and evidence.
    pub anomalies: Vec<(&'static str, String)>,
}

/// The request as the judge sees it.
pub struct Request<'a> {
    /// `https` or `http`.
    pub scheme: &'static str,
    /// The connection's server name (SNI, or the first request's Host for plain HTTP).
    pub server_name: &'a str,
    /// The original destination port.
    pub port: u16,
    /// The request's authority (`:authority` / Host), without userinfo.
    pub authority: &'a str,
    pub method: &'a Method,
    /// Origin-form target, query included.
    pub target: &'a str,
    pub headers: &'a HeaderMap,
}

/// Secret-exfiltration anomaly kind.
pub const SECRET_EXFILTRATION: &str = "secret-exfiltration";
/// Domain-fronting anomaly kind.
pub const DOMAIN_FRONTING: &str = "domain-fronting";

/// Judges `req` under `policy`. Everything found is an anomaly; in block mode the refusal is the
/// first of fronting, a secret, a URL outside the rules.
pub fn judge(policy: &Policy, req: &Request<'_>) -> Judgment {
    let block = policy.mode() == Mode::Block;
    let mut j = Judgment::default();
    let host = host_of(req.authority);
    let server = normalize(req.server_name);
    // Names the job chose are shown only when they carry no secret.
    let (shown_host, shown_server) = (shown(policy, &host), shown(policy, &server));
    let mut refusal: Option<(&'static str, String, String)> = None;
    if host != server {
        let detail = format!(
            "the request names {shown_host} inside a connection to {shown_server} (HTTP {} ≠ {})",
            if req.scheme == "https" {
                "Host/:authority"
            } else {
                "Host"
            },
            if req.scheme == "https" {
                "TLS SNI"
            } else {
                "the first request's Host"
            }
        );
        j.anomalies.push((DOMAIN_FRONTING, detail.clone()));
        refusal = Some((
            DOMAIN_FRONTING,
            format!("domain fronting: {detail}"),
            format!("domain fronting refused: {detail}"),
        ));
    }
    let found = secrets(policy, req);
    // A secret must belong to the host the request names and to the one the connection is for.
    let bad: Vec<&(Finding, String)> = found
        .iter()
        .filter(|(f, _)| {
            !policy.exfil().allowed_to(f, &host) || !policy.exfil().allowed_to(f, &server)
        })
        .collect();
    if !bad.is_empty() {
        let detail = describe(&bad, &shown_host);
        j.anomalies.push((SECRET_EXFILTRATION, detail.clone()));
        refusal = refusal.or(Some((
            SECRET_EXFILTRATION,
            format!("secret exfiltration: {detail}"),
            format!(
                "refused: {detail}; Warden keeps the job's secrets from hosts they do not belong to"
            ),
        )));
    }
    let urls = &policy.inspection().urls;
    if urls.for_host(&host, req.port) {
        let (path, _query) = req.target.split_once('?').unwrap_or((req.target, ""));
        let method = req.method.as_str();
        match normalize_path(path) {
            Ok(normalized) => match urls.find(method, req.scheme, &host, req.port, &normalized) {
                Some(rule) => j.decision = Some((Decision::Allowed, Some(rule.to_string()))),
                None => {
                    let url = format!("{}://{host}{normalized}", req.scheme);
                    let shown_url = redact_secrets(policy, &url);
                    // A path that holds a secret is not suggested as a rule.
                    let suggestion = (shown_url == url)
                        .then(|| {
                            UrlRule::for_request(method, req.scheme, &host, req.port, &normalized)
                        })
                        .flatten()
                        .map(|r| format!("; to allow it, add to allowed-urls: {r}"))
                        .unwrap_or_default();
                    let why = format!(
                        "{} {shown_url} is not in allowed-urls (the host is strict){suggestion}",
                        shown(policy, method)
                    );
                    not_allowed(&mut j, block, why);
                }
            },
            Err(e) => {
                let why = format!(
                    "the request path {e}: it cannot be matched against allowed-urls (the host is \
                     strict)"
                );
                not_allowed(&mut j, block, why);
            }
        }
    }
    if block && let Some((tag, reason, message)) = refusal {
        j.decision = Some((Decision::Blocked, None));
        j.reason = Some(reason);
        j.refusal = Some((tag, message));
    }
    j
}

/// `text`, or `REDACTED` when it holds a secret or a token.
fn shown(policy: &Policy, text: &str) -> String {
    if policy.exfil().detector.scan(text.as_bytes()).is_empty() {
        text.to_string()
    } else {
        "REDACTED".to_string()
    }
}

fn not_allowed(j: &mut Judgment, block: bool, why: String) {
    j.decision = Some((
        if block {
            Decision::Blocked
        } else {
            Decision::Audited
        },
        None,
    ));
    if block {
        j.refusal = Some(("url-not-allowed", format!("Blocked by Warden: {why}")));
    }
    j.reason = Some(why);
}

/// Every secret or token in the target and the header values, each with where it was.
fn secrets(policy: &Policy, req: &Request<'_>) -> Vec<(Finding, String)> {
    let detector = &policy.exfil().detector;
    let mut found: Vec<(Finding, String)> = Vec::new();
    let mut add = |findings: Vec<Finding>, place: String| {
        for f in findings {
            if !found.iter().any(|(g, _)| *g == f) {
                found.push((f, place.clone()));
            }
        }
    };
    add(detector.scan(req.target.as_bytes()), "the URL".into());
    add(detector.scan(req.authority.as_bytes()), "the host".into());
    add(
        detector.scan(req.method.as_str().as_bytes()),
        "the method".into(),
    );
    for (name, value) in req.headers {
        let place = format!("header {}", name.as_str());
        add(detector.scan(name.as_str().as_bytes()), place.clone());
        add(detector.scan(value.as_bytes()), place);
    }
    found
}

/// `secret DEPLOY_KEY (base64) in header authorization, github-token (plain) in the URL, sent
/// to evil.example, where they do not belong`.
pub fn describe(found: &[&(Finding, String)], host: &str) -> String {
    let parts: Vec<String> = found
        .iter()
        .map(|(f, place)| format!("{f} in {place}"))
        .collect();
    format!(
        "{} sent to {host}, where {} not belong",
        parts.join(", "),
        if found.len() == 1 {
            "it does"
        } else {
            "they do"
        }
    )
}

/// The authority's host: lowercase, without port or trailing dot; an IPv6 literal without
/// brackets.
pub fn host_of(authority: &str) -> String {
    let host = match authority.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or(rest),
        None => authority
            .rsplit_once(':')
            .filter(|(_, p)| p.bytes().all(|b| b.is_ascii_digit()))
            .map_or(authority, |(h, _)| h),
    };
    normalize(host)
}

fn normalize(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

/// `url` with every path segment and query value in which the detector finds a secret or a
/// token replaced by `REDACTED` (and, should the rest still hold one, the whole path and query).
pub(crate) fn redact_secrets(policy: &Policy, url: &str) -> String {
    let detector = &policy.exfil().detector;
    if detector.scan(url.as_bytes()).is_empty() {
        return url.to_string();
    }
    let (head, rest) = match url.find("://") {
        Some(i) => {
            let after = &url[i + 3..];
            let slash = after.find('/').map_or(url.len(), |j| i + 3 + j);
            url.split_at(slash)
        }
        None => ("", url),
    };
    let (path, query) = match rest.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (rest, None),
    };
    let clean = |s: &str| {
        if detector.scan(s.as_bytes()).is_empty() {
            s.to_string()
        } else {
            "REDACTED".to_string()
        }
    };
    let mut out = String::from(head);
    out.push_str(&path.split('/').map(clean).collect::<Vec<_>>().join("/"));
    if let Some(q) = query {
        out.push('?');
        let pairs: Vec<String> = q
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((k, v)) => format!("{}={}", clean(k), clean(v)),
                None => clean(pair),
            })
            .collect();
        out.push_str(&pairs.join("&"));
    }
    if detector.scan(out.as_bytes()).is_empty() {
        out
    } else {
        format!("{head}/REDACTED")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{PolicyFlags, policy};

    fn with(flags: PolicyFlags) -> Policy {
        policy(&flags).unwrap()
    }

    fn req<'a>(
        authority: &'a str,
        method: &'a Method,
        target: &'a str,
        headers: &'a HeaderMap,
    ) -> Request<'a> {
        Request {
            scheme: "https",
            server_name: "github.com",
            port: 443,
            authority,
            method,
            target,
            headers,
        }
    }

    const TOKEN: &str = "ghp_abcdefghijklmnopqrstuvwxyzABCDEF0123";

    #[test]
    fn strict_hosts_allow_only_their_urls() {
        let p = with(PolicyFlags {
            mode: Some(Mode::Block),
            allowed_urls: vec!["GET https://github.com/my-org/**".into()],
            ..PolicyFlags::default()
        });
        let h = HeaderMap::new();
        let get = Method::GET;
        let ok = judge(
            &p,
            &req("github.com", &get, "/my-org/repo/info/refs?x=1", &h),
        );
        assert!(ok.refusal.is_none());
        assert_eq!(
            ok.decision,
            Some((
                Decision::Allowed,
                Some("GET https://github.com/my-org/**".into())
            ))
        );
        for target in [
            "/my-org-evil/x",
            "/my-org/../other",
            "/my-org/%2e%2e/other",
            "//other",
        ] {
            let no = judge(&p, &req("github.com", &get, target, &h));
            assert_eq!(
                no.decision.map(|d| d.0),
                Some(Decision::Blocked),
                "{target}"
            );
            assert_eq!(no.refusal.map(|r| r.0), Some("url-not-allowed"), "{target}");
        }
        let post = Method::POST;
        let no = judge(&p, &req("github.com", &post, "/my-org/repo", &h));
        assert!(
            no.reason
                .unwrap()
                .contains("add to allowed-urls: POST https://github.com/my-org/repo")
        );
        // Another host is not strict: the connection's decision stands.
        let other = judge(
            &Policy::new(Mode::Block, vec![]),
            &req("github.com", &get, "/x", &h),
        );
        assert!(other.decision.is_none() && other.refusal.is_none());
    }

    #[test]
    fn fronting_and_tokens() {
        let p = with(PolicyFlags {
            mode: Some(Mode::Block),
            ..PolicyFlags::default()
        });
        let h = HeaderMap::new();
        let get = Method::GET;
        let j = judge(&p, &req("evil.example:443", &get, "/", &h));
        assert_eq!(j.refusal.unwrap().0, DOMAIN_FRONTING);
        assert!(
            judge(&p, &req("GitHub.com.:443", &get, "/", &h))
                .refusal
                .is_none()
        );

        let mut h = HeaderMap::new();
        h.insert("authorization", format!("token {TOKEN}").parse().unwrap());
        // To GitHub: its audience.
        assert!(
            judge(&p, &req("github.com", &get, "/", &h))
                .anomalies
                .is_empty()
        );
        let mut r = req("evil.example", &get, "/", &h);
        r.server_name = "evil.example";
        let j = judge(&p, &r);
        let (tag, message) = j.refusal.unwrap();
        assert_eq!(tag, SECRET_EXFILTRATION);
        assert!(
            message.contains("github-token (plain) in header authorization"),
            "{message}"
        );
        assert!(!message.contains(TOKEN));
    }

    #[test]
    fn redaction_of_secrets_in_urls() {
        let p = Policy::new(Mode::Audit, vec![]);
        let url = format!("https://evil.example/upload/{TOKEN}/x?a=1&t={TOKEN}");
        let red = redact_secrets(&p, &url);
        assert_eq!(red, "https://evil.example/upload/REDACTED/x?a=1&t=REDACTED");
        assert_eq!(
            redact_secrets(&p, "https://a.example/b?c=d"),
            "https://a.example/b?c=d"
        );
    }
}

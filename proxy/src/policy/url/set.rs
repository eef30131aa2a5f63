//! [`UrlRules`]: the `allowed-urls` list as a whole, and which hosts it makes strict.

use super::{super::Endpoint, UrlRule};

/// A set of URL rules, in the order written.
///
/// A host (and port) named by any rule is *strict*: the caller inspects its connections and
/// allows there only requests some rule matches. Every rule is an allow, so which of several
/// matching rules is reported does not change the decision; [`UrlRules::find`] reports the first
/// in written order, which users can predict from their list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UrlRules {
    rules: Vec<UrlRule>,
    /// Each rule's endpoint once, in order of first appearance.
    hosts: Vec<Endpoint>,
}

impl UrlRules {
    /// The set of `rules`, kept in order.
    pub fn new(rules: Vec<UrlRule>) -> Self {
        let mut hosts: Vec<Endpoint> = Vec::new();
        for rule in &rules {
            if !hosts.contains(&rule.endpoint) {
                hosts.push(rule.endpoint.clone());
            }
        }
        UrlRules { rules, hosts }
    }

    /// The rules, in the order written.
    pub fn rules(&self) -> &[UrlRule] {
        &self.rules
    }

    /// Whether there are no rules (strict mode is off).
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// The hosts (with ports) that have URL rules, each once: these are inspected, and only
    /// requests some rule matches are allowed there.
    pub fn hosts(&self) -> &[Endpoint] {
        &self.hosts
    }

    /// Whether `host` on `port` is strict (some rule names it).
    pub fn for_host(&self, host: &str, port: u16) -> bool {
        self.hosts.iter().any(|e| e.matches_name(host, port))
    }

    /// The first rule, in written order, that matches the request (see [`UrlRule::matches`]).
    pub fn find(
        &self,
        method: &str,
        scheme: &str,
        host: &str,
        port: u16,
        normalized_path: &str,
    ) -> Option<&UrlRule> {
        self.rules
            .iter()
            .find(|r| r.matches(method, scheme, host, port, normalized_path))
    }
}

impl FromIterator<UrlRule> for UrlRules {
    fn from_iter<I: IntoIterator<Item = UrlRule>>(iter: I) -> Self {
        UrlRules::new(iter.into_iter().collect())
    }
}

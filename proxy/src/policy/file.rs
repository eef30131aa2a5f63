//! The YAML policy file (`warden run --policy FILE`, `warden policy check FILE`).
//!
//! ```yaml
//! mode: block                # audit | block
//! allowed-endpoints:         # a list of entries, or one string in the list syntax
//!   - github.com             # (quote entries that start with '*' or '[': YAML reads those
//!   - "*.githubusercontent.com"  #  as an alias or a list)
//!   - "[2001:db8::/32]:443"
//! allowed-urls:              # strict mode: only these requests on these hosts
//!   - GET https://github.com/my-org/**
//! secret-env: [DEPLOY_KEY]   # environment variables holding secrets to look for
//! secret-audiences:          # where a named secret may be sent
//!   DEPLOY_KEY: [deploy.example.com]
//! upload-budget: 50MiB       # per destination host; more is flagged
//! file-monitoring:           # with --workspace (docs/file-monitoring.md)
//!   ignore:                  # gitignore-style globs: counted, never recorded or flagged
//!     - "dist/"
//!   expected-writers:        # EXE [PATH-GLOB]: may rewrite those files without an anomaly
//!     - "rustfmt src/**/*.rs"
//! ```
//! Checking never stops at the first problem: every unknown key, bad value and bad entry is a
//! [`Problem`] with the file, line and column of its own YAML node and the value quoted, so one
//! run of `warden policy check` shows everything to fix. That is why this uses saphyr's
//! `MarkedYaml`, which keeps a position for every node, rather than a serde deserializer, which
//! stops at the first error. [`parse`] is pure; [`load`] only adds reading the file.
//!
//! Positions: lines and columns count from 1; a problem that has no position (the file cannot be
//! read) is at line 0. A YAML syntax error stops parsing, so it is the only problem reported.

use std::{fmt, path::Path};

use saphyr::{MarkedYaml, ScalarStyle, YamlData, YamlLoader};
use saphyr_parser::{Marker, Parser, Span};

use super::{
    Endpoint, Mode, parse_endpoint_list,
    url::{UrlRule, parse_url_rule_list},
};

/// The keys a policy file may have. Anything else is a problem (DESIGN.md "Precedence").
pub const KEYS: &[&str] = &[
    "mode",
    "allowed-endpoints",
    "tls-inspection",
    "no-inspect",
    "allowed-urls",
    "secret-env",
    "secret-audiences",
    "upload-budget",
    "file-monitoring",
];

/// The keys of the `file-monitoring` mapping.
pub const FILE_MONITORING_KEYS: &[&str] = &["ignore", "expected-writers"];

/// One thing wrong with a policy file, with where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The file, as given to [`parse`] or [`load`].
    pub file: String,
    /// 1-based line; 0 when the problem is with the file as a whole.
    pub line: usize,
    /// 1-based column (in characters); 0 with line 0.
    pub column: usize,
    /// The top-level key the problem is under, or empty (syntax errors, the file itself).
    pub key: String,
    /// The offending value (a key, a scalar, an entry) as written, or empty.
    pub value: String,
    /// What is wrong, lowercase.
    pub message: String,
}

impl fmt::Display for Problem {
    /// `FILE:LINE:COL: key KEY: "VALUE": MESSAGE` on one line, leaving out what is empty.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if self.line > 0 {
            write!(f, ":{}:{}", self.line, self.column)?;
        }
        if !self.key.is_empty() {
            write!(f, ": key {}", self.key)?;
        }
        if !self.value.is_empty() {
            write!(f, ": {:?}", self.value)?;
        }
        write!(f, ": {}", self.message)
    }
}

/// What a policy file sets; `None` for keys it leaves out.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PolicyFile {
    /// `mode`.
    pub mode: Option<Mode>,
    /// `allowed-endpoints` (an empty or null value is `Some` of an empty list: nothing allowed).
    pub allowed_endpoints: Option<Vec<Endpoint>>,
    /// `tls-inspection` (`true`/`false`).
    pub tls_inspection: Option<bool>,
    /// `no-inspect`: hosts (names or `*.` wildcards) never inspected.
    pub no_inspect: Option<Vec<Endpoint>>,
    /// `allowed-urls`: strict mode's URL rules.
    pub allowed_urls: Option<Vec<UrlRule>>,
    /// `secret-env`: names of environment variables holding secrets.
    pub secret_env: Option<Vec<String>>,
    /// `secret-audiences`: secret name → the hosts it may be sent to, in written order.
    pub secret_audiences: Option<Vec<(String, Vec<Endpoint>)>>,
    /// `upload-budget`: bytes per destination host.
    pub upload_budget: Option<u64>,
    /// `file-monitoring`: ignored paths and expected writers.
    pub file_monitoring: Option<crate::files::Rules>,
}

/// What the command line (or the action's inline inputs) set; `None` for flags not given.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Overrides {
    /// `--egress-policy`.
    pub mode: Option<Mode>,
    /// `--allowed-endpoints` (all occurrences together).
    pub allowed_endpoints: Option<Vec<Endpoint>>,
}

impl PolicyFile {
    /// DESIGN.md "Precedence": each key the command line sets replaces the file's (lists are
    /// replaced, not merged); the mode defaults to audit, the endpoints to none.
    pub fn merge(self, cli: Overrides) -> (Mode, Vec<Endpoint>) {
        let mode = cli.mode.or(self.mode).unwrap_or_default();
        let endpoints = cli
            .allowed_endpoints
            .or(self.allowed_endpoints)
            .unwrap_or_default();
        (mode, endpoints)
    }
}

/// Reads and parses the policy file at `path`. An unreadable file is one problem at line 0.
pub fn load(path: &Path) -> Result<PolicyFile, Vec<Problem>> {
    let file = path.display().to_string();
    match std::fs::read_to_string(path) {
        Ok(text) => parse(&text, &file),
        Err(e) => Err(vec![Problem {
            file,
            line: 0,
            column: 0,
            key: String::new(),
            value: String::new(),
            message: format!("cannot read the policy file: {e}"),
        }]),
    }
}

/// Parses the text of a policy file; `file` names it in problems. Returns every problem found.
pub fn parse(text: &str, file: &str) -> Result<PolicyFile, Vec<Problem>> {
    let mut checker = Checker {
        file,
        text,
        problems: Vec::new(),
    };
    let policy = match load_yaml(text) {
        Ok(docs) => checker.documents(&docs),
        Err(e) => {
            checker.syntax(&e);
            PolicyFile::default()
        }
    };
    if checker.problems.is_empty() {
        Ok(policy)
    } else {
        Err(checker.problems)
    }
}

/// Loads every document, keeping each scalar as written (no YAML type resolution: `mode: 1` is
/// the text "1", and an entry is never turned into a number).
fn load_yaml(text: &str) -> Result<Vec<MarkedYaml<'_>>, saphyr::ScanError> {
    let mut loader = YamlLoader::<MarkedYaml<'_>>::default();
    loader.early_parse(false);
    Parser::new_from_str(text).load(&mut loader, true)?;
    if let Some(e) = loader.error() {
        return Err(e.clone());
    }
    Ok(loader.into_documents())
}

/// Collects problems while walking the document.
struct Checker<'a> {
    file: &'a str,
    text: &'a str,
    problems: Vec<Problem>,
}

impl Checker<'_> {
    fn problem(&mut self, at: Marker, key: &str, value: &str, message: impl Into<String>) {
        self.problems.push(Problem {
            file: self.file.to_owned(),
            line: at.line(),
            column: at.col() + 1,
            key: key.to_owned(),
            value: value.to_owned(),
            message: message.into(),
        });
    }

    fn syntax(&mut self, e: &saphyr::ScanError) {
        let mut message = format!("yaml syntax error: {}", e.info());
        // `- *.example.com` is an alias and `- [2001:db8::1]:443` a flow list to YAML.
        let line = self.text.lines().nth(e.marker().line().saturating_sub(1));
        let item = line
            .and_then(|l| l.trim_start().strip_prefix("- "))
            .map(str::trim_start);
        if item.is_some_and(|i| i.starts_with(['*', '['])) {
            message.push_str(" (quote entries that start with '*' or '[': \"*.example.com\")");
        }
        self.problem(*e.marker(), "", "", message);
    }

    fn documents(&mut self, docs: &[MarkedYaml<'_>]) -> PolicyFile {
        if let Some(extra) = docs.get(1) {
            let message = "a policy file holds one yaml document (remove the '---')";
            self.problem(extra.span.start, "", "", message);
        }
        let Some(doc) = docs.first() else {
            return PolicyFile::default();
        };
        let doc = untag(doc);
        match &doc.data {
            YamlData::Mapping(map) => {
                let mut policy = PolicyFile::default();
                for (k, v) in map {
                    self.entry(k, v, &mut policy);
                }
                policy
            }
            _ if is_null(doc) => PolicyFile::default(),
            _ => {
                let message = format!(
                    "the policy file must be a mapping of keys ({})",
                    KEYS.join(", ")
                );
                self.problem(doc.span.start, "", "", message);
                PolicyFile::default()
            }
        }
    }

    fn entry(&mut self, k: &MarkedYaml<'_>, v: &MarkedYaml<'_>, policy: &mut PolicyFile) {
        let Some(key) = scalar(k) else {
            self.problem(k.span.start, "", "", "keys must be plain names");
            return;
        };
        match key {
            "mode" => policy.mode = self.mode(v),
            "allowed-endpoints" => {
                policy.allowed_endpoints = self.endpoints(v, "allowed-endpoints");
            }
            "tls-inspection" => policy.tls_inspection = self.boolean(v, "tls-inspection"),
            "no-inspect" => policy.no_inspect = self.endpoints(v, "no-inspect"),
            "allowed-urls" => policy.allowed_urls = self.url_rules(v),
            "secret-env" => policy.secret_env = self.names(v, "secret-env"),
            "secret-audiences" => policy.secret_audiences = self.audiences(v),
            "upload-budget" => policy.upload_budget = self.size(v, "upload-budget"),
            "file-monitoring" => policy.file_monitoring = Some(self.file_monitoring(v)),
            _ => {
                let message = format!("unknown key; expected one of: {}", KEYS.join(", "));
                self.problem(k.span.start, key, "", message);
            }
        }
    }

    /// `file-monitoring:` with `ignore:` and `expected-writers:`, each a list of strings.
    fn file_monitoring(&mut self, v: &MarkedYaml<'_>) -> crate::files::Rules {
        let mut rules = crate::files::Rules::default();
        let v = untag(v);
        if is_null(v) {
            return rules;
        }
        let YamlData::Mapping(map) = &v.data else {
            let message = "expected a mapping with ignore and/or expected-writers";
            self.problem(v.span.start, "file-monitoring", "", message);
            return rules;
        };
        for (k, list) in map {
            match scalar(k) {
                Some("ignore") => rules.ignore = self.strings(list, "file-monitoring.ignore"),
                Some("expected-writers") => {
                    rules.expected = self.strings(list, "file-monitoring.expected-writers");
                }
                other => {
                    let message = format!(
                        "unknown key; expected one of: {}",
                        FILE_MONITORING_KEYS.join(", ")
                    );
                    let key = format!("file-monitoring.{}", other.unwrap_or("?"));
                    self.problem(k.span.start, &key, "", message);
                }
            }
        }
        rules
    }

    /// A list of strings each parsed as `T`; every bad one is a problem at its own line.
    fn strings<T: std::str::FromStr>(&mut self, v: &MarkedYaml<'_>, key: &str) -> Vec<T>
    where
        T::Err: fmt::Display,
    {
        let v = untag(v);
        if is_null(v) {
            return Vec::new();
        }
        let YamlData::Sequence(items) = &v.data else {
            self.problem(v.span.start, key, "", "expected a list of strings");
            return Vec::new();
        };
        let mut good = Vec::with_capacity(items.len());
        for item in items.iter().map(untag) {
            let Some(text) = scalar(item) else {
                self.problem(item.span.start, key, "", "expected a string (quote it)");
                continue;
            };
            match text.parse::<T>() {
                Ok(t) => good.push(t),
                Err(e) => self.problem(item.span.start, key, text, e.to_string()),
            }
        }
        good
    }

    fn mode(&mut self, v: &MarkedYaml<'_>) -> Option<Mode> {
        let text = scalar(v).unwrap_or_default();
        match text.parse() {
            Ok(mode) => Some(mode),
            Err(_) => {
                self.problem(v.span.start, "mode", text, "expected audit or block");
                None
            }
        }
    }

    fn boolean(&mut self, v: &MarkedYaml<'_>, key: &str) -> Option<bool> {
        let text = scalar(untag(v)).unwrap_or_default();
        match text {
            "true" => Some(true),
            "false" => Some(false),
            _ => {
                self.problem(v.span.start, key, text, "expected true or false");
                None
            }
        }
    }

    fn endpoints(&mut self, v: &MarkedYaml<'_>, key: &'static str) -> Option<Vec<Endpoint>> {
        let key_name = key;
        let v = untag(v);
        if is_null(v) {
            return Some(Vec::new());
        }
        if let Some(text) = scalar(v) {
            return self.endpoint_string(v.span, text, key_name);
        }
        let YamlData::Sequence(items) = &v.data else {
            self.problem(
                v.span.start,
                key_name,
                "",
                "expected a list of entries or one string of entries",
            );
            return None;
        };
        let mut good = Vec::with_capacity(items.len());
        for item in items.iter().map(untag) {
            let Some(text) = scalar(item) else {
                let message =
                    "expected a string (quote entries that start with '[': \"[2001:db8::1]:443\")";
                self.problem(item.span.start, key_name, "", message);
                continue;
            };
            match text.parse::<Endpoint>() {
                Ok(e) => good.push(e),
                Err(e) => self.problem(item.span.start, key_name, text, e.reason.to_string()),
            }
        }
        (good.len() == items.len()).then_some(good)
    }

    /// One string in the list syntax: each bad entry is reported where it is found in the source
    /// (or at the string's start, when escapes or folding make it impossible to find).
    fn endpoint_string(&mut self, span: Span, text: &str, key: &str) -> Option<Vec<Endpoint>> {
        match parse_endpoint_list(text) {
            Ok(list) => Some(list),
            Err(errors) => {
                let errors = errors.into_iter().map(|e| (e.entry, e.reason.to_string()));
                self.entry_errors(span, key, errors);
                None
            }
        }
    }

    /// Reports each `(entry, message)` of a string value where the entry is in the source.
    fn entry_errors(
        &mut self,
        span: Span,
        key: &str,
        errors: impl IntoIterator<Item = (String, String)>,
    ) {
        let source = char_slice(self.text, span.start.index(), span.end.index());
        let mut cursor = 0;
        for (entry, message) in errors {
            let at = match source[cursor..].find(&entry) {
                Some(found) => {
                    let at = advance(span.start, &source[..cursor + found]);
                    cursor += found + entry.len();
                    at
                }
                None => span.start,
            };
            self.problem(at, key, &entry, message);
        }
    }

    /// `allowed-urls`: a list of URL rules, or one string of them (separated by commas or
    /// newlines: a space separates a method from its URL).
    fn url_rules(&mut self, v: &MarkedYaml<'_>) -> Option<Vec<UrlRule>> {
        const KEY: &str = "allowed-urls";
        let v = untag(v);
        if is_null(v) {
            return Some(Vec::new());
        }
        if let Some(text) = scalar(v) {
            return match parse_url_rule_list(text) {
                Ok(rules) => Some(rules),
                Err(errors) => {
                    let errors = errors.into_iter().map(|e| (e.entry, e.reason.to_string()));
                    self.entry_errors(v.span, KEY, errors);
                    None
                }
            };
        }
        let items = self.sequence(v, KEY)?;
        let mut good = Vec::with_capacity(items.len());
        for item in items.iter().map(untag) {
            let Some(text) = scalar(item) else {
                self.problem(
                    item.span.start,
                    KEY,
                    "",
                    "expected a string such as \
                    \"GET https://github.com/my-org/**\"",
                );
                continue;
            };
            match text.parse::<UrlRule>() {
                Ok(r) => good.push(r),
                Err(e) => self.problem(item.span.start, KEY, text, e.reason.to_string()),
            }
        }
        (good.len() == items.len()).then_some(good)
    }

    /// The items of a list value, or a problem.
    fn sequence<'n, 'a>(
        &mut self,
        v: &'n MarkedYaml<'a>,
        key: &str,
    ) -> Option<&'n Vec<MarkedYaml<'a>>> {
        match &v.data {
            YamlData::Sequence(items) => Some(items),
            _ => {
                let message = "expected a list of entries or one string of entries";
                self.problem(v.span.start, key, "", message);
                None
            }
        }
    }

    /// `secret-env`: environment variable names, as a list or one string (whitespace or commas).
    fn names(&mut self, v: &MarkedYaml<'_>, key: &str) -> Option<Vec<String>> {
        let v = untag(v);
        if is_null(v) {
            return Some(Vec::new());
        }
        let mut found: Vec<(&str, Marker)> = Vec::new();
        if let Some(text) = scalar(v) {
            found.extend(
                text.split(|c: char| c == ',' || c.is_whitespace())
                    .filter(|n| !n.is_empty())
                    .map(|n| (n, v.span.start)),
            );
        } else {
            for item in self.sequence(v, key)?.iter().map(untag) {
                match scalar(item) {
                    Some(text) => found.push((text, item.span.start)),
                    None => self.problem(item.span.start, key, "", "expected a variable name"),
                }
            }
        }
        let mut good = Vec::new();
        for (name, at) in found {
            if is_env_name(name) {
                good.push(name.to_string());
            } else {
                let message = "not an environment variable name (letters, digits and '_', not \
                               starting with a digit)";
                self.problem(at, key, name, message);
            }
        }
        Some(good)
    }

    /// `secret-audiences`: a mapping of secret names to host lists.
    fn audiences(&mut self, v: &MarkedYaml<'_>) -> Option<Vec<(String, Vec<Endpoint>)>> {
        const KEY: &str = "secret-audiences";
        let v = untag(v);
        if is_null(v) {
            return Some(Vec::new());
        }
        let YamlData::Mapping(map) = &v.data else {
            let message = "expected a mapping of secret names to lists of hosts";
            self.problem(v.span.start, KEY, "", message);
            return None;
        };
        let mut good = Vec::new();
        let mut bad = false;
        for (k, hosts) in map {
            let Some(name) = scalar(k).filter(|n| is_env_name(n)) else {
                let message = "expected a secret's name (letters, digits and '_')";
                self.problem(k.span.start, KEY, scalar(k).unwrap_or_default(), message);
                bad = true;
                continue;
            };
            match self.endpoints(hosts, KEY) {
                Some(list) => good.push((name.to_string(), list)),
                None => bad = true,
            }
        }
        (!bad).then_some(good)
    }

    /// A size: bytes, or a number with `KB`, `KiB`, `MB`, `MiB`, `GB` or `GiB`.
    fn size(&mut self, v: &MarkedYaml<'_>, key: &str) -> Option<u64> {
        let text = scalar(untag(v)).unwrap_or_default();
        match parse_size(text) {
            Ok(n) => Some(n),
            Err(message) => {
                self.problem(v.span.start, key, text, message);
                None
            }
        }
    }
}

/// Whether `name` is a portable environment variable name.
pub fn is_env_name(name: &str) -> bool {
    name.bytes().next().is_some_and(|b| !b.is_ascii_digit())
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// Parses a size: a whole number of bytes, optionally followed (with or without a space) by
/// `B`, `KB`, `MB`, `GB` (powers of 1000) or `KiB`, `MiB`, `GiB` (powers of 1024).
pub fn parse_size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let digits = text.bytes().take_while(u8::is_ascii_digit).count();
    let (number, unit) = text.split_at(digits);
    let factor: u64 = match unit.trim() {
        "" | "B" => 1,
        "KB" | "kB" => 1000,
        "KiB" => 1 << 10,
        "MB" => 1_000_000,
        "MiB" => 1 << 20,
        "GB" => 1_000_000_000,
        "GiB" => 1 << 30,
        _ => {
            return Err(
                "expected a size such as 50MiB (units B, KB, KiB, MB, MiB, GB, GiB)".into(),
            );
        }
    };
    number
        .parse::<u64>()
        .ok()
        .filter(|&n| n > 0)
        .and_then(|n| n.checked_mul(factor))
        .ok_or_else(|| "expected a size above zero such as 50MiB".into())
}

/// A node without its tag (`!!str x` is `x`).
fn untag<'n, 'a>(node: &'n MarkedYaml<'a>) -> &'n MarkedYaml<'a> {
    match &node.data {
        YamlData::Tagged(_, inner) => untag(inner),
        _ => node,
    }
}

/// The text of a scalar node as written (after YAML unquoting), or `None` for a collection.
fn scalar<'n>(node: &'n MarkedYaml<'_>) -> Option<&'n str> {
    match &untag(node).data {
        YamlData::Representation(text, _, _) => Some(text),
        _ => None,
    }
}

/// An empty value, `~` or `null` (unquoted), or an empty document.
fn is_null(node: &MarkedYaml<'_>) -> bool {
    match &node.data {
        YamlData::Representation(text, ScalarStyle::Plain, _) => {
            matches!(&**text, "" | "~" | "null" | "Null" | "NULL")
        }
        YamlData::BadValue => true,
        _ => false,
    }
}

/// Part of `text` between two character indexes (saphyr's markers count characters).
fn char_slice(text: &str, start: usize, end: usize) -> &str {
    let byte = |i: usize| text.char_indices().nth(i).map_or(text.len(), |(b, _)| b);
    let (start, end) = (byte(start), byte(end));
    text.get(start..end.max(start)).unwrap_or_default()
}

/// The marker `skipped` characters past `from`, counting lines.
fn advance(from: Marker, skipped: &str) -> Marker {
    let chars = skipped.chars().count();
    match skipped.rfind('\n') {
        Some(nl) => Marker::new(
            from.index() + chars,
            from.line() + skipped.matches('\n').count(),
            skipped[nl + 1..].chars().count(),
        ),
        None => Marker::new(from.index() + chars, from.line(), from.col() + chars),
    }
}

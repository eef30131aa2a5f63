//! What the policy decided about a connection, as its audit record says it.
//!
//! Every policy test ends with the same questions about records: was it `allowed`, and by which
//! rule, or `blocked`/`audited`, with a reason and no rule? The answers are checked against the
//! documented schema (docs/audit-log.md: `decision`, `rule`, `reason`), and a failure shows the
//! whole run, like every other assertion on a [`RunOutput`].

use serde_json::Value;

use crate::RunOutput;

impl RunOutput {
    /// Panics, showing the whole run, unless `record` says `allowed` by `rule` (in the
    /// canonical form records use, e.g. `tls.example`, `[2001:db8::/32]:443`) and gives a
    /// reason.
    #[track_caller]
    pub fn assert_allowed(&self, record: &Value, rule: &str) {
        assert_eq!(
            (&record["decision"], &record["rule"]),
            (&Value::from("allowed"), &Value::from(rule)),
            "expected allowed by {rule}: {record}\n{self}"
        );
        assert!(
            record["reason"].as_str().is_some_and(|r| !r.is_empty()),
            "an allowed record says why: {record}\n{self}"
        );
    }

    /// Panics, showing the whole run, unless `record` says `decision` (`blocked` or `audited`),
    /// names no rule (none allowed it) and gives a reason.
    #[track_caller]
    pub fn assert_not_allowed(&self, record: &Value, decision: &str) {
        assert_eq!(
            record["decision"], decision,
            "expected {decision}: {record}\n{self}"
        );
        assert!(
            record.get("rule").is_none(),
            "no rule allowed it, so the record names none: {record}\n{self}"
        );
        assert!(
            record["reason"].as_str().is_some_and(|r| !r.is_empty()),
            "a {decision} record says why: {record}\n{self}"
        );
    }
}

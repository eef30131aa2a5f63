//! Where the job's secrets come from: environment variables named by `--secret-env` (or the
//! policy's `secret-env`), and a secrets file (`--secret-file`): a JSON object of names to string
//! values, as `${{ toJSON(secrets) }}` gives, or `NAME=VALUE` lines.
//!
//! An unset or empty variable or value is skipped with a warning, not an error: a workflow run
//! from a fork gets empty secrets, and Warden must still start. A file that cannot be read or
//! parsed is an error naming the file and line; no error ever quotes a value.

use std::path::Path;

use super::Secret;

/// The secrets named by `names`, read from `env` (a lookup, so tests need not touch the
/// process's environment). Unset or empty ones are skipped with a warning.
pub fn from_env(names: &[String], env: impl Fn(&str) -> Option<String>) -> Vec<Secret> {
    let mut secrets = Vec::new();
    for name in names {
        match env(name) {
            Some(value) if !value.is_empty() => secrets.push(Secret::new(name.clone(), value)),
            _ => eprintln!("warden: --secret-env {name}: not set or empty; not looked for"),
        }
    }
    secrets
}

/// The secrets in the file at `path`; the error names the file (and line) and what is wrong.
pub fn from_file(path: &Path) -> Result<Vec<Secret>, String> {
    let shown = path.display();
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("--secret-file {shown}: cannot read it: {e}"))?;
    parse(&text).map_err(|e| format!("--secret-file {shown}: {e}"))
}

/// Parses a secrets file's text (see the module documentation).
pub fn parse(text: &str) -> Result<Vec<Secret>, String> {
    if text.trim_start().starts_with('{') {
        return json(text);
    }
    let mut secrets = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() || line.trim_start().starts_with('#') {
            continue;
        }
        let Some((name, value)) = line.split_once('=') else {
            return Err(format!(
                "line {}: expected NAME=VALUE (or a JSON object for values that span lines)",
                i + 1
            ));
        };
        let name = name.trim();
        let name = name.strip_prefix("export ").map_or(name, str::trim);
        if !crate::policy::file::is_env_name(name) {
            return Err(format!("line {}: {name:?} is not a secret name", i + 1));
        }
        if !value.is_empty() {
            secrets.push(Secret::new(name, value));
        }
    }
    Ok(secrets)
}

fn json(text: &str) -> Result<Vec<Secret>, String> {
    let value: serde_json::Value = serde_json::from_str(text).map_err(|e| {
        // serde_json's message can quote the text around the error: keep only the position.
        format!("not valid JSON at line {} column {}", e.line(), e.column())
    })?;
    let serde_json::Value::Object(map) = value else {
        return Err("expected a JSON object of names to values".into());
    };
    let mut secrets = Vec::new();
    for (name, value) in map {
        match value {
            serde_json::Value::String(s) if s.is_empty() => {}
            serde_json::Value::String(s) => secrets.push(Secret::new(name, s)),
            serde_json::Value::Null => {}
            _ => return Err(format!("{name:?}: expected a string value")),
        }
    }
    Ok(secrets)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(secrets: &[Secret]) -> Vec<&str> {
        secrets.iter().map(|s| s.name.as_str()).collect()
    }

    #[test]
    fn json_objects_as_workflows_write_them() {
        let s = parse(
            r#"{"github_token": "ghs_abc", "DEPLOY": "line1\nline2", "EMPTY": "", "N": null}"#,
        )
        .unwrap();
        assert_eq!(names(&s), ["DEPLOY", "github_token"]);
        assert_eq!(s[0].value, b"line1\nline2");
    }

    #[test]
    fn lines_with_comments_and_export() {
        let s = parse("# comment\n\nA=1=2\nexport B = x \nC=\n").unwrap();
        assert_eq!(names(&s), ["A", "B"]);
        assert_eq!(s[0].value, b"1=2");
        assert_eq!(s[1].value, b" x ");
    }

    #[test]
    fn errors_name_the_line_never_the_value() {
        let e = parse("A=1\nsupersecretvalue\n").unwrap_err();
        assert!(e.starts_with("line 2:"), "{e}");
        assert!(!e.contains("supersecret"), "{e}");
        let e = parse(r#"{"A": "supersecret", "B": 3}"#).unwrap_err();
        assert!(e.contains("\"B\""), "{e}");
        let e = parse(r#"{"A": "supersecret""#).unwrap_err();
        assert!(!e.contains("supersecret"), "{e}");
        assert!(parse("[1]").is_err());
    }

    #[test]
    fn env_skips_unset_and_empty() {
        let s = from_env(&["A".into(), "B".into(), "C".into()], |n| match n {
            "A" => Some("value-a".into()),
            "B" => Some(String::new()),
            _ => None,
        });
        assert_eq!(names(&s), ["A"]);
    }
}

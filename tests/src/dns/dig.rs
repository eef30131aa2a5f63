//! Reading what `dig` printed, for [`clients::dig`](crate::clients::dig)'s full output
//! (`+noall +comments +answer`): the response code, the header flags and the answer records.

/// One resource record from dig's answer section.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Answer {
    /// The owner name, without the trailing dot.
    pub name: String,
    /// The TTL, in seconds.
    pub ttl: u32,
    /// The type, as dig prints it: `A`, `CNAME`, `HTTPS`, …
    pub rtype: String,
    /// The rest of the line as dig presents it, e.g. `1 . alpn="h2" ech=AEj+DQBE…`.
    pub data: String,
}

/// What one full `dig` run printed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DigOutput {
    /// The response code (`NOERROR`, `NXDOMAIN`, `REFUSED`, …); `None` when no answer came.
    pub status: Option<String>,
    /// The header flags (`qr`, `aa`, `rd`, `ra`, `tc`, …).
    pub flags: Vec<String>,
    /// The answer section, in order.
    pub answers: Vec<Answer>,
}

impl DigOutput {
    /// Parses dig's output; lines it does not know are skipped.
    pub fn parse(stdout: &str) -> DigOutput {
        let mut out = DigOutput::default();
        for line in stdout.lines().map(str::trim) {
            if let Some((_, status)) = line.split_once("status: ") {
                out.status = status.split(',').next().map(str::to_owned);
            } else if let Some(flags) = line.strip_prefix(";; flags:") {
                let flags = flags.split(';').next().unwrap_or_default();
                out.flags = flags.split_whitespace().map(str::to_owned).collect();
            } else if !line.starts_with(';')
                && let Some(answer) = parse_answer(line)
            {
                out.answers.push(answer);
            }
        }
        out
    }

    /// The data of every answer of type `rtype` (case-insensitive), in order.
    pub fn data_of(&self, rtype: &str) -> Vec<&str> {
        self.answers
            .iter()
            .filter(|a| a.rtype.eq_ignore_ascii_case(rtype))
            .map(|a| a.data.as_str())
            .collect()
    }

    /// Whether the header has flag `flag` (`aa`, `tc`, …).
    pub fn has_flag(&self, flag: &str) -> bool {
        self.flags.iter().any(|f| f == flag)
    }
}

fn parse_answer(line: &str) -> Option<Answer> {
    let mut words = line.split_whitespace();
    let name = words.next()?;
    let ttl = words.next()?.parse().ok()?;
    // `CLASS1` rather than `IN` with `+unknownformat`.
    let class = words.next()?;
    if !matches!(class, "IN" | "CH" | "HS") && !class.starts_with("CLASS") {
        return None;
    }
    let rtype = words.next()?.to_owned();
    Some(Answer {
        name: name.strip_suffix('.').unwrap_or(name).to_owned(),
        ttl,
        rtype,
        data: words.collect::<Vec<_>>().join(" "),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_status_flags_and_answers() {
        let out = DigOutput::parse(
            ";; Got answer:
;; ->>HEADER<<- opcode: QUERY, status: NOERROR, id: 1625
;; flags: qr aa rd ra; QUERY: 1, ANSWER: 2, AUTHORITY: 0, ADDITIONAL: 1

;; OPT PSEUDOSECTION:
; EDNS: version: 0, flags:; udp: 1232
;; ANSWER SECTION:
alias.test.example.\t300\tIN\tCNAME\ta.test.example.
a.test.example.\t\t300\tIN\tHTTPS\t1 . alpn=\"h2\" ech=AAEC
a.test.example.\t\t300\tCLASS1\tTYPE65\t\\# 3 000100 00
",
        );
        assert_eq!(out.status.as_deref(), Some("NOERROR"));
        assert!(out.has_flag("aa") && !out.has_flag("tc"));
        assert_eq!(out.answers.len(), 3);
        assert_eq!(out.data_of("TYPE65"), [r"\# 3 000100 00"]);
        assert_eq!(out.answers[0].name, "alias.test.example");
        assert_eq!(out.data_of("cname"), ["a.test.example."]);
        assert_eq!(out.data_of("HTTPS"), ["1 . alpn=\"h2\" ech=AAEC"]);
    }

    #[test]
    fn no_answer_has_no_status() {
        let out = DigOutput::parse(";; no servers could be reached\n");
        assert_eq!(out, DigOutput::default());
    }
}

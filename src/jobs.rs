//! The questions of an inquerytest run: one per address operand, and with
//! the operand `-` one per line of stdin (`address [ipaddr]`).
//!
//! The IP address rule is the C tool's: for a RELAY query the last operand
//! is the IP address; for the other types a last operand that is an IP
//! address is taken as the (unused) ipaddr.

use std::ffi::OsString;
use std::io::BufRead;
use std::net::IpAddr;
use std::os::unix::ffi::OsStringExt;

use crate::load::Job;
use crate::protocol::QueryType;

#[derive(Debug, thiserror::Error)]
pub enum JobsError {
    #[error("reading stdin: {0}")]
    Read(#[from] std::io::Error),
    /// A RELAY question from stdin without an IP address (on its line or
    /// as the last operand); the C tool's usage error.
    #[error("ipaddr must be specified for RELAY query")]
    NoIp,
}

/// The questions of `operands`; `stdin` is read (to its end) for the
/// operand `-`.
pub fn from_operands(
    qtype: QueryType,
    operands: &[OsString],
    stdin: &mut dyn BufRead,
) -> Result<Vec<Job>, JobsError> {
    let mut operands = operands.to_vec();
    let mut ip = Vec::new();
    let last_is_ip = operands.len() >= 2
        && operands
            .last()
            .and_then(|o| o.to_str())
            .is_some_and(|s| s.parse::<IpAddr>().is_ok());
    if (qtype == QueryType::Relay && operands.len() >= 2) || last_is_ip {
        ip = operands
            .pop()
            .map(OsStringExt::into_vec)
            .unwrap_or_default();
    }
    let mut jobs = Vec::new();
    for op in operands {
        if op != "-" {
            jobs.push(Job {
                qtype,
                address: op.into_vec(),
                ip: ip.clone(),
            });
            continue;
        }
        for line in stdin.split(b'\n') {
            let line = line?;
            let line = line.strip_suffix(b"\r").unwrap_or(&line);
            let mut fields = line
                .split(|b| b.is_ascii_whitespace())
                .filter(|f| !f.is_empty());
            let Some(address) = fields.next() else {
                continue;
            };
            let line_ip = fields.next().map_or_else(|| ip.clone(), <[u8]>::to_vec);
            if qtype == QueryType::Relay && line_ip.is_empty() {
                return Err(JobsError::NoIp);
            }
            jobs.push(Job {
                qtype,
                address: address.to_vec(),
                ip: line_ip,
            });
        }
    }
    Ok(jobs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jobs(qtype: QueryType, operands: &[&str], stdin: &str) -> Result<Vec<Job>, JobsError> {
        let operands: Vec<OsString> = operands.iter().map(OsString::from).collect();
        from_operands(qtype, &operands, &mut stdin.as_bytes())
    }

    fn pairs(jobs: &[Job]) -> Vec<(String, String)> {
        jobs.iter()
            .map(|j| {
                (
                    String::from_utf8_lossy(&j.address).into_owned(),
                    String::from_utf8_lossy(&j.ip).into_owned(),
                )
            })
            .collect()
    }

    #[test]
    fn operands_stdin_and_the_ip_rule() {
        let p = |a: &str, b: &str| (a.to_string(), b.to_string());
        let j = jobs(
            QueryType::Relay,
            &["a@x", "-", "10.0.0.1"],
            "b@x\r\n\n  c@x 10.0.0.2\n",
        )
        .unwrap();
        assert_eq!(
            pairs(&j),
            [
                p("a@x", "10.0.0.1"),
                p("b@x", "10.0.0.1"),
                p("c@x", "10.0.0.2")
            ]
        );
        let j = jobs(QueryType::User, &["a@x", "b@x"], "").unwrap();
        assert_eq!(pairs(&j), [p("a@x", ""), p("b@x", "")]);
        let j = jobs(QueryType::User, &["a@x", "::1"], "").unwrap();
        assert_eq!(pairs(&j), [p("a@x", "::1")]);
        assert!(matches!(
            jobs(QueryType::Relay, &["-"], "a@x\n"),
            Err(JobsError::NoIp)
        ));
    }
}

//! Built-in allowances: what the CI runner itself needs, allowed even in block mode.
//!
//! A GitHub-hosted runner's agent talks to GitHub's Actions service, uploads logs, caches and
//! artifacts to GitHub's results storage, and asks the cloud's metadata and agent endpoints for
//! its configuration. A block-mode job that refused those would break the runner, not the
//! attacker. The list is short and exact on purpose: `github.com` and `api.github.com` are not in
//! it (checkout and the API are the job's own business and must be allowed explicitly), and
//! storage is named by GitHub's own accounts, never `*.blob.core.windows.net`, which any Azure
//! customer can receive data on. Records allowed by these carry the flag `builtin`. Users see
//! the list in `docs/policy.md`; `--no-builtin` turns it off.

use super::Endpoint;

/// The entries, in the endpoint syntax.
pub const ENTRIES: &[&str] = &[
    // Actions service: pipelines, broker, results-receiver, token (OIDC), pkg (runner downloads).
    "*.actions.githubusercontent.com",
    // GitHub's results storage accounts (logs, job summaries, caches, artifacts).
    "productionresultssa0.blob.core.windows.net",
    "productionresultssa1.blob.core.windows.net",
    "productionresultssa2.blob.core.windows.net",
    "productionresultssa3.blob.core.windows.net",
    "productionresultssa4.blob.core.windows.net",
    "productionresultssa5.blob.core.windows.net",
    "productionresultssa6.blob.core.windows.net",
    "productionresultssa7.blob.core.windows.net",
    "productionresultssa8.blob.core.windows.net",
    "productionresultssa9.blob.core.windows.net",
    "productionresultssa10.blob.core.windows.net",
    "productionresultssa11.blob.core.windows.net",
    "productionresultssa12.blob.core.windows.net",
    "productionresultssa13.blob.core.windows.net",
    "productionresultssa14.blob.core.windows.net",
    "productionresultssa15.blob.core.windows.net",
    "productionresultssa16.blob.core.windows.net",
    "productionresultssa17.blob.core.windows.net",
    "productionresultssa18.blob.core.windows.net",
    "productionresultssa19.blob.core.windows.net",
    // Cloud instance metadata (Azure IMDS; the same address on AWS and GCP).
    "169.254.169.254:80",
    // Azure WireServer and its guest-agent port: the VM agent of GitHub-hosted runners.
    "168.63.129.16:80",
    "168.63.129.16:32526",
];

/// The built-in allowances, parsed.
pub fn endpoints() -> Vec<Endpoint> {
    ENTRIES.iter().filter_map(|e| e.parse().ok()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_entry_parses() {
        for entry in ENTRIES {
            assert!(entry.parse::<Endpoint>().is_ok(), "{entry}");
        }
        assert_eq!(endpoints().len(), ENTRIES.len());
    }
}

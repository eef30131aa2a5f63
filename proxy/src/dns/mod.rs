//! Warden's DNS layer (issue #5): every lookup of the job goes through here.
//!
//! The eBPF hooks send the job's port-53 traffic (UDP and TCP, IPv4 and IPv6, to any resolver
//! address, loopback stubs included) to a resolver inside `warden`. Each query is judged, forwarded
//! to the machine's real resolver, recorded as a `dns` record, and its answers remembered so a
//! connection to an address can be matched to the name it was resolved from.

pub mod doh;
pub mod tunnel;

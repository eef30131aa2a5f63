//! Fuzzes the ClientHello parser: it must never panic, `sniff` must agree with
//! it, and an answer given for a prefix must not change when the rest arrives.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sniff::{Parse, Sniffed};

fuzz_target!(|data: &[u8]| {
    let full = sniff::tls::parse_client_hello(data);
    if full != Parse::NotThis {
        assert_eq!(sniff::sniff(data), full.clone().map(Sniffed::Tls));
    }
    let prefix = data.get(..data.len() / 2).unwrap_or_default();
    let early = sniff::tls::parse_client_hello(prefix);
    assert!(early == Parse::NeedMore || early == full);
});

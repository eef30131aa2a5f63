//! Fuzzes the HTTP/1.x request head parser: it must never panic, `sniff` must
//! agree with it, and an answer given for a prefix must not change when the
//! rest arrives.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sniff::{Parse, Sniffed};

fuzz_target!(|data: &[u8]| {
    let full = sniff::http::parse_request_head(data);
    if sniff::tls::parse_client_hello(data) == Parse::NotThis {
        assert_eq!(sniff::sniff(data), full.clone().map(Sniffed::Http));
    }
    if let Parse::Done(head) = &full {
        let _ = head.host_without_port();
    }
    let prefix = data.get(..data.len() / 2).unwrap_or_default();
    let early = sniff::http::parse_request_head(prefix);
    assert!(early == Parse::NeedMore || early == full);
});

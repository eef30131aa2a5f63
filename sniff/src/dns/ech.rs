//! Removes Encrypted ClientHello configurations from HTTPS and SVCB records.
//!
//! A TLS client learns a server's ECH configuration from the `ech` SvcParam (key 5,
//! draft-ietf-tls-svcb-ech) of its HTTPS or SVCB records (RFC 9460). With it, the client puts
//! the real server name in the encrypted inner ClientHello and only a shared public name in
//! the clear, so Warden could no longer tell which server a connection is for. Without it, the
//! client sends a plain ClientHello (or a GREASE ECH extension that hides nothing,
//! draft-ietf-tls-esni), and everything else in the record (ALPN, port, address hints) still
//! works.

use hickory_proto::op::Message;
use hickory_proto::rr::RData;
use hickory_proto::rr::rdata::HTTPS;
use hickory_proto::rr::rdata::svcb::{Mandatory, SVCB, SvcParamKey, SvcParamValue};

/// Removes the `ech` SvcParam from every HTTPS and SVCB record in every section of `message`;
/// returns whether any was removed.
///
/// The answer and additional sections are where resolvers put these records; the authority
/// section is cleaned too, since a client may read it and it costs nothing.
pub(super) fn strip(message: &mut Message) -> bool {
    let mut stripped = false;
    for record in message.answers_mut() {
        stripped |= strip_rdata(record.data_mut());
    }
    for record in message.name_servers_mut() {
        stripped |= strip_rdata(record.data_mut());
    }
    for record in message.additionals_mut() {
        stripped |= strip_rdata(record.data_mut());
    }
    stripped
}

fn strip_rdata(data: &mut RData) -> bool {
    let without = match data {
        RData::HTTPS(HTTPS(svcb)) => without_ech(svcb).map(|svcb| RData::HTTPS(HTTPS(svcb))),
        RData::SVCB(svcb) => without_ech(svcb).map(RData::SVCB),
        _ => None,
    };
    match without {
        Some(new) => {
            *data = new;
            true
        }
        None => false,
    }
}

/// `svcb` without its `ech` param, or `None` if it had none. Key 5 also leaves the `mandatory`
/// list, which may only name keys that are present (RFC 9460 §8); an emptied list goes too,
/// since it must name at least one key.
fn without_ech(svcb: &SVCB) -> Option<SVCB> {
    let has_ech = svcb
        .svc_params()
        .iter()
        .any(|(key, _)| *key == SvcParamKey::EchConfigList);
    if !has_ech {
        return None;
    }
    let params = svcb
        .svc_params()
        .iter()
        .filter(|(key, _)| *key != SvcParamKey::EchConfigList)
        .filter_map(|(key, value)| match value {
            SvcParamValue::Mandatory(Mandatory(keys)) => {
                let keys: Vec<SvcParamKey> = keys
                    .iter()
                    .copied()
                    .filter(|key| *key != SvcParamKey::EchConfigList)
                    .collect();
                (!keys.is_empty()).then_some((*key, SvcParamValue::Mandatory(Mandatory(keys))))
            }
            other => Some((*key, other.clone())),
        })
        .collect();
    Some(SVCB::new(
        svcb.svc_priority(),
        svcb.target_name().clone(),
        params,
    ))
}

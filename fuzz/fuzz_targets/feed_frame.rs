//! Any bytes as a feed frame, a recording, or a portfolio update: errors are fine, panics,
//! hangs and unbounded allocations are not. The hot decoder is also checked against prost.
#![no_main]

use std::collections::BTreeMap;

use libfuzzer_sys::fuzz_target;
use upstox_feed::Frame;

/// Ticks by key, the last occurrence winning (map semantics), as Debug text (NaN-safe).
fn canonical(f: Frame) -> String {
    match f {
        Frame::Ticks(t) => format!("{:?}", t.into_iter().map(|t| (t.instrument_key.clone(), t)).collect::<BTreeMap<_, _>>()),
        other => format!("{other:?}"),
    }
}

fuzz_target!(|data: &[u8]| {
    let ours = upstox_feed::decode(data);
    let reference = upstox_feed::decode::decode_prost(data);
    assert_eq!(ours.is_ok(), reference.is_ok(), "the decoders disagree on validity");
    if let (Ok(a), Ok(b)) = (ours, reference) {
        assert_eq!(canonical(a), canonical(b), "the decoders disagree on content");
    }
    if let Ok(msg) = upstox_feed::decode::decode_wire(data) {
        let _ = upstox_proto::json::feed_response(&msg);
    }
    let _ = upstox_feed::recording::parse(data);
    let _ = upstox_feed::portfolio::parse_update(data);
});

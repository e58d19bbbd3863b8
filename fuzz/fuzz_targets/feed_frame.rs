//! Any bytes as a feed frame, a recording, or a portfolio update: errors are fine, panics,
//! hangs and unbounded allocations are not.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = upstox_feed::decode(data);
    if let Ok(msg) = upstox_feed::decode::decode_wire(data) {
        let _ = upstox_proto::json::feed_response(&msg);
    }
    let _ = upstox_feed::recording::parse(data);
    let _ = upstox_feed::portfolio::parse_update(data);
});

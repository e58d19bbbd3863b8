//! Any bytes as a client control frame, as the simulator reads it.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Some(c) = upstox_sim::feed::parse_control(data) {
        // Every key the server would then look at must parse or be refused, never panic.
        for k in &c.data.instrument_keys {
            let _ = k.parse::<upstox_types::InstrumentKey>();
        }
        if let Some(m) = c.data.mode.as_deref() {
            let _ = m.parse::<upstox_types::FeedMode>();
        }
    }
});

//! A loadgen call between the tests' switch and a phone, with no timings of its own:
//! the tests play its messages one by one, at times they choose.

use callwatch::loadgen::CallSpec;

/// The switch every test call goes through.
pub const SWITCH: &str = "10.1.0.10:5060";
/// The caller's number when a test does not care which.
pub const CUSTOMER: &str = "13812345678";

/// Call `call_id` from `customer` through [`SWITCH`] to the phone of extension `agent`
/// at `phone` (`ip:port`).
pub fn call_spec(call_id: String, agent: String, customer: &str, phone: &str) -> CallSpec {
    CallSpec {
        call_id,
        customer: customer.into(),
        agent,
        switch: SWITCH.parse().unwrap(),
        phone: phone.parse().unwrap(),
        trying_ms: 0,
        ring_ms: 0,
        talk_ms: 0,
    }
}

/// The `i`th of a numbered series of calls (`{prefix}-{i:05}@switch`), spread over 50
/// agents (8001-8050) whose phones are 10.1.9.1-50.
pub fn numbered_call(prefix: &str, i: usize) -> CallSpec {
    call_spec(
        format!("{prefix}-{i:05}@switch"),
        format!("{}", 8001 + (i % 50)),
        CUSTOMER,
        &format!("10.1.9.{}:5060", 1 + (i % 50)),
    )
}

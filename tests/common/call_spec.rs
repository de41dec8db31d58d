//! Loadgen calls for the tests: [`call_spec`] and [`numbered_call`] have no timings of
//! their own (the tests play the messages one by one, at times they choose);
//! [`spread_call`] gives each of thousands of concurrent calls addresses of its own.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

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

/// The `i`th of up to 62,500 concurrent calls, each between a switch and a phone
/// address of its own (10.3.x.y and 10.2.x.y), so that no two share a media address;
/// 99 agents (8001-8099), 50 ms to the 180, 2 s of ringing, a minute of talk.
pub fn spread_call(i: usize, call_id: String) -> CallSpec {
    let (hi, lo) = ((i / 250) as u8, (i % 250) as u8 + 1);
    CallSpec {
        call_id,
        customer: format!("1380013{i:04}"),
        agent: (8001 + (i % 99)).to_string(),
        switch: SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 3, hi, lo)), 5060),
        phone: SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 2, hi, lo)), 5060),
        trying_ms: 50,
        ring_ms: 2_000,
        talk_ms: 60_000,
    }
}

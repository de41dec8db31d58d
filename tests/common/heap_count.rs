//! What a `stats_alloc` region gained, for the memory tests (`leg_memory`,
//! `sink_memory`). Each of those binaries installs the counting allocator itself
//! (`#[global_allocator]`): a static here would count in every test binary.

use std::alloc::System;

use stats_alloc::Region;

/// Live heap bytes gained in the region. stats_alloc already counts a `realloc`'s growth
/// in `bytes_allocated` (and its shrinking in `bytes_deallocated`); `bytes_reallocated`
/// is the same change again, so it is not added.
pub fn net_bytes(r: &Region<'_, System>) -> i64 {
    let s = r.change();
    s.bytes_allocated as i64 - s.bytes_deallocated as i64
}

/// Allocations made in the region and not freed.
pub fn live_allocations(r: &Region<'_, System>) -> i64 {
    let s = r.change();
    s.allocations as i64 - s.deallocations as i64
}

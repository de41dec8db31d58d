//! The analyze JSON line's contract (SPEC §5): its fields in order, and those of a
//! `media` entry. The tests that check output against it share this one list.

/// The fields of the analyze JSON line, in the order of SPEC §5 (unknown values are
/// null, never absent).
pub const LEG_FIELDS: &[&str] = &[
    "leg_id",
    "call_id",
    "linked_call_id",
    "agent",
    "agent_id",
    "agent_name",
    "team",
    "direction",
    "customer",
    "invite_at",
    "ring_start_at",
    "answered_at",
    "ended_at",
    "ring_ms",
    "outcome",
    "hangup_by",
    "survey",
    "glare",
    "hold_ms",
    "holds",
    "media",
    "end_reason",
    "violations",
];

/// The fields of one `media` entry (SPEC §5 example).
pub const MEDIA_FIELDS: &[&str] = &[
    "ssrc",
    "from",
    "src",
    "dst",
    "codec",
    "packets",
    "expected",
    "lost",
    "loss_pct",
    "jitter_ms",
    "max_jitter_ms",
    "max_delta_ms",
    "mos",
];

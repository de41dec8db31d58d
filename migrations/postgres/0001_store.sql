-- callwatch store, PostgreSQL. Times are microseconds since the Unix epoch (UTC). The
-- SQLite set (../sqlite) has the same tables, columns and meaning.

-- Every ended agent leg (the analyze fields), one row per leg_id across capture nodes.
CREATE TABLE legs (
    leg_id               TEXT    PRIMARY KEY,
    call_id              TEXT    NOT NULL,
    linked_call_id       TEXT,
    agent                TEXT    NOT NULL,
    agent_id             TEXT    NOT NULL,
    agent_name           TEXT,
    team                 TEXT,
    direction            TEXT    NOT NULL,
    customer             TEXT,
    customer_is_internal BOOLEAN NOT NULL,
    invite_at            BIGINT  NOT NULL,
    ring_start_at        BIGINT,
    answered_at          BIGINT,
    ended_at             BIGINT,
    ring_ms              BIGINT,
    outcome              TEXT,
    hangup_by            TEXT    NOT NULL,
    survey               TEXT    NOT NULL,
    glare                BOOLEAN NOT NULL,
    hold_ms              BIGINT  NOT NULL,
    end_reason           TEXT,
    holds                TEXT    NOT NULL,  -- JSON array: start_at, end_at, by
    media                TEXT,              -- JSON array as in the analyze record; purged
    flagged              BOOLEAN NOT NULL,
    node                 TEXT    NOT NULL,
    stored_at            BIGINT  NOT NULL,
    purged_at            BIGINT
);
CREATE INDEX legs_invite_at ON legs (invite_at);
CREATE INDEX legs_flagged ON legs (flagged, invite_at);
CREATE INDEX legs_agent ON legs (agent_id, invite_at);
CREATE INDEX legs_call ON legs (call_id);

-- The rules a leg broke (at most one row per rule and leg).
CREATE TABLE violations (
    leg_id TEXT   NOT NULL REFERENCES legs (leg_id),
    rule   TEXT   NOT NULL,
    at     BIGINT NOT NULL,
    detail TEXT   NOT NULL,
    PRIMARY KEY (leg_id, rule)
);
CREATE INDEX violations_rule ON violations (rule);

-- The SIP messages of flagged legs, in capture order; purged by retention.
CREATE TABLE sip_messages (
    leg_id     TEXT    NOT NULL REFERENCES legs (leg_id),
    seq        BIGINT  NOT NULL,
    at         BIGINT  NOT NULL,
    src        TEXT    NOT NULL,
    dst        TEXT    NOT NULL,
    transport  TEXT    NOT NULL,
    first_line TEXT    NOT NULL,
    raw        BYTEA   NOT NULL,
    PRIMARY KEY (leg_id, seq)
);

-- The current verdict of each violation; points are frozen when it is given, so that a
-- later change of scorecard.points never rewrites a past quarter.
CREATE TABLE reviews (
    leg_id   TEXT   NOT NULL REFERENCES legs (leg_id),
    rule     TEXT   NOT NULL,
    verdict  TEXT   NOT NULL,
    reason   TEXT   NOT NULL,
    points   BIGINT NOT NULL,
    reviewer TEXT   NOT NULL,
    at       BIGINT NOT NULL,
    PRIMARY KEY (leg_id, rule)
);

-- Append-only: every verdict and every view of full customer numbers.
CREATE TABLE audit (
    id       BIGSERIAL PRIMARY KEY,
    at       BIGINT  NOT NULL,
    username TEXT    NOT NULL,
    action   TEXT    NOT NULL,
    leg_id   TEXT,
    rule     TEXT,
    verdict  TEXT,
    reason   TEXT,
    detail   TEXT
);
CREATE INDEX audit_leg ON audit (leg_id);
CREATE INDEX audit_at ON audit (at);

-- callwatch store, postgres: what the inspectors' list needs to stay fast with millions of
-- legs (examples/store_bench.rs measures it). The same in ../sqlite.

-- Violations of the leg without a verdict yet, kept by the writer and by each verdict:
-- the review queue (verdict=pending) reads it instead of probing every flagged leg.
ALTER TABLE legs ADD COLUMN pending BIGINT NOT NULL DEFAULT 0;
UPDATE legs SET pending = (SELECT COUNT(*) FROM violations v WHERE v.leg_id = legs.leg_id
    AND NOT EXISTS (SELECT 1 FROM reviews r WHERE r.leg_id = v.leg_id AND r.rule = v.rule))
WHERE flagged;

-- In the list's order (newest invite first, then leg_id), so a page is read off the
-- index and a count or a deep page does not touch the table.
DROP INDEX legs_flagged;
CREATE INDEX legs_flagged ON legs (flagged, invite_at DESC, leg_id);
CREATE INDEX legs_pending ON legs (flagged, invite_at DESC, leg_id) WHERE pending > 0;
CREATE INDEX legs_team ON legs (team, flagged, invite_at DESC, leg_id);
DROP INDEX legs_agent;
CREATE INDEX legs_agent ON legs (agent_id, flagged, invite_at DESC, leg_id);
CREATE INDEX legs_extension ON legs (agent, flagged, invite_at DESC, leg_id);
CREATE INDEX legs_linked_call ON legs (linked_call_id);
DROP INDEX violations_rule;
CREATE INDEX violations_rule ON violations (rule, leg_id);
CREATE INDEX reviews_verdict ON reviews (verdict, rule, leg_id);

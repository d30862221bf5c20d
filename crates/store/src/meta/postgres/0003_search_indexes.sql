-- Search indexes end in the keyset order (started_at DESC, id DESC), so each search shape reads
-- its index in result order and stops after one page: no sort of every matching row, and the
-- planner has no reason to prefer walking the tenant's whole time index instead (which, without
-- statistics, it did for a caller-number search). Measured by `callvault-bench search`.
DROP INDEX recordings_by_caller;
DROP INDEX recordings_by_queue;
DROP INDEX recordings_by_agent;
CREATE INDEX recordings_by_caller ON recordings(tenant, caller_hash, started_at DESC, id DESC);
CREATE INDEX recordings_by_queue ON recordings(tenant, queue, started_at DESC, id DESC);
CREATE INDEX recordings_by_agent ON recordings(tenant, agent_id, started_at DESC, id DESC);

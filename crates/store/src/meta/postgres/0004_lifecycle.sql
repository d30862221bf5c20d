-- Lifecycle: recording policies, retention rules, legal holds, erasure requests, tombstones of
-- erased recordings, and the queue of payload blobs an erasure still has to delete. Caller
-- numbers appear only as keyed hashes.
ALTER TABLE recordings ADD COLUMN retention_class TEXT;
CREATE TABLE recording_policies (
  tenant TEXT COLLATE "C" NOT NULL REFERENCES tenants(id),
  queue TEXT COLLATE "C" NOT NULL,
  record BOOLEAN NOT NULL,
  parties TEXT NOT NULL,
  retention_class TEXT NOT NULL,
  updated_by TEXT NOT NULL,
  updated_at BIGINT NOT NULL,
  PRIMARY KEY (tenant, queue)
);
CREATE TABLE retention_rules (
  tenant TEXT COLLATE "C" NOT NULL REFERENCES tenants(id),
  scope TEXT NOT NULL,
  value TEXT NOT NULL,
  days BIGINT NOT NULL,
  updated_by TEXT NOT NULL,
  updated_at BIGINT NOT NULL,
  PRIMARY KEY (tenant, scope, value)
);
CREATE TABLE legal_holds (
  id TEXT COLLATE "C" PRIMARY KEY,
  tenant TEXT COLLATE "C" NOT NULL REFERENCES tenants(id),
  kind TEXT NOT NULL,
  recording TEXT COLLATE "C",
  caller_hash BYTEA,
  queue TEXT,
  agent_id TEXT,
  from_ts BIGINT,
  to_ts BIGINT,
  reason TEXT NOT NULL,
  created_by TEXT NOT NULL,
  created_at BIGINT NOT NULL,
  hold_until BIGINT,
  lifted_by TEXT,
  lifted_at BIGINT
);
CREATE INDEX legal_holds_by_tenant ON legal_holds(tenant, created_at);
CREATE TABLE erasure_requests (
  id TEXT COLLATE "C" PRIMARY KEY,
  tenant TEXT COLLATE "C" NOT NULL REFERENCES tenants(id),
  caller_hash BYTEA NOT NULL,
  reason TEXT NOT NULL,
  requested_by TEXT NOT NULL,
  requested_at BIGINT NOT NULL,
  approved_by TEXT,
  approved_at BIGINT
);
CREATE TABLE erasures (
  recording TEXT COLLATE "C" PRIMARY KEY,
  tenant TEXT COLLATE "C" NOT NULL,
  erased_at BIGINT NOT NULL,
  cause TEXT NOT NULL
);
CREATE INDEX erasures_by_time ON erasures(tenant, erased_at);
CREATE TABLE blob_deletions (
  blob TEXT COLLATE "C" PRIMARY KEY,
  queued_at BIGINT NOT NULL
);
-- Erasing a recording deletes its grants, and the foreign key makes the database look for them
-- on every deleted row: without this index, each erasure would scan every grant ever issued.
CREATE INDEX grants_by_recording ON grants(recording);

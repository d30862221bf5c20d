-- Lifecycle: recording policies, retention rules, legal holds, erasure requests, tombstones of
-- erased recordings, and the queue of payload blobs an erasure still has to delete. Caller
-- numbers appear only as keyed hashes.
ALTER TABLE recordings ADD COLUMN retention_class TEXT;
CREATE TABLE recording_policies (
  tenant TEXT NOT NULL REFERENCES tenants(id),
  queue TEXT NOT NULL,
  record INTEGER NOT NULL,
  parties TEXT NOT NULL,
  retention_class TEXT NOT NULL,
  updated_by TEXT NOT NULL,
  updated_at INTEGER NOT NULL,
  PRIMARY KEY (tenant, queue)
);
CREATE TABLE retention_rules (
  tenant TEXT NOT NULL REFERENCES tenants(id),
  scope TEXT NOT NULL,
  value TEXT NOT NULL,
  days INTEGER NOT NULL,
  updated_by TEXT NOT NULL,
  updated_at INTEGER NOT NULL,
  PRIMARY KEY (tenant, scope, value)
);
CREATE TABLE legal_holds (
  id TEXT PRIMARY KEY,
  tenant TEXT NOT NULL REFERENCES tenants(id),
  kind TEXT NOT NULL,
  recording TEXT,
  caller_hash BLOB,
  queue TEXT,
  agent_id TEXT,
  from_ts INTEGER,
  to_ts INTEGER,
  reason TEXT NOT NULL,
  created_by TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  hold_until INTEGER,
  lifted_by TEXT,
  lifted_at INTEGER
);
CREATE INDEX legal_holds_by_tenant ON legal_holds(tenant, created_at);
CREATE TABLE erasure_requests (
  id TEXT PRIMARY KEY,
  tenant TEXT NOT NULL REFERENCES tenants(id),
  caller_hash BLOB NOT NULL,
  reason TEXT NOT NULL,
  requested_by TEXT NOT NULL,
  requested_at INTEGER NOT NULL,
  approved_by TEXT,
  approved_at INTEGER
);
CREATE TABLE erasures (
  recording TEXT PRIMARY KEY,
  tenant TEXT NOT NULL,
  erased_at INTEGER NOT NULL,
  cause TEXT NOT NULL
);
CREATE INDEX erasures_by_time ON erasures(tenant, erased_at);
CREATE TABLE blob_deletions (
  blob TEXT PRIMARY KEY,
  queued_at INTEGER NOT NULL
);
-- Erasing a recording deletes its grants, and the foreign key makes the database look for them
-- on every deleted row: without this index, each erasure would scan every grant ever issued.
CREATE INDEX grants_by_recording ON grants(recording);

-- Live calls: the encrypted journal of calls in progress (docs/FORMAT.md, "Live-call journal").
-- Chunks are sealed under journal keys that are themselves age files to the tenant recipient;
-- nothing here is plaintext audio.
CREATE TABLE live_calls (
  id TEXT PRIMARY KEY,
  tenant TEXT NOT NULL REFERENCES tenants(id),
  key_id INTEGER NOT NULL,
  codec TEXT NOT NULL,
  sample_rate INTEGER NOT NULL,
  channels INTEGER NOT NULL,
  frame_bytes INTEGER NOT NULL,
  started_at INTEGER NOT NULL,
  direction TEXT NOT NULL,
  caller_hash BLOB,
  caller_enc BLOB,
  agent_id TEXT,
  queue TEXT,
  external_call_id TEXT,
  state TEXT NOT NULL,
  total_chunks INTEGER,
  gaps TEXT,
  updated_at INTEGER NOT NULL,
  created_at INTEGER NOT NULL
);
CREATE INDEX live_calls_by_state ON live_calls(state, updated_at);
CREATE TABLE live_keys (
  call TEXT NOT NULL REFERENCES live_calls(id),
  key_no INTEGER NOT NULL,
  wrapped BLOB NOT NULL,
  PRIMARY KEY (call, key_no)
);
CREATE TABLE live_chunks (
  call TEXT NOT NULL,
  seq INTEGER NOT NULL,
  key_no INTEGER NOT NULL,
  sealed BLOB NOT NULL,
  PRIMARY KEY (call, seq)
) WITHOUT ROWID;
-- A playback grant may name a call still in progress, which has no recordings row yet.
CREATE TABLE grants_new (
  hash BLOB PRIMARY KEY,
  recording TEXT NOT NULL,
  tenant TEXT NOT NULL,
  user_id TEXT NOT NULL REFERENCES users(id),
  purpose TEXT NOT NULL,
  expires_at INTEGER NOT NULL
);
INSERT INTO grants_new SELECT hash, recording, tenant, user_id, purpose, expires_at FROM grants;
DROP TABLE grants;
ALTER TABLE grants_new RENAME TO grants;

-- Live calls: the encrypted journal of calls in progress (docs/FORMAT.md, "Live-call journal").
-- Chunks are sealed under journal keys that are themselves age files to the tenant recipient;
-- nothing here is plaintext audio. Every node of a deployment writes here, so a chunk one node
-- acknowledged survives that node, and another node resumes the call.
CREATE TABLE live_calls (
  id TEXT COLLATE "C" PRIMARY KEY,
  tenant TEXT COLLATE "C" NOT NULL REFERENCES tenants(id),
  key_id BIGINT NOT NULL,
  codec TEXT NOT NULL,
  sample_rate BIGINT NOT NULL CHECK (sample_rate BETWEEN 0 AND 4294967295),
  channels BIGINT NOT NULL CHECK (channels BETWEEN 0 AND 65535),
  frame_bytes BIGINT NOT NULL CHECK (frame_bytes BETWEEN 0 AND 4294967295),
  started_at BIGINT NOT NULL,
  direction TEXT NOT NULL,
  caller_hash BYTEA CHECK (octet_length(caller_hash) = 32),
  caller_enc BYTEA,
  agent_id TEXT,
  queue TEXT,
  external_call_id TEXT,
  state TEXT NOT NULL,
  total_chunks BIGINT,
  gaps TEXT,
  updated_at BIGINT NOT NULL,
  created_at BIGINT NOT NULL
);
CREATE INDEX live_calls_by_state ON live_calls(state, updated_at);
CREATE TABLE live_keys (
  call TEXT COLLATE "C" NOT NULL REFERENCES live_calls(id),
  key_no BIGINT NOT NULL,
  wrapped BYTEA NOT NULL,
  PRIMARY KEY (call, key_no)
);
CREATE TABLE live_chunks (
  call TEXT COLLATE "C" NOT NULL,
  seq BIGINT NOT NULL,
  key_no BIGINT NOT NULL,
  sealed BYTEA NOT NULL,
  PRIMARY KEY (call, seq)
);
-- A playback grant may name a call still in progress, which has no recordings row yet.
ALTER TABLE grants DROP CONSTRAINT grants_recording_fkey;

-- callvault metadata schema v1 (PostgreSQL), the same tables as the SQLite schema with native
-- types. Nothing here is plaintext audio; caller numbers exist only as keyed hashes and age
-- ciphertext.
--
-- Identifier columns use COLLATE "C": keyset pagination and sorted listings compare ids byte by
-- byte, exactly as the SQLite adapter and the Rust types do, whatever the database's locale.
-- Unsigned model fields are BIGINT holding the same 64 bits (see meta/rows.rs); u16/u32 fields
-- are range-checked here so a bad write fails instead of reading back as `Corrupt`.
CREATE TABLE settings (
  key TEXT COLLATE "C" PRIMARY KEY,
  value BYTEA NOT NULL
);
CREATE TABLE tenants (
  id TEXT COLLATE "C" PRIMARY KEY,
  name TEXT NOT NULL,
  caller_hash_key_sealed BYTEA NOT NULL,
  created_at BIGINT NOT NULL
);
CREATE TABLE tenant_keys (
  tenant TEXT COLLATE "C" NOT NULL REFERENCES tenants(id),
  key_id BIGINT NOT NULL,
  recipient TEXT NOT NULL,
  identity_sealed BYTEA NOT NULL,
  active BOOLEAN NOT NULL,
  created_at BIGINT NOT NULL,
  PRIMARY KEY (tenant, key_id)
);
CREATE UNIQUE INDEX tenant_keys_one_active ON tenant_keys(tenant) WHERE active;
CREATE TABLE users (
  id TEXT COLLATE "C" PRIMARY KEY,
  username TEXT COLLATE "C" NOT NULL UNIQUE,
  tenant TEXT COLLATE "C" REFERENCES tenants(id),
  role TEXT NOT NULL,
  password_hash TEXT NOT NULL,
  must_change_password BOOLEAN NOT NULL,
  totp_sealed BYTEA,
  totp_last_step BIGINT,
  failed_logins BIGINT NOT NULL CHECK (failed_logins BETWEEN 0 AND 4294967295),
  locked_until BIGINT,
  disabled BOOLEAN NOT NULL,
  created_at BIGINT NOT NULL
);
CREATE TABLE sessions (
  hash BYTEA PRIMARY KEY CHECK (octet_length(hash) = 32),
  user_id TEXT COLLATE "C" NOT NULL REFERENCES users(id),
  stage TEXT NOT NULL,
  pending_totp_sealed BYTEA,
  created_at BIGINT NOT NULL,
  last_seen BIGINT NOT NULL
);
CREATE INDEX sessions_by_user ON sessions(user_id);
CREATE TABLE api_tokens (
  id TEXT COLLATE "C" PRIMARY KEY,
  hash BYTEA NOT NULL UNIQUE CHECK (octet_length(hash) = 32),
  name TEXT NOT NULL,
  tenant TEXT COLLATE "C" REFERENCES tenants(id),
  role TEXT NOT NULL,
  created_by TEXT NOT NULL,
  created_at BIGINT NOT NULL,
  expires_at BIGINT NOT NULL,
  revoked_at BIGINT
);
CREATE TABLE recordings (
  id TEXT COLLATE "C" PRIMARY KEY,
  tenant TEXT COLLATE "C" NOT NULL REFERENCES tenants(id),
  blob TEXT COLLATE "C" NOT NULL UNIQUE,
  header BYTEA NOT NULL,
  key_id BIGINT NOT NULL,
  container TEXT NOT NULL,
  codec TEXT NOT NULL,
  channels BIGINT NOT NULL CHECK (channels BETWEEN 0 AND 65535),
  sample_rate BIGINT NOT NULL CHECK (sample_rate BETWEEN 0 AND 4294967295),
  duration_ms BIGINT NOT NULL,
  size BIGINT NOT NULL,
  started_at BIGINT NOT NULL,
  direction TEXT NOT NULL,
  caller_hash BYTEA CHECK (octet_length(caller_hash) = 32),
  caller_enc BYTEA,
  agent_id TEXT,
  queue TEXT,
  external_call_id TEXT,
  created_at BIGINT NOT NULL,
  FOREIGN KEY (tenant, key_id) REFERENCES tenant_keys(tenant, key_id)
);
CREATE INDEX recordings_by_time ON recordings(tenant, started_at DESC, id DESC);
CREATE INDEX recordings_by_caller ON recordings(tenant, caller_hash, started_at DESC);
CREATE INDEX recordings_by_queue ON recordings(tenant, queue, started_at DESC);
CREATE INDEX recordings_by_agent ON recordings(tenant, agent_id, started_at DESC);
CREATE TABLE grants (
  hash BYTEA PRIMARY KEY CHECK (octet_length(hash) = 32),
  recording TEXT COLLATE "C" NOT NULL REFERENCES recordings(id),
  tenant TEXT COLLATE "C" NOT NULL,
  user_id TEXT COLLATE "C" NOT NULL REFERENCES users(id),
  purpose TEXT NOT NULL,
  expires_at BIGINT NOT NULL
);
-- The audit chain: `seq` is assigned by append_audit under an advisory lock, never by a
-- sequence, so it has no gaps; the primary key refuses a fork even if that lock were bypassed.
CREATE TABLE audit (
  seq BIGINT PRIMARY KEY CHECK (seq > 0),
  time_ns BIGINT NOT NULL,
  actor TEXT NOT NULL,
  tenant TEXT,
  action TEXT NOT NULL,
  target TEXT,
  purpose TEXT,
  result TEXT NOT NULL,
  client TEXT,
  details TEXT,
  hash BYTEA NOT NULL CHECK (octet_length(hash) = 32)
);
CREATE INDEX audit_by_target ON audit(target, seq);
CREATE INDEX audit_by_actor ON audit(actor, seq);
CREATE TABLE audit_checkpoints (
  seq BIGINT PRIMARY KEY,
  hash BYTEA NOT NULL CHECK (octet_length(hash) = 32),
  time_ns BIGINT NOT NULL,
  signature BYTEA NOT NULL CHECK (octet_length(signature) = 64)
);

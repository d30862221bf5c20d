-- callvault metadata schema v1 (SQLite). Nothing here is plaintext audio; caller numbers exist
-- only as keyed hashes and age ciphertext.
CREATE TABLE settings (
  key TEXT PRIMARY KEY,
  value BLOB NOT NULL
);
CREATE TABLE tenants (
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL,
  caller_hash_key_sealed BLOB NOT NULL,
  created_at INTEGER NOT NULL
);
CREATE TABLE tenant_keys (
  tenant TEXT NOT NULL REFERENCES tenants(id),
  key_id INTEGER NOT NULL,
  recipient TEXT NOT NULL,
  identity_sealed BLOB NOT NULL,
  active INTEGER NOT NULL,
  created_at INTEGER NOT NULL,
  PRIMARY KEY (tenant, key_id)
);
CREATE UNIQUE INDEX tenant_keys_one_active ON tenant_keys(tenant) WHERE active = 1;
CREATE TABLE users (
  id TEXT PRIMARY KEY,
  username TEXT NOT NULL UNIQUE,
  tenant TEXT REFERENCES tenants(id),
  role TEXT NOT NULL,
  password_hash TEXT NOT NULL,
  must_change_password INTEGER NOT NULL,
  totp_sealed BLOB,
  totp_last_step INTEGER,
  failed_logins INTEGER NOT NULL,
  locked_until INTEGER,
  disabled INTEGER NOT NULL,
  created_at INTEGER NOT NULL
);
CREATE TABLE sessions (
  hash BLOB PRIMARY KEY,
  user_id TEXT NOT NULL REFERENCES users(id),
  stage TEXT NOT NULL,
  pending_totp_sealed BLOB,
  created_at INTEGER NOT NULL,
  last_seen INTEGER NOT NULL
);
CREATE TABLE api_tokens (
  id TEXT PRIMARY KEY,
  hash BLOB NOT NULL UNIQUE,
  name TEXT NOT NULL,
  tenant TEXT REFERENCES tenants(id),
  role TEXT NOT NULL,
  created_by TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL,
  revoked_at INTEGER
);
CREATE TABLE recordings (
  id TEXT PRIMARY KEY,
  tenant TEXT NOT NULL REFERENCES tenants(id),
  blob TEXT NOT NULL UNIQUE,
  header BLOB NOT NULL,
  key_id INTEGER NOT NULL,
  container TEXT NOT NULL,
  codec TEXT NOT NULL,
  channels INTEGER NOT NULL,
  sample_rate INTEGER NOT NULL,
  duration_ms INTEGER NOT NULL,
  size INTEGER NOT NULL,
  started_at INTEGER NOT NULL,
  direction TEXT NOT NULL,
  caller_hash BLOB,
  caller_enc BLOB,
  agent_id TEXT,
  queue TEXT,
  external_call_id TEXT,
  created_at INTEGER NOT NULL,
  FOREIGN KEY (tenant, key_id) REFERENCES tenant_keys(tenant, key_id)
);
CREATE INDEX recordings_by_time ON recordings(tenant, started_at DESC, id DESC);
CREATE INDEX recordings_by_caller ON recordings(tenant, caller_hash, started_at DESC);
CREATE INDEX recordings_by_queue ON recordings(tenant, queue, started_at DESC);
CREATE INDEX recordings_by_agent ON recordings(tenant, agent_id, started_at DESC);
CREATE TABLE grants (
  hash BLOB PRIMARY KEY,
  recording TEXT NOT NULL REFERENCES recordings(id),
  tenant TEXT NOT NULL,
  user_id TEXT NOT NULL REFERENCES users(id),
  purpose TEXT NOT NULL,
  expires_at INTEGER NOT NULL
);
CREATE TABLE audit (
  seq INTEGER PRIMARY KEY,
  time_ns INTEGER NOT NULL,
  actor TEXT NOT NULL,
  tenant TEXT,
  action TEXT NOT NULL,
  target TEXT,
  purpose TEXT,
  result TEXT NOT NULL,
  client TEXT,
  details TEXT,
  hash BLOB NOT NULL
);
CREATE INDEX audit_by_target ON audit(target, seq);
CREATE INDEX audit_by_actor ON audit(actor, seq);
CREATE TABLE audit_checkpoints (
  seq INTEGER PRIMARY KEY,
  hash BLOB NOT NULL,
  time_ns INTEGER NOT NULL,
  signature BLOB NOT NULL
);

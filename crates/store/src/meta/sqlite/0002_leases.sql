-- Leases: which node runs a deployment-wide periodic job (checkpoint signing, later retention).
CREATE TABLE leases (
  name TEXT PRIMARY KEY,
  holder TEXT NOT NULL,
  expires_at INTEGER NOT NULL
);

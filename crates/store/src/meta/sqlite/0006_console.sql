-- The web console: a recording's waveform peaks (docs/FORMAT.md, "Waveform peaks"), age-encrypted
-- to the tenant like the caller number and removed with the recording; and an index for the
-- per-day charts of audit actions; and each person's console language.
CREATE TABLE recording_peaks (
  recording TEXT PRIMARY KEY REFERENCES recordings(id) ON DELETE CASCADE,
  peaks_enc BLOB NOT NULL
);
CREATE INDEX audit_by_action_time ON audit(action, time_ns);
ALTER TABLE users ADD COLUMN language TEXT;

-- Further parties of a recorded call (RFC 7865 participants besides the caller, e.g. one who
-- joined by a transfer), pseudonymised like the caller: a keyed hash to search by and the number
-- age-encrypted to the tenant. Written while the call is recorded (its id is the recording's),
-- so no foreign key to recordings; erasure deletes them with the recording.
CREATE TABLE recording_parties (
  recording TEXT NOT NULL,
  tenant TEXT NOT NULL,
  number_hash BLOB NOT NULL,
  number_enc BLOB NOT NULL,
  PRIMARY KEY (recording, number_hash)
);
CREATE INDEX recording_parties_by_number ON recording_parties(tenant, number_hash);

-- Push delivery: the host (`host:port`) each push job calls, so that the
-- dispatcher leases only jobs whose host has a free slot on it — one slow
-- endpoint never holds deliveries to the others. Push jobs made before this
-- version have none and share one group of slots (none was delivered yet).
ALTER TABLE jobs ADD COLUMN target_host text;

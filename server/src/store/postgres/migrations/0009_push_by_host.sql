-- Chronos schema, version 9: queued push jobs indexed by host first.
--
-- The push dispatcher leases per host (`host:port`), at most the host's
-- free slots. With the queue in one global order it read past a busy
-- host's backlog to find other hosts' jobs: a full host with a long
-- backlog made every lease read all of it, and a host with one free slot
-- at the head hid the others. Led by the host, the index gives the hosts
-- with queued jobs one probe each, and each host's best jobs in order.
-- "C": the dispatcher takes hosts in turn in byte order.
DROP INDEX jobs_queued_push;
CREATE INDEX jobs_queued_push
    ON jobs ((coalesce(target_host, '') COLLATE "C"), priority DESC, run_at, id)
    WHERE status = 'queued' AND delivery_type = 'push';

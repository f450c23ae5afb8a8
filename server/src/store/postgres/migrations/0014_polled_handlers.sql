-- The handlers long-poll workers asked for, and when last. A long-poll
-- worker keeps no session in `workers`; this is how a queue whose next job
-- needs a handler tells whether any worker serves it (a queue's
-- `waiting_for_handler`). Written at most every few seconds per handler and
-- server process, never on each poll.
CREATE TABLE polled_handlers (
    organization_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    handler         text NOT NULL,
    polled_at       timestamptz NOT NULL,
    PRIMARY KEY (organization_id, handler)
);

-- The audit chain head (`orgs.audit_head`, `audit_seq`) is written by the code that
-- appends, not by a trigger per event: the single writer appends a batch of events and
-- moves each organisation's head once, right before the batch commits (in the same
-- transaction), and the writer's other connection moves it with each append.
DROP TRIGGER audit_events_head;

-- The chain head follows every appended event inside the same statement.
CREATE TRIGGER audit_events_head AFTER INSERT ON audit_events
BEGIN
    UPDATE orgs SET audit_head = NEW.hash WHERE id = NEW.org_id;
END;

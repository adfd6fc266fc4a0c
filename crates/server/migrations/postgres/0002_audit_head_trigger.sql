-- The chain head follows every appended event inside the same statement.
CREATE FUNCTION ascend_audit_head() RETURNS trigger AS $$
BEGIN
    UPDATE orgs SET audit_head = NEW.hash WHERE id = NEW.org_id;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER audit_events_head AFTER INSERT ON audit_events
    FOR EACH ROW EXECUTE FUNCTION ascend_audit_head();

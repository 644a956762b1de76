-- The audit appender now commits each round in a transaction of its own and moves the head
-- once, to the round's last row, instead of this trigger moving it once per row inserted.
DROP TRIGGER audit_head_follows;

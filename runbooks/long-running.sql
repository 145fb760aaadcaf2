-- description = "Statements that have been running for at least some seconds"
-- resource_roles = ["demo-mysql"]
-- protocol = "mysql"
--
-- [[params]]
-- name = "seconds"
-- type = "integer"
-- default = 5
-- min = 0
-- description = "Running at least this long"

select id, user, db, time, left(info, 200) as statement
from information_schema.processlist
where command <> 'Sleep' and time >= :seconds
order by time desc;

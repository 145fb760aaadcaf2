-- description = "The largest tables of the database, biggest first"
-- resource_roles = ["demo-pg"]
-- protocol = "postgres"
--
-- [[params]]
-- name = "limit"
-- type = "integer"
-- default = 10
-- min = 1
-- max = 100
-- description = "How many tables to list"

select schemaname, relname, pg_size_pretty(pg_total_relation_size(relid)) as size
from pg_catalog.pg_statio_user_tables
order by pg_total_relation_size(relid) desc
limit :limit;

-- Which client startup parameters a resource role forwards upstream (a JSON list of
-- names); NULL: the gateway's safe default list.
ALTER TABLE resource_roles ADD COLUMN forward_options TEXT;

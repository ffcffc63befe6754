DROP TRIGGER workspaces_changed ON workspaces;
DROP FUNCTION keyward_notify_workspace_change();
DROP TRIGGER api_keys_changed ON api_keys;
DROP FUNCTION keyward_notify_key_change();

DROP TABLE sso_settings;
DROP TABLE oidc_identities;

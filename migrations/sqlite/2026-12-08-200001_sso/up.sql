-- OpenID Connect single sign-on (issue 26, part 1).
--
-- A person signed in through a provider is linked to the provider's
-- subject: once linked, the subject is what matches, so a later change of
-- the email at the provider cannot take over another person's account.
-- People are not scoped to a workspace, and neither are their links.
CREATE TABLE oidc_identities (
    provider    TEXT NOT NULL,   -- the operator's provider id
    subject     TEXT NOT NULL,   -- the ID token's sub
    person_id   TEXT NOT NULL REFERENCES people (id),
    email       TEXT NOT NULL,   -- the verified email it was linked by
    created_at  TIMESTAMP NOT NULL,
    PRIMARY KEY (provider, subject)
);
CREATE INDEX oidc_identities_person ON oidc_identities (person_id);

-- A workspace's SSO settings (admins); no row: nobody joins through a
-- provider and passwords work as before.
CREATE TABLE sso_settings (
    workspace_id   TEXT PRIMARY KEY NOT NULL REFERENCES workspaces (id),
    -- The provider whose people may join on their first sign-in; NULL: none.
    join_provider  TEXT,
    default_role   TEXT NOT NULL DEFAULT 'normal' CHECK (default_role IN ('admin', 'normal', 'operator')),
    -- Lower-case domains, one per line; empty: any verified email.
    email_domains  TEXT NOT NULL DEFAULT '',
    -- "group=role" lines: a groups claim value that gives a role on joining.
    group_roles    TEXT NOT NULL DEFAULT '',
    -- Password sign-in refused for members (break-glass emails excepted).
    sso_only       BOOLEAN NOT NULL DEFAULT 0,
    updated_at     TIMESTAMP NOT NULL
);

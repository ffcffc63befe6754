//! Table definitions, written by hand so one schema serves both backends
//! (only types the multi-backend connection supports).

diesel::table! {
    workspaces (id) {
        id -> Text,
        name -> Text,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        api_keys_disabled_at -> Nullable<Timestamp>,
        max_expiry_days -> Nullable<Integer>,
        max_keys_per_user -> Integer,
        default_rate_limit -> Nullable<Integer>,
        leak_response -> Text,
        recoverable_keys_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    /// A person: who signs in. Their memberships are `users` rows.
    people (id) {
        id -> Text,
        email -> Text,
        name -> Text,
        password_hash -> Nullable<Text>,
        last_workspace_id -> Nullable<Text>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    /// A membership: a person in a workspace, with a role and a status.
    users (id) {
        id -> Text,
        workspace_id -> Text,
        person_id -> Text,
        role -> Text,
        status -> Text,
        accepted_at -> Nullable<Timestamp>,
        invited_name -> Nullable<Text>,
        invite_digest -> Nullable<Text>,
        invite_expires_at -> Nullable<Timestamp>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        removed_at -> Nullable<Timestamp>,
        /// `person` or `service` (a service account).
        kind -> Text,
        description -> Text,
        disabled_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    sessions (id) {
        id -> Text,
        workspace_id -> Text,
        user_id -> Text,
        person_id -> Text,
        created_at -> Timestamp,
        last_seen_at -> Timestamp,
        ip -> Nullable<Text>,
        user_agent -> Nullable<Text>,
    }
}

diesel::table! {
    events (seq) {
        seq -> BigInt,
        id -> Text,
        workspace_id -> Text,
        actor_id -> Nullable<Text>,
        actor_label -> Text,
        action -> Text,
        target_type -> Nullable<Text>,
        target_id -> Nullable<Text>,
        target_label -> Nullable<Text>,
        ip -> Nullable<Text>,
        user_agent -> Nullable<Text>,
        details -> Text,
        created_at -> Timestamp,
    }
}

diesel::joinable!(users -> workspaces (workspace_id));
diesel::joinable!(users -> people (person_id));
diesel::joinable!(sessions -> users (user_id));
diesel::joinable!(sessions -> people (person_id));
diesel::joinable!(events -> workspaces (workspace_id));

diesel::table! {
    permissions (id) {
        id -> Text,
        workspace_id -> Text,
        name -> Text,
        description -> Text,
        retired_at -> Nullable<Timestamp>,
        created_at -> Timestamp,
    }
}

diesel::table! {
    api_keys (id) {
        id -> Text,
        workspace_id -> Text,
        kind -> Text,
        owner_id -> Nullable<Text>,
        created_by -> Text,
        name -> Text,
        description -> Text,
        tags -> Text,
        environment -> Text,
        permissions -> Text,
        resources -> Text,
        digest -> Text,
        head -> Text,
        tail -> Text,
        previous_digest -> Nullable<Text>,
        previous_expires_at -> Nullable<Timestamp>,
        expires_at -> Nullable<Timestamp>,
        rate_limit -> Nullable<Integer>,
        disabled_at -> Nullable<Timestamp>,
        revoked_at -> Nullable<Timestamp>,
        revoked_by -> Nullable<Text>,
        deleted_at -> Nullable<Timestamp>,
        creator_removed_at -> Nullable<Timestamp>,
        request_nonce -> Text,
        search -> Text,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        last_used_at -> Nullable<Timestamp>,
        version -> BigInt,
        key_prefix -> Text,
        revoked_reason -> Nullable<Text>,
        recoverable -> Bool,
        owner_disabled_at -> Nullable<Timestamp>,
        allowed_ips -> Nullable<Text>,
        quota_limit -> Nullable<BigInt>,
        quota_refill -> Nullable<BigInt>,
        quota_period -> Nullable<Text>,
        plan_id -> Nullable<Text>,
        plan_overrides -> Text,
    }
}

diesel::table! {
    /// What is left of a key's usage quota in the database (issue 23):
    /// instances reserve uses from it and spend them locally.
    key_quotas (key_id) {
        key_id -> Text,
        remaining -> BigInt,
        window_start -> Nullable<Timestamp>,
    }
}

diesel::joinable!(key_quotas -> api_keys (key_id));

diesel::table! {
    /// Named settings keys follow (issue 23): a plan's rate limit, quota and
    /// IP allowlist are copied into the keys on it that do not override
    /// them; its permissions (`NULL`: any) are the most they may hold.
    plans (id) {
        id -> Text,
        workspace_id -> Text,
        name -> Text,
        name_key -> Text,
        description -> Text,
        rate_limit -> Nullable<Integer>,
        quota_limit -> Nullable<BigInt>,
        quota_refill -> Nullable<BigInt>,
        quota_period -> Nullable<Text>,
        allowed_ips -> Nullable<Text>,
        permissions -> Nullable<Text>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::joinable!(api_keys -> plans (plan_id));
diesel::allow_tables_to_appear_in_same_query!(api_keys, plans);

diesel::table! {
    /// The encrypted secret of a recoverable key (issue 27): one row per
    /// key, deleted when the key is revoked or deleted.
    key_secrets (key_id) {
        key_id -> Text,
        workspace_id -> Text,
        enc_key_id -> Text,
        nonce -> Text,
        ciphertext -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    key_usage (key_id, hour, outcome) {
        key_id -> Text,
        workspace_id -> Text,
        hour -> Timestamp,
        outcome -> Text,
        count -> BigInt,
    }
}

diesel::table! {
    /// Recent checks of a key (the request log), written in batches.
    key_requests (id) {
        id -> BigInt,
        key_id -> Text,
        workspace_id -> Text,
        at -> Timestamp,
        ip -> Nullable<Text>,
        method -> Nullable<Text>,
        path -> Nullable<Text>,
        outcome -> Text,
        client -> Nullable<Text>,
        secret -> Text,
        one_in -> Integer,
    }
}

diesel::joinable!(permissions -> workspaces (workspace_id));
diesel::joinable!(key_usage -> api_keys (key_id));
diesel::joinable!(api_keys -> workspaces (workspace_id));
diesel::allow_tables_to_appear_in_same_query!(
    api_keys,
    permissions,
    people,
    users,
    workspaces,
    sessions,
    events,
    instance_setup
);

diesel::table! {
    instance_setup (id) {
        id -> Integer,
        workspace_id -> Text,
        completed_at -> Timestamp,
    }
}

diesel::table! {
    /// Leak reports of keys: GitHub secret scanning alerts and the public
    /// report form (issue 25).
    key_leaks (id) {
        id -> Text,
        workspace_id -> Text,
        key_id -> Text,
        source -> Text,
        url -> Nullable<Text>,
        reported_at -> Timestamp,
        reporter -> Nullable<Text>,
    }
}

diesel::joinable!(key_leaks -> api_keys (key_id));

// Notifications (webhooks): endpoints, the outbox, the delivery log.
diesel::table! {
    webhook_endpoints (id) {
        id -> Text,
        workspace_id -> Text,
        url -> Text,
        description -> Text,
        event_types -> Text,
        secret -> Text,
        previous_secret -> Nullable<Text>,
        previous_expires_at -> Nullable<Timestamp>,
        failing_since -> Nullable<Timestamp>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    outbox (id) {
        id -> Text,
        workspace_id -> Text,
        endpoint_id -> Text,
        event_id -> Text,
        event_type -> Text,
        payload -> Text,
        created_at -> Timestamp,
        next_attempt_at -> Timestamp,
        claimed_until -> Nullable<Timestamp>,
        attempts -> Integer,
        done_at -> Nullable<Timestamp>,
        outcome -> Nullable<Text>,
    }
}

diesel::table! {
    webhook_attempts (id) {
        id -> Text,
        workspace_id -> Text,
        endpoint_id -> Text,
        outbox_id -> Text,
        event_type -> Text,
        attempt -> Integer,
        attempted_at -> Timestamp,
        status -> Nullable<Integer>,
        latency_ms -> Integer,
        response_head -> Text,
    }
}

// Notifications (email): the mail outbox, expiry reminders, opt-outs.
diesel::table! {
    mail_outbox (id) {
        id -> Text,
        workspace_id -> Text,
        recipient -> Text,
        subject -> Text,
        text_body -> Text,
        html_body -> Text,
        created_at -> Timestamp,
        next_attempt_at -> Timestamp,
        claimed_until -> Nullable<Timestamp>,
        attempts -> Integer,
        done_at -> Nullable<Timestamp>,
        outcome -> Nullable<Text>,
        last_error -> Nullable<Text>,
    }
}

diesel::table! {
    expiry_reminders (key_id, threshold_days) {
        key_id -> Text,
        threshold_days -> Integer,
        created_at -> Timestamp,
    }
}

diesel::table! {
    reminder_optouts (person_id) {
        person_id -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    mailed_events (event_id) {
        event_id -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    reminder_settings (workspace_id) {
        workspace_id -> Text,
        days -> Text,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    /// A person's link to an OpenID provider's subject (issue 26).
    oidc_identities (provider, subject) {
        provider -> Text,
        subject -> Text,
        person_id -> Text,
        email -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    /// A workspace's single sign-on settings (issue 26).
    sso_settings (workspace_id) {
        workspace_id -> Text,
        join_provider -> Nullable<Text>,
        default_role -> Text,
        email_domains -> Text,
        group_roles -> Text,
        sso_only -> Bool,
        updated_at -> Timestamp,
    }
}

//! Table definitions, written by hand so one schema serves both backends
//! (only types the multi-backend connection supports).

diesel::table! {
    workspaces (id) {
        id -> Text,
        name -> Text,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    users (id) {
        id -> Text,
        workspace_id -> Text,
        email -> Text,
        name -> Text,
        role -> Text,
        password_hash -> Nullable<Text>,
        status -> Text,
        invite_digest -> Nullable<Text>,
        invite_expires_at -> Nullable<Timestamp>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        removed_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    sessions (id) {
        id -> Text,
        workspace_id -> Text,
        user_id -> Text,
        created_at -> Timestamp,
        last_seen_at -> Timestamp,
        ip -> Nullable<Text>,
        user_agent -> Nullable<Text>,
    }
}

diesel::table! {
    events (id) {
        id -> BigInt,
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
diesel::joinable!(sessions -> users (user_id));
diesel::joinable!(events -> workspaces (workspace_id));
diesel::allow_tables_to_appear_in_same_query!(workspaces, users, sessions, events);

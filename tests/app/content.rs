//! What the pages say and offer (issue 14): row menus for every status,
//! events as sentences, times people read, the key limit up front, the
//! users page and error pages; and the REVOKED answer for a revoked key's
//! old secret.

use crate::helpers::*;
use reqwest::StatusCode;

/// Regenerate `id` with a grace period; returns the new secret.
async fn regenerate_with_grace(admin: &Browser, id: &str) -> String {
    let (_, confirm) = admin.page(&format!("/keys/{id}/regenerate")).await;
    let nonce = hidden(&confirm, "nonce").unwrap();
    let res = admin
        .post_form(
            &format!("/keys/{id}/regenerate"),
            &[("grace", "24h"), ("nonce", &nonce)],
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    shown_secret(&res.text().await.unwrap()).expect("new secret shown")
}

#[tokio::test]
async fn a_revoked_keys_old_secret_answers_revoked_not_not_found() {
    // Cached answers live ten minutes: a refusal can only come from the
    // revoke itself reaching the cache, never from an entry expiring.
    let (app, admin) = spawn_ready_with(|c| {
        c.verifier.cache_ttl = std::time::Duration::from_secs(600);
    })
    .await;
    let k = admin
        .create_key("/workspace/keys", &[("name", "ERP connector")])
        .await;
    let new = regenerate_with_grace(&admin, &k.id).await;
    assert_eq!(me(&app.base, &k.secret).await.0, StatusCode::OK, "grace");
    assert_eq!(me(&app.base, &new).await.0, StatusCode::OK);

    let res = admin
        .post_form(&format!("/keys/{}/revoke", k.id), &[])
        .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    for secret in [&k.secret, &new] {
        assert_eq!(
            me_code(&app.base, secret).await,
            (StatusCode::UNAUTHORIZED, "REVOKED".into())
        );
    }
    // The key page no longer promises that the old secret works.
    let (_, page) = admin.page(&format!("/keys/{}", k.id)).await;
    assert!(!page.contains("previous secret works until"), "{page}");

    // Deleted after revoking: both secrets still answer REVOKED.
    let res = admin
        .post_form(&format!("/keys/{}/delete", k.id), &[])
        .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    for secret in [&k.secret, &new] {
        assert_eq!(me_code(&app.base, secret).await.1, "REVOKED");
    }
}

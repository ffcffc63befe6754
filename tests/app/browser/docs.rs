//! `/docs` in a real browser: the vendored Swagger UI renders every
//! operation of the OpenAPI document under keyward's CSP, from this server
//! alone.

use super::Chrome;
use crate::helpers::*;
use fantoccini::Locator;
use std::time::Duration;

#[tokio::test]
#[ignore = "needs chromium and chromium-driver; run with --ignored"]
async fn browser_docs_render_every_operation() {
    let (app, _admin) = spawn_ready().await;
    let doc: serde_json::Value = reqwest::get(format!("{}/api/v1/openapi.json", app.base))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let operations: usize = doc["paths"]
        .as_object()
        .unwrap()
        .values()
        .map(|ops| ops.as_object().unwrap().len())
        .sum();
    let chrome = Chrome::start().await;
    chrome
        .client
        .goto(&format!("{}/docs", app.base))
        .await
        .unwrap();
    chrome
        .client
        .wait()
        .at_most(Duration::from_secs(15))
        .for_element(Locator::Css(".opblock"))
        .await
        .expect("Swagger UI rendered the operations");
    let blocks = chrome
        .client
        .find_all(Locator::Css(".opblock-summary-path"))
        .await
        .unwrap();
    let mut paths = Vec::new();
    for b in &blocks {
        paths.push(b.text().await.unwrap());
    }
    assert_eq!(blocks.len(), operations, "{paths:?}");
    assert!(
        paths
            .iter()
            .any(|p| p.contains("/api/v1/keys/{id}/regenerate"))
    );
    let snippet = chrome.wait_text("#snippet-curl").await;
    assert!(
        snippet.contains(&format!("{}/api/v1/me", app.base)),
        "{snippet}"
    );
    chrome.screenshot("docs").await;
    chrome.close().await;
}

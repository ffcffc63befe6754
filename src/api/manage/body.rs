//! Reading management request bodies and the `Idempotency-Key` header.

use super::super::problem::ApiError;
use crate::app::keys::Once;
use actix_web::HttpRequest;
use sha2::{Digest, Sha256};

/// Parse a JSON body; anything that is not the expected JSON is a 400
/// problem saying what is wrong (an empty body reads as `{}` where
/// `empty_ok`).
pub fn parse_json<T: serde::de::DeserializeOwned>(
    body: &[u8],
    empty_ok: bool,
) -> Result<T, ApiError> {
    let body: &[u8] = if empty_ok && body.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        body
    };
    let value: serde_json::Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("The request body is not valid JSON: {e}.")))?;
    // serde would read a struct from an array too: only an object is one.
    if !value.is_object() {
        return Err(ApiError::bad_request(
            "The request body must be a JSON object.",
        ));
    }
    serde_json::from_value(value).map_err(|e| {
        ApiError::bad_request(format!(
            "The request body does not fit this operation: {e}."
        ))
    })
}

/// The `Idempotency-Key` header: 1 to 255 visible ASCII characters.
fn idempotency_key(req: &HttpRequest) -> Result<Option<String>, ApiError> {
    let Some(value) = req.headers().get("idempotency-key") else {
        return Ok(None);
    };
    let bytes = value.as_bytes();
    if bytes.is_empty() || bytes.len() > 255 || !bytes.iter().all(|b| b.is_ascii_graphic()) {
        return Err(ApiError::bad_request(
            "Idempotency-Key must be 1 to 255 visible ASCII characters, e.g. a UUID.",
        ));
    }
    Ok(Some(String::from_utf8_lossy(bytes).into_owned()))
}

fn fingerprint(parts: &[&[u8]]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_be_bytes());
        h.update(p);
    }
    hex::encode(h.finalize())
}

/// What makes a repeat of this request do nothing: its `Idempotency-Key`
/// with a fingerprint of what it asks (`parts`), or nothing.
pub fn once(req: &HttpRequest, parts: &[&[u8]]) -> Result<Once, ApiError> {
    Ok(match idempotency_key(req)? {
        Some(key) => Once::Idempotency {
            key,
            fingerprint: fingerprint(parts),
        },
        None => Once::Never,
    })
}

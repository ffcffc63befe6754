//! Reading management request bodies and the `Idempotency-Key` header.

use super::super::problem::ApiError;
use crate::app::keys::Once;
use actix_web::dev::Payload;
use actix_web::http::{StatusCode, header};
use actix_web::{FromRequest, HttpMessage, HttpRequest, web};
use futures_util::StreamExt;
use futures_util::future::LocalBoxFuture;
use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::fmt;

/// The largest management request body read: a key's fields fit many times
/// over (100 resources of 100 characters, a 500-character description).
pub const MAX_BODY: usize = 64 * 1024;

/// A management request's body, read whole before the handler runs.
///
/// Reading never fails the extraction: a body that is too large or not
/// JSON is refused only when the handler asks for it, after the key was
/// checked and (for one key's operations) the key looked up, so a caller
/// learns "unauthorized" or "not found" before anything about its body.
pub struct Body {
    read: Result<web::Bytes, Unread>,
    /// Whether the request says its body is JSON (`application/json`, or a
    /// `+json` type such as `application/merge-patch+json`'s kin).
    json_type: bool,
}

/// A body read as a JSON object: the value the operation reads, and the
/// canonical text of what was sent (members sorted, no white space), which
/// is what makes two requests the same request for `Idempotency-Key`.
pub struct Parsed<T> {
    pub value: T,
    pub canonical: String,
}

/// Why a body was not read.
enum Unread {
    TooLarge,
    /// The connection failed mid-body (the reason, for the caller).
    Broken(String),
}

impl Unread {
    fn problem(&self) -> ApiError {
        match self {
            Unread::TooLarge => ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "PAYLOAD_TOO_LARGE",
                format!(
                    "The request body is larger than {} KiB; nothing was changed.",
                    MAX_BODY / 1024
                ),
            ),
            Unread::Broken(e) => {
                ApiError::bad_request(format!("The request body could not be read: {e}."))
            }
        }
    }
}

impl FromRequest for Body {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        // The same test as the `Json` extractor of `/keys/verify`, so both
        // halves of the API agree on what a JSON body is.
        let json_type = matches!(
            req.mime_type(),
            Ok(Some(m)) if m.subtype() == actix_web::mime::JSON || m.suffix() == Some(actix_web::mime::JSON)
        );
        // A declared length over the limit is refused without reading.
        let declared = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        let mut payload = payload.take();
        Box::pin(async move {
            if declared.is_some_and(|n| n > MAX_BODY as u64) {
                return Ok(Body {
                    read: Err(Unread::TooLarge),
                    json_type,
                });
            }
            let mut body = web::BytesMut::new();
            while let Some(chunk) = payload.next().await {
                let chunk = match chunk {
                    Ok(chunk) => chunk,
                    Err(e) => {
                        return Ok(Body {
                            read: Err(Unread::Broken(e.to_string())),
                            json_type,
                        });
                    }
                };
                if body.len() + chunk.len() > MAX_BODY {
                    return Ok(Body {
                        read: Err(Unread::TooLarge),
                        json_type,
                    });
                }
                body.extend_from_slice(&chunk);
            }
            Ok(Body {
                read: Ok(body.freeze()),
                json_type,
            })
        })
    }
}

impl Body {
    /// A body as a client sent it with `Content-Type: application/json`
    /// (the fuzz targets read bodies through [`Body::json`] this way).
    pub fn sent_as_json(bytes: &[u8]) -> Body {
        Body {
            read: Ok(web::Bytes::copy_from_slice(bytes)),
            json_type: true,
        }
    }

    /// The body as the JSON object `T`. A body is sent as
    /// `application/json` (415 otherwise), is one JSON object naming each
    /// member once (400 otherwise: serde_json would silently keep the last
    /// of two `name`s, which is not what every client or proxy reads), and
    /// fits the operation (400). Where `empty_ok`, no body at all (or only
    /// white space) reads as `{}`, whatever its content type.
    pub fn json<T: serde::de::DeserializeOwned>(
        &self,
        empty_ok: bool,
    ) -> Result<Parsed<T>, ApiError> {
        let bytes = match &self.read {
            Ok(bytes) => bytes,
            Err(unread) => return Err(unread.problem()),
        };
        let empty = bytes.iter().all(u8::is_ascii_whitespace);
        let value = if empty && empty_ok {
            Value::Object(serde_json::Map::new())
        } else {
            if !self.json_type {
                return Err(ApiError::new(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "UNSUPPORTED_MEDIA_TYPE",
                    "Send the request body as JSON, with Content-Type: application/json.",
                ));
            }
            unique_members(bytes).map_err(|e| {
                ApiError::bad_request(format!("The request body is not valid JSON: {e}."))
            })?
        };
        // serde would read a struct from an array too: only an object is one.
        if !value.is_object() {
            return Err(ApiError::bad_request(
                "The request body must be a JSON object.",
            ));
        }
        let canonical = canonical(&value);
        let value = serde_json::from_value(value).map_err(|e| {
            ApiError::bad_request(format!(
                "The request body does not fit this operation: {e}."
            ))
        })?;
        Ok(Parsed { value, canonical })
    }
}

/// Parse JSON, refusing an object that names a member twice.
fn unique_members(bytes: &[u8]) -> Result<Value, serde_json::Error> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = Unique.deserialize(&mut de)?;
    de.end()?;
    Ok(value)
}

/// Builds a [`Value`] like serde_json does, but fails on a repeated member.
struct Unique;

impl<'de> DeserializeSeed<'de> for Unique {
    type Value = Value;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Unique {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        // JSON text has no NaN or infinity, so a number always fits.
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(Unique)? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut members = serde_json::Map::new();
        while let Some(name) = map.next_key::<String>()? {
            if members.contains_key(&name) {
                return Err(de::Error::custom(format!(
                    "the member \"{name}\" appears more than once; send each member once"
                )));
            }
            let value = map.next_value_seed(Unique)?;
            members.insert(name, value);
        }
        Ok(Value::Object(members))
    }
}

/// JSON text that is the same for the same value: members sorted by name
/// at every depth, no white space. (serde_json's map keeps insertion order
/// when any crate of the build turns on its `preserve_order`, so the order
/// is made here rather than assumed.)
fn canonical(value: &Value) -> String {
    fn write(value: &Value, out: &mut String) {
        match value {
            Value::Object(members) => {
                let mut names: Vec<&String> = members.keys().collect();
                names.sort();
                out.push('{');
                for (i, name) in names.into_iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(&Value::String(name.clone()).to_string());
                    out.push(':');
                    if let Some(v) = members.get(name) {
                        write(v, out);
                    }
                }
                out.push('}');
            }
            Value::Array(items) => {
                out.push('[');
                for (i, v) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    write(v, out);
                }
                out.push(']');
            }
            scalar => out.push_str(&scalar.to_string()),
        }
    }
    let mut out = String::new();
    write(value, &mut out);
    out
}

/// Why an `Idempotency-Key` is refused.
const IDEMPOTENCY_RULE: &str =
    "Idempotency-Key must be 1 to 255 visible ASCII characters, e.g. a UUID, sent once.";

/// The `Idempotency-Key` header: 1 to 255 visible ASCII characters. A
/// header sent empty is refused rather than read as absent (the caller
/// meant to make the request safe to retry, and it would not be), and so
/// is a repeated one (which of two values is meant cannot be known).
fn idempotency_key(req: &HttpRequest) -> Result<Option<String>, ApiError> {
    let mut values = req.headers().get_all("idempotency-key");
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(ApiError::bad_request(IDEMPOTENCY_RULE));
    }
    let bytes = value.as_bytes();
    if bytes.is_empty() || bytes.len() > 255 || !bytes.iter().all(|b| b.is_ascii_graphic()) {
        return Err(ApiError::bad_request(IDEMPOTENCY_RULE));
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
/// with a fingerprint of what it asks (`parts`: the operation, the target
/// and the canonical body), or nothing.
pub fn once(req: &HttpRequest, parts: &[&[u8]]) -> Result<Once, ApiError> {
    Ok(match idempotency_key(req)? {
        Some(key) => Once::Idempotency {
            key,
            fingerprint: fingerprint(parts),
        },
        None => Once::Never,
    })
}

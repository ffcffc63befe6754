//! JSON bodies and query strings of the management API, read as its
//! handlers read them (`parse_json`; `web::Query` is serde_urlencoded).
#![no_main]

use keyward::api::manage::body::parse_json;
use keyward::api::manage::shapes::*;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = parse_json::<CreateKeyRequest>(data, false);
    let _ = parse_json::<UpdateKeyRequest>(data, false);
    let _ = parse_json::<RegenerateRequest>(data, true);
    let _ = serde_urlencoded::from_bytes::<ListParams>(data);
    let _ = serde_urlencoded::from_bytes::<EventParams>(data);
    let _ = serde_urlencoded::from_bytes::<UsageParams>(data);
});

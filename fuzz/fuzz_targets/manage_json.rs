//! JSON bodies and query strings of the management API, read as its
//! handlers read them (`Body::json`; `web::Query` is serde_urlencoded).
#![no_main]

use keyward::api::manage::body::Body;
use keyward::api::manage::shapes::*;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let body = Body::sent_as_json(data);
    // A body read once reads the same again, and its canonical text (what
    // Idempotency-Key compares) is itself a body that reads the same.
    if let Ok(parsed) = body.json::<CreateKeyRequest>(false) {
        let again = Body::sent_as_json(parsed.canonical.as_bytes())
            .json::<CreateKeyRequest>(false)
            .expect("a canonical body reads");
        assert_eq!(again.canonical, parsed.canonical);
    }
    let _ = body.json::<UpdateKeyRequest>(false);
    let _ = body.json::<RegenerateRequest>(true);
    let _ = serde_urlencoded::from_bytes::<ListParams>(data);
    let _ = serde_urlencoded::from_bytes::<EventParams>(data);
    let _ = serde_urlencoded::from_bytes::<UsageParams>(data);
});

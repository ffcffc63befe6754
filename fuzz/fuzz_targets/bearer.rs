//! The `Authorization` header (`api::bearer`): any bytes a client can put
//! in it. Whatever token comes out is a trimmed piece of the header, and a
//! header that is not visible ASCII never yields one.
#![no_main]

use actix_web::http::header::{AUTHORIZATION, HeaderValue};
use actix_web::test::TestRequest;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Split the input in two headers now and then: two are refused.
    let (first, second) = match data.iter().position(|&b| b == b'\n') {
        Some(i) => (&data[..i], Some(&data[i + 1..])),
        None => (data, None),
    };
    let Ok(value) = HeaderValue::from_bytes(first) else {
        return;
    };
    let mut req = TestRequest::default().insert_header((AUTHORIZATION, value.clone()));
    if let Some(Ok(v)) = second.map(HeaderValue::from_bytes) {
        req = req.append_header((AUTHORIZATION, v));
    }
    let req = req.to_http_request();
    if let Ok(token) = keyward::api::bearer(&req) {
        let Ok(text) = value.to_str() else {
            panic!("a token from a header that is not visible ASCII");
        };
        assert!(second.is_none_or(|s| HeaderValue::from_bytes(s).is_err()));
        assert!(text.contains(token));
        assert_eq!(token, token.trim());
    }
});

//! CSV downloads streamed in chunks (the events trail, the key inventory):
//! read by a keyset cursor, a chunk at a time, so memory stays flat however
//! long the file is, and rows written meanwhile neither shift nor repeat.
//! Times are written with [`crate::domain::time::rfc3339`].

use crate::error::AppError;
use actix_web::http::header;
use actix_web::{HttpResponse, web};
use std::future::Future;

/// Rows read from the database per chunk.
pub const CHUNK: i64 = 1_000;

/// Neutralise spreadsheet formulas (CSV injection): a cell starting with
/// `=`, `+`, `-`, `@`, tab or carriage return is prefixed with `'`.
pub fn cell(s: &str) -> String {
    match s.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => format!("'{s}"),
        _ => s.to_owned(),
    }
}

fn chunk(rows: &[Vec<String>], header: Option<&[&str]>) -> Result<web::Bytes, AppError> {
    let io = |e: csv::Error| AppError::Internal(e.to_string());
    let mut out = csv::Writer::from_writer(Vec::with_capacity(rows.len() * 200 + 100));
    if let Some(h) = header {
        out.write_record(h).map_err(io)?;
    }
    for r in rows {
        out.write_record(r).map_err(io)?;
    }
    out.into_inner()
        .map(web::Bytes::from)
        .map_err(|e| AppError::Internal(e.to_string()))
}

/// Answer with a CSV attachment named `<name>-<UTC time>.csv`. `next` reads
/// the chunk at a cursor and returns its rows (as CSV records) and the
/// cursor of the next chunk (`None`: that was the last). The first chunk is read before
/// answering, so an unreachable database is a clear 503 rather than a
/// download that breaks off; a later failure ends the download early (and
/// is logged).
pub async fn csv_download<S, F, Fut>(
    name: &str,
    header: &'static [&'static str],
    start: S,
    next: F,
) -> Result<HttpResponse, AppError>
where
    S: 'static,
    F: Fn(S) -> Fut + 'static,
    Fut: Future<Output = Result<(Vec<Vec<String>>, Option<S>), AppError>> + 'static,
{
    let (rows, more) = next(start).await?;
    let first = chunk(&rows, Some(header))?;
    let what = name.to_owned();
    let rest = futures_util::stream::try_unfold((more, next), move |(cursor, next)| {
        let what = what.clone();
        async move {
            let Some(cursor) = cursor else {
                return Ok(None);
            };
            let (rows, more) = next(cursor).await.inspect_err(|e| {
                tracing::error!(error = %e, export = %what, "CSV export broke off");
            })?;
            Ok::<_, AppError>(Some((chunk(&rows, None)?, (more, next))))
        }
    });
    let body = futures_util::StreamExt::chain(
        futures_util::stream::once(async move { Ok::<_, AppError>(first) }),
        rest,
    );
    let file = format!("{name}-{}.csv", chrono::Utc::now().format("%Y%m%d-%H%M%S"));
    Ok(HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .insert_header((
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"{file}\""),
        ))
        .streaming(body))
}

//! Call records over HTTP (events issue §4 "records API, tenant-scoped,
//! same auth as the CTI API": calls by time, caller, DID, agent, group,
//! outcome; missed calls; voicemails; recordings with HTTP range requests;
//! §6 reports through the API).
//!
//! Who sees what:
//! - agents: their own calls only (the agent filter is forced to them),
//!   confidential callers masked; no recordings, no reports;
//! - supervisors: every call of their tenant, recordings (each download is
//!   audited), reports;
//! - admins: the same; a global admin (tenant `*`) every tenant, or one
//!   with `tenant=`.

use std::path::{Component, Path, PathBuf};

use axum::body::Body;
use axum::extract::{Path as UrlPath, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use super::error::ApiQuery;
use super::peer_download::from_peers;
use super::{ApiError, ApiResult, ApiState, Caller};
use crate::auth::{Principal, Role};
use crate::events::cdr::Cdr;
use crate::records::report::{build_report, ReportBy};
use crate::records::store::{parse_outcome, parse_time, CallQuery};

/// Query parameters of `GET /api/v1/calls` and `/reports`.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CallParams {
    from: Option<String>,
    to: Option<String>,
    tenant: Option<String>,
    caller: Option<String>,
    called: Option<String>,
    agent: Option<String>,
    group: Option<String>,
    outcome: Option<String>,
    #[serde(default)]
    missed: bool,
    #[serde(default)]
    voicemail: bool,
    #[serde(default)]
    recorded: bool,
    limit: Option<usize>,
    /// `json` (default) or `csv` (calls); `json`, `csv` or `xlsx` (reports).
    format: Option<String>,
    /// Report rows: group, agent, hour, day.
    by: Option<String>,
}

/// The tenant a caller's query is limited to: its own, or for a global
/// admin the one asked for (None: all).
fn tenant_scope(p: &Principal, asked: Option<&str>) -> ApiResult<Option<String>> {
    match (p.tenant_filter(), asked) {
        (None, asked) => Ok(asked.map(str::to_owned)),
        (Some(own), None) => Ok(Some(own.to_owned())),
        (Some(own), Some(t)) if t == own => Ok(Some(own.to_owned())),
        (Some(_), Some(_)) => Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "another tenant's records",
        )),
    }
}

fn query_of(s: &ApiState, p: &Principal, q: &CallParams) -> ApiResult<CallQuery> {
    let offset = s.utc_offset_minutes;
    let time = |t: &Option<String>| t.as_deref().map(|t| parse_time(t, offset)).transpose();
    let mut query = CallQuery {
        tenant: tenant_scope(p, q.tenant.as_deref())?,
        from: time(&q.from)?,
        to: time(&q.to)?,
        caller: q.caller.clone(),
        called: q.called.clone(),
        agent: q.agent.clone(),
        group: q.group.clone(),
        outcome: q.outcome.as_deref().map(parse_outcome).transpose()?,
        missed: q.missed,
        voicemail: q.voicemail,
        recorded: q.recorded,
        limit: q.limit.unwrap_or(100),
    };
    if p.role == Role::Agent {
        // An agent sees the calls they took, nothing else.
        let own = p.agent_id.clone().ok_or_else(|| {
            ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                "no agent id for this user",
            )
        })?;
        if query.agent.as_ref().is_some_and(|a| *a != own) {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                "agents see their own calls only",
            ));
        }
        query.agent = Some(own);
    }
    Ok(query)
}

fn shown(p: &Principal, c: Cdr) -> Cdr {
    if p.role == Role::Agent {
        c.for_export()
    } else {
        c
    }
}

/// `GET /api/v1/calls`: call records, newest first.
pub async fn calls(
    State(s): State<ApiState>,
    Caller(p): Caller,
    ApiQuery(q): ApiQuery<CallParams>,
) -> ApiResult<Response> {
    if q.by.is_some() {
        return Err(ApiError::bad_request("bad_query", "`by` is for /reports"));
    }
    let query = query_of(&s, &p, &q)?;
    let store = s.records.clone();
    let cdrs = tokio::task::spawn_blocking(move || store.calls(&query))
        .await
        .map_err(ApiError::internal)??;
    match q.format.as_deref().unwrap_or("json") {
        "json" => {
            let calls: Vec<Cdr> = cdrs.into_iter().map(|c| shown(&p, c)).collect();
            Ok(Json(json!({ "calls": calls, "count": calls.len() })).into_response())
        }
        "csv" => Ok((
            [(header::CONTENT_TYPE, "text/csv; charset=utf-8")],
            crate::records::export::cdrs_to_csv(&cdrs),
        )
            .into_response()),
        other => Err(ApiError::bad_request(
            "bad_query",
            format!("unknown format {other:?}: expected json or csv"),
        )),
    }
}

/// `GET /api/v1/calls/{id}`: one call's events in order and its record.
pub async fn call(
    State(s): State<ApiState>,
    Caller(p): Caller,
    UrlPath(id): UrlPath<String>,
) -> ApiResult<Json<Value>> {
    let store = s.records.clone();
    let tenant = p.tenant_filter().map(str::to_owned);
    let events = tokio::task::spawn_blocking(move || store.call_events(tenant.as_deref(), &id))
        .await
        .map_err(ApiError::internal)??;
    if events.is_empty() {
        return Err(ApiError::not_found("no such call"));
    }
    let record = events.iter().rev().find_map(|e| match &e.body {
        crate::events::EventData::CallEnded(c) => Some((**c).clone()),
        _ => None,
    });
    if p.role == Role::Agent {
        let own = p.agent_id.as_deref().unwrap_or("");
        let took = events.iter().any(
            |e| matches!(&e.body, crate::events::EventData::AgentAnswered(a) if a.agent_id == own),
        );
        if !took {
            return Err(ApiError::not_found("no such call"));
        }
        let events: Vec<_> = events.iter().map(|e| e.for_export()).collect();
        return Ok(Json(
            json!({ "events": events, "record": record.map(|c| c.for_export()) }),
        ));
    }
    Ok(Json(json!({ "events": events, "record": record })))
}

/// `GET /api/v1/reports?by=group|agent|hour|day&from&to&format=json|csv|xlsx`
/// (supervisors and admins).
pub async fn report(
    State(s): State<ApiState>,
    Caller(p): Caller,
    ApiQuery(q): ApiQuery<CallParams>,
) -> ApiResult<Response> {
    p.require(Role::Supervisor)?;
    let by: ReportBy = q.by.as_deref().unwrap_or("day").parse().map_err(
        |e: crate::records::report::UnknownReportBy| {
            ApiError::bad_request("bad_query", e.to_string())
        },
    )?;
    let mut query = query_of(&s, &p, &q)?;
    query.limit = crate::records::store::MAX_LIMIT;
    let store = s.records.clone();
    let offset = s.utc_offset_minutes;
    let report = tokio::task::spawn_blocking(move || {
        crate::records::cli::all_calls(&store, query)
            .map(|cdrs| build_report(cdrs.iter(), by, offset))
    })
    .await
    .map_err(ApiError::internal)?
    .map_err(|e| ApiError::internal(e.0))?;
    match q.format.as_deref().unwrap_or("json") {
        "json" => Ok(Json(json!({ "report": report })).into_response()),
        "csv" => Ok((
            [(header::CONTENT_TYPE, "text/csv; charset=utf-8")],
            crate::records::export::to_csv(&report),
        )
            .into_response()),
        "xlsx" => {
            let bytes = crate::records::export::to_xlsx(&report).map_err(ApiError::internal)?;
            Ok((
                [
                    (
                        header::CONTENT_TYPE,
                        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                    ),
                    (
                        header::CONTENT_DISPOSITION,
                        "attachment; filename=\"report.xlsx\"",
                    ),
                ],
                bytes,
            )
                .into_response())
        }
        other => Err(ApiError::bad_request(
            "bad_query",
            format!("unknown format {other:?}: expected json, csv or xlsx"),
        )),
    }
}

/// A relative path below a root, refusing `..`, absolute paths and
/// anything odd; its first segment is the tenant.
fn below(root: &Path, rel: &str) -> ApiResult<(PathBuf, String)> {
    let p = Path::new(rel);
    let ok = !rel.is_empty()
        && p.components().all(|c| matches!(c, Component::Normal(_)))
        && !rel.contains('\\');
    if !ok {
        return Err(ApiError::not_found("no such file"));
    }
    let tenant = rel.split('/').next().unwrap_or_default().to_string();
    Ok((root.join(p), tenant))
}

/// `GET /api/v1/recordings/{id}` (id as in the record: `tenant/y/m/d/call`):
/// the file (`audio/wav`, or `audio/ogg` for Ogg Opus), with `Range: bytes=…` support (206); supervisors and admins;
/// every download is audited.
pub async fn recording(
    State(s): State<ApiState>,
    Caller(p): Caller,
    UrlPath(id): UrlPath<String>,
    uri: axum::http::Uri,
    headers: HeaderMap,
) -> ApiResult<Response> {
    p.require(Role::Supervisor)?;
    let root = s
        .recordings_dir
        .clone()
        .ok_or_else(|| ApiError::not_found("recording is off"))?;
    let (path, tenant) = below(&root, &id)?;
    if !p.may_access_tenant(&tenant) {
        return Err(ApiError::not_found("no such recording"));
    }
    let path = recording_file(path);
    if !path.is_file() {
        if let Some(resp) = from_peers(s.cluster.as_ref(), &path_and_query(&uri), &headers).await {
            return Ok(resp);
        }
    }
    let content_type = crate::media::recorder::content_type_of(&path);
    let resp = serve_file(&path, &headers, content_type, s.sealing_key.clone()).await?;
    audit_download(&s, &p, &tenant, "recording.download", &id, &headers);
    Ok(resp)
}

/// The file of a recording id: the id itself when it names one (`….wav`,
/// `….opus`), else the id with the extension of whichever format it was
/// recorded in (issue 16 item 3: `.wav` first, then `.opus`).
fn recording_file(path: PathBuf) -> PathBuf {
    let with = |ext: &str| {
        let mut s = path.as_os_str().to_owned();
        s.push(".");
        s.push(ext);
        PathBuf::from(s)
    };
    let named = path.extension().is_some_and(|e| e == "wav" || e == "opus");
    let mut candidates = Vec::with_capacity(3);
    if named {
        candidates.push(path.clone());
    }
    candidates.extend(
        crate::media::recorder::RecordingFormat::ALL
            .iter()
            .map(|f| with(f.extension())),
    );
    let first = candidates[0].clone();
    candidates
        .into_iter()
        .find(|p| p.is_file())
        .unwrap_or(first)
}

/// `GET /api/v1/voicemails/{path}` (as in the record): like recordings.
pub async fn voicemail(
    State(s): State<ApiState>,
    Caller(p): Caller,
    UrlPath(rel): UrlPath<String>,
    uri: axum::http::Uri,
    headers: HeaderMap,
) -> ApiResult<Response> {
    p.require(Role::Supervisor)?;
    let (path, tenant) = below(&s.voicemail_dir, &rel)?;
    if !p.may_access_tenant(&tenant) {
        return Err(ApiError::not_found("no such voicemail"));
    }
    if !path.is_file() {
        if let Some(resp) = from_peers(s.cluster.as_ref(), &path_and_query(&uri), &headers).await {
            return Ok(resp);
        }
    }
    let resp = serve_file(&path, &headers, "audio/wav", s.sealing_key.clone()).await?;
    audit_download(&s, &p, &tenant, "voicemail.download", &rel, &headers);
    Ok(resp)
}

/// The request's own path and query, to ask another node the same.
fn path_and_query(uri: &axum::http::Uri) -> String {
    uri.path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| uri.path().to_string())
}

/// Audit a download in the file's tenant, with the range asked for.
fn audit_download(
    s: &ApiState,
    p: &Principal,
    tenant: &str,
    action: &str,
    target: &str,
    headers: &HeaderMap,
) {
    let range = headers
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    super::audit(s, p, tenant, action, target, json!({ "range": range }));
}

/// The asked range starts past the end of the file (416).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unsatisfiable;

/// A byte range of a file of `len` bytes: `bytes=a-b`, `bytes=a-`,
/// `bytes=-n` (one range; several are answered whole, as RFC 9110 §14.2
/// allows).
pub fn parse_range(value: &str, len: u64) -> Result<Option<(u64, u64)>, Unsatisfiable> {
    let Some(spec) = value.trim().strip_prefix("bytes=") else {
        return Ok(None);
    };
    if spec.contains(',') {
        return Ok(None);
    }
    let Some((a, b)) = spec.split_once('-') else {
        return Ok(None);
    };
    let (a, b) = (a.trim(), b.trim());
    let range = match (a.parse::<u64>(), b.parse::<u64>()) {
        (Ok(start), Ok(end)) if start <= end => (start, end.min(len.saturating_sub(1))),
        (Ok(start), Err(_)) if b.is_empty() => (start, len.saturating_sub(1)),
        (Err(_), Ok(n)) if a.is_empty() && n > 0 => (len.saturating_sub(n), len.saturating_sub(1)),
        _ => return Ok(None),
    };
    if len == 0 || range.0 >= len {
        return Err(Unsatisfiable);
    }
    Ok(Some(range))
}

/// Stream a file (or the asked range of it); a file sealed at rest is
/// decrypted on the way, its ranges in plaintext offsets
/// ([`super::sealed_download`]).
async fn serve_file(
    path: &Path,
    headers: &HeaderMap,
    mime: &'static str,
    key: Option<crate::media::at_rest::SealingKey>,
) -> ApiResult<Response> {
    use super::sealed_download::{self, Opened};
    use tokio::io::{AsyncReadExt, AsyncSeekExt};
    let owned = path.to_path_buf();
    let opened = tokio::task::spawn_blocking(move || sealed_download::open(&owned, key.as_ref()))
        .await
        .map_err(ApiError::internal)??;
    let len = match &opened {
        Opened::Plain(_, len) => *len,
        Opened::Sealed(s) => s.plain_len(),
    };
    let asked = headers
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .map(|v| parse_range(v, len))
        .unwrap_or(Ok(None));
    let range = match asked {
        Ok(r) => r,
        Err(Unsatisfiable) => {
            let mut resp = ApiError::new(
                StatusCode::RANGE_NOT_SATISFIABLE,
                "bad_range",
                format!("the file has {len} bytes"),
            )
            .into_response();
            if let Ok(v) = HeaderValue::from_str(&format!("bytes */{len}")) {
                resp.headers_mut().insert(header::CONTENT_RANGE, v);
            }
            return Ok(resp);
        }
    };
    let (status, start, count) = match range {
        Some((a, b)) => (StatusCode::PARTIAL_CONTENT, a, b - a + 1),
        None => (StatusCode::OK, 0, len),
    };
    let body = match opened {
        Opened::Plain(file, _) => {
            let mut file = tokio::fs::File::from_std(file);
            file.seek(std::io::SeekFrom::Start(start))
                .await
                .map_err(|e| ApiError::internal(format!("{}: {e}", path.display())))?;
            Body::from_stream(tokio_util::io::ReaderStream::new(file.take(count)))
        }
        Opened::Sealed(sealed) => sealed_download::body(sealed, start, count, path.to_path_buf()),
    };
    let mut resp = Response::new(body);
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(mime));
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    if let Ok(v) = HeaderValue::from_str(&count.to_string()) {
        h.insert(header::CONTENT_LENGTH, v);
    }
    if status == StatusCode::PARTIAL_CONTENT {
        let cr = format!("bytes {start}-{}/{len}", start + count - 1);
        if let Ok(v) = HeaderValue::from_str(&cr) {
            h.insert(header::CONTENT_RANGE, v);
        }
    }
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::parse_range;

    #[test]
    fn ranges() {
        assert_eq!(parse_range("bytes=0-99", 1000), Ok(Some((0, 99))));
        assert_eq!(parse_range("bytes=900-", 1000), Ok(Some((900, 999))));
        assert_eq!(parse_range("bytes=-100", 1000), Ok(Some((900, 999))));
        assert_eq!(parse_range("bytes=990-2000", 1000), Ok(Some((990, 999))));
        assert_eq!(parse_range("bytes=1000-", 1000), Err(super::Unsatisfiable));
        assert_eq!(parse_range("bytes=5-1", 1000), Ok(None));
        assert_eq!(parse_range("items=0-1", 1000), Ok(None));
        assert_eq!(parse_range("bytes=0-1,5-6", 1000), Ok(None));
        assert_eq!(parse_range("bytes=x-y", 1000), Ok(None));
    }
}

//! The lookup shell against a local service: a POST's body and headers
//! as sent, an answer over the bound refused, nobody listening counted as
//! a failure after its retries, a header value that cannot be sent.

use std::sync::{Arc, Mutex};

use super::*;

/// What the service got: (method, path, content type, a header, body).
type Got = Arc<Mutex<Vec<(String, String, String, String, String)>>>;

/// A service on a free loopback port: `/big` answers more than the
/// bound, everything else echoes 200.
async fn service() -> (String, Got) {
    use axum::http::HeaderMap;
    let got: Got = Arc::default();
    let seen = got.clone();
    let app = axum::Router::new()
        .route(
            "/big",
            axum::routing::get(|| async { "x".repeat(MAX_BODY_BYTES + 1) }),
        )
        .fallback(
            move |method: axum::http::Method,
                  uri: axum::http::Uri,
                  headers: HeaderMap,
                  body: String| {
                let seen = seen.clone();
                async move {
                    let h = |n: &str| {
                        headers
                            .get(n)
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or("")
                            .to_string()
                    };
                    seen.lock().unwrap().push((
                        method.to_string(),
                        uri.to_string(),
                        h("content-type"),
                        h("x-key"),
                        body,
                    ));
                    r#"{"ok":true}"#
                }
            },
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}"), got)
}

fn request(url: String, method: HttpMethod, body: Option<&str>) -> HttpRequest {
    HttpRequest {
        id: 7,
        method,
        url,
        headers: vec![("X-Key".into(), "k1".into())],
        body: body.map(str::to_string),
        timeout_secs: 2,
        retries: 1,
    }
}

#[tokio::test]
async fn a_post_arrives_with_its_json_body_and_headers() {
    let (base, got) = service().await;
    let counters = Arc::new(CallCounters::default());
    let body = r#"{"ticket":"2026\"1"}"#;
    let (id, outcome) = send(
        request(format!("{base}/q?a=%2B1"), HttpMethod::Post, Some(body)),
        counters.clone(),
    )
    .await;
    assert_eq!(id, 7);
    assert_eq!(
        outcome,
        HttpOutcome::Response {
            status: 200,
            body: r#"{"ok":true}"#.into()
        }
    );
    let got = got.lock().unwrap().clone();
    assert_eq!(
        got,
        [(
            "POST".to_string(),
            "/q?a=%2B1".to_string(),
            "application/json".to_string(),
            "k1".to_string(),
            body.to_string()
        )]
    );
    assert_eq!(counters.ivr_lookups.load(Ordering::Relaxed), 1);
    assert_eq!(counters.ivr_lookup_failures.load(Ordering::Relaxed), 0);
}

#[tokio::test]
async fn an_answer_over_the_bound_is_refused_and_counted() {
    let (base, _) = service().await;
    let counters = Arc::new(CallCounters::default());
    let (_, outcome) = send(
        request(format!("{base}/big"), HttpMethod::Get, None),
        counters.clone(),
    )
    .await;
    assert_eq!(
        outcome,
        HttpOutcome::Failed(format!("answer larger than {MAX_BODY_BYTES} bytes"))
    );
    assert_eq!(counters.ivr_lookup_failures.load(Ordering::Relaxed), 1);
}

#[tokio::test]
async fn nobody_listening_fails_after_the_retries() {
    // A port just freed: nothing listens there.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    drop(listener);
    let counters = Arc::new(CallCounters::default());
    let (_, outcome) = send(
        request(format!("http://{addr}/x"), HttpMethod::Get, None),
        counters.clone(),
    )
    .await;
    assert!(matches!(outcome, HttpOutcome::Failed(_)), "{outcome:?}");
    assert_eq!(counters.ivr_lookups.load(Ordering::Relaxed), 1);
    assert_eq!(counters.ivr_lookup_failures.load(Ordering::Relaxed), 1);
}

#[tokio::test]
async fn a_header_that_cannot_be_sent_is_a_failure_not_a_panic() {
    let (base, got) = service().await;
    let mut r = request(format!("{base}/x"), HttpMethod::Get, None);
    r.headers = vec![("X-Key".into(), "a\nb".into())];
    let (_, outcome) = send(r, Arc::new(CallCounters::default())).await;
    assert!(matches!(outcome, HttpOutcome::Failed(_)), "{outcome:?}");
    assert!(got.lock().unwrap().is_empty());
}

//! A small client for hotline's HTTP API in tests: JSON in, status and
//! JSON out, bearer tokens from `login`.

use serde_json::{json, Value};

use super::Net;

/// The API of the hotline on `net`.
pub struct Api {
    /// `http://host:port`.
    pub base: String,
    /// Runs the requests; tests may spawn on it (a WebSocket reader).
    pub rt: tokio::runtime::Runtime,
    client: reqwest::Client,
}

impl Api {
    /// A client for `http://<net .1>:8080`.
    pub fn new(net: Net) -> Api {
        Api {
            base: format!("http://{}:8080", net.ip(1)),
            rt: tokio::runtime::Runtime::new().expect("runtime"),
            client: reqwest::Client::new(),
        }
    }

    /// `method path` with `token` and a JSON `body` (empty: none); the
    /// status and the JSON answer (`Null` when there is none).
    pub fn send(&self, method: &str, path: &str, token: &str, body: &str) -> (u16, Value) {
        self.rt.block_on(async {
            let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
            let mut req = self
                .client
                .request(method, format!("{}{path}", self.base))
                .bearer_auth(token);
            if !body.is_empty() {
                req = req
                    .header("content-type", "application/json")
                    .body(body.to_string());
            }
            let r = req.send().await.expect("request");
            let status = r.status().as_u16();
            let text = r.text().await.expect("body");
            (status, serde_json::from_str(&text).unwrap_or(Value::Null))
        })
    }

    pub fn get(&self, path: &str, token: &str) -> (u16, Value) {
        self.send("GET", path, token, "")
    }

    pub fn post(&self, path: &str, token: &str, body: &str) -> (u16, Value) {
        self.send("POST", path, token, body)
    }

    pub fn put(&self, path: &str, token: &str, body: &str) -> (u16, Value) {
        self.send("PUT", path, token, body)
    }

    pub fn delete(&self, path: &str, token: &str) -> (u16, Value) {
        self.send("DELETE", path, token, "")
    }

    /// Log in; the token.
    pub fn login(&self, user: &str, password: &str) -> String {
        let body = json!({"username": user, "password": password}).to_string();
        let (status, v) = self.send("POST", "/api/v1/login", "", &body);
        assert_eq!(status, 200, "login {user}: {v}");
        v["token"].as_str().expect("token").to_string()
    }
}

impl Api {
    /// `agent`'s state on the wall-board (as `sup` sees it).
    pub fn board_state(&self, sup: &str, agent: &str) -> Value {
        let (_, v) = self.get("/api/v1/wallboard", sup);
        v["agents"]
            .as_array()
            .and_then(|a| a.iter().find(|a| a["agent_id"] == agent))
            .map(|a| a["state"].clone())
            .unwrap_or(Value::Null)
    }

    /// Wait (bounded: 5 s) until `agent` is `state` on the wall-board.
    pub fn wait_board(&self, sup: &str, agent: &str, state: &str) -> bool {
        for _ in 0..50 {
            if self.board_state(sup, agent) == state {
                return true;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        false
    }
}

/// The error code of an API answer.
pub fn code(v: &Value) -> &str {
    v["error"]["code"].as_str().unwrap_or("")
}

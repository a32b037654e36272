//! A [`CallQuery`] as SQL over the outbox's `call.ended` events, in the
//! dialect of each backend (`records::store`). Tenant + start time and the
//! caller are indexed by partial expression indexes (SQLite:
//! `store::sqlite::events_schema`, PostgreSQL: `store::pg::events_schema`),
//! so these expressions must stay the very ones indexed. Values are always
//! parameters, never spliced into the text.

use super::store::{CallQuery, MAX_LIMIT};

/// Which SQL to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Dialect {
    /// `json_extract`, `json_each`, `?N` parameters.
    Sqlite,
    /// `->`/`->>` on `json`, `$N` parameters, start times in the "C"
    /// collation (byte order, as SQLite compares text).
    Postgres,
}

impl Dialect {
    fn tenant(self) -> &'static str {
        match self {
            Dialect::Sqlite => "json_extract(body, '$.tenant')",
            Dialect::Postgres => "(body ->> 'tenant')",
        }
    }

    fn started(self) -> &'static str {
        match self {
            Dialect::Sqlite => "json_extract(body, '$.data.started_at')",
            Dialect::Postgres => "(body -> 'data' ->> 'started_at') COLLATE \"C\"",
        }
    }

    /// A field of the record (`call.ended`'s data), as text or NULL.
    fn data(self, field: &str) -> String {
        match self {
            Dialect::Sqlite => format!("json_extract(body, '$.data.{field}')"),
            Dialect::Postgres => format!("(body -> 'data' ->> '{field}')"),
        }
    }

    /// The record's list `field` holds the value of parameter `param`.
    fn holds(self, field: &str, param: &str) -> String {
        match self {
            Dialect::Sqlite => format!(
                "EXISTS (SELECT 1 FROM json_each(body, '$.data.{field}') WHERE value = {param})"
            ),
            Dialect::Postgres => {
                format!("COALESCE((body -> 'data' -> '{field}')::jsonb ? {param}, false)")
            }
        }
    }

    fn param(self, n: usize) -> String {
        match self {
            Dialect::Sqlite => format!("?{n}"),
            Dialect::Postgres => format!("${n}"),
        }
    }

    fn body(self) -> &'static str {
        match self {
            Dialect::Sqlite => "body",
            Dialect::Postgres => "body::text",
        }
    }
}

/// The SQL selecting `(id, body)` of the records matching `q`, newest
/// first, and its parameters in order.
pub(super) fn calls(q: &CallQuery, d: Dialect) -> (String, Vec<String>) {
    let mut sql = format!(
        "SELECT id, {} FROM outbox_event WHERE kind = 'call.ended'",
        d.body()
    );
    let mut args: Vec<String> = Vec::new();
    let mut push = |sql: &mut String, clause: &dyn Fn(&str) -> String, value: String| {
        args.push(value);
        sql.push_str(" AND ");
        sql.push_str(&clause(&d.param(args.len())));
    };
    if let Some(t) = &q.tenant {
        push(&mut sql, &|p| format!("{} = {p}", d.tenant()), t.clone());
    }
    if let Some(f) = &q.from {
        push(
            &mut sql,
            &|p| format!("{} >= {p}", d.started()),
            f.to_string(),
        );
    }
    if let Some(t) = &q.to {
        push(
            &mut sql,
            &|p| format!("{} < {p}", d.started()),
            t.to_string(),
        );
    }
    if let Some(c) = &q.caller {
        push(
            &mut sql,
            &|p| format!("{} = {p}", d.data("caller")),
            c.clone(),
        );
    }
    if let Some(c) = &q.called {
        push(
            &mut sql,
            &|p| format!("{} = {p}", d.data("called")),
            c.clone(),
        );
    }
    if let Some(a) = &q.agent {
        push(&mut sql, &|p| d.holds("agents", p), a.clone());
    }
    if let Some(g) = &q.group {
        push(&mut sql, &|p| d.holds("groups", p), g.clone());
    }
    if let Some(o) = q.outcome {
        let name = serde_json::to_value(o)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        push(&mut sql, &|p| format!("{} = {p}", d.data("outcome")), name);
    }
    if q.missed {
        sql.push_str(&format!(
            " AND {} = 'inbound'
              AND ({} IS NOT NULL OR {} IS NOT NULL)
              AND {} IS NULL",
            d.data("direction"),
            d.data("agent_requested_at"),
            d.data("queued_at"),
            d.data("connected_at"),
        ));
    }
    if q.voicemail {
        sql.push_str(&format!(" AND {} IS NOT NULL", d.data("voicemail")));
    }
    if q.recorded {
        sql.push_str(&format!(" AND {} IS NOT NULL", d.data("recording")));
    }
    let limit = match q.limit {
        0 => 100,
        n => n.min(MAX_LIMIT),
    };
    sql.push_str(&format!(" ORDER BY {} DESC LIMIT {limit}", d.started()));
    (sql, args)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_indexed_expressions_are_the_ones_queried() {
        let q = CallQuery {
            tenant: Some("a".into()),
            caller: Some("138".into()),
            ..CallQuery::default()
        };
        let (sqlite, args) = calls(&q, Dialect::Sqlite);
        assert_eq!(args, ["a", "138"]);
        assert!(
            sqlite.contains("json_extract(body, '$.tenant') = ?1"),
            "{sqlite}"
        );
        assert!(
            sqlite.contains("json_extract(body, '$.data.caller') = ?2"),
            "{sqlite}"
        );
        let (pg, _) = calls(&q, Dialect::Postgres);
        let schema = crate::store::pg::events_schema::MIGRATIONS.join("\n");
        for expr in [
            "(body ->> 'tenant')",
            "(body -> 'data' ->> 'started_at') COLLATE \"C\"",
            "(body -> 'data' ->> 'caller')",
        ] {
            assert!(pg.contains(expr), "{pg}");
            assert!(schema.contains(expr), "{expr}");
        }
        assert!(pg.contains("= $1") && pg.contains("= $2"), "{pg}");
    }
}

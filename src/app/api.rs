//! Starting the HTTP API's parts (CTI issue §2, events issue §4, §5): the
//! users database with the configured users seeded, the records store over
//! the events database, the `/api/v1` state, and the retention job.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::api::cti::Cti;
use crate::api::ApiState;
use crate::auth::{AuthError, AuthStore, Credential, NewUser, Role, Upserted};
use crate::config::Config;
use crate::events::outbox::Outbox;
use crate::records::retention::{self, RetentionPolicy};
use crate::records::store::{RecordStore, RecordsError};

/// Why the API cannot start.
#[derive(Debug, thiserror::Error)]
pub enum ApiStartError {
    /// The users database.
    #[error("users: {0}")]
    Auth(Box<AuthError>),
    /// A `[[user]]` of the configuration is refused.
    #[error("{file}: [[user]] {user:?}: {source}")]
    Seed {
        /// Configuration file.
        file: String,
        /// The user.
        user: String,
        /// Why.
        source: Box<AuthError>,
    },
    /// `[recording] encryption_key_file` cannot be used.
    #[error(transparent)]
    RecordingKey(#[from] crate::media::at_rest::KeyError),
    /// The records store.
    #[error(transparent)]
    Records(#[from] RecordsError),
}

impl From<AuthError> for ApiStartError {
    fn from(e: AuthError) -> Self {
        ApiStartError::Auth(Box::new(e))
    }
}

/// Write the configured users to the users database.
fn seed_users(config: &Config, auth: &AuthStore) -> Result<(), ApiStartError> {
    let now = crate::util::unix_now_ms();
    let mut weak = Vec::new();
    for u in &config.users {
        let seed_error = |source| ApiStartError::Seed {
            file: config.source_path.display().to_string(),
            user: u.username.clone(),
            source: Box::new(source),
        };
        let role: Role = u.role.parse().map_err(|_| {
            seed_error(AuthError::BadRequest(format!(
                "unknown role {:?}: expected agent, supervisor or admin",
                u.role
            )))
        })?;
        let credential = match (&u.password, &u.password_hash) {
            (Some(p), None) => Credential::Password(p.clone()),
            (None, Some(h)) => Credential::PasswordHash(h.clone()),
            _ => {
                return Err(seed_error(AuthError::BadRequest(
                    "give exactly one of password and password_hash".into(),
                )))
            }
        };
        let user = NewUser {
            username: u.username.clone(),
            display_name: if u.display_name.is_empty() {
                u.username.clone()
            } else {
                u.display_name.clone()
            },
            role,
            tenant: u.tenant.clone(),
            agent_id: u.agent_id.clone(),
            credential,
            disabled: u.disabled,
            allow_weak: u.allow_weak,
        };
        match auth.upsert_user(&user, now).map_err(seed_error)? {
            Upserted::Created => {
                info!(user = %u.username, role = %role, tenant = %u.tenant, "API user created")
            }
            Upserted::Updated => {
                info!(user = %u.username, "API user updated from the configuration")
            }
            Upserted::Unchanged => {}
        }
        if u.allow_weak && u.password.is_some() {
            weak.push(u.username.as_str());
        }
    }
    if !weak.is_empty() {
        warn!(users = %weak.join(", "), "API users with weak demo passwords: give them password_hash in production");
    }
    Ok(())
}

/// The `/api/v1` state: users (seeded), records, outbox, and the calls
/// the CTI operations act on.
pub fn start(
    config: &Config,
    outbox: Arc<Outbox>,
    calls: Arc<crate::call::CallContext>,
    live: Arc<crate::call::record::CallRecords>,
    blocks: crate::api::blocklist::BlockAdmin,
    roster: Arc<dyn crate::api::handles::RosterAdmin>,
) -> Result<ApiState, ApiStartError> {
    // `[store] url` set: the shared PostgreSQL database, so a token issued
    // by one node is accepted by every other; else `[data] dir`/auth.db.
    let auth = Arc::new(AuthStore::configured(
        config.store.url.as_deref(),
        &config.data.dir,
    )?);
    seed_users(config, &auth)?;
    // Supervisors joining calls from their phones are audited too.
    let sink = auth.clone();
    let _ = calls
        .audit
        .set(Arc::new(move |line: crate::call::AuditLine| {
            let auth = sink.clone();
            tokio::task::spawn_blocking(move || {
                let actor = crate::auth::Principal {
                    user: line.actor.clone(),
                    role: Role::Supervisor,
                    tenant: line.tenant.clone(),
                    agent_id: None,
                };
                let now = crate::util::unix_now_ms();
                if let Err(e) = auth.audit_in(
                    now,
                    &actor,
                    &line.tenant,
                    &line.action,
                    &line.target,
                    &line.detail,
                ) {
                    tracing::warn!(error = %e, ?line, "audit log write failed");
                }
            });
        }));
    let records = RecordStore::configured(config.store.url.as_deref(), &config.events_db_path())?;
    let recordings_dir = config.recording.enabled.then(|| {
        config
            .recording
            .dir
            .clone()
            .unwrap_or_else(|| config.data.dir.join("recordings"))
    });
    // With a shared store, downloads of files another node made go to it.
    let cluster = blocks.store.is_shared().then(|| blocks.store.clone());
    Ok(ApiState {
        auth,
        records: Arc::new(records),
        outbox,
        recordings_dir,
        voicemail_dir: config.ivr.voicemail_dir(&config.data.dir),
        sealing_key: crate::media::at_rest::SealingKey::load_optional(
            config.recording.encryption_key_file.as_deref(),
        )?,
        utc_offset_minutes: config.recording.utc_offset_minutes,
        token_ttl: Duration::from_secs(config.api.token_hours.max(1) * 3600),
        login_slots: Arc::new(tokio::sync::Semaphore::new(
            config.api.login_concurrency.max(1),
        )),
        cti: Some(Arc::new(Cti {
            calls,
            roster: roster.roster(),
            config: roster.config(),
            messages: tokio::sync::broadcast::channel(256).0,
        })),
        records_live: Some(live),
        flows: Some(Arc::new(crate::app::handles::FlowHistoryAdmin {
            store: blocks.store.clone(),
            config: roster.config(),
        })),
        blocks: Some(Arc::new(blocks)),
        roster: Some(roster),
        cluster,
    })
}

/// Run the retention purge a minute after start, then every
/// `[retention] purge_every_hours`; expired login sessions go too.
pub fn spawn_retention(config: &Config, state: &ApiState, stop: CancellationToken) {
    let policy = RetentionPolicy {
        default_days: config.retention.days,
        tenants: config
            .tenants
            .iter()
            .filter_map(|t| Some((t.id.clone(), t.retention_days?)))
            .collect(),
    };
    let every = Duration::from_secs(config.retention.purge_every_hours.max(1) * 3600);
    let state = state.clone();
    tokio::spawn(async move {
        let mut next = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep_until(next) => {}
            }
            next += every;
            let (s, policy) = (state.clone(), policy.clone());
            let done = tokio::task::spawn_blocking(move || {
                let now = crate::util::unix_now_ms();
                if let Err(e) = s.auth.purge_expired(now) {
                    warn!(error = %e, "expired sessions not purged");
                }
                retention::purge(
                    &s.outbox,
                    s.recordings_dir.as_deref(),
                    &s.voicemail_dir,
                    &policy,
                    now,
                )
            })
            .await;
            match done {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => warn!(error = %e, "retention purge failed; retried at the next run"),
                Err(e) => warn!(error = %e, "retention purge task failed"),
            }
        }
    });
}

//! The follow-up campaign runner (回访, issue 18 §3): one task holding the
//! campaigns still dialling, driven by the pure scheduler
//! ([`crate::acd::campaign::plan`]). Inside a campaign's calling window
//! (a configured `[ivr]` schedule: the centre's working hours, holidays
//! and 调休) it hands each due item to the ACD as a one-attempt callback
//! of the campaign's skill group: the ACD rings an idle agent first (the
//! agent's phone shows the number), then the citizen is dialled through
//! the tenant's trunk with its caller ID, bridged and recorded like every
//! callback (`callback`, `task::agent_first`). Each attempt's outcome
//! ([`Campaigns::callback_result`], from the callback's task) updates the
//! item; an unanswered one is redialled after the campaign's spacing,
//! again only inside the window, until its attempts are used up or its
//! due time (24 h, 1 h for emergencies) passes.
//!
//! Agent preview: while a follow-up's callback rings the agent, the
//! phone's display shows `回访 <ticket id>` ([`Campaigns::preview`]).
//!
//! Every change is kept in the store (`store::campaigns`) before the ACD
//! hears of a release, so a restart redials no item: the ACD keeps its
//! callbacks, their results find their items again. At start each item under
//! way is handed to the ACD again under its callback id: the ACD refuses
//! the ones it kept, and queues one a crash took before it was kept.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tokio::sync::{mpsc, oneshot};
use tracing::{info, warn};

use super::queue::Queues;
use crate::acd::campaign::{plan, Item, ItemState, RedialPolicy};
use crate::acd::CallId;
use crate::store::{CampaignRow, Store};
use crate::time::Time;

/// Whether a named schedule is open at a time (`None`: no such schedule).
pub type WindowCheck = Arc<dyn Fn(&str, Time) -> Option<bool> + Send + Sync>;

/// Most items one campaign holds.
pub const MAX_ITEMS: usize = 10_000;

/// One item as asked for.
#[derive(Debug, Clone)]
pub struct ItemSpec {
    pub number: String,
    pub ticket_id: String,
    pub emergency: bool,
    /// When the ticket was closed (or made): the 24 h / 1 h start.
    pub ticket_at: Option<Time>,
    /// An explicit due time (overrides the rules).
    pub due_by: Option<Time>,
}

/// A campaign as asked for.
#[derive(Debug, Clone)]
pub struct NewCampaign {
    pub tenant: String,
    pub group: String,
    /// The calling window: a configured schedule's name.
    pub schedule: String,
    pub redial: RedialPolicy,
    /// Most items dialling at once.
    pub concurrency: usize,
    pub items: Vec<ItemSpec>,
}

/// A campaign and its items, as kept.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Campaign {
    pub id: String,
    pub tenant: String,
    pub group: String,
    pub schedule: String,
    pub redial: RedialPolicy,
    pub concurrency: usize,
    pub created: Time,
    pub cancelled: bool,
    pub items: Vec<Item>,
}

impl Campaign {
    /// Whether anything is left to dial or to hear back.
    pub fn active(&self) -> bool {
        self.items.iter().any(|i| !i.state.is_final())
    }

    /// The campaign as the API shows it: its items' states, attempts (each
    /// with the call record of the attempt), and counts by state.
    pub fn view(&self) -> Value {
        let mut counts = serde_json::Map::new();
        for s in ItemState::ALL {
            let n = self.items.iter().filter(|i| i.state == s).count();
            counts.insert(s.key().to_string(), json!(n));
        }
        let items: Vec<Value> = self
            .items
            .iter()
            .map(|i| {
                let attempts: Vec<Value> = i
                    .outcomes
                    .iter()
                    .map(|o| {
                        json!({
                            "record": record_id(o.callback),
                            "answered": o.answered,
                            "at": o.at.to_string(),
                        })
                    })
                    .collect();
                json!({
                    "number": i.number,
                    "ticket_id": i.ticket_id,
                    "emergency": i.emergency,
                    "due_by": i.due_by.to_string(),
                    "state": i.state.key(),
                    "attempts": i.outcomes.len(),
                    "outcomes": attempts,
                    "dialling_record": i.callback.map(record_id),
                })
            })
            .collect();
        json!({
            "id": self.id,
            "tenant": self.tenant,
            "group": self.group,
            "schedule": self.schedule,
            "redial": {
                "attempts": self.redial.attempts,
                "spacing_secs": self.redial.spacing.as_secs_f64(),
            },
            "concurrency": self.concurrency,
            "created_at": self.created.to_string(),
            "cancelled": self.cancelled,
            "active": self.active(),
            "counts": counts,
            "items": items,
        })
    }

    fn row(&self) -> Result<CampaignRow, CampaignError> {
        Ok(CampaignRow {
            id: self.id.clone(),
            tenant: self.tenant.clone(),
            created_ms: i64::try_from(self.created.unix_millis()).unwrap_or(i64::MAX),
            active: self.active(),
            body: serde_json::to_string(self).map_err(|e| CampaignError::Store(e.to_string()))?,
        })
    }
}

/// The call record of a campaign attempt (`callback::callback_call_id`:
/// a campaign's callback makes one attempt).
fn record_id(callback: u64) -> String {
    format!("callback-{callback}-1")
}

/// Why a campaign request failed.
#[derive(Debug, thiserror::Error)]
pub enum CampaignError {
    /// No campaign by that id.
    #[error("no campaign {0:?}")]
    Unknown(String),
    /// The campaign would hold more than [`MAX_ITEMS`].
    #[error("a campaign holds at most {MAX_ITEMS} items")]
    TooMany,
    /// The store failed.
    #[error("the campaign store: {0}")]
    Store(String),
    /// The runner is not running.
    #[error("the campaign runner is not running")]
    Stopped,
}

type Reply = oneshot::Sender<Result<Campaign, CampaignError>>;

enum Msg {
    Create(NewCampaign, Reply),
    Add(String, Vec<ItemSpec>, Reply),
    Get(String, Reply),
    Cancel(String, Reply),
    Result { callback: u64, answered: bool },
}

/// Handle on the campaign runner; cheap to clone.
#[derive(Clone)]
pub struct Campaigns {
    tx: mpsc::UnboundedSender<Msg>,
    window: WindowCheck,
    previews: Previews,
}

/// The ticket of each follow-up callback under way, for the agent's
/// phone (agent preview).
type Previews = Arc<dashmap::DashMap<u64, String>>;

impl Campaigns {
    /// Start the runner over `queues` and `store` (the active campaigns
    /// read back first), windows checked by `window`.
    pub async fn start(
        queues: Queues,
        store: Store,
        window: WindowCheck,
    ) -> Result<Self, crate::store::StoreError> {
        let kept = {
            let store = store.clone();
            tokio::task::spawn_blocking(move || store.active_campaigns())
                .await
                .unwrap_or_else(|_| Ok(Vec::new()))?
        };
        let previews = Previews::default();
        let mut runner = Runner {
            campaigns: BTreeMap::new(),
            by_callback: HashMap::new(),
            previews: previews.clone(),
            queues,
            store,
            window: window.clone(),
        };
        for row in kept {
            match serde_json::from_str::<Campaign>(&row.body) {
                Ok(c) => runner.hold(c),
                Err(e) => {
                    warn!(campaign = %row.id, error = %e, "an unreadable campaign is skipped")
                }
            }
        }
        runner.hand_over_again().await;
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(runner.run(rx));
        Ok(Self {
            tx,
            window,
            previews,
        })
    }

    /// What the agent's phone shows for callback `callback` if it is a
    /// follow-up: `回访 <ticket id>` (the agent previews the ticket
    /// before the citizen is dialled).
    pub fn preview(&self, callback: CallId) -> Option<String> {
        let ticket = self.previews.get(&callback.0)?;
        // A quoted display name: no quotes, backslashes or controls.
        let ticket: String = ticket
            .chars()
            .filter(|c| !matches!(c, '"' | '\\') && !c.is_control())
            .collect();
        Some(format!("回访 {ticket}"))
    }

    /// Whether a schedule (a calling window) by that name is configured.
    pub fn knows_schedule(&self, name: &str) -> bool {
        (self.window)(name, crate::util::now()).is_some()
    }

    async fn ask(&self, msg: impl FnOnce(Reply) -> Msg) -> Result<Campaign, CampaignError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(msg(reply))
            .map_err(|_| CampaignError::Stopped)?;
        rx.await.unwrap_or(Err(CampaignError::Stopped))
    }

    /// Make a campaign (kept before this returns).
    pub async fn create(&self, new: NewCampaign) -> Result<Campaign, CampaignError> {
        self.ask(|r| Msg::Create(new, r)).await
    }

    /// Add items to campaign `id`.
    pub async fn add(&self, id: &str, items: Vec<ItemSpec>) -> Result<Campaign, CampaignError> {
        self.ask(|r| Msg::Add(id.to_string(), items, r)).await
    }

    /// Campaign `id` as it is now.
    pub async fn get(&self, id: &str) -> Result<Campaign, CampaignError> {
        self.ask(|r| Msg::Get(id.to_string(), r)).await
    }

    /// Cancel campaign `id`: nothing more is dialled (an attempt under
    /// way finishes and is recorded).
    pub async fn cancel(&self, id: &str) -> Result<Campaign, CampaignError> {
        self.ask(|r| Msg::Cancel(id.to_string(), r)).await
    }

    /// A callback's attempt ended (every callback's; the runner keeps
    /// those of its items).
    pub fn callback_result(&self, callback: CallId, answered: bool) {
        self.tx
            .send(Msg::Result {
                callback: callback.0,
                answered,
            })
            .ok();
    }
}

struct Runner {
    /// The active campaigns by id.
    campaigns: BTreeMap<String, Campaign>,
    /// The campaign of each callback under way.
    by_callback: HashMap<u64, String>,
    /// The ticket of each callback under way (shared with the handle).
    previews: Previews,
    queues: Queues,
    store: Store,
    window: WindowCheck,
}

impl Runner {
    fn hold(&mut self, c: Campaign) {
        for i in &c.items {
            if let Some(cb) = i.callback {
                self.by_callback.insert(cb, c.id.clone());
                self.previews.insert(cb, i.ticket_id.clone());
            }
        }
        self.campaigns.insert(c.id.clone(), c);
    }

    /// At start: the callback of each item under way, to the ACD again.
    /// The ACD refuses the ones it kept (a duplicate); one a crash took
    /// before the ACD kept it is queued again under its own id.
    async fn hand_over_again(&self) {
        for c in self.campaigns.values() {
            for i in &c.items {
                let (Some(cb), ItemState::Dialling) = (i.callback, i.state) else {
                    continue;
                };
                self.queues.number_after(CallId(cb));
                let again = self
                    .queues
                    .try_input(follow_up(CallId(cb), &c.group, &i.number))
                    .await;
                if again.is_ok() {
                    info!(campaign = %c.id, callback = cb, "a follow-up the ACD had not kept is queued again");
                }
            }
        }
    }

    async fn run(mut self, mut rx: mpsc::UnboundedReceiver<Msg>) {
        loop {
            let now = crate::util::now();
            let wake = self.tick(now).await;
            // Windows open on the minute: look again at the next one.
            let minute = Time::from_unix_millis((now.unix_millis() / 60_000 + 1) * 60_000);
            let wake = wake.map_or(minute, |w| w.min(minute));
            let nap = wake
                .saturating_duration_since(now)
                .max(Duration::from_millis(20));
            tokio::select! {
                msg = rx.recv() => match msg {
                    Some(msg) => self.handle(msg).await,
                    None => break,
                },
                _ = tokio::time::sleep(nap) => {}
            }
        }
    }

    /// Release what is due, expire what is late; when to look again.
    async fn tick(&mut self, now: Time) -> Option<Time> {
        let mut wake: Option<Time> = None;
        let ids: Vec<String> = self.campaigns.keys().cloned().collect();
        for id in ids {
            let Some(c) = self.campaigns.get_mut(&id) else {
                continue;
            };
            let open = !c.cancelled && (self.window)(&c.schedule, now).unwrap_or(false);
            let p = plan(&c.items, open, now, c.concurrency);
            if let Some(at) = p.wake_at {
                wake = Some(wake.map_or(at, |w| w.min(at)));
            }
            if p.release.is_empty() && p.expire.is_empty() {
                continue;
            }
            for &n in &p.expire {
                c.items[n].state = ItemState::Expired;
                info!(campaign = %id, ticket = %c.items[n].ticket_id, "follow-up expired past its due time");
            }
            let mut calls = Vec::new();
            for &n in &p.release {
                let call = self.queues.new_call_id();
                c.items[n].released(call.0);
                self.by_callback.insert(call.0, id.clone());
                self.previews.insert(call.0, c.items[n].ticket_id.clone());
                calls.push((call, c.items[n].number.clone()));
            }
            let (group, c) = (c.group.clone(), c.clone());
            // Kept before the ACD hears of it: a restart never redials.
            self.save(&c).await;
            for (call, number) in calls {
                info!(campaign = %id, %call, %number, "follow-up released to the ACD");
                self.queues.input(follow_up(call, &group, &number));
            }
            self.settle(&id);
        }
        wake
    }

    /// Drop a finished campaign from memory.
    fn settle(&mut self, id: &str) {
        if self.campaigns.get(id).is_some_and(|c| !c.active()) {
            self.campaigns.remove(id);
        }
    }

    /// Keep `c` (a failure is logged: the campaign goes on in memory).
    async fn save(&self, c: &Campaign) {
        if let Err(e) = self.write(c).await {
            warn!(campaign = %c.id, error = %e, "campaign not kept");
        }
    }

    /// Write `c` to the store (on the blocking pool).
    async fn write(&self, c: &Campaign) -> Result<(), CampaignError> {
        let row = c.row()?;
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || store.save_campaign(&row))
            .await
            .map_err(|e| CampaignError::Store(e.to_string()))?
            .map_err(|e| CampaignError::Store(e.to_string()))
    }

    async fn load(&self, id: &str) -> Result<Campaign, CampaignError> {
        if let Some(c) = self.campaigns.get(id) {
            return Ok(c.clone());
        }
        let store = self.store.clone();
        let key = id.to_string();
        let row = tokio::task::spawn_blocking(move || store.campaign(&key))
            .await
            .map_err(|e| CampaignError::Store(e.to_string()))?
            .map_err(|e| CampaignError::Store(e.to_string()))?
            .ok_or_else(|| CampaignError::Unknown(id.to_string()))?;
        serde_json::from_str(&row.body).map_err(|e| CampaignError::Store(e.to_string()))
    }

    async fn handle(&mut self, msg: Msg) {
        let now = crate::util::now();
        match msg {
            Msg::Create(new, reply) => {
                let r = self.create(new, now).await;
                reply.send(r).ok();
            }
            Msg::Add(id, specs, reply) => {
                let r = self.add(&id, specs, now).await;
                reply.send(r).ok();
            }
            Msg::Get(id, reply) => {
                reply.send(self.load(&id).await).ok();
            }
            Msg::Cancel(id, reply) => {
                let r = self.cancel(&id).await;
                reply.send(r).ok();
            }
            Msg::Result { callback, answered } => {
                let Some(id) = self.by_callback.remove(&callback) else {
                    return;
                };
                self.previews.remove(&callback);
                let Some(c) = self.campaigns.get_mut(&id) else {
                    return;
                };
                let policy = c.redial;
                for i in c.items.iter_mut() {
                    if i.attempt_done(callback, answered, now, policy) {
                        if c.cancelled && i.state == ItemState::Waiting {
                            i.state = ItemState::Cancelled;
                        }
                        info!(campaign = %id, ticket = %i.ticket_id, answered, attempts = i.attempts, state = i.state.key(), "follow-up attempt ended");
                    }
                }
                let c = c.clone();
                self.save(&c).await;
                self.settle(&id);
            }
        }
    }

    async fn create(&mut self, new: NewCampaign, now: Time) -> Result<Campaign, CampaignError> {
        if new.items.len() > MAX_ITEMS {
            return Err(CampaignError::TooMany);
        }
        let id = format!("fu-{}-{:08x}", now.unix_millis(), rand::random::<u32>());
        let c = Campaign {
            id,
            tenant: new.tenant,
            group: new.group,
            schedule: new.schedule,
            redial: new.redial,
            concurrency: new.concurrency.max(1),
            created: now,
            cancelled: false,
            items: new.items.into_iter().map(|s| item(s, now)).collect(),
        };
        self.keep(c).await
    }

    async fn add(
        &mut self,
        id: &str,
        specs: Vec<ItemSpec>,
        now: Time,
    ) -> Result<Campaign, CampaignError> {
        let mut c = self.load(id).await?;
        if c.items.len() + specs.len() > MAX_ITEMS {
            return Err(CampaignError::TooMany);
        }
        if c.cancelled {
            return Ok(c);
        }
        c.items.extend(specs.into_iter().map(|s| item(s, now)));
        self.keep(c).await
    }

    async fn cancel(&mut self, id: &str) -> Result<Campaign, CampaignError> {
        let mut c = self.load(id).await?;
        c.cancelled = true;
        for i in c.items.iter_mut() {
            if i.state == ItemState::Waiting {
                i.state = ItemState::Cancelled;
            }
        }
        self.keep(c).await
    }

    /// Keep `c` in the store, then hold it while it is active.
    async fn keep(&mut self, c: Campaign) -> Result<Campaign, CampaignError> {
        self.write(&c).await?;
        self.hold(c.clone());
        self.settle(&c.id);
        Ok(c)
    }
}

/// A follow-up's callback `call` to `number` in `group`: one attempt (the
/// campaign redials on its own schedule).
fn follow_up(call: CallId, group: &str, number: &str) -> crate::acd::Input {
    crate::acd::Input::ScheduleCallback {
        call,
        group: group.to_string(),
        number: number.to_string(),
        priority: 0,
        max_attempts: Some(1),
    }
}

fn item(s: ItemSpec, now: Time) -> Item {
    Item::new(
        s.number,
        s.ticket_id,
        s.emergency,
        s.ticket_at,
        s.due_by,
        now,
    )
}

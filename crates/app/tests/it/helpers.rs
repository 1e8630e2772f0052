//! Shared test plumbing: the test-only keys, the Antom simulator on a loopback port, a fresh store
//! (a temp SQLite file or a fresh PostgreSQL database), the read models kept up to date by the
//! projection runner, and a ledger wired to all of them.

use std::sync::Arc;
use std::time::Duration;

use apo::{ApoClient, ApoConfig, RetryPolicy};
use apo_sim::{PaymentSeed, SimConfig, SimServer, Simulator};
use app::{CapturePaymentInput, Clock, Ledger, ManualClock, RecordPaymentInput, RefundGateway, RefundInput};
use domain::{Money, PaymentId, PaymentMethodType, Policy, RefundRequestId, ResultCode, ResultStatus};
use eventlog::{EventStore, PostgresOptions, PostgresStore, SqliteStore};
use projections::{PostgresReadModels, ProjectionRunner, ProjectionStore, ReadModels, RunnerHandle, SqliteReadModels};
use testkit::antom::{Keys, keys};
use testkit::postgres::ScratchDatabase;
use time::OffsetDateTime;

pub(crate) use testkit::antom::CLIENT_ID;
/// How long a test waits for something asynchronous (a notification, the read models).
pub(crate) const WAIT_MS_MAX: u64 = 15_000;
/// The ledger's timeout on Antom calls: short, so "timeout" faults resolve fast.
const APO_REQUEST_TIMEOUT_MS: u64 = 500;

/// Which event store a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Backend {
    Sqlite,
    Postgres,
}

enum Database {
    /// The temp directory (removed on drop) and the SQLite file go with it.
    Sqlite { dir: tempfile::TempDir },
    /// A scratch database, dropped with the harness.
    Postgres(ScratchDatabase),
}

/// A ledger on a fresh store, with read models, the simulator as Antom and a clock the test moves.
pub(crate) struct Harness {
    pub(crate) ledger: Ledger,
    pub(crate) store: Arc<dyn EventStore>,
    pub(crate) read_models: Arc<dyn ReadModels>,
    pub(crate) clock: ManualClock,
    pub(crate) sim: SimServer,
    pub(crate) keys: Keys,
    runner: Runner,
    database: Database,
}

/// The projection runner keeping the read models up to date, and its stop signal.
struct Runner {
    handle: RunnerHandle,
    stop: tokio::sync::oneshot::Sender<()>,
}

pub(crate) fn sim_config(keys: &Keys) -> SimConfig {
    let mut config = SimConfig::new(CLIENT_ID, keys.merchant_public.clone(), keys.antom_private.clone());
    config.settle_ms = 200;
    config.notify_compression = 120_000;
    config.notify_timeout_ms = 2_000;
    config.seed = 7;
    config.faults.timeout_hold_ms = 1_500;
    config
}

impl Harness {
    pub(crate) async fn start(backend: Backend) -> Self {
        Self::start_with(backend, |_| {}).await
    }

    /// Starts with the simulator configured by `configure`.
    pub(crate) async fn start_with(backend: Backend, configure: impl FnOnce(&mut SimConfig)) -> Self {
        let keys = keys();
        let mut config = sim_config(&keys);
        configure(&mut config);
        let sim = SimServer::start(config, "127.0.0.1:0".parse().expect("loopback"))
            .await
            .expect("simulator starts");
        let (store, database) = open_store(backend).await;
        let (read_models, runner) = start_read_models(&store, &database).await;
        let clock = ManualClock::new(OffsetDateTime::now_utc());
        Self {
            ledger: Ledger::new(
                Arc::clone(&store),
                Arc::clone(&read_models),
                gateway(&sim, &keys),
                Policy::default(),
                Arc::new(clock.clone()),
            ),
            store,
            read_models,
            clock,
            sim,
            keys,
            runner,
            database,
        }
    }

    /// A second ledger on `store` (another handle, as another server instance would hold).
    pub(crate) fn ledger_on(&self, store: Arc<dyn EventStore>) -> Ledger {
        self.ledger_with(store, gateway(&self.sim, &self.keys))
    }

    /// A ledger on `store` that calls Antom through `gateway`.
    pub(crate) fn ledger_with(&self, store: Arc<dyn EventStore>, gateway: Arc<dyn RefundGateway>) -> Ledger {
        Ledger::new(
            store,
            Arc::clone(&self.read_models),
            gateway,
            Policy::default(),
            Arc::new(self.clock.clone()),
        )
    }

    /// A ledger on the harness's store deciding under `policy`.
    pub(crate) fn ledger_with_policy(&self, policy: Policy) -> Ledger {
        Ledger::new(
            Arc::clone(&self.store),
            Arc::clone(&self.read_models),
            gateway(&self.sim, &self.keys),
            policy,
            Arc::new(self.clock.clone()),
        )
    }

    /// Another handle on the same database (PostgreSQL only: SQLite is one process's file).
    pub(crate) async fn second_store(&self) -> Arc<dyn EventStore> {
        match &self.database {
            Database::Postgres(database) => {
                let store = PostgresStore::connect_with(database.config(), PostgresOptions::default())
                    .await
                    .expect("second postgres handle");
                Arc::new(store)
            }
            Database::Sqlite { .. } => Arc::clone(&self.store),
        }
    }

    pub(crate) fn simulator(&self) -> &Simulator {
        self.sim.simulator()
    }

    /// A captured CARD payment of `amount` USD minor units, paid an hour ago, known to the ledger and
    /// to the simulator.
    pub(crate) async fn payment(&self, id: &str, amount: u64) -> PaymentId {
        self.payment_through(&self.ledger, id, amount).await
    }

    /// [`Harness::payment`], recorded and captured through `ledger` (another instance, say).
    pub(crate) async fn payment_through(&self, ledger: &Ledger, id: &str, amount: u64) -> PaymentId {
        let payment_id = payment_id(id);
        let paid_at = self.clock.now() - time::Duration::hours(1);
        let recorded = ledger
            .record_payment(
                "test",
                RecordPaymentInput {
                    payment_id: payment_id.clone(),
                    payment_amount: usd(amount),
                    payment_method_type: card(),
                    payment_time: paid_at,
                    capture_required: None,
                },
            )
            .await
            .expect("record payment");
        assert_eq!(recorded.result.status, ResultStatus::S, "{:?}", recorded.result);
        let captured = ledger
            .capture_payment(
                "test",
                CapturePaymentInput {
                    payment_id: payment_id.clone(),
                    capture_id: None,
                    capture_amount: usd(amount),
                    capture_time: paid_at,
                },
            )
            .await
            .expect("capture payment");
        assert_eq!(captured.result.status, ResultStatus::S, "{:?}", captured.result);
        self.simulator()
            .seed_payment(PaymentSeed::captured(payment_id.clone(), usd(amount), card(), paid_at))
            .expect("seed the simulator");
        payment_id
    }

    /// Waits until the read models have applied `position`.
    pub(crate) async fn caught_up(&self, position: u64) {
        let reached = self
            .read_models
            .wait_for_position(position, Duration::from_millis(WAIT_MS_MAX))
            .await
            .expect("wait for the read models");
        assert!(reached, "read models did not reach position {position}");
    }

    /// Moves the clock past the worker's "older than" and waits for the read models to hold the log.
    pub(crate) async fn age_refunds(&self) {
        self.clock.advance(time::Duration::minutes(1));
        let head = self.store.head().await.expect("head").position;
        self.caught_up(head).await;
    }

    /// Stops the simulator and the runner; the store goes with the harness (the SQLite file with its temp
    /// dir, the PostgreSQL scratch database when it drops).
    pub(crate) async fn finish(self) {
        let Self { sim, runner, .. } = self;
        sim.shutdown().await.expect("simulator stops");
        runner.stop.send(()).expect("runner still running");
        runner.handle.join().await.expect("runner stops cleanly");
    }
}

async fn open_store(backend: Backend) -> (Arc<dyn EventStore>, Database) {
    match backend {
        Backend::Sqlite => {
            let dir = tempfile::tempdir().expect("temp dir");
            let store = SqliteStore::open(dir.path().join("ledger.db"))
                .await
                .expect("open sqlite store");
            (Arc::new(store), Database::Sqlite { dir })
        }
        Backend::Postgres => {
            let database = ScratchDatabase::create("app_test");
            let store = PostgresStore::connect_with(database.config(), PostgresOptions::default())
                .await
                .expect("connect postgres store");
            (Arc::new(store), Database::Postgres(database))
        }
    }
}

/// The real read models of the store's backend, with a projection runner tailing the log.
async fn start_read_models(store: &Arc<dyn EventStore>, database: &Database) -> (Arc<dyn ReadModels>, Runner) {
    let projections: Arc<dyn ProjectionStore> = match database {
        Database::Sqlite { dir } => {
            let path = projections::read_model_path(&dir.path().join("ledger.db"));
            Arc::new(SqliteReadModels::open(path).await.expect("open sqlite read models"))
        }
        Database::Postgres(database) => Arc::new(
            PostgresReadModels::connect_with(database.config())
                .await
                .expect("connect postgres read models"),
        ),
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let handle = ProjectionRunner::start(Arc::clone(store), Arc::clone(&projections), async move {
        let _stopped = stopped.await;
    });
    (projections.into_read_models(), Runner { handle, stop })
}

/// The `apo` client pointed at the simulator, without retries (the ledger's worker is the retry).
pub(crate) fn apo_client(sim: &SimServer, keys: &Keys) -> ApoClient {
    let mut config = ApoConfig::new(
        sim.base_url(),
        CLIENT_ID,
        keys.merchant_private.clone(),
        keys.antom_public.clone(),
    );
    config.retry = RetryPolicy::none();
    config.request_timeout_ms = APO_REQUEST_TIMEOUT_MS;
    ApoClient::new(config).expect("apo client")
}

fn gateway(sim: &SimServer, keys: &Keys) -> Arc<dyn RefundGateway> {
    Arc::new(apo_client(sim, keys))
}

pub(crate) fn usd(minor_units: u64) -> Money {
    Money::parse("amount", "USD", &minor_units.to_string()).expect("valid USD amount")
}

pub(crate) fn card() -> PaymentMethodType {
    PaymentMethodType::parse("CARD").expect("valid method")
}

pub(crate) fn payment_id(id: &str) -> PaymentId {
    PaymentId::parse(id).expect("valid payment id")
}

pub(crate) fn refund_id(id: &str) -> RefundRequestId {
    RefundRequestId::parse(id).expect("valid refund request id")
}

pub(crate) fn refund_input(id: &str, payment: &PaymentId, amount: Money) -> RefundInput {
    RefundInput {
        refund_request_id: refund_id(id),
        payment_id: payment.clone(),
        refund_amount: amount,
        refund_reason: Some("customer request".to_owned()),
    }
}

/// A verified notifyRefund of the refund `id` reporting `outcome`.
pub(crate) fn refund_notification(
    id: &str,
    outcome: apo::notification::RefundNotificationOutcome,
) -> apo::notification::RefundNotification {
    apo::notification::RefundNotification {
        refund_request_id: refund_id(id),
        outcome,
        refund_amount: None,
        gross_settlement_amount: None,
        result: apo::ApoResult {
            code: ResultCode::Success,
            status: ResultStatus::S,
            message: String::new(),
        },
    }
}

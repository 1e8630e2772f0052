//! Building and running the service: `Application::build(settings)` opens
//! the store, starts the projection runner, the settle worker and (in demo
//! mode) the in-process Antom simulator, binds the listener (port 0 in
//! tests) and exposes `port()`; `run_until_stopped(shutdown)` serves until
//! the shutdown future completes, then stops every background task.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use apo::{ApoClient, ApoConfig, PrivateKey, PublicKey};
use apo_sim::{SimConfig, SimServer};
use app::{Ledger, LedgerOptions, RefundGateway, SystemClock};
use graphql::ApiContext;
use projections::ProjectionRunner;
use secrecy::{ExposeSecret, SecretString};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::auth::{ApiKey, KeyRing};
use crate::config::{DemoSimulator, Settings};
use crate::gateway::{Gateway, configured_gateway};
use crate::http::app;
use crate::metrics::{Metrics, ObservedStore};
use crate::mirror::{self, MirrorTarget, MirroredGateway};
use crate::state::{AppState, NotifyVerifier};
use crate::store;

/// The demo's client id (the test vectors' sandbox id).
const DEMO_CLIENT_ID: &str = "SANDBOX_5Y2J8K1Q0T00ABC";
/// Demo-only key pair files, compiled in so `serve --demo` needs nothing else (see deploy/demo-keys).
const DEMO_MERCHANT_PRIVATE_KEY: &str = include_str!("../../../deploy/demo-keys/merchant_private_pkcs8.pem");
const DEMO_MERCHANT_PUBLIC_KEY: &str = include_str!("../../../deploy/demo-keys/merchant_public.pem");
const DEMO_ANTOM_PRIVATE_KEY: &str = include_str!("../../../deploy/demo-keys/antom_private_pkcs8.pem");
const DEMO_ANTOM_PUBLIC_KEY: &str = include_str!("../../../deploy/demo-keys/antom_public.pem");
/// How long U refunds stay processing in the demo simulator.
const DEMO_SETTLE_MS: u64 = 3_000;
/// Share of demo refunds the simulator answers U, so the worker and notifications have work.
const DEMO_U_SHARE: f64 = 0.2;
/// Longest wait for background tasks at shutdown.
const SHUTDOWN_GRACE_MS: u64 = 10_000;

/// What `serve --demo` printed for the user.
#[derive(Debug, Clone)]
pub(crate) struct DemoInfo {
    /// The generated operator key (only when no key was configured).
    pub(crate) operator_key: Option<SecretString>,
}

/// A built, bound, not yet serving service.
pub(crate) struct Application {
    listener: TcpListener,
    router: axum::Router,
    stop: watch::Sender<bool>,
    runner: projections::RunnerHandle,
    tasks: Vec<JoinHandle<()>>,
    simulator: Option<SimServer>,
    demo: Option<DemoInfo>,
}

fn stopped(stop: &watch::Sender<bool>) -> impl Future<Output = ()> + Send + 'static {
    let mut receiver = stop.subscribe();
    async move {
        // An error means the sender is gone, which also means stop.
        let _stopped = receiver.wait_for(|stop| *stop).await;
    }
}

impl Application {
    /// Opens everything `settings` names and binds the listener.
    pub(crate) async fn build(settings: Settings, demo: bool) -> anyhow::Result<Self> {
        let listener = TcpListener::bind(settings.listen)
            .await
            .with_context(|| format!("binding {}", settings.listen))?;
        let local = listener.local_addr().context("reading the bound address")?;
        let (stop, _) = watch::channel(false);

        let event_store = store::open(&settings.store).await?;
        let projection_store = store::open_projection_store(&settings).await?;
        let runner = ProjectionRunner::start(event_store.clone(), projection_store.clone(), stopped(&stop));
        let read_models = projection_store.clone().into_read_models();

        let metrics = Metrics::new();
        let notify_url = format!("http://{local}{}", settings.notify_path);
        let (client, verifier, simulator) = if demo {
            demo_gateway(&notify_url, settings.demo_simulator).await?
        } else {
            configured_gateway(&settings)?
        };
        let client = client.with_observer(Arc::new(metrics.clone()));

        let mut tasks = Vec::new();
        let mirror_target = match (&simulator, &settings.simulator_admin_url) {
            (Some(server), _) => Some(MirrorTarget::InProcess(server.simulator().clone())),
            (None, Some(base_url)) => Some(MirrorTarget::Admin {
                base_url: base_url.trim_end_matches('/').to_owned(),
                client: reqwest::Client::new(),
            }),
            (None, None) => None,
        };
        let gateway: Arc<dyn RefundGateway> = match mirror_target {
            Some(target) => {
                let (task, mirrored) = mirror::spawn(event_store.clone(), target, stopped(&stop));
                tasks.push(task);
                Arc::new(MirroredGateway::new(client, event_store.clone(), mirrored))
            }
            None => Arc::new(client),
        };
        let options = LedgerOptions {
            settle_after: Duration::from_secs(settings.settle_after_seconds),
            refund_notify_url: demo.then(|| notify_url.clone()),
            ..LedgerOptions::default()
        };
        let ledger = Ledger::new(
            ObservedStore::wrap(event_store.clone(), metrics.clone()),
            read_models.clone(),
            gateway,
            settings.policy.clone(),
            Arc::new(SystemClock),
        )
        .with_observer(Arc::new(metrics.clone()))
        .with_options(options)
        .context("ledger options")?;
        tasks.push(ledger.spawn_worker(Duration::from_millis(settings.worker_interval_ms), stopped(&stop)));

        let mut api_keys = settings.api_keys.clone();
        let demo_info = demo.then(|| demo_keys(&mut api_keys)).transpose()?;
        let context = ApiContext {
            ledger: ledger.clone(),
            read_models: read_models.clone(),
            store: event_store.clone(),
            projections: projection_store,
            wait_for_position_max: Duration::from_millis(settings.wait_for_position_ms_max),
        };
        let schema = graphql::build(context, settings.query_limits);
        let state = AppState {
            schema,
            keys: Arc::new(KeyRing::new(api_keys)),
            ledger,
            store: event_store,
            read_models,
            notify: verifier,
            metrics,
            documents: Arc::default(),
            accounts: settings.accounts.clone(),
            body_bytes_max: settings.body_bytes_max,
            report_bytes_max: settings.report_bytes_max,
        };
        let router = app(state, &settings.notify_path);
        Ok(Self {
            listener,
            router,
            stop,
            runner,
            tasks,
            simulator,
            demo: demo_info,
        })
    }

    /// The bound port.
    pub(crate) fn port(&self) -> u16 {
        self.listener.local_addr().map(|address| address.port()).unwrap_or(0)
    }

    /// What demo mode generated, if anything.
    pub(crate) fn demo(&self) -> Option<&DemoInfo> {
        self.demo.as_ref()
    }

    /// Serves until `shutdown` completes, then stops the worker, the runner and the simulator.
    pub(crate) async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let Self {
            listener,
            router,
            stop,
            runner,
            tasks,
            simulator,
            ..
        } = self;
        let served = axum::serve(listener, router).with_graceful_shutdown(shutdown).await;
        stop.send_replace(true);
        let grace = Duration::from_millis(SHUTDOWN_GRACE_MS);
        for task in tasks {
            if tokio::time::timeout(grace, task).await.is_err() {
                tracing::warn!("a background task did not stop in time");
            }
        }
        match tokio::time::timeout(grace, runner.join()).await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => tracing::error!(error = %error, "projection runner ended with an error"),
            Err(_) => tracing::warn!("projection runner did not stop in time"),
        }
        if let Some(simulator) = simulator {
            simulator.shutdown().await.context("stopping the simulator")?;
        }
        served.context("serving HTTP")
    }
}

async fn demo_gateway(notify_url: &str, behaviour: DemoSimulator) -> anyhow::Result<Gateway> {
    let merchant_private = PrivateKey::from_pem_or_base64(DEMO_MERCHANT_PRIVATE_KEY)?;
    let merchant_public = PublicKey::from_pem_or_base64(DEMO_MERCHANT_PUBLIC_KEY)?;
    let antom_private = PrivateKey::from_pem_or_base64(DEMO_ANTOM_PRIVATE_KEY)?;
    let antom_public = PublicKey::from_pem_or_base64(DEMO_ANTOM_PUBLIC_KEY)?;
    let mut config = SimConfig::new(DEMO_CLIENT_ID, merchant_public, antom_private);
    config.notify_url = Some(notify_url.to_owned());
    config.settle_ms = DEMO_SETTLE_MS;
    config.faults.u_share = DEMO_U_SHARE;
    if behaviour == DemoSimulator::Benchmark {
        config = config.benchmark();
    }
    let server = SimServer::start(config, "127.0.0.1:0".parse()?)
        .await
        .context("starting the demo Antom simulator")?;
    let client = ApoClient::new(ApoConfig::new(
        server.base_url(),
        DEMO_CLIENT_ID,
        merchant_private,
        antom_public.clone(),
    ))?;
    let verifier = NotifyVerifier {
        antom_public_key: antom_public,
        client_id: DEMO_CLIENT_ID.to_owned(),
        clock_skew_max_ms: 300_000,
    };
    Ok((client, verifier, Some(server)))
}

/// In demo mode without a configured operator key, makes one up and returns it for printing.
fn demo_keys(api_keys: &mut Vec<ApiKey>) -> anyhow::Result<DemoInfo> {
    if api_keys.iter().any(|key| key.role() >= graphql::Role::Operator) {
        return Ok(DemoInfo { operator_key: None });
    }
    let secret = SecretString::from(format!("demo-{}", uuid::Uuid::new_v4().simple()));
    api_keys.push(ApiKey::from_secret("demo-operator", graphql::Role::Admin, &secret)?);
    debug_assert!(!secret.expose_secret().is_empty());
    Ok(DemoInfo {
        operator_key: Some(secret),
    })
}

//! Running the simulator on a socket: bind (port 0 in tests), serve, and
//! stop gracefully when asked. Startup is testable the zero2prod way: the
//! caller gets the bound address back before any request is made.

use std::net::SocketAddr;

use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::config::SimConfig;
use crate::error::SimError;
use crate::simulator::Simulator;

/// A simulator serving HTTP on a bound socket.
#[derive(Debug)]
pub struct SimServer {
    simulator: Simulator,
    local_addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<std::io::Result<()>>,
}

impl SimServer {
    /// Builds a simulator from `config` and serves it on `addr` (use port 0 for a free port).
    pub async fn start(config: SimConfig, addr: SocketAddr) -> Result<Self, SimError> {
        Self::serve(Simulator::new(config)?, addr).await
    }

    /// Serves an existing simulator on `addr`.
    pub async fn serve(simulator: Simulator, addr: SocketAddr) -> Result<Self, SimError> {
        let listen_error = |source| SimError::Listen {
            addr: addr.to_string(),
            source,
        };
        let listener = TcpListener::bind(addr).await.map_err(listen_error)?;
        let local_addr = listener.local_addr().map_err(listen_error)?;
        let (stop, stopped) = oneshot::channel::<()>();
        let app = simulator.router();
        let task = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    // A dropped sender also means stop.
                    let _stop = stopped.await;
                })
                .await
        });
        tracing::info!(%local_addr, "apo-sim listening");
        Ok(Self {
            simulator,
            local_addr,
            stop: Some(stop),
            task,
        })
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// `http://<addr>`, the base URL to give an Antom client.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.local_addr)
    }

    /// The simulator behind the server, for seeding and assertions.
    pub fn simulator(&self) -> &Simulator {
        &self.simulator
    }

    /// Stops background work, lets in-flight requests finish (held `timeout`
    /// connections are released with a bare 504) and waits for the server to stop.
    pub async fn shutdown(mut self) -> Result<(), SimError> {
        self.simulator.shutdown();
        if let Some(stop) = self.stop.take() {
            // The receiver is gone only if the server task already ended; joining below reports why.
            let _sent = stop.send(());
        }
        let listen_error = |source| SimError::Listen {
            addr: self.local_addr.to_string(),
            source,
        };
        match (&mut self.task).await {
            Ok(served) => served.map_err(listen_error),
            Err(join_error) => Err(listen_error(std::io::Error::other(join_error.to_string()))),
        }
    }
}

//! The embedded broker: an MQTT 5 / 3.1.1 broker in the simulator's own process, with a TCP and a
//! WebSocket listener on loopback, so that nothing else needs installing.

use std::net::SocketAddr;
use std::time::Duration;

use mqtt5::broker::config::{StorageBackend, StorageConfig, WebSocketConfig};
use mqtt5::broker::{BrokerConfig, MqttBroker};

/// The WebSocket path the panel (and MQTT.js) connect to.
pub const WS_PATH: &str = "/mqtt";

/// MQTT 5's largest allowed Maximum Packet Size is 268,435,455; the broker's default is one more,
/// which strict clients refuse. Commands are small: allow 1 MiB.
const MAX_PACKET: usize = 1 << 20;

/// A running embedded broker.
pub struct EmbeddedBroker {
    /// `mqtt://127.0.0.1:<port>`.
    pub tcp_url: String,
    /// `ws://127.0.0.1:<port>/mqtt`.
    pub ws_url: String,
    task: tokio::task::JoinHandle<()>,
    shutdown: mqtt5::broker::server::BrokerShutdownHandle,
}

impl std::fmt::Debug for EmbeddedBroker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedBroker")
            .field("tcp_url", &self.tcp_url)
            .field("ws_url", &self.ws_url)
            .finish_non_exhaustive()
    }
}

impl EmbeddedBroker {
    /// Starts a broker on `tcp` and `ws` (port 0 picks a free port), keeping sessions and retained
    /// messages in memory.
    pub async fn start(tcp: SocketAddr, ws: SocketAddr) -> anyhow::Result<EmbeddedBroker> {
        let storage = StorageConfig {
            backend: StorageBackend::Memory,
            enable_persistence: false,
            ..StorageConfig::default()
        };
        let config = BrokerConfig::default()
            .with_bind_address(tcp)
            .with_max_packet_size(MAX_PACKET)
            .with_max_clients(200_000)
            .with_session_expiry(Duration::from_secs(3600))
            .with_storage(storage)
            .with_websocket(
                WebSocketConfig::new()
                    .with_bind_address(ws)
                    .with_path(WS_PATH),
            );
        let mut broker = MqttBroker::with_config(config)
            .await
            .map_err(|e| anyhow::anyhow!("embedded broker on {tcp} / {ws}: {e}"))?;
        let tcp_addr = broker
            .local_addr()
            .ok_or_else(|| anyhow::anyhow!("embedded broker has no TCP listener"))?;
        let ws_addr = broker
            .ws_local_addr()
            .ok_or_else(|| anyhow::anyhow!("embedded broker has no WebSocket listener"))?;
        let shutdown = broker.shutdown_handle();
        let task = tokio::spawn(async move {
            if let Err(e) = broker.run().await {
                tracing::error!(error = %e, "embedded broker stopped");
            }
        });
        Ok(EmbeddedBroker {
            tcp_url: format!("mqtt://{tcp_addr}"),
            ws_url: format!("ws://{ws_addr}{WS_PATH}"),
            task,
            shutdown,
        })
    }

    /// Stops the broker and waits for it.
    pub async fn stop(self) {
        self.shutdown.shutdown();
        let _ = tokio::time::timeout(Duration::from_secs(5), self.task).await;
    }
}

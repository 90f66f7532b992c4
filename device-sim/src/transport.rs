//! Moving MQTT bytes over TCP, TLS (with a client certificate) or WebSocket.
//!
//! The protocol session never sees a socket: this module only opens connections, writes what the
//! session hands it and reads what arrives.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::rustls::{self, pki_types::ServerName};
use tokio_rustls::{client::TlsStream, TlsConnector};
use tokio_tungstenite::tungstenite::{self, client::IntoClientRequest, http::HeaderValue};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use url::Url;

/// Where a broker listens: `mqtt://host:1883`, `mqtts://host:8883`, `ws://host:8083/mqtt`,
/// `wss://host/mqtt` (`tcp://`, `ssl://` and `tls://` are accepted as aliases).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BrokerUrl {
    url: Url,
    kind: Kind,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Tcp,
    Tls,
    Ws,
    Wss,
}

/// A broker URL that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum UrlError {
    /// Not a URL at all.
    #[error("{url:?} is not a URL: {source}")]
    Parse {
        /// As given.
        url: String,
        /// Why.
        source: url::ParseError,
    },
    /// An unknown scheme.
    #[error("{url:?}: unsupported scheme {scheme:?}; use mqtt://, mqtts://, ws:// or wss://")]
    Scheme {
        /// As given.
        url: String,
        /// The scheme found.
        scheme: String,
    },
    /// No host.
    #[error("{url:?} names no host")]
    Host {
        /// As given.
        url: String,
    },
}

impl BrokerUrl {
    /// Parses and checks a broker URL.
    pub fn parse(s: &str) -> Result<BrokerUrl, UrlError> {
        let url = Url::parse(s).map_err(|source| UrlError::Parse {
            url: s.to_owned(),
            source,
        })?;
        let kind = match url.scheme() {
            "mqtt" | "tcp" => Kind::Tcp,
            "mqtts" | "ssl" | "tls" => Kind::Tls,
            "ws" => Kind::Ws,
            "wss" => Kind::Wss,
            other => {
                return Err(UrlError::Scheme {
                    url: s.to_owned(),
                    scheme: other.to_owned(),
                })
            }
        };
        if url.host_str().is_none_or(str::is_empty) {
            return Err(UrlError::Host { url: s.to_owned() });
        }
        Ok(BrokerUrl { url, kind })
    }

    fn host(&self) -> &str {
        self.url.host_str().unwrap_or("localhost")
    }

    fn port(&self) -> u16 {
        self.url.port().unwrap_or(match self.kind {
            Kind::Tcp => 1883,
            Kind::Tls => 8883,
            Kind::Ws => 80,
            Kind::Wss => 443,
        })
    }

    /// Whether the connection uses TLS.
    pub fn is_tls(&self) -> bool {
        matches!(self.kind, Kind::Tls | Kind::Wss)
    }
}

impl std::fmt::Display for BrokerUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.url.fmt(f)
    }
}

/// Where and how to connect: the broker's URL, TLS settings and credentials.
#[derive(Clone, Debug)]
pub struct Endpoint {
    /// The broker.
    pub url: BrokerUrl,
    /// TLS settings, for `mqtts://` and `wss://`.
    pub tls: Option<Arc<rustls::ClientConfig>>,
    /// Broker user name; `{device}` in it stands for each client's own id, so that every
    /// simulated device logs in as itself (what a per-device access control list expects).
    pub username: Option<String>,
    /// Broker password; `{device}` as in the user name.
    pub password: Option<String>,
}

/// What stands for a client's own id in [`Endpoint::username`] and [`Endpoint::password`].
pub const DEVICE_PLACEHOLDER: &str = "{device}";

impl Endpoint {
    /// A broker reached without TLS or credentials.
    pub fn plain(url: BrokerUrl) -> Endpoint {
        Endpoint {
            url,
            tls: None,
            username: None,
            password: None,
        }
    }

    /// Puts the credentials into a session configuration, each `{device}` replaced by its client
    /// id.
    pub fn apply(&self, config: &mut switchboard_protocol::session::SessionConfig) {
        let own = |s: &String| s.replace(DEVICE_PLACEHOLDER, &config.client_id);
        config.username = self.username.as_ref().map(own);
        config.password = self.password.as_ref().map(own).map(String::into_bytes);
    }
}

/// Certificates for TLS: the CA that signed the broker's certificate, and optionally this client's
/// certificate and key (mutual TLS, as devices on cloud IoT services connect).
#[derive(Clone, Debug, Default)]
pub struct TlsFiles {
    /// PEM file with the CA certificate(s).
    pub ca: Option<PathBuf>,
    /// PEM file with the client certificate chain.
    pub cert: Option<PathBuf>,
    /// PEM file with the client's private key.
    pub key: Option<PathBuf>,
}

fn read_pem_error(path: &Path, e: impl std::fmt::Display) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("{}: {e}", path.display()),
    )
}

impl TlsFiles {
    /// Builds a rustls client configuration from the files.
    pub fn client_config(&self) -> io::Result<Arc<rustls::ClientConfig>> {
        use rustls_pki_types::pem::PemObject;
        use rustls_pki_types::{CertificateDer, PrivateKeyDer};

        let mut roots = rustls::RootCertStore::empty();
        if let Some(ca) = &self.ca {
            for cert in CertificateDer::pem_file_iter(ca).map_err(|e| read_pem_error(ca, e))? {
                let cert = cert.map_err(|e| read_pem_error(ca, e))?;
                roots.add(cert).map_err(|e| read_pem_error(ca, e))?;
            }
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(io::Error::other)?
            .with_root_certificates(roots);
        let config = match (&self.cert, &self.key) {
            (Some(cert), Some(key)) => {
                let chain = CertificateDer::pem_file_iter(cert)
                    .map_err(|e| read_pem_error(cert, e))?
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| read_pem_error(cert, e))?;
                let key_der =
                    PrivateKeyDer::from_pem_file(key).map_err(|e| read_pem_error(key, e))?;
                builder
                    .with_client_auth_cert(chain, key_der)
                    .map_err(|e| read_pem_error(cert, e))?
            }
            (None, None) => builder.with_no_client_auth(),
            _ => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "a client certificate needs both --cert and --key",
                ))
            }
        };
        Ok(Arc::new(config))
    }
}

/// An open connection to a broker.
#[derive(Debug)]
pub enum Transport {
    /// Plain TCP.
    Tcp(TcpStream),
    /// TLS over TCP.
    Tls(Box<TlsStream<TcpStream>>),
    /// WebSocket (binary frames, subprotocol `mqtt`), plain or TLS.
    Ws(Box<WebSocketStream<MaybeTlsStream<TcpStream>>>),
}

impl Transport {
    /// Opens a connection. `tls` is required for `mqtts://` and `wss://`.
    pub async fn connect(
        url: &BrokerUrl,
        tls: Option<&Arc<rustls::ClientConfig>>,
    ) -> io::Result<Transport> {
        match url.kind {
            Kind::Tcp | Kind::Tls => {
                let tcp = TcpStream::connect((url.host(), url.port())).await?;
                tcp.set_nodelay(true)?;
                if url.kind == Kind::Tcp {
                    return Ok(Transport::Tcp(tcp));
                }
                let config = tls.cloned().ok_or_else(|| {
                    io::Error::new(io::ErrorKind::InvalidInput, "mqtts:// needs --ca")
                })?;
                let name = ServerName::try_from(url.host().to_owned())
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
                let stream = TlsConnector::from(config).connect(name, tcp).await?;
                Ok(Transport::Tls(Box::new(stream)))
            }
            Kind::Ws | Kind::Wss => {
                let mut request = url
                    .url
                    .as_str()
                    .into_client_request()
                    .map_err(io::Error::other)?;
                request
                    .headers_mut()
                    .insert("Sec-WebSocket-Protocol", HeaderValue::from_static("mqtt"));
                let tcp = TcpStream::connect((url.host(), url.port())).await?;
                tcp.set_nodelay(true)?;
                let connector = match (url.kind, tls) {
                    (Kind::Wss, Some(c)) => tokio_tungstenite::Connector::Rustls(c.clone()),
                    (Kind::Wss, None) => {
                        return Err(io::Error::new(
                            io::ErrorKind::InvalidInput,
                            "wss:// needs --ca",
                        ))
                    }
                    _ => tokio_tungstenite::Connector::Plain,
                };
                let (ws, _) = tokio_tungstenite::client_async_tls_with_config(
                    request,
                    tcp,
                    None,
                    Some(connector),
                )
                .await
                .map_err(io::Error::other)?;
                Ok(Transport::Ws(Box::new(ws)))
            }
        }
    }

    /// Writes bytes.
    pub async fn send(&mut self, bytes: Vec<u8>) -> io::Result<()> {
        match self {
            Transport::Tcp(s) => s.write_all(&bytes).await,
            Transport::Tls(s) => {
                s.write_all(&bytes).await?;
                s.flush().await
            }
            Transport::Ws(s) => s
                .send(tungstenite::Message::binary(bytes))
                .await
                .map_err(io::Error::other),
        }
    }

    /// Reads what arrives next; `Ok(None)` when the broker closed the connection. Cancel-safe.
    pub async fn recv(&mut self, buf: &mut Vec<u8>) -> io::Result<Option<()>> {
        buf.clear();
        match self {
            Transport::Tcp(s) => read_into(s, buf).await,
            Transport::Tls(s) => read_into(s.as_mut(), buf).await,
            Transport::Ws(s) => loop {
                match s.next().await {
                    None => return Ok(None),
                    Some(Err(e)) => return Err(io::Error::other(e)),
                    Some(Ok(tungstenite::Message::Binary(b))) => {
                        buf.extend_from_slice(&b);
                        return Ok(Some(()));
                    }
                    Some(Ok(tungstenite::Message::Close(_))) => return Ok(None),
                    Some(Ok(_)) => continue,
                }
            },
        }
    }

    /// Closes the connection, politely where the transport has a way to.
    pub async fn close(self) {
        match self {
            Transport::Tcp(mut s) => {
                let _ = s.shutdown().await;
            }
            Transport::Tls(mut s) => {
                let _ = s.shutdown().await;
            }
            Transport::Ws(mut s) => {
                let _ = SinkExt::close(&mut s).await;
            }
        }
    }
}

/// Reads into `buf`'s spare room (no buffer in the future itself: thousands of devices wait here).
async fn read_into<R: tokio::io::AsyncRead + Unpin>(
    r: &mut R,
    buf: &mut Vec<u8>,
) -> io::Result<Option<()>> {
    buf.reserve(READ_CHUNK);
    let n = r.read_buf(buf).await?;
    if n == 0 {
        return Ok(None);
    }
    Ok(Some(()))
}

/// How much room a read makes at least.
const READ_CHUNK: usize = 2048;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(BrokerUrl::parse("mqtt://127.0.0.1").unwrap().port(), 1883);
        assert_eq!(BrokerUrl::parse("mqtts://h:1").unwrap().port(), 1);
        assert!(BrokerUrl::parse("wss://h/mqtt").unwrap().is_tls());
        let e = BrokerUrl::parse("http://h").unwrap_err().to_string();
        assert!(e.contains("unsupported scheme"), "{e}");
        assert!(BrokerUrl::parse("not a url").is_err());
    }

    #[test]
    fn each_device_logs_in_as_itself() {
        let mut endpoint = Endpoint::plain(BrokerUrl::parse("mqtt://127.0.0.1").unwrap());
        endpoint.username = Some("{device}".into());
        endpoint.password = Some("{device}-secret".into());
        let mut config = switchboard_protocol::session::SessionConfig::new("device7");
        endpoint.apply(&mut config);
        assert_eq!(config.username.as_deref(), Some("device7"));
        assert_eq!(config.password.as_deref(), Some(&b"device7-secret"[..]));
    }
}

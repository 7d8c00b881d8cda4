//! Opening RabbitMQ connections for the pool: lapin with the configured TLS
//! trust (`amqps://` with extra CA certificates), and a connection name.
//! deadpool-lapin's own manager cannot take a TLS configuration, hence this
//! small one.

use lapin::tcp::OwnedTLSConfig;
use lapin::{Connection, ConnectionProperties, DefaultConnectionBuilder};

/// The pool's connections: what to connect to and how.
pub(super) struct Manager {
    /// The AMQP URL (with its password: never logged).
    pub(super) url: String,
    /// Connection name shown by RabbitMQ.
    pub(super) connection_name: String,
    /// Extra CA certificates (PEM) trusted for `amqps://`, besides the
    /// system's roots.
    pub(super) ca_pem: Option<String>,
}

impl std::fmt::Debug for Manager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Manager")
            .field("connection_name", &self.connection_name)
            .field("ca", &self.ca_pem.is_some())
            .finish_non_exhaustive()
    }
}

impl deadpool::managed::Manager for Manager {
    type Type = Connection;
    type Error = lapin::Error;

    async fn create(&self) -> Result<Connection, lapin::Error> {
        let tls = OwnedTLSConfig {
            identity: None,
            cert_chain: self.ca_pem.clone(),
        };
        let properties = ConnectionProperties::default()
            .with_connection_name(self.connection_name.clone().into());
        DefaultConnectionBuilder::new()?
            .with_uri_str(self.url.clone())
            .with_properties(properties)
            .with_tls_config(tls)
            .connect()
            .await
    }

    async fn recycle(
        &self,
        connection: &mut Connection,
        _: &deadpool::managed::Metrics,
    ) -> deadpool::managed::RecycleResult<lapin::Error> {
        if connection.status().connected() {
            Ok(())
        } else {
            Err(deadpool::managed::RecycleError::message(
                "the connection is closed",
            ))
        }
    }
}

/// The connection pool.
pub(super) type Pool = deadpool::managed::Pool<Manager>;

/// A connection-pool failure.
pub(super) type PoolError = deadpool::managed::PoolError<lapin::Error>;

//! Building and running the application: `Application::build(settings)` opens the database, loads
//! the policies, sets up the token key and binds the socket (port 0 in tests);
//! `run_until_stopped` serves until SIGINT/SIGTERM, letting in-flight requests finish.

use std::sync::Arc;
use std::time::Duration;

use poem::Server;
use poem::listener::{Acceptor, Listener, TcpAcceptor, TcpListener};

use crate::api;
use crate::auth::{Authn, TokenKeys, token};
use crate::authz::{Authz, DecisionLog, PolicyBundle, PolicyStore};
use crate::config::{PolicySource, Settings};
use crate::invalidation;
use crate::metrics::{Metrics, MetricsTarget};
use crate::net::DeadlineAcceptor;
use crate::store;

pub use crate::api::AppState;

/// Why the service refused to start, as one paragraph for the operator.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("the policies in {dir} do not validate:\n{errors}")]
    Policies { dir: String, errors: String },
    #[error("{0}")]
    Database(#[from] store::OpenError),
    #[error("{0}")]
    TokenKey(#[from] token::KeyError),
    #[error("the policies come from the database, but {0}")]
    NoPublishedVersion(String),
    #[error("the creator role `{0}` is not defined by the policy folder")]
    CreatorRole(String),
    #[error("cannot open the decision log: {0}")]
    DecisionLog(std::io::Error),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
}

pub struct Application {
    acceptor: TcpAcceptor,
    /// The listener of `--metrics ADDR`, when metrics are served apart from the API.
    metrics_acceptor: Option<TcpAcceptor>,
    state: Arc<AppState>,
}

/// Builds the shared state from settings (also used by tests that want the state without a socket).
pub async fn build_state(settings: Settings) -> Result<Arc<AppState>, StartError> {
    let from_database = settings.policy_source == PolicySource::Database;
    // In database mode the set is the active published version; the folder is not read.
    let folder_bundle = if from_database {
        None
    } else {
        Some(
            PolicyBundle::load(&settings.policies_dir).map_err(|err| StartError::Policies {
                dir: settings.policies_dir.display().to_string(),
                errors: err.to_string(),
            })?,
        )
    };
    let db = store::open(&settings.database).await?;
    let bundle = match folder_bundle {
        Some(bundle) => bundle,
        None => active_version(&db).await?,
    };
    for warning in bundle.warnings() {
        tracing::warn!("{warning}");
    }
    if !bundle.roles().contains(&settings.creator_role) {
        return Err(StartError::CreatorRole(settings.creator_role.clone()));
    }
    let reads = store::reads::Reads::new(
        &settings.database,
        store::open_reads(&settings.database, &db).await?,
    );
    let keys = if settings.token_keys.is_empty() {
        let secret =
            token::load_secret(settings.token_secret.as_ref(), &settings.database.data_dir)?;
        TokenKeys::new(&secret)?
    } else if settings.token_secret.is_some() {
        return Err(token::KeyError::Invalid(
            "set ZYGO_TOKEN_KEYS or ZYGO_TOKEN_SECRET, not both".into(),
        )
        .into());
    } else {
        TokenKeys::from_list(settings.token_keys.clone())?
    };
    let metrics = Arc::new(Metrics::new(&crate::authz::Action::ALL.map(|a| a.name())));
    let authn = Authn::new(keys, db.clone(), reads.clone(), &settings, metrics.clone());
    let log = DecisionLog::open(&settings.decision_log).map_err(StartError::DecisionLog)?;
    let policies = Arc::new(if from_database {
        PolicyStore::from_database(
            db.clone(),
            bundle,
            metrics.policy_reloads_rejected.clone(),
            metrics.policy_active_refused.clone(),
        )
        .requiring_role(settings.creator_role.clone())
    } else {
        PolicyStore::new(
            settings.policies_dir.clone(),
            bundle,
            metrics.policy_reloads_rejected.clone(),
            settings.policy_settle,
        )
        .requiring_role(settings.creator_role.clone())
    });
    if from_database {
        policies.poll_database(
            if db.get_database_backend() == sea_orm::DbBackend::Postgres {
                crate::authz::reload::DATABASE_POLL_POSTGRES
            } else {
                crate::authz::reload::DATABASE_POLL_SQLITE
            },
        );
    }
    let authz = Authz::new(
        policies,
        reads.pool.clone(),
        settings.cache_ttl,
        log,
        metrics.clone(),
    );
    let (authn, authz) = (Arc::new(authn), Arc::new(authz));
    let caches = Arc::new(invalidation::Caches::new(
        db.clone(),
        authn.clone(),
        authz.clone(),
    ));
    let listener = invalidation::spawn_listener(&db, Arc::downgrade(&caches));
    let state = Arc::new(AppState {
        db,
        reads,
        authn,
        authz,
        settings,
        metrics,
        caches,
        _listener: listener,
    });
    spawn_purger(Arc::downgrade(&state));
    Ok(state)
}

/// The active published version, which must validate against this binary to start on it.
async fn active_version(db: &sea_orm::DatabaseConnection) -> Result<PolicyBundle, StartError> {
    let unavailable = |e: sea_orm::DbErr| StartError::NoPublishedVersion(format!("{e}"));
    let number = store::policy_versions::active(db)
        .await
        .map_err(unavailable)?
        .ok_or_else(|| {
            StartError::NoPublishedVersion(
                "no policy version is published yet: run `zygo policy publish --message …` first"
                    .into(),
            )
        })?;
    let version = store::policy_versions::find(db, number)
        .await
        .map_err(unavailable)?
        .ok_or_else(|| StartError::NoPublishedVersion(format!("version {number} is missing")))?;
    crate::authz::releases::bundle_of(&version).map_err(|err| StartError::Policies {
        dir: format!("published version {number}"),
        errors: err.to_string(),
    })
}

/// Purges expired rows every `purge_interval` in the background (see [`store::purge`]), until
/// the state is dropped. Every instance purges; the deletes are idempotent.
fn spawn_purger(state: std::sync::Weak<AppState>) {
    let Some(every) = state
        .upgrade()
        .map(|s| s.settings.purge_interval)
        .filter(|every| !every.is_zero())
    else {
        return;
    };
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // The first tick is immediate: the first purge comes one interval after the start.
        tick.tick().await;
        loop {
            tick.tick().await;
            let Some(state) = state.upgrade() else {
                return;
            };
            let purge = store::purge::Purge::new(chrono::Utc::now(), &state.settings);
            match store::purge::run(&state.db, purge).await {
                Ok(purged) if purged.total() > 0 => tracing::info!(?purged, "purged expired rows"),
                Ok(_) => {}
                Err(err) => {
                    tracing::warn!(%err, "purging expired rows failed; next try in one interval")
                }
            }
        }
    });
}

impl Application {
    pub async fn build(settings: Settings) -> Result<Self, StartError> {
        let bind = settings.bind.clone();
        let watch = settings.watch_policies && settings.policy_source == PolicySource::Folder;
        // The socket first: a taken port refuses the start before anything is written to disk.
        let acceptor = TcpListener::bind(bind.clone())
            .into_acceptor()
            .await
            .map_err(|source| StartError::Bind { addr: bind, source })?;
        let metrics_acceptor = match &settings.metrics {
            MetricsTarget::Listen(addr) => Some(
                TcpListener::bind(addr.clone())
                    .into_acceptor()
                    .await
                    .map_err(|source| StartError::Bind {
                        addr: addr.clone(),
                        source,
                    })?,
            ),
            MetricsTarget::Public | MetricsTarget::Off => None,
        };
        let state = build_state(settings).await?;
        if watch {
            state.authz.policy_store().watch();
        }
        Ok(Application {
            acceptor,
            metrics_acceptor,
            state,
        })
    }

    /// The bound address (the real port when the settings asked for port 0).
    pub fn local_addr(&self) -> std::net::SocketAddr {
        socket_addr(&self.acceptor)
            .unwrap_or_else(|| std::net::SocketAddr::from(([127, 0, 0, 1], 0)))
    }

    /// The address of the separate metrics listener (`--metrics ADDR`), if there is one.
    pub fn metrics_addr(&self) -> Option<std::net::SocketAddr> {
        self.metrics_acceptor.as_ref().and_then(socket_addr)
    }

    pub fn state(&self) -> Arc<AppState> {
        self.state.clone()
    }

    /// Serves until SIGINT or SIGTERM, then stops accepting and lets requests in flight finish.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.run_until(shutdown_signal()).await
    }

    /// Serves until `stop` completes (tests stop servers this way).
    pub async fn run_until(
        self,
        stop: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let read_timeout = self.state.settings.read_timeout;
        let idle_timeout = self.state.settings.idle_timeout;
        // One stop signal for both listeners.
        let (stopped, mut on_stop) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            stop.await;
            let _ = stopped.send(true);
        });
        if let Some(acceptor) = self.metrics_acceptor {
            let endpoint = api::metrics_app(self.state.clone());
            let mut on_stop = on_stop.clone();
            tokio::spawn(async move {
                let served =
                    Server::new_with_acceptor(DeadlineAcceptor::new(acceptor, read_timeout))
                        .idle_timeout(idle_timeout)
                        .run_with_graceful_shutdown(
                            endpoint,
                            async move {
                                let _ = on_stop.wait_for(|stop| *stop).await;
                            },
                            Some(Duration::from_secs(5)),
                        )
                        .await;
                if let Err(err) = served {
                    tracing::error!("the metrics listener stopped: {err}");
                }
            });
        }
        let app = api::app(self.state);
        Server::new_with_acceptor(DeadlineAcceptor::new(self.acceptor, read_timeout))
            .idle_timeout(idle_timeout)
            .run_with_graceful_shutdown(
                app,
                async move {
                    let _ = on_stop.wait_for(|stop| *stop).await;
                },
                Some(Duration::from_secs(30)),
            )
            .await
    }
}

fn socket_addr(acceptor: &TcpAcceptor) -> Option<std::net::SocketAddr> {
    acceptor
        .local_addr()
        .first()
        .and_then(|addr| addr.as_socket_addr().copied())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
    tracing::info!("shutting down: finishing requests in flight");
}

//! Options several commands share: where the database is, and where the policies are.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use crate::config::{DEFAULT_DB_TIMEOUT_SECONDS, DatabaseSettings};

#[derive(Debug, Args)]
pub struct DbArgs {
    /// Database URL: `sqlite://…` or `postgres://…` (default: a SQLite file in the data folder).
    #[arg(long, env = "ZYGO_DATABASE_URL")]
    pub database_url: Option<String>,
    /// Folder for the default SQLite database and the generated token secret.
    #[arg(long, env = "ZYGO_DATA_DIR", default_value = "data")]
    pub data_dir: PathBuf,
    /// Longest wait for the database (connection, lock, statement) before giving up, in seconds;
    /// the server answers 503 after it.
    #[arg(long, env = "ZYGO_DB_TIMEOUT_SECONDS", default_value_t = DEFAULT_DB_TIMEOUT_SECONDS,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub db_timeout_seconds: u64,
}

impl DbArgs {
    pub(super) fn settings(&self) -> DatabaseSettings {
        let mut settings = DatabaseSettings::new(self.database_url.clone(), self.data_dir.clone());
        settings.timeout = Duration::from_secs(self.db_timeout_seconds);
        settings
    }
}

#[derive(Debug, Args)]
pub struct PolicyArgs {
    /// The policy folder.
    #[arg(long, env = "ZYGO_POLICIES", default_value = "policies")]
    pub policies: PathBuf,
}

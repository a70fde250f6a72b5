//! The PostgreSQL side of the suite: which backend runs, a fresh database per test, and a private
//! server a test may stop and start again.

use std::path::PathBuf;

use tempfile::TempDir;
use uuid::Uuid;

/// The PostgreSQL admin URL when the suite runs against PostgreSQL.
pub fn postgres_admin_url() -> Option<String> {
    std::env::var("ZYGO_TEST_DATABASE")
        .ok()
        .filter(|url| url.starts_with("postgres"))
}

/// Which backend the suite runs against, for messages.
pub fn backend() -> &'static str {
    if postgres_admin_url().is_some() {
        "postgres"
    } else {
        "sqlite"
    }
}

/// A fresh, empty database: `None` on SQLite (the data folder holds one), the URL of a newly
/// created PostgreSQL database otherwise. Blocking, so it also works from synchronous tests.
pub fn fresh_database_url() -> Option<String> {
    let admin = postgres_admin_url()?;
    let name = format!("zygo_test_{}", Uuid::new_v4().simple());
    let (base, _) = admin.rsplit_once('/').expect("admin URL names a database");
    let url = format!("{base}/{name}");
    let create = admin.clone();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(async move {
            use sea_orm::ConnectionTrait;
            let db = sea_orm::Database::connect(&create)
                .await
                .expect("connect to the PostgreSQL test server (ZYGO_TEST_DATABASE)");
            db.execute_unprepared(&format!("CREATE DATABASE {name}"))
                .await
                .expect("create the test database");
            db.close().await.expect("close");
        })
    })
    .join()
    .expect("database created");
    Some(url)
}

/// A PostgreSQL server of the test's own, which the test may stop and start again (the suite's
/// shared server must stay up for the other tests). Needs `ZYGO_TEST_PG_BIN` (the server's `bin`
/// folder; `scripts/test` sets it) and, when the tests run as root, `ZYGO_TEST_PG_USER`.
pub struct PrivatePostgres {
    bin: PathBuf,
    dir: TempDir,
    pub port: u16,
}

impl PrivatePostgres {
    /// `None` when no PostgreSQL binaries are configured.
    pub fn start() -> Option<PrivatePostgres> {
        let bin = PathBuf::from(std::env::var_os("ZYGO_TEST_PG_BIN")?);
        let dir = tempfile::Builder::new()
            .prefix("zygo-pg-")
            .tempdir_in("/tmp")
            .expect("temp dir");
        if let Ok(user) = std::env::var("ZYGO_TEST_PG_USER") {
            let chown = std::process::Command::new("chown")
                .arg(format!("{user}:"))
                .arg(dir.path())
                .status()
                .expect("chown runs");
            assert!(chown.success());
        }
        let mut pg = PrivatePostgres { bin, dir, port: 0 };
        let init = pg.tool(
            "initdb",
            &[
                "-D",
                &pg.data(),
                "-U",
                "postgres",
                "-A",
                "trust",
                "--no-sync",
            ],
        );
        assert!(
            init.status.success(),
            "initdb: {}",
            String::from_utf8_lossy(&init.stderr)
        );
        for _ in 0..5 {
            pg.port = std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .expect("free port")
                .port();
            if pg.start_again() {
                return Some(pg);
            }
        }
        panic!("the private PostgreSQL server does not start");
    }

    fn data(&self) -> String {
        self.dir.path().join("data").display().to_string()
    }

    fn tool(&self, name: &str, args: &[&str]) -> std::process::Output {
        let program = self.bin.join(name);
        let mut command = match std::env::var("ZYGO_TEST_PG_USER") {
            Ok(user) => {
                let mut c = std::process::Command::new("runuser");
                c.args(["-u", &user, "--"]).arg(&program);
                c
            }
            Err(_) => std::process::Command::new(&program),
        };
        command.args(args).output().expect("PostgreSQL tool runs")
    }

    /// The admin URL (database `postgres`).
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Starts (again) on the same port and data; false when it could not.
    pub fn start_again(&self) -> bool {
        let options = format!(
            "-p {} -c listen_addresses=127.0.0.1 -k {} -c fsync=off",
            self.port,
            self.dir.path().display()
        );
        let log = self.dir.path().join("server.log").display().to_string();
        self.tool(
            "pg_ctl",
            &[
                "-D",
                &self.data(),
                "-w",
                "-t",
                "30",
                "-l",
                &log,
                "-o",
                &options,
                "start",
            ],
        )
        .status
        .success()
    }

    /// Stops the server, terminating its connections (as an operator's fast shutdown does).
    pub fn stop(&self) {
        let out = self.tool("pg_ctl", &["-D", &self.data(), "-m", "fast", "-w", "stop"]);
        assert!(
            out.status.success(),
            "pg_ctl stop: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let _ = self.tool(
            "pg_ctl",
            &["-D", &self.data(), "-m", "immediate", "-w", "stop"],
        );
    }
}

//! An OpenSSH server (Debian's `openssh-server`, installed by `scripts/docker-engine`) on a
//! loopback port, with its own host key, config and authorized keys in a temp dir; stopped (by
//! its pid) and waited for on drop.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use tempfile::TempDir;

const SSHD: &str = "/usr/sbin/sshd";

pub struct Sshd {
    pub dir: TempDir,
    pub addr: SocketAddr,
    child: Child,
}

/// Makes an ed25519 key pair `dir/name` (private) and `dir/name.pub`.
pub fn keygen(dir: &Path, name: &str) -> Result<PathBuf> {
    let key = dir.join(name);
    let out = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", name, "-f"])
        .arg(&key)
        .output()?;
    ensure!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(key)
}

impl Sshd {
    /// `None` (after saying so) when sshd is not installed and CI is unset; under CI a missing
    /// sshd is a failure, as scripts/docker-engine installs it.
    pub fn available() -> Result<bool> {
        if Path::new(SSHD).exists() {
            return Ok(true);
        }
        if std::env::var_os("CI").is_some() {
            bail!("{SSHD} is missing: run scripts/docker-engine (it installs openssh-server)");
        }
        eprintln!("note: skipped: {SSHD} is not installed (apt-get install openssh-server)");
        Ok(false)
    }

    /// Starts sshd accepting `client_key.pub` for the current user (root in tests).
    pub fn start(client_public_key: &Path) -> Result<Sshd> {
        let dir = TempDir::new()?;
        let host_key = keygen(dir.path(), "host_key")?;
        let authorized = dir.path().join("authorized_keys");
        std::fs::copy(client_public_key, &authorized)?;
        // sshd chroots its unprivileged child here; Debian's service creates it at start.
        std::fs::create_dir_all("/run/sshd")?;

        // A free port: bind, read, release. The window until sshd binds it is tiny, and a
        // clash fails readiness below rather than hanging.
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let config = dir.path().join("sshd_config");
        std::fs::write(
            &config,
            format!(
                "Port {port}\nListenAddress 127.0.0.1\nHostKey {}\nPidFile {}\n\
                 AuthorizedKeysFile {}\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n\
                 UsePAM no\nStrictModes no\nPermitRootLogin prohibit-password\n\
                 AcceptEnv GIT_PROTOCOL\nLogLevel ERROR\n",
                host_key.display(),
                dir.path().join("sshd.pid").display(),
                authorized.display(),
            ),
        )?;
        let child = Command::new(SSHD)
            .args(["-D", "-e", "-f"])
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting sshd")?;
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse()?;
        let mut sshd = Sshd { dir, addr, child };
        sshd.wait_ready()?;
        Ok(sshd)
    }

    fn wait_ready(&mut self) -> Result<()> {
        let until = Instant::now() + Duration::from_secs(10);
        while Instant::now() < until {
            if let Some(status) = self.child.try_wait()? {
                bail!("sshd exited at start: {status}");
            }
            if TcpStream::connect_timeout(&self.addr, Duration::from_millis(200)).is_ok() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        bail!("sshd did not listen on {} within 10 s", self.addr)
    }

    /// A known-hosts file trusting this server's host key.
    pub fn known_hosts(&self) -> Result<PathBuf> {
        let public = std::fs::read_to_string(self.dir.path().join("host_key.pub"))?;
        let mut fields = public.split_whitespace();
        let (kind, key) = (
            fields.next().context("key type")?,
            fields.next().context("key")?,
        );
        let file = self.dir.path().join("known_hosts");
        std::fs::write(
            &file,
            format!("[127.0.0.1]:{} {kind} {key}\n", self.addr.port()),
        )?;
        Ok(file)
    }

    /// `ssh://root@127.0.0.1:PORT/abs/path`.
    pub fn url(&self, repository: &Path) -> String {
        format!(
            "ssh://root@127.0.0.1:{}{}",
            self.addr.port(),
            repository.display()
        )
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

//! `berth serve` settings: flags, `BERTH_*` environment variables and a TOML file, in that order
//! of precedence, then defaults.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::docker::{PullSettings, RegistryAuth};
use crate::manifest::limits::{parse_size, Limits};
use crate::manifest::HostPathPolicy;
use crate::raft::{member_url, ClusterConfig, ClusterTls, ClusterToken};
use crate::sync::{Credentials, FetchSettings, SignaturePolicy};
use crate::webhook::Secrets;

#[derive(Debug, clap::Args, Default)]
pub struct ServeArgs {
    /// Git repository of manifests: a local path, file://, http:// or https:// URL (required).
    #[arg(long, env = "BERTH_REPO")]
    pub repo: Option<String>,
    /// Branch to follow [default: main].
    #[arg(long, env = "BERTH_BRANCH")]
    pub branch: Option<String>,
    /// Directory of manifests inside the repository [default: the root].
    #[arg(long, env = "BERTH_PATH")]
    pub path: Option<String>,
    /// A Docker host, as NAME=ENDPOINT; repeat for several. ENDPOINT is unix:///path/docker.sock,
    /// tcp://host:port or https://host:port (with --docker-tls-dir)
    /// [default: local=unix:///var/run/docker.sock].
    #[arg(
        long = "node",
        env = "BERTH_NODES",
        value_delimiter = ',',
        value_name = "NAME=ENDPOINT"
    )]
    pub nodes: Vec<String>,
    /// Directory with ca.pem, cert.pem and key.pem for https:// Docker endpoints.
    #[arg(long, env = "BERTH_DOCKER_TLS_DIR")]
    pub docker_tls_dir: Option<PathBuf>,
    /// Where the Git mirror and the Raft log live [default: ./berth-data].
    #[arg(long, env = "BERTH_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Address of the read-only status API [default: 127.0.0.1:7878].
    #[arg(long, env = "BERTH_LISTEN")]
    pub listen: Option<String>,
    /// How often to fetch the branch, e.g. 200ms, 10s, 5m, 1h [default: 10s].
    #[arg(long, env = "BERTH_POLL")]
    pub poll: Option<String>,
    /// How often to compare every host with the desired state even without events [default: 30s].
    #[arg(long, env = "BERTH_RESYNC")]
    pub resync: Option<String>,
    /// How long a Docker host may fail to answer before it is `NotReady` and its RC replicas
    /// are placed elsewhere (bare Pods on it report `NodeLost`) [default: 10s].
    #[arg(long, env = "BERTH_NODE_GRACE", value_name = "DURATION")]
    pub node_grace: Option<String>,
    /// What a rollout that halts leads to: `halt` keeps the old replicas serving and records
    /// the commit `failed`; `rollback` also re-applies the last commit that converged
    /// [default: halt].
    #[arg(long, env = "BERTH_ON_FAILURE", value_name = "halt|rollback")]
    pub on_failure: Option<String>,
    /// When a pull for `imagePullPolicy: Always` fails but the host already holds that exact
    /// image reference, use it (with a warning on the pod): for hosts without a registry
    /// [default: true].
    #[arg(long, env = "BERTH_PULL_FALLBACK", value_name = "BOOL")]
    pub pull_fallback: Option<bool>,
    /// Docker `config.json` with registry credentials (`auths`), used for pulls. Credentials
    /// never appear in logs, the API or errors.
    #[arg(long, env = "BERTH_REGISTRY_AUTH", value_name = "FILE")]
    pub registry_auth: Option<PathBuf>,
    /// File holding an HTTPS token for the repository (sent as HTTP basic auth; read at each
    /// fetch, never written to the mirror). A password in --repo itself is refused.
    #[arg(long, env = "BERTH_REPO_TOKEN_FILE", value_name = "FILE")]
    pub repo_token_file: Option<PathBuf>,
    /// SSH private key for ssh:// and user@host:path repositories.
    #[arg(long, env = "BERTH_SSH_KEY_FILE", value_name = "FILE")]
    pub ssh_key_file: Option<PathBuf>,
    /// known_hosts file the repository's SSH host key must be in (checked strictly).
    #[arg(long, env = "BERTH_SSH_KNOWN_HOSTS", value_name = "FILE")]
    pub ssh_known_hosts: Option<PathBuf>,
    /// Secret for push webhooks: FILE (every provider) or PROVIDER=FILE (github, gitlab, gitea,
    /// bitbucket, generic); repeat for several. With no secret a receiver is off (404).
    #[arg(
        long = "webhook-secret-file",
        env = "BERTH_WEBHOOK_SECRET_FILES",
        value_delimiter = ',',
        value_name = "[PROVIDER=]FILE"
    )]
    pub webhook_secret_files: Vec<String>,
    /// Only apply commits whose SSH signature verifies against this allowed-signers file (as
    /// `git verify-commit` with gpg.ssh.allowedSignersFile); others are rejected.
    #[arg(long, env = "BERTH_VERIFY_SIGNATURES", value_name = "ALLOWED_SIGNERS")]
    pub verify_signatures: Option<PathBuf>,
    /// With --verify-signatures, also apply a signed head that is not a fast-forward of the last
    /// applied one (by default refused, so an old signed commit cannot be replayed by a
    /// force-push).
    #[arg(long, env = "BERTH_ALLOW_SIGNED_REWIND")]
    pub allow_signed_rewind: bool,
    /// Estimated bytes of commit history the cluster keeps, e.g. 16Mi, 256Mi [default: 64Mi].
    /// Over it, the plans of finished commits go first (replaced by a marker), then the oldest
    /// records. A cluster-wide setting: every member must give the same.
    #[arg(long, env = "BERTH_HISTORY_SIZE", value_name = "SIZE")]
    pub history_size: Option<String>,
    /// TOML file with any of these settings (keys as the flags, with '_' for '-'; `node` is a list).
    /// `berth validate --config` reads the same file, so both accept exactly the same trees.
    #[arg(long, env = "BERTH_CONFIG")]
    pub config: Option<PathBuf>,
    #[command(flatten)]
    pub policy: PolicyArgs,
    #[command(flatten)]
    pub cluster: ClusterArgs,
    #[command(flatten)]
    pub node_settings: super::node_config::NodeArgs,
    #[command(flatten)]
    pub services: super::service_args::ServiceArgs,
}

/// A controller cluster: who this member is and how members reach and trust each other.
#[derive(Debug, Clone, clap::Args, Default)]
pub struct ClusterArgs {
    /// This member's id in the cluster: unique, never reused for another data directory
    /// [default: 1].
    #[arg(long, env = "BERTH_ID", value_name = "N")]
    pub id: Option<u64>,
    /// An initial member, as ID=ADDR (host:port or URL the other members reach it at); list
    /// every initial member, this one included, on every member (like etcd's initial
    /// cluster). Without any, berth is a one-member cluster that can grow later.
    #[arg(
        long = "peer",
        env = "BERTH_PEERS",
        value_delimiter = ',',
        value_name = "ID=ADDR"
    )]
    pub peers: Vec<String>,
    /// How the other members reach this one [default: the --listen address, when it is not a
    /// wildcard such as 0.0.0.0].
    #[arg(long, env = "BERTH_ADVERTISE_URL", value_name = "URL")]
    pub advertise_url: Option<String>,
    /// Serve Raft on its own address instead of the API's (required with --cluster-tls-dir).
    #[arg(long, env = "BERTH_RAFT_LISTEN", value_name = "ADDR")]
    pub raft_listen: Option<String>,
    /// File with the shared secret every Raft and cluster-admin request carries; required with
    /// --peer (a cluster never runs open).
    #[arg(long, env = "BERTH_CLUSTER_TOKEN_FILE", value_name = "FILE")]
    pub cluster_token_file: Option<PathBuf>,
    /// Directory with ca.pem, cert.pem and key.pem: mutual TLS between members.
    #[arg(long, env = "BERTH_CLUSTER_TLS_DIR", value_name = "DIR")]
    pub cluster_tls_dir: Option<PathBuf>,
    /// The cluster's name: stamped on every container it creates (io.berth.cluster) and part of
    /// container and volume names, so clusters sharing a Docker host never touch each other's
    /// containers [default: berth].
    #[arg(long, env = "BERTH_CLUSTER_NAME", value_name = "NAME")]
    pub cluster_name: Option<String>,
    /// How often the leader sends heartbeats [default: 100ms].
    #[arg(long, env = "BERTH_HEARTBEAT", value_name = "DURATION")]
    pub heartbeat: Option<String>,
    /// The election timeout T: a follower that has not heard from the leader for a random
    /// [1.05T, 1.5T) stands for election, and votes for no one else within T of the last
    /// heartbeat; a leader that no quorum acknowledged for 3/4 T stops acting [default: 1000ms].
    #[arg(long, env = "BERTH_ELECTION_TIMEOUT", value_name = "DURATION")]
    pub election_timeout: Option<String>,
}

/// The settings that decide which manifest trees are accepted: shared by `berth serve` and
/// `berth validate` (flags, `BERTH_*` variables and the TOML file alike).
#[derive(Debug, Clone, clap::Args, Default)]
pub struct PolicyArgs {
    /// Largest manifest file accepted, e.g. 512Ki, 1Mi [default: 1Mi, etcd's request limit].
    #[arg(long, env = "BERTH_MAX_FILE_SIZE", value_name = "SIZE")]
    pub max_file_size: Option<String>,
    /// Most manifest files in one tree [default: 10000].
    #[arg(long, env = "BERTH_MAX_TREE_FILES", value_name = "COUNT")]
    pub max_tree_files: Option<usize>,
    /// Most bytes of manifest files in one tree, e.g. 64Mi [default: 64Mi].
    #[arg(long, env = "BERTH_MAX_TREE_SIZE", value_name = "SIZE")]
    pub max_tree_size: Option<String>,
    /// Host directory that `hostPath` volumes may mount (it or anything under it); repeat for
    /// several. Without it any absolute path may be mounted, as in Kubernetes: whoever can
    /// push a manifest then owns the hosts' filesystems.
    #[arg(
        long = "allow-host-path",
        env = "BERTH_ALLOW_HOST_PATHS",
        value_delimiter = ',',
        value_name = "PREFIX"
    )]
    pub allow_host_paths: Vec<String>,
}

impl PolicyArgs {
    /// The `hostPath` policy, from these flags, then the `--config` file's `allow_host_path`.
    pub fn host_paths(&self, config: Option<&Path>) -> Result<HostPathPolicy, ConfigError> {
        let file = match config {
            Some(p) => read_file(p)?,
            None => FileConfig::default(),
        };
        self.host_paths_with(&file)
    }

    fn host_paths_with(&self, file: &FileConfig) -> Result<HostPathPolicy, ConfigError> {
        let prefixes = if self.allow_host_paths.is_empty() {
            file.allow_host_path.clone().unwrap_or_default()
        } else {
            self.allow_host_paths.clone()
        };
        if prefixes.is_empty() {
            return Ok(HostPathPolicy::anywhere());
        }
        HostPathPolicy::only(&prefixes).map_err(|m| invalid("--allow-host-path", m))
    }

    /// The budgets, from these flags, then the `--config` file's keys, then the defaults.
    pub fn resolve(&self, config: Option<&Path>) -> Result<Limits, ConfigError> {
        let file = match config {
            Some(p) => read_file(p)?,
            None => FileConfig::default(),
        };
        self.resolve_with(&file)
    }

    fn resolve_with(&self, file: &FileConfig) -> Result<Limits, ConfigError> {
        let defaults = Limits::default();
        let size = |flag: &'static str, given: Option<&String>, default: u64| match given {
            Some(s) => parse_size(s).map_err(|m| invalid(flag, m)),
            None => Ok(default),
        };
        let max_tree_files = self
            .max_tree_files
            .or(file.max_tree_files)
            .unwrap_or(defaults.max_tree_files);
        if max_tree_files == 0 {
            return Err(invalid("--max-tree-files", "must be more than zero"));
        }
        Ok(Limits {
            max_file_bytes: size(
                "--max-file-size",
                self.max_file_size.as_ref().or(file.max_file_size.as_ref()),
                defaults.max_file_bytes,
            )?,
            max_tree_files,
            max_tree_bytes: size(
                "--max-tree-size",
                self.max_tree_size.as_ref().or(file.max_tree_size.as_ref()),
                defaults.max_tree_bytes,
            )?,
        })
    }
}

/// The same settings, read from `--config`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    repo: Option<String>,
    branch: Option<String>,
    path: Option<String>,
    node: Option<Vec<String>>,
    /// `[[nodes]]` tables: a host with its labels, advertise address and capacity.
    #[serde(default)]
    nodes: Vec<super::node_config::NodeTable>,
    docker_tls_dir: Option<PathBuf>,
    data_dir: Option<PathBuf>,
    listen: Option<String>,
    poll: Option<String>,
    resync: Option<String>,
    node_grace: Option<String>,
    max_file_size: Option<String>,
    max_tree_files: Option<usize>,
    max_tree_size: Option<String>,
    allow_host_path: Option<Vec<String>>,
    on_failure: Option<String>,
    pull_fallback: Option<bool>,
    registry_auth: Option<PathBuf>,
    repo_token_file: Option<PathBuf>,
    ssh_key_file: Option<PathBuf>,
    ssh_known_hosts: Option<PathBuf>,
    webhook_secret_file: Option<Vec<String>>,
    verify_signatures: Option<PathBuf>,
    allow_signed_rewind: Option<bool>,
    history_size: Option<String>,
    id: Option<u64>,
    peer: Option<Vec<String>>,
    advertise_url: Option<String>,
    raft_listen: Option<String>,
    cluster_token_file: Option<PathBuf>,
    cluster_tls_dir: Option<PathBuf>,
    cluster_name: Option<String>,
    heartbeat: Option<String>,
    election_timeout: Option<String>,
    service_cidr: Option<String>,
    service_address: Option<String>,
    cluster_ip_interface: Option<String>,
    node_port_address: Option<std::net::IpAddr>,
    drain_delay: Option<String>,
}

/// What a halted rollout leads to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnFailure {
    /// The commit is `failed`; the old replicas keep serving until the next commit.
    Halt,
    /// Also re-apply the last commit that converged (recorded `rolled-back`).
    Rollback,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeConfig {
    pub name: String,
    pub endpoint: String,
    /// `--node-label`s and `[[nodes]]` labels.
    pub labels: crate::manifest::StringMap,
    /// `--node-advertise`: where its published ports are reached.
    pub advertise: Option<String>,
    /// `--node-capacity` (`cpu=2,memory=4Gi`), over what the engine reports.
    pub capacity: Option<String>,
}

/// Settings after merging and checking.
#[derive(Debug, Clone)]
pub struct Config {
    pub repo: String,
    pub branch: String,
    pub path: String,
    pub nodes: Vec<NodeConfig>,
    pub docker_tls_dir: Option<PathBuf>,
    pub data_dir: PathBuf,
    pub listen: SocketAddr,
    pub poll: Duration,
    pub resync: Duration,
    /// How long a host may not answer before it is `NotReady` (a cluster-wide setting).
    pub node_grace: Duration,
    /// Budgets on manifest trees (the same as `berth validate` with the same settings).
    pub limits: Limits,
    /// Where `hostPath` volumes may point (the same as `berth validate`).
    pub host_paths: HostPathPolicy,
    pub on_failure: OnFailure,
    /// How images are pulled (fallback to a local image, registry credentials).
    pub pull: PullSettings,
    /// How the repository is fetched (deadlines, credential files).
    pub fetch: FetchSettings,
    /// Webhook secrets by provider; `None` when no receiver is on.
    pub webhooks: Option<Secrets>,
    /// Signed-commit mode.
    pub signatures: Option<SignaturePolicy>,
    pub allow_signed_rewind: bool,
    /// Estimated bytes of history kept (`--history-size`): see `raft::state::records`.
    pub history_bytes: u64,
    /// This member and its cluster.
    pub cluster: ClusterConfig,
    /// Where Raft is served when not on the API listener.
    pub raft_listen: Option<SocketAddr>,
    /// Cluster IPs, Service listeners, drain delay.
    pub services: super::service_args::ServiceSettings,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A setting has a value berth cannot use.
    #[error("{setting}: {message}")]
    Invalid {
        setting: &'static str,
        message: String,
    },
    /// The `--config` file could not be read or parsed.
    #[error("config file {path}: {message}")]
    File { path: String, message: String },
}

pub(super) fn invalid(setting: &'static str, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        setting,
        message: message.into(),
    }
}

impl ServeArgs {
    pub fn resolve(self) -> Result<Config, ConfigError> {
        let file = match &self.config {
            Some(p) => read_file(p)?,
            None => FileConfig::default(),
        };
        let cluster_file = file.clone();
        let limits = self.policy.resolve_with(&file)?;
        let host_paths = self.policy.host_paths_with(&file)?;
        let repo = self.repo.or(file.repo).ok_or_else(|| {
            invalid(
                "--repo",
                "required: the Git repository of manifests (path or URL)",
            )
        })?;
        let nodes = if !self.nodes.is_empty() {
            self.nodes
        } else if file.node.is_some() || !file.nodes.is_empty() {
            let mut listed = file.node.clone().unwrap_or_default();
            listed.extend(super::node_config::from_tables(&file.nodes));
            listed
        } else {
            vec!["local=unix:///var/run/docker.sock".into()]
        };
        let mut nodes = nodes
            .iter()
            .map(|n| parse_node(n))
            .collect::<Result<Vec<_>, _>>()?;
        super::node_config::apply(&mut nodes, &file.nodes, &self.node_settings)?;
        for (i, n) in nodes.iter().enumerate() {
            if nodes[..i].iter().any(|m| m.name == n.name) {
                return Err(invalid(
                    "--node",
                    format!("node name {:?} given twice", n.name),
                ));
            }
        }
        let listen = self
            .listen
            .or(file.listen.clone())
            .unwrap_or_else(|| "127.0.0.1:7878".into());
        let listen = listen
            .parse()
            .map_err(|_| invalid("--listen", format!("{listen:?} is not an address:port")))?;
        let (cluster, raft_listen) = cluster_config(self.cluster, &cluster_file, listen)?;
        let poll = parse_duration(&self.poll.or(file.poll).unwrap_or_else(|| "10s".into()))
            .map_err(|m| invalid("--poll", m))?;
        let resync = parse_duration(&self.resync.or(file.resync).unwrap_or_else(|| "30s".into()))
            .map_err(|m| invalid("--resync", m))?;
        let node_grace = parse_duration(
            &self
                .node_grace
                .or(file.node_grace)
                .unwrap_or_else(|| "10s".into()),
        )
        .map_err(|m| invalid("--node-grace", m))?;
        let on_failure = match self
            .on_failure
            .or(file.on_failure)
            .as_deref()
            .unwrap_or("halt")
        {
            "halt" => OnFailure::Halt,
            "rollback" => OnFailure::Rollback,
            other => {
                return Err(invalid(
                    "--on-failure",
                    format!("{other:?} is neither halt nor rollback"),
                ))
            }
        };
        let auth = match self.registry_auth.or(file.registry_auth) {
            Some(path) => RegistryAuth::from_file(&path).map_err(|e| match e {
                crate::docker::AuthFileError::Invalid { path, reason } => {
                    invalid("--registry-auth", format!("{path}: {reason}"))
                }
            })?,
            None => RegistryAuth::default(),
        };
        let pull = PullSettings {
            fallback: self.pull_fallback.or(file.pull_fallback).unwrap_or(true),
            auth,
            ..PullSettings::default()
        };
        let fetch = FetchSettings {
            credentials: Credentials {
                token_file: self.repo_token_file.or(file.repo_token_file),
                ssh_key_file: self.ssh_key_file.or(file.ssh_key_file),
                ssh_known_hosts: self.ssh_known_hosts.or(file.ssh_known_hosts),
            },
            ..FetchSettings::default()
        };
        let secret_flags = if self.webhook_secret_files.is_empty() {
            file.webhook_secret_file.unwrap_or_default()
        } else {
            self.webhook_secret_files
        };
        let webhooks = if secret_flags.is_empty() {
            None
        } else {
            Some(
                Secrets::from_flags(&secret_flags)
                    .map_err(|e| invalid("--webhook-secret-file", strip_flag(&e.to_string())))?,
            )
        };
        let signatures = self
            .verify_signatures
            .or(file.verify_signatures)
            .map(|allowed_signers| SignaturePolicy {
                allowed_signers,
                revoked_keys: None,
            });
        if let Some(p) = &signatures {
            if !p.allowed_signers.is_file() {
                return Err(invalid(
                    "--verify-signatures",
                    format!("{} is not a readable file", p.allowed_signers.display()),
                ));
            }
        }
        let allow_signed_rewind =
            self.allow_signed_rewind || file.allow_signed_rewind.unwrap_or(false);
        let history_bytes = match self.history_size.as_ref().or(file.history_size.as_ref()) {
            Some(s) => parse_size(s).map_err(|m| invalid("--history-size", m))?,
            None => crate::raft::state::HISTORY_BYTES,
        };
        let path = self.path.or(file.path).unwrap_or_default();
        let path = path.trim_matches('/').to_string();
        let flags = self.services;
        let services = super::service_args::ServiceArgs {
            service_cidr: flags.service_cidr.or(file.service_cidr),
            service_address: flags.service_address.or(file.service_address),
            cluster_ip_interface: flags.cluster_ip_interface.or(file.cluster_ip_interface),
            node_port_address: flags.node_port_address.or(file.node_port_address),
            drain_delay: flags.drain_delay.or(file.drain_delay),
        }
        .resolve()?;
        Ok(Config {
            repo,
            branch: self.branch.or(file.branch).unwrap_or_else(|| "main".into()),
            path: if path == "." { String::new() } else { path },
            nodes,
            docker_tls_dir: self.docker_tls_dir.or(file.docker_tls_dir),
            data_dir: self
                .data_dir
                .or(file.data_dir)
                .unwrap_or_else(|| "berth-data".into()),
            listen,
            poll,
            resync,
            node_grace,
            limits,
            host_paths,
            on_failure,
            pull,
            fetch,
            webhooks,
            signatures,
            allow_signed_rewind,
            history_bytes,
            cluster,
            raft_listen,
            services,
        })
    }
}

/// The cluster this member belongs to, from the cluster flags (then the file).
fn cluster_config(
    args: ClusterArgs,
    file: &FileConfig,
    listen: SocketAddr,
) -> Result<(ClusterConfig, Option<SocketAddr>), ConfigError> {
    let id = args.id.or(file.id).unwrap_or(1);
    if id == 0 {
        return Err(invalid("--id", "member ids start at 1"));
    }
    let peer_flags = if args.peers.is_empty() {
        file.peer.clone().unwrap_or_default()
    } else {
        args.peers
    };
    let mut peers = std::collections::BTreeMap::new();
    for p in &peer_flags {
        let (pid, addr) = p
            .split_once('=')
            .ok_or_else(|| invalid("--peer", format!("{p:?} is not ID=ADDR")))?;
        let pid: u64 =
            pid.parse().ok().filter(|n| *n > 0).ok_or_else(|| {
                invalid("--peer", format!("{pid:?} is not a member id (1, 2, ...)"))
            })?;
        if addr.is_empty() {
            return Err(invalid("--peer", format!("member {pid} has no address")));
        }
        if peers.insert(pid, addr.to_string()).is_some() {
            return Err(invalid("--peer", format!("member {pid} is listed twice")));
        }
    }
    let raft_listen = match args.raft_listen.or(file.raft_listen.clone()) {
        Some(a) => Some(
            a.parse::<SocketAddr>()
                .map_err(|_| invalid("--raft-listen", format!("{a:?} is not an address:port")))?,
        ),
        None => None,
    };
    let tls_dir = args.cluster_tls_dir.or(file.cluster_tls_dir.clone());
    let tls = match &tls_dir {
        Some(dir) => {
            if raft_listen.is_none() {
                return Err(invalid(
                    "--cluster-tls-dir",
                    "needs --raft-listen: the members' TLS listener is Raft's own",
                ));
            }
            Some(
                ClusterTls::from_dir(dir)
                    .map_err(|e| invalid("--cluster-tls-dir", e.to_string()))?,
            )
        }
        None => None,
    };
    let advertised_at = raft_listen.unwrap_or(listen);
    let advertise_url = match args.advertise_url.or(file.advertise_url.clone()) {
        Some(url) => url,
        None if advertised_at.ip().is_unspecified() => {
            return Err(invalid(
                "--advertise-url",
                format!("required: {advertised_at} is a wildcard address, so the other members need to be told where to reach this one"),
            ))
        }
        None => member_url(&advertised_at.to_string(), tls.is_some()),
    };
    let token_file = args.cluster_token_file.or(file.cluster_token_file.clone());
    let token = match &token_file {
        Some(f) => ClusterToken::from_file(f)
            .map_err(|e| invalid("--cluster-token-file", e.to_string()))?,
        None if peers.keys().any(|p| *p != id) => {
            return Err(invalid(
                "--cluster-token-file",
                "required with --peer: a cluster never runs open",
            ))
        }
        None => ClusterToken::unset(),
    };
    let duration = |flag: &'static str, v: Option<String>, default: Duration| match v {
        Some(v) => parse_duration(&v).map_err(|m| invalid(flag, m)),
        None => Ok(default),
    };
    let mut config = ClusterConfig::single(id, advertise_url);
    config.peers = peers;
    config.token = token;
    config.tls = tls;
    config.cluster_name = args
        .cluster_name
        .or(file.cluster_name.clone())
        .unwrap_or_else(|| "berth".into());
    crate::manifest::names::dns1123_label(&config.cluster_name)
        .map_err(|e| invalid("--cluster-name", e))?;
    config.heartbeat = duration(
        "--heartbeat",
        args.heartbeat.or(file.heartbeat.clone()),
        config.heartbeat,
    )?;
    config.election_timeout = duration(
        "--election-timeout",
        args.election_timeout.or(file.election_timeout.clone()),
        config.election_timeout,
    )?;
    config
        .raft_config()
        .map_err(|e| invalid("--heartbeat", e.to_string()))?;
    config
        .initial_members()
        .map_err(|e| invalid("--peer", e.to_string()))?;
    Ok((config, raft_listen))
}

/// `--flag: message` errors from other modules name the flag themselves: keep the message.
fn strip_flag(message: &str) -> String {
    message
        .split_once(": ")
        .filter(|(flag, _)| flag.starts_with("--"))
        .map_or(message, |(_, rest)| rest)
        .to_string()
}

fn read_file(path: &Path) -> Result<FileConfig, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError::File {
        path: path.display().to_string(),
        message: e.to_string(),
    })?;
    toml::from_str(&text).map_err(|e| ConfigError::File {
        path: path.display().to_string(),
        message: e.to_string(),
    })
}

fn parse_node(s: &str) -> Result<NodeConfig, ConfigError> {
    let (name, endpoint) = s
        .split_once('=')
        .ok_or_else(|| invalid("--node", format!("{s:?} is not NAME=ENDPOINT")))?;
    crate::manifest::names::dns1123_label(name)
        .map_err(|e| invalid("--node", format!("node name {e}")))?;
    if !["unix://", "tcp://", "https://", "http://"]
        .iter()
        .any(|p| endpoint.starts_with(p))
    {
        return Err(invalid(
            "--node",
            format!("endpoint {endpoint:?} must start with unix://, tcp:// or https://"),
        ));
    }
    Ok(NodeConfig {
        name: name.to_string(),
        endpoint: endpoint.to_string(),
        labels: Default::default(),
        advertise: None,
        capacity: None,
    })
}

/// `200ms`, `10s`, `5m`, `1h`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (n, unit) = s.split_at(split);
    let n: u64 = n
        .parse()
        .map_err(|_| format!("{s:?} is not a duration like 200ms, 10s, 5m or 1h"))?;
    let d = match unit {
        "ms" => Duration::from_millis(n),
        "s" => Duration::from_secs(n),
        "m" => Duration::from_secs(n * 60),
        "h" => Duration::from_secs(n * 3600),
        _ => return Err(format!("{s:?} is not a duration like 200ms, 10s, 5m or 1h")),
    };
    if d.is_zero() {
        return Err(format!("{s:?} must be more than zero"));
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_take_the_four_units() {
        assert_eq!(parse_duration("200ms"), Ok(Duration::from_millis(200)));
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert!(parse_duration("10").is_err());
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("1.5s").is_err());
    }

    #[test]
    fn flags_win_over_the_file_and_defaults_fill_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("berth.toml");
        std::fs::write(
            &file,
            "repo = \"/srv/git\"\nbranch = \"prod\"\nnode = [\"a=tcp://127.0.0.1:2375\"]\n",
        )
        .unwrap();
        let args = ServeArgs {
            branch: Some("main".into()),
            config: Some(file),
            ..Default::default()
        };
        let c = args.resolve().unwrap();
        assert_eq!(c.repo, "/srv/git");
        assert_eq!(c.branch, "main");
        assert_eq!(
            c.nodes,
            vec![NodeConfig {
                name: "a".into(),
                endpoint: "tcp://127.0.0.1:2375".into(),
                labels: Default::default(),
                advertise: None,
                capacity: None,
            }]
        );
        assert_eq!(c.listen.to_string(), "127.0.0.1:7878");
        assert_eq!(c.poll, Duration::from_secs(10));
        assert_eq!(c.limits, Limits::default());
    }

    #[test]
    fn service_settings_come_from_flags_then_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("berth.toml");
        std::fs::write(
            &file,
            "repo = \"/srv/git\"\nnode = [\"a=tcp://127.0.0.1:2375\"]\n\
             service_cidr = \"10.96.0.0/12\"\nservice_address = \"none\"\n\
             cluster_ip_interface = \"lo:svc\"\nnode_port_address = \"127.0.0.2\"\n\
             drain_delay = \"5s\"\n",
        )
        .unwrap();
        let mut args = ServeArgs {
            config: Some(file),
            ..Default::default()
        };
        args.services.drain_delay = Some("1s".into());
        let s = args.resolve().unwrap().services;
        assert_eq!(s.cidr.to_string(), "10.96.0.0/12");
        assert_eq!(s.service_address, None);
        assert_eq!(s.interface.as_deref(), Some("lo:svc"));
        assert_eq!(s.node_port_address.to_string(), "127.0.0.2");
        assert_eq!(s.drain_delay, Duration::from_secs(1), "the flag wins");
    }

    #[test]
    fn budgets_come_from_flags_then_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("berth.toml");
        std::fs::write(&file, "max_file_size = \"512Ki\"\nmax_tree_files = 20\n").unwrap();
        let flags = PolicyArgs {
            max_tree_files: Some(30),
            ..Default::default()
        };
        let limits = flags.resolve(Some(&file)).unwrap();
        assert_eq!(limits.max_file_bytes, 512 << 10);
        assert_eq!(limits.max_tree_files, 30);
        assert_eq!(limits.max_tree_bytes, Limits::default().max_tree_bytes);
        let e = PolicyArgs {
            max_tree_size: Some("lots".into()),
            ..Default::default()
        }
        .resolve(None)
        .unwrap_err();
        assert!(e.to_string().starts_with("--max-tree-size:"), "{e}");
    }

    #[test]
    fn bad_settings_name_themselves() {
        let e = ServeArgs::default().resolve().unwrap_err().to_string();
        assert!(e.starts_with("--repo: required"), "{e}");
        let e = ServeArgs {
            repo: Some("/r".into()),
            nodes: vec!["local".into()],
            ..Default::default()
        }
        .resolve()
        .unwrap_err()
        .to_string();
        assert_eq!(e, "--node: \"local\" is not NAME=ENDPOINT");
        let e = ServeArgs {
            repo: Some("/r".into()),
            poll: Some("soon".into()),
            ..Default::default()
        }
        .resolve()
        .unwrap_err()
        .to_string();
        assert!(e.starts_with("--poll:"), "{e}");
    }
}

//! Why a simulated engine refuses a request: each variant is one of Docker's own answers, with
//! its HTTP status and, word for word, the message Docker 20.10 sends (berth and bollard read
//! both, e.g. 404 as "gone" and 409 "is not running" as "already stopped").

/// A request the simulated engine answers with an error, as Docker would.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// No container has this id, name or id prefix (404).
    #[error("No such container: {0}")]
    NoSuchContainer(String),
    /// The image reference is not on the host (404).
    #[error("No such image: {0}")]
    NoSuchImage(String),
    /// `GET /images/{name}/json` of an absent image (404; Docker says it twice).
    #[error("no such image: {0}: No such image: {0}")]
    NoSuchImageInspect(String),
    /// No volume of this name (404).
    #[error("get {0}: no such volume")]
    NoSuchVolume(String),
    /// No exec instance of this id (404).
    #[error("No such exec instance: {0}")]
    NoSuchExec(String),
    /// `POST /containers/create?name=` with a name another container holds (409).
    #[error(
        "Conflict. The container name \"/{name}\" is already in use by container \"{id}\". \
         You have to remove (or rename) that container to be able to reuse that name."
    )]
    NameInUse { name: String, id: String },
    /// A signal for a container that is not running (409).
    #[error("Cannot kill container: {reference}: Container {id} is not running")]
    KillNotRunning { reference: String, id: String },
    /// An exec in a container that is not running (409).
    #[error("Container {0} is not running")]
    NotRunning(String),
    /// Removing a running container without `force` (409).
    #[error(
        "You cannot remove a running container {0}. Stop the container before attempting \
         removal or force remove"
    )]
    RemoveRunning(String),
    /// Removing a volume a container mounts (409).
    #[error("remove {name}: volume is in use - [{}]", users.join(", "))]
    VolumeInUse { name: String, users: Vec<String> },
    /// Starting a container that joins the namespace of one that is not running (409).
    #[error("cannot join network of a non running container: {0}")]
    JoinNotRunning(String),
    /// A published host port another running container of the host holds (500).
    #[error(
        "driver failed programming external connectivity on endpoint {name}: \
         Bind for {ip}:{port} failed: port is already allocated"
    )]
    PortAllocated { name: String, ip: String, port: u16 },
    /// A pull of an image the simulated registry does not have, from Docker Hub (404).
    #[error(
        "pull access denied for {0}, repository does not exist or may require 'docker login': \
         denied: requested access to the resource is denied"
    )]
    PullDenied(String),
    /// A pull of an unknown tag from any other registry (404).
    #[error("manifest for {0} not found: manifest unknown: manifest unknown")]
    ManifestUnknown(String),
    /// A malformed request: bad JSON, an unknown filter, an invalid signal (400).
    #[error("{0}")]
    BadRequest(String),
    /// An API version above the simulated engine's (400), as dockerd 20.10 says it.
    #[error("client version {0} is too new. Maximum supported API version is {1}")]
    VersionTooNew(String, &'static str),
    /// An API version below the oldest one Docker 20.10 accepts (400).
    #[error(
        "client version {0} is too old. Minimum supported API version is {1}, please upgrade \
         your client to a newer version"
    )]
    VersionTooOld(String, &'static str),
    /// A path the Docker API does not have (404).
    #[error("page not found")]
    PageNotFound,
    /// What the simulation does not do (a download by URL): 500 with the reason.
    #[error("{0}")]
    Unsupported(String),
}

impl Refusal {
    /// The HTTP status Docker answers with.
    pub fn status(&self) -> u16 {
        match self {
            Refusal::NoSuchContainer(_)
            | Refusal::NoSuchImage(_)
            | Refusal::NoSuchImageInspect(_)
            | Refusal::NoSuchVolume(_)
            | Refusal::NoSuchExec(_)
            | Refusal::PullDenied(_)
            | Refusal::ManifestUnknown(_)
            | Refusal::PageNotFound => 404,
            Refusal::NameInUse { .. }
            | Refusal::KillNotRunning { .. }
            | Refusal::NotRunning(_)
            | Refusal::RemoveRunning(_)
            | Refusal::VolumeInUse { .. }
            | Refusal::JoinNotRunning(_) => 409,
            Refusal::BadRequest(_) | Refusal::VersionTooNew(..) | Refusal::VersionTooOld(..) => 400,
            Refusal::PortAllocated { .. } | Refusal::Unsupported(_) => 500,
        }
    }
}

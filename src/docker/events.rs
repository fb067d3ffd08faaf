//! Container events of a host, as "look again" triggers.
//!
//! An event says that something happened to a managed container, not what the host looks like
//! now: events can be missed (a dropped connection, an engine restart), so the reconciler treats
//! them only as a reason to list the host again, never as state.

use std::collections::HashMap;

use bollard::errors::Error as BollardError;
use bollard::models::{EventMessage, EventMessageTypeEnum};
use bollard::query_parameters::EventsOptionsBuilder;
use futures_util::stream::{self, BoxStream};
use futures_util::{StreamExt, TryStreamExt};
use serde::Serialize;
use tokio::net::{TcpStream, UnixStream};
use tokio::time::timeout;

use super::endpoint::Endpoint;
use super::error::DockerError;
use super::event_conn;
use super::host::DockerHost;
use crate::reconcile::labels;

/// Something happened to a managed container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ContainerEvent {
    pub id: String,
    /// Docker's verb: `create`, `start`, `die`, `stop`, `kill`, `destroy`, `oom`, ... For
    /// `exec_start: sh -c ...` or `health_status: healthy` only the verb before `:` is kept.
    pub action: String,
    pub namespace: String,
    pub pod: String,
}

impl DockerHost {
    /// Events of managed containers, from now on. The stream ends (or yields an error) when the
    /// connection to the engine drops; the caller subscribes again and relists, since events
    /// may have been missed in between. An engine that is down yields one unreachable error.
    /// Boxed, so that it is `Unpin` and can be polled with `.next()` or moved into a task.
    pub fn events(&self) -> BoxStream<'static, Result<ContainerEvent, DockerError>> {
        let host = self.clone();
        stream::once(async move {
            let messages = host.event_messages().await?;
            let events = messages
                .map_err(move |e| host.err("watch events", e))
                .try_filter_map(|message| async move { Ok(container_event(message)) });
            Ok::<_, DockerError>(events)
        })
        .try_flatten()
        .boxed()
    }

    /// The engine's event messages for managed containers. Plain sockets are read by
    /// [`super::event_conn`] (a 512-byte buffer per stream); TLS goes through bollard.
    async fn event_messages(
        &self,
    ) -> Result<BoxStream<'static, Result<EventMessage, BollardError>>, DockerError> {
        let filters = HashMap::from([
            ("type", vec!["container".to_string()]),
            ("label", vec![format!("{}=true", labels::MANAGED)]),
        ]);
        let path = format!(
            "/events?filters={}",
            event_conn::query_escape(&serde_json::to_string(&filters).unwrap_or_default())
        );
        let within = self.request_timeout();
        let opened = match self.parsed_endpoint() {
            Endpoint::Unix { path: socket } => {
                timeout(within, async {
                    event_conn::open(UnixStream::connect(socket).await?, &path).await
                })
                .await
            }
            Endpoint::Http { addr } => {
                timeout(within, async {
                    event_conn::open(TcpStream::connect(addr).await?, &path).await
                })
                .await
            }
            Endpoint::Https { .. } => {
                let docker = self.client().await?.clone();
                let options = EventsOptionsBuilder::new().filters(&filters).build();
                return Ok(docker.events(Some(options)).boxed());
            }
        };
        opened
            .unwrap_or(Err(BollardError::RequestTimeoutError))
            .map_err(|e| self.err("watch events", e))
    }
}

/// The event, when it is about a managed container (the engine filters; this double-checks).
pub fn container_event(message: EventMessage) -> Option<ContainerEvent> {
    if message.typ != Some(EventMessageTypeEnum::CONTAINER) {
        return None;
    }
    let actor = message.actor?;
    let attributes = actor.attributes.unwrap_or_default();
    if attributes.get(labels::MANAGED).map(String::as_str) != Some("true") {
        return None;
    }
    let action = message.action?;
    let verb = action
        .split_once(':')
        .map_or(action.as_str(), |(verb, _)| verb)
        .trim();
    let attribute = |key: &str| attributes.get(key).cloned().unwrap_or_default();
    Some(ContainerEvent {
        id: actor.id?,
        action: verb.to_string(),
        namespace: attribute(labels::NAMESPACE),
        pod: attribute(labels::POD),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use bollard::models::EventActor;

    fn message(action: &str, managed: &str) -> EventMessage {
        EventMessage {
            typ: Some(EventMessageTypeEnum::CONTAINER),
            action: Some(action.into()),
            actor: Some(EventActor {
                id: Some("abc".into()),
                attributes: Some(HashMap::from([
                    (labels::MANAGED.to_string(), managed.to_string()),
                    (labels::NAMESPACE.to_string(), "shop".to_string()),
                    (labels::POD.to_string(), "web-1".to_string()),
                ])),
            }),
            ..Default::default()
        }
    }

    #[test]
    fn keeps_the_verb_and_the_pod() {
        assert_eq!(
            container_event(message("exec_start: sh -c true", "true")),
            Some(ContainerEvent {
                id: "abc".into(),
                action: "exec_start".into(),
                namespace: "shop".into(),
                pod: "web-1".into(),
            })
        );
        assert_eq!(
            container_event(message("die", "true")).unwrap().action,
            "die"
        );
    }

    #[test]
    fn drops_unmanaged_and_non_container_events() {
        assert_eq!(container_event(message("die", "false")), None);
        let mut m = message("die", "true");
        m.typ = Some(EventMessageTypeEnum::NETWORK);
        assert_eq!(container_event(m), None);
    }
}

//! What a host runs, as berth sees it: its managed containers, read back from their labels.
//!
//! Everything the planner needs is in the labels berth wrote at creation, so observing a host is
//! one list call, whatever the number of containers. The engine filters by
//! `io.berth.managed=true`, and the mapping checks the label again: a container berth did not
//! create must never reach the planner, which could otherwise remove it.

use std::collections::HashMap;

use bollard::models::ContainerSummary;
use bollard::query_parameters::ListContainersOptionsBuilder;

use super::error::DockerError;
use super::host::DockerHost;
use crate::manifest::DEFAULT_GRACE_SECONDS;
use crate::reconcile::{labels, ObservedContainer};

impl DockerHost {
    /// All managed containers of the host, running or not. Unmanaged containers never appear.
    pub async fn list_managed(&self) -> Result<Vec<ObservedContainer>, DockerError> {
        let docker = self.client().await?;
        let filters = HashMap::from([("label", vec![format!("{}=true", labels::MANAGED)])]);
        let options = ListContainersOptionsBuilder::new()
            .all(true)
            .filters(&filters)
            .build();
        let listed = docker
            .list_containers(Some(options))
            .await
            .map_err(|e| self.err("list containers", e))?;
        Ok(listed.iter().filter_map(observed).collect())
    }
}

/// One listed container as the planner sees it; `None` unless it carries
/// `io.berth.managed=true`. A managed container with damaged labels is still returned (with
/// empty names), so that the planner, which wants nothing of that name, prunes it.
pub fn observed(summary: &ContainerSummary) -> Option<ObservedContainer> {
    let labels = summary.labels.as_ref()?;
    if labels.get(labels::MANAGED).map(String::as_str) != Some("true") {
        return None;
    }
    let label = |key: &str| labels.get(key).cloned().unwrap_or_default();
    let state = summary
        .state
        .as_ref()
        .map(|s| s.to_string())
        .unwrap_or_default();
    Some(ObservedContainer {
        id: summary.id.clone()?,
        namespace: label(labels::NAMESPACE),
        pod: label(labels::POD),
        container: label(labels::CONTAINER),
        owner: labels.get(labels::OWNER).cloned(),
        commit: label(labels::COMMIT),
        spec_hash: label(labels::SPEC_HASH),
        index: labels
            .get(labels::INDEX)
            .and_then(|i| i.parse().ok())
            .unwrap_or(0),
        grace_seconds: labels
            .get(labels::GRACE)
            .and_then(|g| g.parse().ok())
            .unwrap_or(DEFAULT_GRACE_SECONDS),
        image: summary.image.clone().unwrap_or_default(),
        running: state == "running",
        exit_code: summary.status.as_deref().and_then(exit_code),
        state,
    })
}

/// The exit code from Docker's status line (`Exited (137) 5 seconds ago`). The list call has no
/// exit code field, and inspecting every container would cost one request per container.
fn exit_code(status: &str) -> Option<i64> {
    let rest = status.strip_prefix("Exited (")?;
    rest.split_once(')')?.0.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use bollard::models::ContainerSummaryStateEnum;

    fn summary(
        labels: &[(&str, &str)],
        state: ContainerSummaryStateEnum,
        status: &str,
    ) -> ContainerSummary {
        ContainerSummary {
            id: Some("abc".into()),
            image: Some("berth-test/busybox:1".into()),
            labels: Some(
                labels
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            ),
            state: Some(state),
            status: Some(status.into()),
            ..Default::default()
        }
    }

    #[test]
    fn maps_labels_and_state() {
        let s = summary(
            &[
                (labels::MANAGED, "true"),
                (labels::NAMESPACE, "shop"),
                (labels::POD, "web-1"),
                (labels::CONTAINER, "app"),
                (labels::COMMIT, "c1"),
                (labels::SPEC_HASH, "h1"),
                (labels::INDEX, "1"),
                (labels::GRACE, "5"),
            ],
            ContainerSummaryStateEnum::EXITED,
            "Exited (137) 3 seconds ago",
        );
        assert_eq!(
            observed(&s),
            Some(ObservedContainer {
                id: "abc".into(),
                namespace: "shop".into(),
                pod: "web-1".into(),
                container: "app".into(),
                owner: None,
                commit: "c1".into(),
                spec_hash: "h1".into(),
                index: 1,
                grace_seconds: 5,
                image: "berth-test/busybox:1".into(),
                running: false,
                state: "exited".into(),
                exit_code: Some(137),
            })
        );
    }

    #[test]
    fn never_maps_an_unmanaged_container() {
        let running = ContainerSummaryStateEnum::RUNNING;
        assert_eq!(observed(&summary(&[], running, "Up 1 second")), None);
        let s = summary(
            &[(labels::MANAGED, "false"), (labels::POD, "web-1")],
            running,
            "Up",
        );
        assert_eq!(observed(&s), None);
        let s = summary(&[(labels::MANAGED, "true")], running, "Up 2 minutes");
        let o = observed(&s).unwrap();
        assert!(o.running);
        assert_eq!(
            (o.exit_code, o.grace_seconds),
            (None, DEFAULT_GRACE_SECONDS)
        );
    }
}
